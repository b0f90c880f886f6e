// The gaps open now, by id and by order: the GapDetector's memory of gaps (the history is in
// the GapStore). Keyed by 128-bit fingerprints of the ids, not the strings: growing a table
// then moves 16-byte keys and never hashes a string again, so it stalls neither ingest nor the
// timer thread (both wait on the detector's mutex) when hundreds of thousands of orders are
// stuck. A fingerprint collision would need two unrelated 64-bit hashes to collide at once.
//
// Thread-compatible: the GapDetector guards it with its mutex.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/hash/hash.h"
#include "gaps/gap.h"

namespace ordertrace::gaps {

using GapFingerprint = std::pair<uint64_t, uint64_t>;

inline GapFingerprint FingerprintOf(const std::string& text) {
  return {std::hash<std::string>()(text), absl::Hash<std::string>()(text)};
}

class OpenGaps {
 public:
  Gap* Find(const GapFingerprint& id) {
    auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : it->second.get();
  }
  Gap* Find(const std::string& id) { return Find(FingerprintOf(id)); }
  const Gap* Find(const std::string& id) const {
    auto it = by_id_.find(FingerprintOf(id));
    return it == by_id_.end() ? nullptr : it->second.get();
  }
  bool Contains(const std::string& id) const { return Find(id) != nullptr; }

  // Adds `gap`, whose id is not open; returns it as kept.
  Gap& Add(Gap gap) {
    const GapFingerprint id = FingerprintOf(gap.id);
    by_order_[FingerprintOf(gap.order_id)].push_back(id);
    auto owned = std::make_unique<Gap>(std::move(gap));
    Gap& kept = *owned;
    by_id_[id] = std::move(owned);
    return kept;
  }

  // Removes the gap of `id` and returns it; nullopt when it is not open.
  std::optional<Gap> Remove(const std::string& id) {
    auto it = by_id_.find(FingerprintOf(id));
    if (it == by_id_.end()) return std::nullopt;
    Gap gap = std::move(*it->second);
    by_id_.erase(it);
    auto order = by_order_.find(FingerprintOf(gap.order_id));
    if (order != by_order_.end()) {
      auto& ids = order->second;
      const GapFingerprint removed = FingerprintOf(gap.id);
      ids.erase(std::remove(ids.begin(), ids.end(), removed), ids.end());
      if (ids.empty()) by_order_.erase(order);
    }
    return gap;
  }

  // The open gaps of `order_id` (copies of their ids), in the order they opened.
  std::vector<std::string> IdsOf(const std::string& order_id) const {
    std::vector<std::string> out;
    auto order = by_order_.find(FingerprintOf(order_id));
    if (order == by_order_.end()) return out;
    for (const GapFingerprint& id : order->second) out.push_back(by_id_.at(id)->id);
    return out;
  }

  template <typename Visit>
  void ForEach(Visit visit) const {
    for (const auto& [id, gap] : by_id_) visit(*gap);
  }
  size_t size() const { return by_id_.size(); }

 private:
  absl::flat_hash_map<GapFingerprint, std::unique_ptr<Gap>> by_id_;
  absl::flat_hash_map<GapFingerprint, absl::InlinedVector<GapFingerprint, 2>> by_order_;
};

}  // namespace ordertrace::gaps
