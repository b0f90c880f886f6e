#include "gaps/memory_gap_store.h"

#include <algorithm>
#include <charconv>
#include <tuple>

#include "absl/strings/str_cat.h"

namespace ordertrace::gaps {

bool MatchesGapQuery(const Gap& gap, const GapHistoryQuery& query) {
  if (query.state == GapHistoryQuery::State::kOpen && !gap.IsOpen()) return false;
  if (query.state == GapHistoryQuery::State::kResolved && gap.IsOpen()) return false;
  if (!query.kind.empty() && gap.kind != query.kind) return false;
  if (!query.stage.empty() && gap.stage != query.stage) return false;
  if (!query.partner_id.empty() && gap.partner_id != query.partner_id) return false;
  if (!query.order_id.empty() && gap.order_id != query.order_id) return false;
  if (query.since_from_unix_nano != 0 && gap.since_unix_nano < query.since_from_unix_nano) {
    return false;
  }
  if (query.since_to_unix_nano != 0 && gap.since_unix_nano > query.since_to_unix_nano) {
    return false;
  }
  return true;
}

std::string GapCursorAfter(const Gap& gap) {
  return absl::StrCat(gap.since_unix_nano, ":", gap.id);
}

bool ParseGapCursor(const std::string& cursor, uint64_t& since_unix_nano, std::string& gap_id) {
  size_t colon = cursor.find(':');
  if (colon == std::string::npos || colon == 0) return false;
  auto [end, ec] = std::from_chars(cursor.data(), cursor.data() + colon, since_unix_nano);
  if (ec != std::errc() || end != cursor.data() + colon) return false;
  gap_id = cursor.substr(colon + 1);
  return !gap_id.empty();
}

absl::Status MemoryGapStore::Apply(const std::vector<Gap>& puts,
                                   const std::vector<std::string>& deletes) {
  std::lock_guard<std::mutex> lock(mu_);
  if (failing_) return absl::UnavailableError("gap store is failing (test)");
  for (const Gap& gap : puts) gaps_[gap.id] = gap;
  for (const std::string& id : deletes) gaps_.erase(id);
  return absl::OkStatus();
}

absl::StatusOr<std::optional<Gap>> MemoryGapStore::Get(const std::string& gap_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = gaps_.find(gap_id);
  if (it == gaps_.end()) return std::optional<Gap>();
  return std::optional<Gap>(it->second);
}

absl::StatusOr<std::vector<Gap>> MemoryGapStore::LoadOpen() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Gap> out;
  for (const auto& [id, gap] : gaps_) {
    if (gap.IsOpen()) out.push_back(gap);
  }
  return out;
}

absl::StatusOr<GapPage> MemoryGapStore::Query(const GapHistoryQuery& query) {
  if (query.limit == 0) return absl::InvalidArgumentError("limit must be positive");
  uint64_t cursor_since = 0;
  std::string cursor_id;
  if (!query.cursor.empty() && !ParseGapCursor(query.cursor, cursor_since, cursor_id)) {
    return absl::InvalidArgumentError("malformed cursor");
  }
  std::vector<Gap> matching;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, gap] : gaps_) {
      if (MatchesGapQuery(gap, query)) matching.push_back(gap);
    }
  }
  // Newest first: since descending, then id ascending.
  auto newer = [](const Gap& a, const Gap& b) {
    return std::tie(b.since_unix_nano, a.id) < std::tie(a.since_unix_nano, b.id);
  };
  std::sort(matching.begin(), matching.end(), newer);
  GapPage page;
  for (Gap& gap : matching) {
    if (!query.cursor.empty() &&
        std::tie(cursor_since, gap.id) <= std::tie(gap.since_unix_nano, cursor_id)) {
      continue;  // at or before the cursor in newest-first order
    }
    if (page.gaps.size() == query.limit) {
      page.next_cursor = GapCursorAfter(page.gaps.back());
      break;
    }
    page.gaps.push_back(std::move(gap));
  }
  return page;
}

std::map<std::string, Gap> MemoryGapStore::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return gaps_;
}

void MemoryGapStore::SetFailing(bool failing) {
  std::lock_guard<std::mutex> lock(mu_);
  failing_ = failing;
}

}  // namespace ordertrace::gaps
