#include "services/mes/dashboard.h"

#include "absl/strings/str_cat.h"
#include "services/common/order_transitions.h"

namespace ordertrace::services::mes {

const char kNewOrdersQuery[] =
    "SELECT o.order_id, o.status, o.partner_id, o.polygon_count, o.complexity_class, o.price,"
    " o.updated_at_unix_nano,"
    " (SELECT COUNT(*) FROM order_events e WHERE e.order_id = o.order_id) AS events"
    " FROM orders o WHERE o.status IN ('PRICE_CALCULATED', 'MANUFACTURING_APPROVED')"
    " ORDER BY o.updated_at_unix_nano DESC LIMIT ?1";

absl::Status SetDashboardIndexes(SqliteDb& db, bool indexes) {
  if (indexes) {
    return db.ExecScript(
        "CREATE INDEX IF NOT EXISTS orders_by_status_updated"
        " ON orders (status, updated_at_unix_nano);"
        "CREATE INDEX IF NOT EXISTS order_events_by_order ON order_events (order_id);");
  }
  return db.ExecScript(
      "DROP INDEX IF EXISTS orders_by_status_updated;"
      "DROP INDEX IF EXISTS order_events_by_order;");
}

absl::Status SeedHistory(SqliteDb& db, int64_t count) {
  absl::StatusOr<std::vector<SqlRow>> existing =
      db.Query("SELECT COUNT(*) FROM orders WHERE order_id LIKE 'HIST-%'");
  if (!existing.ok()) return existing.status();
  int64_t have = existing->empty() ? 0 : existing->front().Int(0);
  if (have >= count) return absl::OkStatus();
  absl::StatusOr<SqlTransaction> transaction = SqlTransaction::Begin(db);
  if (!transaction.ok()) return transaction.status();
  // Historical orders closed a year ago and earlier, one minute apart.
  absl::StatusOr<int64_t> orders = db.Execute(
      "WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)"
      " INSERT INTO orders (order_id, partner_id, status, event_version, order_root,"
      " created_at_unix_nano, updated_at_unix_nano, polygon_count, complexity_class, price)"
      " SELECT printf('HIST-%09d', i), CASE WHEN i % 5 = 0 THEN 'partner-' || (i % 17) ELSE '' END,"
      " 'CLOSED', 11, '', 1700000000000000000 - i * 60000000000,"
      " 1700000000000000000 - i * 60000000000 + 3600000000000, 1000 + (i * 7919) % 900000,"
      " 'moderate', 400 FROM n",
      {have + 1, count});
  if (!orders.ok()) return orders.status();
  std::string statuses;
  for (size_t i = 0; i < std::size(kDefaultLifecycle); ++i) {
    absl::StrAppend(&statuses, i == 0 ? "" : " UNION ALL ", "SELECT ", i + 1, " AS v, '",
                    std::string(kDefaultLifecycle[i].status), "' AS s, '",
                    std::string(kDefaultLifecycle[i].service), "' AS svc");
  }
  absl::StatusOr<int64_t> events = db.Execute(
      absl::StrCat(
          "WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2),"
          " steps AS (",
          statuses,
          ")"
          " INSERT INTO order_events (order_id, status, event_version, service, at_unix_nano)"
          " SELECT printf('HIST-%09d', i), s, v, svc,"
          " 1700000000000000000 - i * 60000000000 + v * 300000000000 FROM n, steps"),
      {have + 1, count});
  if (!events.ok()) return events.status();
  return transaction->Commit();
}

absl::StatusOr<std::vector<DashboardRow>> QueryNewOrders(SqliteDb& db, int64_t limit) {
  absl::StatusOr<std::vector<SqlRow>> rows = db.Query(kNewOrdersQuery, {limit});
  if (!rows.ok()) return rows.status();
  std::vector<DashboardRow> result;
  result.reserve(rows->size());
  for (const SqlRow& row : *rows) {
    result.push_back(DashboardRow{row.Text(0), row.Text(1), row.Text(2), row.Int(3), row.Text(4),
                                  row.Double(5), row.Int(6), row.Int(7)});
  }
  return result;
}

absl::StatusOr<std::string> ExplainNewOrders(SqliteDb& db) {
  absl::StatusOr<std::vector<SqlRow>> rows =
      db.Query(absl::StrCat("EXPLAIN QUERY PLAN ", kNewOrdersQuery), {int64_t{50}});
  if (!rows.ok()) return rows.status();
  std::string plan;
  for (const SqlRow& row : *rows) {
    if (!plan.empty()) plan += "\n";
    plan += row.Text(3);  // columns: id, parent, notused, detail
  }
  return plan;
}

}  // namespace ordertrace::services::mes
