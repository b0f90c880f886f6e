// Each service's view of the orders it knows, in its SQLite database, and the one way a status
// changes: Transition checks the lifecycle against the view, writes the new status and its history
// row, and adds the status event to the outbox, all in one transaction. Status events from other
// services are applied by version (ApplyStatusEvent), so duplicates and late events change
// nothing. Free functions on a SqliteDb the caller holds (ServiceDb::Run); thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sdk/trace_context.h"
#include "services/common/messages.h"
#include "services/common/outbox.h"
#include "services/common/sqlite_db.h"

namespace ordertrace::services {

// One table shape for the three services; a service leaves the columns it does not use NULL.
// `order_events` is the history of every status a service applied (MES's dashboard counts it).
inline constexpr std::string_view kOrderSchema =
    "CREATE TABLE IF NOT EXISTS orders ("
    " order_id TEXT PRIMARY KEY, partner_id TEXT NOT NULL DEFAULT '', status TEXT NOT NULL,"
    " event_version INTEGER NOT NULL, order_root TEXT NOT NULL DEFAULT '',"
    " created_at_unix_nano INTEGER NOT NULL, updated_at_unix_nano INTEGER NOT NULL,"
    " customer_id TEXT, email TEXT, phone TEXT, polygon_count INTEGER, complexity_class TEXT,"
    " price REAL, operator_id TEXT);"
    "CREATE TABLE IF NOT EXISTS order_events ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, order_id TEXT NOT NULL, status TEXT NOT NULL,"
    " event_version INTEGER NOT NULL, service TEXT NOT NULL, at_unix_nano INTEGER NOT NULL);";

struct OrderView {
  std::string order_id;
  std::string partner_id;
  std::string status;
  int64_t event_version = 0;
  sdk::SpanContext order_root;
  int64_t created_at_unix_nano = 0;
  int64_t updated_at_unix_nano = 0;
  std::string customer_id;
  std::optional<int64_t> polygon_count;
  std::string complexity_class;
  std::optional<double> price;
  std::string operator_id;
};

// The order, or nullopt when this service does not know it.
absl::StatusOr<std::optional<OrderView>> LoadOrder(SqliteDb& db, std::string_view order_id);

// Inserts a new order at INITIATED (the shop's create) with its status event in the outbox.
struct NewOrder {
  std::string order_id;
  std::string customer_id;
  std::string partner_id;
  std::string email;  // stored, never traced or published
  std::string phone;
  sdk::SpanContext order_root;
};

// What a transition also records, besides the status.
struct TransitionDetails {
  std::optional<int64_t> polygon_count;
  std::string complexity_class;
  std::optional<double> price;
  std::string operator_id;
  // Demo fault "skipped_status": also allow the transition from two statuses back.
  bool allow_skipping_one = false;
};

// The outcome of a transition: the view after it, and the event that was published.
struct TransitionResult {
  OrderView order;
  StatusEvent event;
};

absl::StatusOr<TransitionResult> CreateOrder(SqliteDb& db, const NewOrder& order,
                                             std::string_view service,
                                             const sdk::SpanContext& operation);

// Moves `order_id` to `new_status` when the lifecycle allows it from its current status:
// kNotFound for an unknown order; kFailedPrecondition (payload "current_status") for an illegal
// transition. `operation` is the span that carries the transition (parent of the publish span).
// `extra_messages` are added to the outbox in the same transaction (e.g. the price request).
absl::StatusOr<TransitionResult> Transition(SqliteDb& db, std::string_view order_id,
                                            std::string_view new_status,
                                            const TransitionDetails& details,
                                            std::string_view service,
                                            const sdk::SpanContext& operation,
                                            const std::vector<OutboxMessage>& extra_messages = {});

// Applies another service's status event to this service's view: creates the order when unknown
// (taking `order_root` as its trace root), otherwise updates it when the event is newer. Returns
// whether anything changed.
absl::StatusOr<bool> ApplyStatusEvent(SqliteDb& db, const StatusEvent& event,
                                      const sdk::SpanContext& order_root);

// The current status carried by a kFailedPrecondition from Transition ("" otherwise).
std::string CurrentStatusOf(const absl::Status& status);

}  // namespace ordertrace::services
