// A GapStore in memory: for tests, and for a detector run without persistence. Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "gaps/gap_store.h"

namespace ordertrace::gaps {

class MemoryGapStore final : public GapStore {
 public:
  absl::Status Apply(const std::vector<Gap>& puts,
                     const std::vector<std::string>& deletes) override;
  absl::StatusOr<std::optional<Gap>> Get(const std::string& gap_id) override;
  absl::StatusOr<std::vector<Gap>> LoadOpen() override;
  absl::StatusOr<GapPage> Query(const GapHistoryQuery& query) override;

  // Every gap held, by id.
  std::map<std::string, Gap> Snapshot() const;
  // The next calls to Apply fail with kUnavailable while set (tests of a failing store).
  void SetFailing(bool failing);

 private:
  mutable std::mutex mu_;
  std::map<std::string, Gap> gaps_;  // guarded by mu_
  bool failing_ = false;             // guarded by mu_
};

// Whether `gap` matches the filters of `query` (all but the cursor and the limit). Shared by the
// stores so that they agree on what a filter means.
bool MatchesGapQuery(const Gap& gap, const GapHistoryQuery& query);

// The cursor of a page that ended at `gap`, and its inverse (false for a malformed cursor).
std::string GapCursorAfter(const Gap& gap);
bool ParseGapCursor(const std::string& cursor, uint64_t& since_unix_nano, std::string& gap_id);

}  // namespace ordertrace::gaps
