// Trace context in RabbitMQ message headers. The carrier is a plain map of header name to
// string value, so this library does not depend on rabbitmq-c: the service's AMQP adapter
// copies it into and out of amqp_table_t. On publish the message carries `traceparent`,
// `tracestate` (when not empty) and the design's `order_id`; on consume they are read back.
// Free functions on values; thread-compatible.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "sdk/trace_context.h"

namespace ordertrace::sdk {

using AmqpHeaders = std::map<std::string, std::string>;

inline constexpr char kOrderIdHeader[] = "order_id";
// The context of the order's trace root (a traceparent value), so that a consumer can stay in
// the order's one trace while it links, not parents, to the producer's span.
inline constexpr char kOrderTraceparentHeader[] = "order_traceparent";

// Writes `context` (when valid) and `order_id` (when not empty) into `headers`, replacing
// earlier values of the same names and leaving other headers alone. An invalid context also
// removes stale `traceparent` / `tracestate` headers, so a message never carries a context
// that is not its own.
void InjectAmqpHeaders(const SpanContext& context, std::string_view order_id, AmqpHeaders& headers);

// Writes `order_root` as the `order_traceparent` header, or removes the header when invalid.
void InjectOrderRootHeader(const SpanContext& order_root, AmqpHeaders& headers);

struct ExtractedAmqpContext {
  // The producer's context (remote); none when the headers hold no valid traceparent.
  std::optional<SpanContext> context;
  // Empty when the header is missing.
  std::string order_id;
  // The order's trace root; none when `order_traceparent` is missing or malformed.
  std::optional<SpanContext> order_root;
};

// Reads what InjectAmqpHeaders wrote. Never fails: a malformed traceparent gives no context
// (the consumer starts a new trace), a malformed tracestate is dropped.
ExtractedAmqpContext ExtractAmqpHeaders(const AmqpHeaders& headers);

}  // namespace ordertrace::sdk
