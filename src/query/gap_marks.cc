#include "query/gap_marks.h"

#include <optional>

#include "lifecycle/order_record_builder.h"

namespace ordertrace::query {

absl::Status MarkGapDetected(base::TraceBatch& trace, const OrderHadGap& had_gap) {
  for (base::ResourceSpans& rs : trace.resource_spans) {
    for (base::ScopeSpans& ss : rs.scope_spans) {
      for (base::Span& span : ss.spans) {
        if (span.parent_span_id.IsValid()) continue;
        const std::optional<std::string> order_id = lifecycle::OrderIdOf(span, rs.resource);
        if (!order_id) continue;
        absl::StatusOr<bool> had = had_gap(*order_id);
        if (!had.ok()) return had.status();
        if (*had) span.attributes.push_back({"gap_detected", base::AnyValue::Bool(true)});
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace ordertrace::query
