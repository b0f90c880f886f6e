// The span attribute names that tie the services' spans to ordertrace's order records: the
// design's own names, and OpenTelemetry's messaging conventions (v1.24) for RabbitMQ. The sdk
// writes them; lifecycle reads them. One list, so the two cannot drift apart.
#pragma once

namespace ordertrace::base {

// The design's names (architecture.md, 2.3).
inline constexpr char kOrderIdKey[] = "order_id";
inline constexpr char kPartnerIdKey[] = "partner_id";
inline constexpr char kNewStatusKey[] = "new_status";
inline constexpr char kPrevStatusKey[] = "prev_status";
inline constexpr char kEventVersionKey[] = "event_version";
inline constexpr char kErrorCodeKey[] = "error_code";
inline constexpr char kErrorMessageKey[] = "error_message";
inline constexpr char kQueueKey[] = "queue";
inline constexpr char kMessageIdKey[] = "message_id";
inline constexpr char kRetryCountKey[] = "retry_count";
// On a refused transition: the status the refusing service holds for the order.
inline constexpr char kCurrentStatusKey[] = "current_status";

// OpenTelemetry's messaging conventions.
inline constexpr char kMessagingSystemKey[] = "messaging.system";
inline constexpr char kMessagingOperationKey[] = "messaging.operation";
inline constexpr char kMessagingOperationTypeKey[] = "messaging.operation.type";
inline constexpr char kMessagingDestinationNameKey[] = "messaging.destination.name";
inline constexpr char kMessagingRoutingKeyKey[] = "messaging.rabbitmq.destination.routing_key";
inline constexpr char kMessagingMessageIdKey[] = "messaging.message.id";
inline constexpr char kMessagingDeliveryTagKey[] = "messaging.rabbitmq.message.delivery_tag";

}  // namespace ordertrace::base
