// Where gaps are kept: every gap the detector found (the history the API pages through, newest
// first) and which of them are open (re-announced to Alertmanager after a restart). Gap records
// follow their order's retention (the store removes them with the order). The detector is the
// only other writer (one thread at a time); any number of readers may query meanwhile, and a
// query never waits for the detector.
// Implementations are thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gaps/gap.h"

namespace ordertrace::gaps {

struct GapHistoryQuery {
  enum class State { kOpen, kResolved, kAll };
  State state = State::kOpen;
  // Empty: any.
  std::string kind;
  std::string stage;
  std::string partner_id;
  std::string order_id;
  // Gaps whose `since` lies in [since_from, since_to]; 0: unbounded.
  uint64_t since_from_unix_nano = 0;
  uint64_t since_to_unix_nano = 0;
  // Where the previous page ended (GapPage::next_cursor); empty: from the newest.
  std::string cursor;
  size_t limit = 100;
};

struct GapPage {
  std::vector<Gap> gaps;  // newest `since` first, then by id
  // Pass back as GapHistoryQuery::cursor for the next page; empty when there is none.
  std::string next_cursor;
};

class GapStore {
 public:
  virtual ~GapStore() = default;
  // Puts (replacing a gap of the same id) and deletes (a gap late spans withdrew), atomically.
  virtual absl::Status Apply(const std::vector<Gap>& puts,
                             const std::vector<std::string>& deletes) = 0;
  virtual absl::StatusOr<std::optional<Gap>> Get(const std::string& gap_id) = 0;
  // Every open gap (recovery after a restart): read through an index of open gaps, not the
  // whole history.
  virtual absl::StatusOr<std::vector<Gap>> LoadOpen() = 0;
  // kInvalidArgument for a cursor this store did not hand out.
  virtual absl::StatusOr<GapPage> Query(const GapHistoryQuery& query) = 0;
};

}  // namespace ordertrace::gaps
