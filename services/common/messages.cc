#include "services/common/messages.h"

#include <nlohmann/json.hpp>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "services/common/order_transitions.h"

namespace ordertrace::services {
namespace {

using nlohmann::json;

absl::StatusOr<json> ParseObject(std::string_view body, const std::string& what) {
  json document = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded() || !document.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": body is not a JSON object"));
  }
  return document;
}

absl::Status RequireString(const json& document, const char* key, const std::string& what,
                           std::string& out, bool required) {
  auto it = document.find(key);
  if (it == document.end() || it->is_null()) {
    if (!required) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(what, ": missing \"", key, "\""));
  }
  if (!it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": \"", key, "\" must be a string"));
  }
  out = it->get<std::string>();
  if (required && out.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": \"", key, "\" is empty"));
  }
  return absl::OkStatus();
}

absl::Status RequireInt(const json& document, const char* key, const std::string& what,
                        std::optional<int64_t>& out, bool required) {
  auto it = document.find(key);
  if (it == document.end() || it->is_null()) {
    if (!required) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(what, ": missing \"", key, "\""));
  }
  if (!it->is_number_integer()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": \"", key, "\" must be an integer"));
  }
  out = it->get<int64_t>();
  return absl::OkStatus();
}

}  // namespace

std::string StatusQueue(std::string_view service_short_name) {
  return std::string(service_short_name) + ".status";
}

std::vector<amqp::Topology> AlexandriteTopology() {
  std::vector<amqp::Topology> topology;
  for (std::string_view service : {"shop", "crm", "mes"}) {
    topology.push_back(amqp::Topology{kStatusExchange, StatusQueue(service), "status.#",
                                      std::string(service) + ".dlx",
                                      std::string(service) + ".dead"});
  }
  topology.push_back(
      amqp::Topology{kPriceExchange, kPriceQueue, kPriceRoutingKey, "mes.dlx", "mes.dead"});
  return topology;
}

std::string EncodeStatusEvent(const StatusEvent& event) {
  json document = {
      {"order_id", event.order_id},       {"event_version", event.event_version},
      {"prev_status", event.prev_status}, {"new_status", event.new_status},
      {"service", event.service},         {"occurred_at_unix_nano", event.occurred_at_unix_nano}};
  if (!event.partner_id.empty()) document["partner_id"] = event.partner_id;
  if (event.polygon_count.has_value()) document["polygon_count"] = *event.polygon_count;
  if (event.price.has_value()) document["price"] = *event.price;
  if (!event.operator_id.empty()) document["operator_id"] = event.operator_id;
  return document.dump();
}

absl::StatusOr<StatusEvent> DecodeStatusEvent(std::string_view body) {
  const std::string kWhat = "status event";
  absl::StatusOr<json> document = ParseObject(body, kWhat);
  if (!document.ok()) return document.status();
  StatusEvent event;
  std::optional<int64_t> version, occurred_at, polygons;
  for (absl::Status status : {
           RequireString(*document, "order_id", kWhat, event.order_id, true),
           RequireString(*document, "new_status", kWhat, event.new_status, true),
           RequireString(*document, "prev_status", kWhat, event.prev_status, false),
           RequireString(*document, "partner_id", kWhat, event.partner_id, false),
           RequireString(*document, "service", kWhat, event.service, false),
           RequireString(*document, "operator_id", kWhat, event.operator_id, false),
           RequireInt(*document, "event_version", kWhat, version, true),
           RequireInt(*document, "occurred_at_unix_nano", kWhat, occurred_at, false),
           RequireInt(*document, "polygon_count", kWhat, polygons, false),
       }) {
    if (!status.ok()) return status;
  }
  if (LifecycleIndex(event.new_status) < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": unknown new_status \"", event.new_status, "\""));
  }
  if (*version < 1) return absl::InvalidArgumentError("status event: event_version must be >= 1");
  event.event_version = *version;
  event.occurred_at_unix_nano = occurred_at.value_or(0);
  event.polygon_count = polygons;
  if (auto price = document->find("price"); price != document->end() && !price->is_null()) {
    if (!price->is_number()) return absl::InvalidArgumentError("status event: price not a number");
    event.price = price->get<double>();
  }
  return event;
}

std::string EncodePriceRequest(const PriceRequest& request) {
  json document = {{"order_id", request.order_id},
                   {"event_version", request.event_version},
                   {"polygon_count", request.polygon_count}};
  if (!request.partner_id.empty()) document["partner_id"] = request.partner_id;
  return document.dump();
}

absl::StatusOr<PriceRequest> DecodePriceRequest(std::string_view body) {
  const std::string kWhat = "price request";
  absl::StatusOr<json> document = ParseObject(body, kWhat);
  if (!document.ok()) return document.status();
  PriceRequest request;
  std::optional<int64_t> version, polygons;
  for (absl::Status status : {
           RequireString(*document, "order_id", kWhat, request.order_id, true),
           RequireString(*document, "partner_id", kWhat, request.partner_id, false),
           RequireInt(*document, "event_version", kWhat, version, true),
           RequireInt(*document, "polygon_count", kWhat, polygons, true),
       }) {
    if (!status.ok()) return status;
  }
  if (*polygons < 0) return absl::InvalidArgumentError("price request: negative polygon_count");
  if (*version < 1) return absl::InvalidArgumentError("price request: event_version must be >= 1");
  request.event_version = *version;
  request.polygon_count = *polygons;
  return request;
}

std::string NewUuid() {
  // Seeded with 256 bits, so that no two threads or processes share a sequence of ids.
  thread_local std::mt19937_64 generator = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device(),
                       device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }();
  uint64_t high = generator();
  uint64_t low = generator();
  high = (high & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  low = (low & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;    // RFC 4122 variant
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", high >> 32, (high >> 16) & 0xffff,
                         high & 0xffff, low >> 48, low & 0xffffffffffffULL);
}

}  // namespace ordertrace::services
