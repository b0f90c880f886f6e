// The GapStore that keeps gaps in the store (store::Store's gap records), so that the history
// outlives a restart and follows its orders' retention. Each gap is kept encoded by
// gaps/gap_codec, with the fields the store indexes and filters by beside it. Thread-safe (as
// the store is): queries never wait for Apply.
#pragma once

#include <string>
#include <vector>

#include "gaps/gap_store.h"
#include "store/store.h"

namespace ordertrace::server {

class StoreGapStore final : public gaps::GapStore {
 public:
  // `store` must outlive this.
  explicit StoreGapStore(store::Store& store) : store_(store) {}

  absl::Status Apply(const std::vector<gaps::Gap>& puts,
                     const std::vector<std::string>& deletes) override;
  absl::StatusOr<std::optional<gaps::Gap>> Get(const std::string& gap_id) override;
  // A record that does not decode is skipped with a warning (the others still load).
  absl::StatusOr<std::vector<gaps::Gap>> LoadOpen() override;
  // kInvalidArgument for a malformed cursor or a limit of 0. A page may hold fewer than
  // `limit` gaps (even none) with a next cursor when the store stopped a long walk early.
  // Records that do not decode are skipped with a warning.
  absl::StatusOr<gaps::GapPage> Query(const gaps::GapHistoryQuery& query) override;

 private:
  store::Store& store_;
};

// The store's record of a gap: its index fields and its encoding.
store::GapRecord GapRecordOf(const gaps::Gap& gap);

}  // namespace ordertrace::server
