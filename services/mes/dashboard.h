// The MES dashboard's list of new orders, the query operators complain about, and its fix
// (docs/services.md, "The slow dashboard, and its fix"). Free functions on the MES database;
// thread-compatible (callers hold ServiceDb::Run).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/common/sqlite_db.h"

namespace ordertrace::services::mes {

// The dashboard's SELECT, with ?1 the row limit.
extern const char kNewOrdersQuery[];

// Creates (`indexes` true, the fix) or drops the two indexes the query needs.
absl::Status SetDashboardIndexes(SqliteDb& db, bool indexes);

// Adds finished historical orders (CLOSED, with the eleven status rows each in order_events)
// until `count` of them exist, so that the dashboard can be seen at scale.
absl::Status SeedHistory(SqliteDb& db, int64_t count);

struct DashboardRow {
  std::string order_id;
  std::string status;
  std::string partner_id;
  int64_t polygon_count = 0;
  std::string complexity_class;
  double price = 0;
  int64_t updated_at_unix_nano = 0;
  int64_t events = 0;
};

// Runs kNewOrdersQuery.
absl::StatusOr<std::vector<DashboardRow>> QueryNewOrders(SqliteDb& db, int64_t limit);

// SQLite's EXPLAIN QUERY PLAN for kNewOrdersQuery, one step per line ("SCAN o", "SEARCH e USING
// INDEX ...").
absl::StatusOr<std::string> ExplainNewOrders(SqliteDb& db);

}  // namespace ordertrace::services::mes
