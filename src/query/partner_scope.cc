#include "query/partner_scope.h"

#include "lifecycle/order_record_builder.h"
#include "otlp/proto_codec.h"

namespace ordertrace::query {

PartnerScope::PartnerScope(store::Store& store, std::string partner_id)
    : store_(store), partner_id_(std::move(partner_id)) {}

absl::StatusOr<bool> PartnerScope::OwnsOrder(const std::string& order_id) {
  if (auto known = orders_.find(order_id); known != orders_.end()) return known->second;
  absl::StatusOr<std::optional<model::OrderRecord>> record = store_.GetOrder(order_id);
  if (!record.ok()) return record.status();
  const bool owns = record->has_value() && SeesOrder(**record);
  orders_.emplace(order_id, owns);
  return owns;
}

absl::StatusOr<PartnerScope::Verdict> PartnerScope::Judge(const base::TraceBatch& spans) {
  Verdict verdict;
  for (const base::ResourceSpans& rs : spans.resource_spans) {
    for (const base::ScopeSpans& ss : rs.scope_spans) {
      for (const base::Span& span : ss.spans) {
        std::optional<std::string> order_id = lifecycle::OrderIdOf(span, rs.resource);
        if (!order_id) continue;
        absl::StatusOr<bool> owns = OwnsOrder(*order_id);
        if (!owns.ok()) return owns.status();
        if (!*owns) {
          verdict.foreign_order = true;
          return verdict;
        }
        verdict.own_order = true;
      }
    }
  }
  return verdict;
}

absl::StatusOr<bool> PartnerScope::SeesTrace(const base::TraceBatch& trace) {
  absl::StatusOr<Verdict> verdict = Judge(trace);
  if (!verdict.ok()) return verdict.status();
  return verdict->own_order && !verdict->foreign_order;
}

absl::StatusOr<bool> PartnerScope::IsCandidate(const base::TraceId& trace_id) {
  if (!candidates_) {
    store::OrderFilter filter;
    filter.partner_id = partner_id_;
    filter.limit = kMaxCandidateOrders + 1;
    absl::StatusOr<std::vector<model::OrderRecord>> orders = store_.ListOrders(filter);
    if (!orders.ok()) return orders.status();
    candidates_.emplace();
    candidates_complete_ = orders->size() <= kMaxCandidateOrders;
    for (const model::OrderRecord& order : *orders) {
      orders_.emplace(order.order_id, SeesOrder(order));
      candidates_->insert(order.trace_ids.begin(), order.trace_ids.end());
    }
  }
  return !candidates_complete_ || candidates_->count(trace_id) != 0;
}

absl::StatusOr<bool> PartnerScope::Sees(const base::TraceId& trace_id) {
  if (auto known = traces_.find(trace_id); known != traces_.end()) return known->second;
  absl::StatusOr<bool> candidate = IsCandidate(trace_id);
  if (!candidate.ok()) return candidate.status();
  if (!*candidate) {
    traces_.emplace(trace_id, false);
    return false;
  }
  absl::StatusOr<std::vector<std::string>> blocks = store_.ReadTrace(trace_id);
  if (!blocks.ok()) return blocks.status();
  // Every block is judged: another partner's order may appear in any of them. An unreadable
  // block shows nothing, so it cannot widen the scope.
  Verdict whole;
  for (const std::string& encoded : *blocks) {
    absl::StatusOr<otlp::DecodedRequest> block = otlp::DecodeProtobufRequest(encoded);
    if (!block.ok()) continue;
    absl::StatusOr<Verdict> verdict = Judge(block->batch);
    if (!verdict.ok()) return verdict.status();
    whole.own_order |= verdict->own_order;
    whole.foreign_order |= verdict->foreign_order;
    if (whole.foreign_order) break;
  }
  const bool sees = whole.own_order && !whole.foreign_order;
  traces_.emplace(trace_id, sees);
  return sees;
}

}  // namespace ordertrace::query
