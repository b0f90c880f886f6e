#include "services/common/order_store.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "services/common/order_transitions.h"

namespace ordertrace::services {
namespace {

constexpr char kCurrentStatusPayload[] = "current_status";

int64_t NowNanos() { return static_cast<int64_t>(base::SystemClock().NowUnixNano()); }

SqlValue OptionalInt(const std::optional<int64_t>& value) {
  return value.has_value() ? SqlValue(*value) : SqlValue();
}
SqlValue OptionalDouble(const std::optional<double>& value) {
  return value.has_value() ? SqlValue(*value) : SqlValue();
}
SqlValue OptionalText(const std::string& value) {
  return value.empty() ? SqlValue() : SqlValue(value);
}

absl::Status RecordHistory(SqliteDb& db, std::string_view order_id, std::string_view status,
                           int64_t version, std::string_view service, int64_t at) {
  return db
      .Execute(
          "INSERT INTO order_events (order_id, status, event_version, service, at_unix_nano)"
          " VALUES (?1, ?2, ?3, ?4, ?5)",
          {std::string(order_id), std::string(status), version, std::string(service), at})
      .status();
}

absl::Status PublishStatusEvent(SqliteDb& db, const StatusEvent& event,
                                const sdk::SpanContext& operation,
                                const sdk::SpanContext& order_root) {
  OutboxMessage message;
  message.exchange = kStatusExchange;
  message.routing_key = StatusRoutingKey(event.new_status);
  message.span_name = "mq.publish.status";
  message.order_id = event.order_id;
  message.parent = operation;
  message.order_root = order_root;
  message.body = EncodeStatusEvent(event);
  return Outbox::Add(db, message);
}

}  // namespace

std::string CurrentStatusOf(const absl::Status& status) {
  auto payload = status.GetPayload(kCurrentStatusPayload);
  return payload.has_value() ? std::string(*payload) : "";
}

absl::StatusOr<std::optional<OrderView>> LoadOrder(SqliteDb& db, std::string_view order_id) {
  absl::StatusOr<std::vector<SqlRow>> rows = db.Query(
      "SELECT order_id, partner_id, status, event_version, order_root, created_at_unix_nano,"
      " updated_at_unix_nano, customer_id, polygon_count, complexity_class, price, operator_id"
      " FROM orders WHERE order_id = ?1",
      {std::string(order_id)});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::optional<OrderView>();
  const SqlRow& row = rows->front();
  OrderView view;
  view.order_id = row.Text(0);
  view.partner_id = row.Text(1);
  view.status = row.Text(2);
  view.event_version = row.Int(3);
  if (absl::StatusOr<sdk::SpanContext> root = sdk::ParseTraceparent(row.Text(4)); root.ok()) {
    view.order_root = *root;
  }
  view.created_at_unix_nano = row.Int(5);
  view.updated_at_unix_nano = row.Int(6);
  view.customer_id = row.Text(7);
  if (!row.IsNull(8)) view.polygon_count = row.Int(8);
  view.complexity_class = row.Text(9);
  if (!row.IsNull(10)) view.price = row.Double(10);
  view.operator_id = row.Text(11);
  return std::optional<OrderView>(std::move(view));
}

absl::StatusOr<TransitionResult> CreateOrder(SqliteDb& db, const NewOrder& order,
                                             std::string_view service,
                                             const sdk::SpanContext& operation) {
  absl::StatusOr<SqlTransaction> transaction = SqlTransaction::Begin(db);
  if (!transaction.ok()) return transaction.status();
  int64_t now = NowNanos();
  absl::StatusOr<int64_t> inserted = db.Execute(
      "INSERT INTO orders (order_id, partner_id, status, event_version, order_root,"
      " created_at_unix_nano, updated_at_unix_nano, customer_id, email, phone)"
      " VALUES (?1, ?2, ?3, 1, ?4, ?5, ?5, ?6, ?7, ?8)",
      {order.order_id, order.partner_id, std::string(kInitiated),
       sdk::FormatTraceparent(order.order_root), now, order.customer_id, OptionalText(order.email),
       OptionalText(order.phone)});
  if (!inserted.ok()) return inserted.status();
  if (absl::Status s = RecordHistory(db, order.order_id, kInitiated, 1, service, now); !s.ok()) {
    return s;
  }
  StatusEvent event;
  event.order_id = order.order_id;
  event.event_version = 1;
  event.new_status = std::string(kInitiated);
  event.partner_id = order.partner_id;
  event.service = std::string(service);
  event.occurred_at_unix_nano = now;
  if (absl::Status s = PublishStatusEvent(db, event, operation, order.order_root); !s.ok()) {
    return s;
  }
  if (absl::Status s = transaction->Commit(); !s.ok()) return s;
  absl::StatusOr<std::optional<OrderView>> view = LoadOrder(db, order.order_id);
  if (!view.ok()) return view.status();
  return TransitionResult{**view, event};
}

absl::StatusOr<TransitionResult> Transition(SqliteDb& db, std::string_view order_id,
                                            std::string_view new_status,
                                            const TransitionDetails& details,
                                            std::string_view service,
                                            const sdk::SpanContext& operation,
                                            const std::vector<OutboxMessage>& extra_messages) {
  absl::StatusOr<SqlTransaction> transaction = SqlTransaction::Begin(db);
  if (!transaction.ok()) return transaction.status();
  absl::StatusOr<std::optional<OrderView>> loaded = LoadOrder(db, order_id);
  if (!loaded.ok()) return loaded.status();
  if (!loaded->has_value()) {
    return absl::NotFoundError("order " + std::string(order_id) + " not found");
  }
  OrderView& view = **loaded;
  std::string_view required = PreviousStatus(new_status);
  const bool skipping =
      details.allow_skipping_one && !required.empty() && view.status == PreviousStatus(required);
  if (LifecycleIndex(new_status) <= 0 || (view.status != required && !skipping)) {
    absl::Status illegal = absl::FailedPreconditionError(
        "order " + std::string(order_id) + " is " + view.status + "; " + std::string(new_status) +
        " needs " + (required.empty() ? std::string("a new order") : std::string(required)));
    illegal.SetPayload(kCurrentStatusPayload, absl::Cord(view.status));
    return illegal;
  }
  int64_t now = NowNanos();
  int64_t version = view.event_version + 1;
  absl::StatusOr<int64_t> updated = db.Execute(
      "UPDATE orders SET status = ?2, event_version = ?3, updated_at_unix_nano = ?4,"
      " polygon_count = COALESCE(?5, polygon_count),"
      " complexity_class = COALESCE(?6, complexity_class), price = COALESCE(?7, price),"
      " operator_id = COALESCE(?8, operator_id) WHERE order_id = ?1",
      {std::string(order_id), std::string(new_status), version, now,
       OptionalInt(details.polygon_count), OptionalText(details.complexity_class),
       OptionalDouble(details.price), OptionalText(details.operator_id)});
  if (!updated.ok()) return updated.status();
  if (absl::Status s = RecordHistory(db, order_id, new_status, version, service, now); !s.ok()) {
    return s;
  }
  StatusEvent event;
  event.order_id = std::string(order_id);
  event.event_version = version;
  event.prev_status = view.status;
  event.new_status = std::string(new_status);
  event.partner_id = view.partner_id;
  event.service = std::string(service);
  event.occurred_at_unix_nano = now;
  event.polygon_count = details.polygon_count;
  event.price = details.price;
  event.operator_id = details.operator_id;
  if (absl::Status s = PublishStatusEvent(db, event, operation, view.order_root); !s.ok()) {
    return s;
  }
  for (OutboxMessage message : extra_messages) {
    if (!message.parent.IsValid()) message.parent = operation;
    if (!message.order_root.IsValid()) message.order_root = view.order_root;
    if (absl::Status s = Outbox::Add(db, message); !s.ok()) return s;
  }
  if (absl::Status s = transaction->Commit(); !s.ok()) return s;
  absl::StatusOr<std::optional<OrderView>> after = LoadOrder(db, order_id);
  if (!after.ok()) return after.status();
  return TransitionResult{**after, event};
}

absl::StatusOr<bool> ApplyStatusEvent(SqliteDb& db, const StatusEvent& event,
                                      const sdk::SpanContext& order_root) {
  absl::StatusOr<SqlTransaction> transaction = SqlTransaction::Begin(db);
  if (!transaction.ok()) return transaction.status();
  int64_t now = NowNanos();
  int64_t at = event.occurred_at_unix_nano != 0 ? event.occurred_at_unix_nano : now;
  // Inserts the order, or moves it forward when the event is newer than what we hold.
  absl::StatusOr<int64_t> changed = db.Execute(
      "INSERT INTO orders (order_id, partner_id, status, event_version, order_root,"
      " created_at_unix_nano, updated_at_unix_nano, polygon_count, price, operator_id)"
      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8, ?9)"
      " ON CONFLICT (order_id) DO UPDATE SET status = excluded.status,"
      " event_version = excluded.event_version, updated_at_unix_nano = "
      "excluded.updated_at_unix_nano,"
      " partner_id = CASE WHEN orders.partner_id = '' THEN excluded.partner_id"
      "   ELSE orders.partner_id END,"
      " order_root = CASE WHEN orders.order_root = '' THEN excluded.order_root"
      "   ELSE orders.order_root END,"
      " polygon_count = COALESCE(excluded.polygon_count, orders.polygon_count),"
      " price = COALESCE(excluded.price, orders.price),"
      " operator_id = COALESCE(excluded.operator_id, orders.operator_id)"
      " WHERE excluded.event_version > orders.event_version",
      {event.order_id, event.partner_id, event.new_status, event.event_version,
       sdk::FormatTraceparent(order_root), at, OptionalInt(event.polygon_count),
       OptionalDouble(event.price), OptionalText(event.operator_id)});
  if (!changed.ok()) return changed.status();
  if (*changed == 0) return false;
  if (absl::Status s = RecordHistory(db, event.order_id, event.new_status, event.event_version,
                                     event.service, at);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = transaction->Commit(); !s.ok()) return s;
  return true;
}

}  // namespace ordertrace::services
