// What a partner (a `partner_readonly` token) may read: its own orders, and the traces of its
// orders. A trace is the partner's when it names at least one order and every order it names
// is the partner's; a trace that also carries another partner's order, or no order at all, is
// not. Everything else is answered as if it did not exist. Scans (search, tag values) consider
// only the traces the partner's order records list (each keeps its first 16): a later trace of
// an order with more is still readable by id, but not found by a scan.
//
// Not thread-safe: one scope per request (it caches what it has read).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "base/span.h"
#include "model/order_record.h"
#include "store/store.h"

namespace ordertrace::query {

// Limits a query to some traces; the trace queries take one (null: every trace).
class TraceScope {
 public:
  virtual ~TraceScope() = default;
  // Whether the reader may see the stored trace `trace_id`.
  virtual absl::StatusOr<bool> Sees(const base::TraceId& trace_id) = 0;
  // The same for a trace already read.
  virtual absl::StatusOr<bool> SeesTrace(const base::TraceBatch& trace) = 0;
};

class PartnerScope final : public TraceScope {
 public:
  // `store` is borrowed and must outlive the scope.
  PartnerScope(store::Store& store, std::string partner_id);

  const std::string& partner_id() const { return partner_id_; }
  bool SeesOrder(const model::OrderRecord& record) const {
    return record.partner_id == partner_id_;
  }
  absl::StatusOr<bool> Sees(const base::TraceId& trace_id) override;
  absl::StatusOr<bool> SeesTrace(const base::TraceBatch& trace) override;

 private:
  // What a trace's spans say about their orders.
  struct Verdict {
    bool own_order = false;      // names an order of the partner
    bool foreign_order = false;  // names an order that is unknown or another partner's
  };
  absl::StatusOr<Verdict> Judge(const base::TraceBatch& spans);
  // Whether `trace_id` may be the partner's at all: one of the traces its order records list.
  // Lets a scan skip every other trace without reading it; true for all while the partner has
  // more orders than kMaxCandidateOrders (the records are then not all read).
  absl::StatusOr<bool> IsCandidate(const base::TraceId& trace_id);

  static constexpr size_t kMaxCandidateOrders = 50'000;
  // Whether the order `order_id` is stored and the partner's (read once per order).
  absl::StatusOr<bool> OwnsOrder(const std::string& order_id);

  store::Store& store_;
  const std::string partner_id_;
  std::map<base::TraceId, bool> traces_;
  std::optional<std::set<base::TraceId>> candidates_;  // read on first use
  bool candidates_complete_ = false;
  std::map<std::string, bool> orders_;
};

}  // namespace ordertrace::query
