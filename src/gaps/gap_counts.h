// How many gaps a query matches, per stage and per kind: what shows an incident (many orders
// stuck at one stage) as one line, however many gaps it holds. Pages through the store's
// history; stops after `max_gaps` and says so.
#pragma once

#include <cstddef>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "gaps/gap_store.h"

namespace ordertrace::gaps {

struct GapCounts {
  size_t total = 0;
  size_t orders = 0;                              // distinct orders among them
  std::map<std::string, size_t> by_stage;         // "" for gaps about no stage (a silent source)
  std::map<std::string, size_t> orders_by_stage;  // distinct orders with a gap at the stage
  std::map<std::string, size_t> by_kind;
  // False when counting stopped at `max_gaps`: the figures are lower bounds.
  bool complete = true;
};

// Counts the gaps `query` matches (its cursor and limit are ignored), at most `max_gaps`.
absl::StatusOr<GapCounts> CountGaps(GapStore& store, GapHistoryQuery query, size_t max_gaps);

}  // namespace ordertrace::gaps
