#include "services/mes/dashboard.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "services/common/order_store.h"
#include "services/common/outbox.h"

namespace ordertrace::services::mes {
namespace {

class DashboardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<SqliteDb>> db = SqliteDb::Open(":memory:");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    ASSERT_TRUE(db_->ExecScript(Outbox::kSchema).ok());
    ASSERT_TRUE(db_->ExecScript(kOrderSchema).ok());
  }

  // An order at `status`, last changed at `updated`, with `events` rows in order_events.
  void AddOrder(const std::string& id, const std::string& status, int64_t updated, int events,
                const std::string& partner = "") {
    ASSERT_TRUE(db_->Execute("INSERT INTO orders (order_id, partner_id, status, event_version,"
                             " created_at_unix_nano, updated_at_unix_nano, polygon_count,"
                             " complexity_class, price) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?8)",
                             {id, partner, status, int64_t{events}, updated, int64_t{1000 + events},
                              std::string("simple"), 10.5 * events})
                    .ok());
    for (int v = 1; v <= events; ++v) {
      ASSERT_TRUE(db_->Execute("INSERT INTO order_events (order_id, status, event_version, service,"
                               " at_unix_nano) VALUES (?1, 'X', ?2, 'mes-api', ?3)",
                               {id, int64_t{v}, updated - 1000 + v})
                      .ok());
    }
  }

  int64_t Count(const std::string& sql) {
    absl::StatusOr<std::vector<SqlRow>> rows = db_->Query(sql);
    EXPECT_TRUE(rows.ok()) << rows.status();
    return rows.ok() ? rows->front().Int(0) : -1;
  }

  std::vector<DashboardRow> Query(int64_t limit) {
    absl::StatusOr<std::vector<DashboardRow>> rows = QueryNewOrders(*db_, limit);
    EXPECT_TRUE(rows.ok()) << rows.status();
    return rows.ok() ? *rows : std::vector<DashboardRow>{};
  }

  std::unique_ptr<SqliteDb> db_;
};

std::vector<std::string> Ids(const std::vector<DashboardRow>& rows) {
  std::vector<std::string> ids;
  for (const DashboardRow& row : rows) ids.push_back(row.order_id);
  return ids;
}

TEST_F(DashboardTest, WithoutIndexesThePlanScansWithIndexesItSearches) {
  ASSERT_TRUE(SetDashboardIndexes(*db_, false).ok());
  absl::StatusOr<std::string> slow = ExplainNewOrders(*db_);
  ASSERT_TRUE(slow.ok()) << slow.status();
  EXPECT_NE(slow->find("SCAN o"), std::string::npos) << *slow;
  EXPECT_NE(slow->find("SCAN e"), std::string::npos) << *slow;
  EXPECT_EQ(slow->find("USING INDEX"), std::string::npos) << *slow;
  EXPECT_EQ(slow->find("USING COVERING INDEX"), std::string::npos) << *slow;

  ASSERT_TRUE(SetDashboardIndexes(*db_, true).ok());
  absl::StatusOr<std::string> fast = ExplainNewOrders(*db_);
  ASSERT_TRUE(fast.ok()) << fast.status();
  EXPECT_NE(fast->find("USING INDEX orders_by_status_updated"), std::string::npos) << *fast;
  EXPECT_NE(fast->find("order_events_by_order"), std::string::npos) << *fast;
  EXPECT_EQ(fast->find("SCAN o"), std::string::npos) << *fast;
  EXPECT_EQ(fast->find("SCAN e"), std::string::npos) << *fast;

  // Turning them off again drops both; either call is idempotent.
  ASSERT_TRUE(SetDashboardIndexes(*db_, true).ok());
  ASSERT_TRUE(SetDashboardIndexes(*db_, false).ok());
  ASSERT_TRUE(SetDashboardIndexes(*db_, false).ok());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index'"
                  " AND name IN ('orders_by_status_updated', 'order_events_by_order')"),
            0);
  absl::StatusOr<std::string> again = ExplainNewOrders(*db_);
  ASSERT_TRUE(again.ok());
  EXPECT_NE(again->find("SCAN o"), std::string::npos) << *again;
}

TEST_F(DashboardTest, SeedHistoryAddsExactlyNClosedOrdersWithElevenEventsEach) {
  ASSERT_TRUE(SeedHistory(*db_, 250).ok());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM orders"), 250);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM orders WHERE status = 'CLOSED' AND event_version = 11"),
            250);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM order_events"), 11 * 250);
  // Each historical order has the whole lifecycle, versions 1..11, in lifecycle order.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM (SELECT order_id FROM order_events GROUP BY order_id"
                  " HAVING COUNT(*) = 11 AND MIN(event_version) = 1 AND MAX(event_version) = 11"
                  " AND COUNT(DISTINCT status) = 11)"),
            250);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM order_events WHERE event_version = 1"
                  " AND status = 'INITIATED' AND service = 'shop-api'"),
            250);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM order_events WHERE event_version = 11"
                  " AND status = 'CLOSED' AND service = 'crm-api'"),
            250);
  // No outbox traffic for history.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM outbox"), 0);
}

