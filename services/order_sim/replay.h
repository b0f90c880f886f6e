// order-sim's `replay` day: a simulated business day of Alexandrite orders with their ground
// truth, made as spans (no services run), in real business time (time scale 1, the default
// lifecycle's SLAs). Each order is one trace with the spans shop-api, crm-api and mes-api emit
// for it (docs/services.md): the trace root, every transition span, the price request's and the
// PRICE_CALCULATED status event's RabbitMQ hops, and the price calculation with its phases; the
// status events of the other transitions are left out (their hops change no gap), which keeps a
// day at about 20 spans per order.
//
// Every fault-free order closes within the day, each stage comfortably inside its SLA. Each
// faulted order carries one kind of ReplayFaultKinds() in its spans, and its truth lists every
// gap ordertrace must end with (kind, stage, open or resolved). Every order is settled by half an
// hour before the day ends: its last span, and every deadline its truth expects to pass, fall
// before then. A status_backwards order goes back within the day's last three hours, so its
// SHIPPED stage's 12 h deadline lies past the replay (the truth expects no gap for it).
//
// The same options give the same day, span for span. Immutable once generated; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "base/ids.h"
#include "base/span.h"
#include "services/order_sim/truth.h"

namespace ordertrace::services::sim {

struct ReplayDayOptions {
  int orders = 20'000;
  // Share of orders given a fault, split evenly over `fault_kinds` (each kind at least once).
  double fault_share = 0.06;
  // Kinds of ReplayFaultKinds() to make; empty: none.
  std::vector<std::string> fault_kinds;
  double partner_share = 0.3;
  uint64_t seed = 1;
  // When the day ends; it starts 24 h earlier. Required.
  int64_t day_end_unix_nano = 0;
};

// The services a replay speaks for, each one OTLP resource.
enum class ReplayService : uint8_t { kShop = 0, kCrm = 1, kMes = 2 };
inline constexpr int kReplayServiceCount = 3;
// "shop-api", "crm-api", "mes-api".
std::string_view ReplayServiceName(ReplayService service);

// One RabbitMQ message of an order.
struct ReplayMessage {
  std::string message_id;  // a UUID, as the services' AMQP message-id
  std::string_view exchange;
  std::string_view routing_key;
  std::string_view queue;
};

// One span of an order, as planned: enough to make the base::Span (MakeSpan).
struct ReplaySpanPlan {
  std::string_view name;
  ReplayService service = ReplayService::kShop;
  base::SpanKind kind = base::SpanKind::kInternal;
  uint64_t start_unix_nano = 0;
  uint64_t end_unix_nano = 0;  // the span's event time
  int parent = -1;             // index of the parent in the order's spans; -1: a root
  int link = -1;               // index of a linked span (a consume links to its publish); -1: none
  // Transitions: new_status non-empty.
  std::string_view new_status;
  std::string_view prev_status;
  int64_t event_version = 0;
  // Messaging spans: index into the order's messages.
  int message = -1;
  int64_t retry_count = 0;
  // A refused operation: status ERROR with error_code, error_message and current_status (the
  // status the refusing service holds).
  bool error = false;
  std::string_view current_status;
};

struct ReplayOrder {
  TruthRecord truth;
  base::TraceId trace_id;
  std::vector<ReplaySpanPlan> spans;  // in the order they happened
  std::vector<ReplayMessage> messages;
  uint64_t span_id_seed = 0;  // span i's id derives from it
};

// Where a span of the day is: order index and span index within the order.
struct ReplaySpanRef {
  uint32_t order = 0;
  uint32_t span = 0;
};

class ReplayDay {
 public:
  // kInvalidArgument for bad options (no orders, a share outside [0, 1], an unknown fault kind,
  // no day end).
  static absl::StatusOr<ReplayDay> Generate(const ReplayDayOptions& options);

  const std::vector<ReplayOrder>& orders() const { return orders_; }
  // Every span of the day, by event time (end time), ties by order and span index.
  const std::vector<ReplaySpanRef>& timeline() const { return timeline_; }
  size_t span_count() const { return timeline_.size(); }
  int64_t day_start_unix_nano() const { return day_start_; }
  int64_t day_end_unix_nano() const { return day_end_; }

  // The span as its service exports it: ids, parent and link, kind, times, status and the
  // attributes the services set (order_id, partner_id, new_status, prev_status, event_version,
  // messaging.*, queue, message_id, retry_count, error_code, error_message, current_status...).
  base::Span MakeSpan(ReplaySpanRef ref) const;
  ReplayService ServiceOf(ReplaySpanRef ref) const {
    return orders_[ref.order].spans[ref.span].service;
  }
  uint64_t EventTimeOf(ReplaySpanRef ref) const {
    return orders_[ref.order].spans[ref.span].end_unix_nano;
  }

 private:
  ReplayDay() = default;

  std::vector<ReplayOrder> orders_;
  std::vector<ReplaySpanRef> timeline_;
  int64_t day_start_ = 0;
  int64_t day_end_ = 0;
};

// The gaps ordertrace must end with for an order with fault `kind` ("" for none), per
// lifecycle/gap rules: a stuck order has its stage's deadline gap (and its lost message's), a
// breach or conflict the order got past is resolved.
std::vector<TruthGap> ExpectedGaps(std::string_view kind);

}  // namespace ordertrace::services::sim
