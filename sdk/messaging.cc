#include "sdk/messaging.h"

namespace ordertrace::sdk {
namespace {

void Put(base::Attributes& attributes, std::string_view key, std::string_view value) {
  attributes.push_back(
      base::KeyValue{std::string(key), base::AnyValue::String(std::string(value))});
}

// The attributes both sides share.
base::Attributes CommonAttributes(std::string_view operation, std::string_view exchange,
                                  std::string_view routing_key, std::string_view queue,
                                  std::string_view message_id, std::string_view order_id) {
  base::Attributes attributes;
  Put(attributes, kMessagingSystemKey, "rabbitmq");
  Put(attributes, kMessagingOperationKey, operation);
  // The default exchange is the empty string, as the convention says.
  Put(attributes, kMessagingDestinationNameKey, exchange);
  if (!routing_key.empty()) Put(attributes, kMessagingRoutingKeyKey, routing_key);
  if (!message_id.empty()) {
    Put(attributes, kMessagingMessageIdKey, message_id);
    Put(attributes, kMessageIdKey, message_id);
  }
  if (!queue.empty()) Put(attributes, kQueueKey, queue);
  if (!order_id.empty()) Put(attributes, kOrderIdKey, order_id);
  return attributes;
}

}  // namespace

std::unique_ptr<Span> StartPublishSpan(const Tracer& tracer, std::string_view name,
                                       const RabbitMqPublish& message) {
  StartSpanOptions options;
  options.kind = base::SpanKind::kProducer;
  options.parent = message.parent;
  options.attributes = CommonAttributes("publish", message.exchange, message.routing_key,
                                        message.queue, message.message_id, message.order_id);
  return tracer.StartSpan(name, std::move(options));
}

std::unique_ptr<Span> StartConsumeSpan(const Tracer& tracer, std::string_view name,
                                       const RabbitMqConsume& message) {
  StartSpanOptions options;
  options.kind = base::SpanKind::kConsumer;
  options.parent = message.parent;
  options.attributes = CommonAttributes("process", message.exchange, message.routing_key,
                                        message.queue, message.message_id, message.order_id);
  options.attributes.push_back(
      base::KeyValue{kRetryCountKey, base::AnyValue::Int(message.retry_count)});
  if (message.delivery_tag.has_value()) {
    options.attributes.push_back(
        base::KeyValue{kMessagingDeliveryTagKey,
                       base::AnyValue::Int(static_cast<int64_t>(*message.delivery_tag))});
  }
  if (message.producer.has_value() && message.producer->IsValid()) {
    options.links.push_back(SpanLink{*message.producer, {}});
  }
  return tracer.StartSpan(name, std::move(options));
}

}  // namespace ordertrace::sdk
