// Spans for RabbitMQ publish and consume, following OpenTelemetry's messaging conventions
// (v1.24: messaging.system, messaging.operation, messaging.destination.name = the exchange,
// messaging.rabbitmq.destination.routing_key, messaging.message.id, PRODUCER / CONSUMER kinds)
// and also carrying the design's own names (order_id, queue, message_id, retry_count), which
// ordertrace's order records read. Across RabbitMQ the consumer's span links to the producer's
// context instead of taking it as parent. Free functions; thread-safe as Tracer is.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/attribute_names.h"
#include "sdk/trace_context.h"
#include "sdk/tracer.h"

namespace ordertrace::sdk {

// Attribute names (shared with ordertrace's order model).
using base::kMessageIdKey;
using base::kMessagingDeliveryTagKey;
using base::kMessagingDestinationNameKey;
using base::kMessagingMessageIdKey;
using base::kMessagingOperationKey;
using base::kMessagingRoutingKeyKey;
using base::kMessagingSystemKey;
using base::kOrderIdKey;
using base::kQueueKey;
using base::kRetryCountKey;

// What a publisher knows about the message it sends.
struct RabbitMqPublish {
  std::string exchange;     // empty: the default exchange
  std::string routing_key;  // attribute omitted when empty
  std::string queue;        // the queue it is meant for, when known
  std::string message_id;
  std::string order_id;
  // The operation that publishes (e.g. the HTTP request's span); none starts a new trace.
  std::optional<SpanContext> parent;
};

// What a consumer knows about the message it handles.
struct RabbitMqConsume {
  std::string exchange;
  std::string routing_key;
  std::string queue;
  std::string message_id;
  std::string order_id;
  int64_t retry_count = 0;  // deliveries before this one (redeliveries, dead-letter rounds)
  std::optional<uint64_t> delivery_tag;
  // The producer's context from the message headers (ExtractAmqpHeaders): becomes a link.
  std::optional<SpanContext> producer;
  // A local parent, if the consume runs inside another span; usually none (a new trace).
  std::optional<SpanContext> parent;
};

// Starts a PRODUCER span, e.g. `mq.publish.status`. Inject its context into the message's
// headers (InjectAmqpHeaders) before publishing; End it once the broker has confirmed.
std::unique_ptr<Span> StartPublishSpan(const Tracer& tracer, std::string_view name,
                                       const RabbitMqPublish& message);

// Starts a CONSUMER span, e.g. `mq.consume.price`, linked to the producer's span when the
// message carried a valid context. Fill `order_id` and `producer` from ExtractAmqpHeaders.
std::unique_ptr<Span> StartConsumeSpan(const Tracer& tracer, std::string_view name,
                                       const RabbitMqConsume& message);

}  // namespace ordertrace::sdk