TEST_F(DashboardTest, SeedHistoryIsIdempotentAndOnlyTopsUp) {
  ASSERT_TRUE(SeedHistory(*db_, 100).ok());
  ASSERT_TRUE(SeedHistory(*db_, 100).ok());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM orders"), 100);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM order_events"), 1100);
  ASSERT_TRUE(SeedHistory(*db_, 40).ok());  // fewer than exist: nothing removed or added
  EXPECT_EQ(Count("SELECT COUNT(*) FROM orders"), 100);
  ASSERT_TRUE(SeedHistory(*db_, 130).ok());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM orders"), 130);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM order_events"), 1430);
  EXPECT_EQ(Count("SELECT COUNT(DISTINCT order_id) FROM order_events"), 130);
  ASSERT_TRUE(SeedHistory(*db_, 0).ok());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM orders"), 130);
}

TEST_F(DashboardTest, SeedHistoryLeavesLiveOrdersAlone) {
  AddOrder("live-1", "PRICE_CALCULATED", 2'000, 5);
  ASSERT_TRUE(SeedHistory(*db_, 10).ok());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM orders"), 11);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM order_events WHERE order_id = 'live-1'"), 5);
  std::vector<DashboardRow> rows = Query(50);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].order_id, "live-1");
}

TEST_F(DashboardTest, QueryNewOrdersListsOnlyWaitingOrdersNewestFirstWithTheirEventCounts) {
  ASSERT_TRUE(SeedHistory(*db_, 30).ok());  // CLOSED: never listed
  AddOrder("approved-old", "MANUFACTURING_APPROVED", 1'700'000'000'000'000'100, 6, "partner-1");
  AddOrder("submitted", "SUBMITTED", 1'700'000'000'000'000'900, 3);
  AddOrder("calculated-new", "PRICE_CALCULATED", 1'700'000'000'000'000'500, 5);
  AddOrder("started", "MANUFACTURING_STARTED", 1'700'000'000'000'000'800, 7);
  AddOrder("calculated-mid", "PRICE_CALCULATED", 1'700'000'000'000'000'300, 4);
  AddOrder("calculating", "PRICE_CALCULATION_STARTED", 1'700'000'000'000'000'700, 4);

  for (bool indexes : {false, true}) {
    SCOPED_TRACE(indexes ? "with indexes" : "without indexes");
    ASSERT_TRUE(SetDashboardIndexes(*db_, indexes).ok());
    std::vector<DashboardRow> rows = Query(50);
    EXPECT_EQ(Ids(rows),
              (std::vector<std::string>{"calculated-new", "calculated-mid", "approved-old"}));
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_EQ(rows[0].status, "PRICE_CALCULATED");
    EXPECT_EQ(rows[0].events, 5);
    EXPECT_EQ(rows[0].updated_at_unix_nano, 1'700'000'000'000'000'500);
    EXPECT_EQ(rows[0].polygon_count, 1005);
    EXPECT_EQ(rows[0].complexity_class, "simple");
    EXPECT_DOUBLE_EQ(rows[0].price, 52.5);
    EXPECT_EQ(rows[1].events, 4);
    EXPECT_EQ(rows[2].status, "MANUFACTURING_APPROVED");
    EXPECT_EQ(rows[2].partner_id, "partner-1");
    EXPECT_EQ(rows[2].events, 6);

    EXPECT_EQ(Ids(Query(2)), (std::vector<std::string>{"calculated-new", "calculated-mid"}));
    EXPECT_EQ(Ids(Query(1)), (std::vector<std::string>{"calculated-new"}));
    EXPECT_TRUE(Query(0).empty());
  }
}

TEST_F(DashboardTest, SameResultsWithAndWithoutIndexesAtScale) {
  ASSERT_TRUE(SeedHistory(*db_, 500).ok());
  for (int i = 0; i < 120; ++i) {
    const char* status = i % 3 == 0   ? "PRICE_CALCULATED"
                         : i % 3 == 1 ? "MANUFACTURING_APPROVED"
                                      : "PACKAGING";
    // Timestamps out of insertion order, so the ORDER BY has work to do.
    AddOrder("live-" + std::to_string(i), status, 1'800'000'000'000'000'000 + (i * 37) % 120,
             1 + i % 11);
  }
  ASSERT_TRUE(SetDashboardIndexes(*db_, false).ok());
  std::vector<DashboardRow> without = Query(50);
  ASSERT_TRUE(SetDashboardIndexes(*db_, true).ok());
  std::vector<DashboardRow> with = Query(50);
  ASSERT_EQ(without.size(), 50u);
  ASSERT_EQ(with.size(), 50u);
  for (size_t i = 0; i < with.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(with[i].order_id, without[i].order_id);
    EXPECT_EQ(with[i].events, without[i].events);
    EXPECT_NE(with[i].status, "PACKAGING");
    EXPECT_NE(with[i].status, "CLOSED");
    if (i > 0) EXPECT_GT(with[i - 1].updated_at_unix_nano, with[i].updated_at_unix_nano);
  }
  // The count matches the order's own history rows.
  for (const DashboardRow& row : with) {
    int index = std::stoi(row.order_id.substr(5));
    EXPECT_EQ(row.events, 1 + index % 11) << row.order_id;
  }
  ASSERT_EQ(Query(1000).size(), 80u);  // 40 + 40 waiting orders of the 120
}

}  // namespace
}  // namespace ordertrace::services::mes
