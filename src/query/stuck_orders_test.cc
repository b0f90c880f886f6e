#include "query/stuck_orders.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace ordertrace::query {
namespace {

using ::testing::ElementsAre;

model::OrderRecord Order(const std::string& order_id, const std::string& status) {
  model::OrderRecord record;
  record.order_id = order_id;
  model::StatusReached reached;
  reached.status = status;
  record.statuses.push_back(std::move(reached));
  return record;
}

// Open gaps in pages, and the orders they name.
class StuckOrdersTest : public ::testing::Test {
 protected:
  OpenGapPager Pager() {
    return [this](const std::string& cursor) -> absl::StatusOr<OpenGapPage> {
      cursors_read.push_back(cursor);
      const size_t index = cursor.empty() ? 0 : std::stoul(cursor);
      if (index >= pages.size()) return absl::InvalidArgumentError("unknown cursor");
      OpenGapPage page{pages[index], ""};
      if (index + 1 < pages.size()) page.next_cursor = std::to_string(index + 1);
      return page;
    };
  }
  OrderReader Reader() {
    return
        [this](const std::string& order_id) -> absl::StatusOr<std::optional<model::OrderRecord>> {
          orders_read.push_back(order_id);
          if (order_id == failing) return absl::UnavailableError("store down");
          auto it = orders.find(order_id);
          if (it == orders.end()) return std::optional<model::OrderRecord>();
          return std::optional<model::OrderRecord>(it->second);
        };
  }
  std::vector<std::string> Listed(const StuckOrderFilter& filter) {
    absl::StatusOr<std::vector<model::OrderRecord>> listed =
        ListStuckOrders(Pager(), Reader(), filter);
    EXPECT_TRUE(listed.ok()) << listed.status();
    std::vector<std::string> ids;
    if (listed.ok()) {
      for (const model::OrderRecord& r : *listed) ids.push_back(r.order_id);
    }
    return ids;
  }

  std::vector<std::vector<std::string>> pages;
  std::map<std::string, model::OrderRecord> orders;
  std::string failing;
  std::vector<std::string> cursors_read;
  std::vector<std::string> orders_read;
};

TEST_F(StuckOrdersTest, EachOrderOnceInGapOrderAcrossPages) {
  pages = {{"A", "", "B", "A"}, {"C", "B", "gone"}};
  orders = {{"A", Order("A", "PAID")}, {"B", Order("B", "SUBMITTED")}, {"C", Order("C", "PAID")}};
  EXPECT_THAT(Listed({}), ElementsAre("A", "B", "C"));
  EXPECT_THAT(cursors_read, ElementsAre("", "1"));
  // A gap of no order is skipped; an unknown order is read once and left out.
  EXPECT_THAT(orders_read, ElementsAre("A", "B", "C", "gone"));
}

TEST_F(StuckOrdersTest, FiltersByCurrentStatusAndStopsAtTheLimit) {
  pages = {{"A", "B"}, {"C", "D"}, {"E"}};
  orders = {{"A", Order("A", "PAID")},
            {"B", Order("B", "SUBMITTED")},
            {"C", Order("C", "PAID")},
            {"D", Order("D", "PAID")},
            {"E", Order("E", "PAID")}};
  StuckOrderFilter filter;
  filter.status = "PAID";
  filter.limit = 2;
  EXPECT_THAT(Listed(filter), ElementsAre("A", "C"));
  EXPECT_THAT(cursors_read, ElementsAre("", "1"));  // no page read past the limit
}

TEST_F(StuckOrdersTest, StopsPagingPastTheOrdersToRead) {
  pages = {{"A", "B"}, {"C"}};
  StuckOrderFilter filter;
  filter.max_orders_read = 2;
  EXPECT_THAT(Listed(filter), ElementsAre());
  EXPECT_THAT(cursors_read, ElementsAre(""));
}

TEST_F(StuckOrdersTest, AFailedReadIsReturned) {
  pages = {{"A", "B"}};
  orders = {{"A", Order("A", "PAID")}, {"B", Order("B", "PAID")}};
  failing = "B";
  absl::StatusOr<std::vector<model::OrderRecord>> listed = ListStuckOrders(Pager(), Reader(), {});
  EXPECT_EQ(listed.status().code(), absl::StatusCode::kUnavailable);
  pages = {};
  listed = ListStuckOrders(Pager(), Reader(), {});
  EXPECT_EQ(listed.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ordertrace::query
