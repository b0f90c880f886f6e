#include "gaps/gap_counts.h"

namespace ordertrace::gaps {

absl::StatusOr<GapCounts> CountGaps(GapStore& store, GapHistoryQuery query, size_t max_gaps) {
  constexpr size_t kPage = 1000;
  GapCounts counts;
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
    }
    if (page->next_cursor.empty()) return counts;
    query.cursor = page->next_cursor;
  }
}

}  // namespace ordertrace::gaps
