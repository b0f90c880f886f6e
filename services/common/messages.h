// The messages the services exchange over RabbitMQ (docs/services.md, "Messages"): the
// exchanges and queues of the Alexandrite topology, and the JSON bodies of status events and
// price requests. Plain values and pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "services/amqp/amqp_connection.h"

namespace ordertrace::services {

inline constexpr char kStatusExchange[] = "alexandrite.status";
inline constexpr char kPriceExchange[] = "alexandrite.price";
inline constexpr char kPriceRoutingKey[] = "price.request";
inline constexpr char kPriceQueue[] = "mes.price.requests";

// The status queue of a service ("shop" -> "shop.status").
std::string StatusQueue(std::string_view service_short_name);

// Every exchange, queue and dead-letter pair of the Alexandrite flow. Each service declares all
// of them at start, so that no message is unroutable whichever service starts first.
std::vector<amqp::Topology> AlexandriteTopology();

// A status change, as published on kStatusExchange.
struct StatusEvent {
  std::string order_id;
  int64_t event_version = 0;
  std::string prev_status;  // "" for INITIATED
  std::string new_status;
  std::string partner_id;  // "" for a customer's own order
  std::string service;     // the service that made the change
  int64_t occurred_at_unix_nano = 0;
  std::optional<int64_t> polygon_count;
  std::optional<double> price;
  std::string operator_id;
};

// A request to price a submitted order, as published on kPriceExchange.
struct PriceRequest {
  std::string order_id;
  int64_t event_version = 0;  // the version of SUBMITTED
  int64_t polygon_count = 0;
  std::string partner_id;
};

std::string EncodeStatusEvent(const StatusEvent& event);
// kInvalidArgument naming the field for a body that is not a valid status event.
absl::StatusOr<StatusEvent> DecodeStatusEvent(std::string_view body);

std::string EncodePriceRequest(const PriceRequest& request);
absl::StatusOr<PriceRequest> DecodePriceRequest(std::string_view body);

// A random (version 4) UUID, for message and order ids.
std::string NewUuid();

}  // namespace ordertrace::services
