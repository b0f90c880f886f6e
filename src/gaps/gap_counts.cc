#include "gaps/gap_counts.h"

#include <set>
#include <utility>

namespace ordertrace::gaps {

absl::StatusOr<GapCounts> CountGaps(GapStore& store, GapHistoryQuery query, size_t max_gaps) {
  constexpr size_t kPage = 1000;
  GapCounts counts;
  std::set<std::string> orders;
  std::set<std::pair<std::string, std::string>> stage_orders;
  query.cursor.clear();
  while (true) {
    query.limit = kPage;
    absl::StatusOr<GapPage> page = store.Query(query);
    if (!page.ok()) return page.status();
    for (const Gap& gap : page->gaps) {
      if (counts.total == max_gaps) {
        counts.complete = false;
        return counts;
      }
      ++counts.total;
      ++counts.by_stage[gap.stage];
      ++counts.by_kind[gap.kind];
      if (gap.order_id.empty()) continue;  // a silent source: no order
      if (orders.insert(gap.order_id).second) ++counts.orders;
      if (stage_orders.emplace(gap.stage, gap.order_id).second) {
        ++counts.orders_by_stage[gap.stage];
      }
    }
    if (page->next_cursor.empty()) return counts;
    query.cursor = page->next_cursor;
  }
}

}  // namespace ordertrace::gaps
