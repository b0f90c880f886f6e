#include "query/stuck_orders.h"

#include <set>

namespace ordertrace::query {

absl::StatusOr<std::vector<model::OrderRecord>> ListStuckOrders(const OpenGapPager& open_gaps,
                                                                const OrderReader& read_order,
                                                                const StuckOrderFilter& filter) {
  std::vector<model::OrderRecord> orders;
  std::set<std::string> listed;  // an order with several open gaps is listed once
  std::string cursor;
  do {
    absl::StatusOr<OpenGapPage> page = open_gaps(cursor);
    if (!page.ok()) return page.status();
    for (const std::string& order_id : page->order_ids) {
      if (order_id.empty() || !listed.insert(order_id).second) continue;
      absl::StatusOr<std::optional<model::OrderRecord>> record = read_order(order_id);
      if (!record.ok()) return record.status();
      if (!record->has_value()) continue;
      const model::StatusReached* current = (*record)->CurrentStatus();
      if (!filter.status.empty() && (current == nullptr || current->status != filter.status)) {
        continue;
      }
      orders.push_back(std::move(**record));
      if (orders.size() == filter.limit) break;
    }
    cursor = page->next_cursor;
  } while (!cursor.empty() && orders.size() < filter.limit &&
           listed.size() < filter.max_orders_read);
  return orders;
}

}  // namespace ordertrace::query
