// Attributes ordertrace adds to stored spans, derived from the span and its order's record
// (docs/metrics.md, "Derived span attributes"): how long a stage, a transition, a message's
// trip and the price calculation took, so that a trace shows them without arithmetic. Values
// are seconds (doubles).
#pragma once

#include <string_view>

#include "base/span.h"
#include "model/order_record.h"

namespace ordertrace::lifecycle {

inline constexpr char kStageDurationKey[] = "stage_duration";
inline constexpr char kStatusTransitionLatencyKey[] = "status_transition_latency";
inline constexpr char kPublishToConsumeLatencyKey[] = "publish_to_consume_latency";
inline constexpr char kCalcDurationKey[] = "calc_duration";

// Adds to `span` (of `record`'s order) what applies, never replacing an attribute it has:
// - status_transition_latency: a transition span's own duration (the service applying it);
// - stage_duration: for the span that reached a status, the time since the order reached the
//   span's prev_status (known from the record, whichever span arrived first);
// - publish_to_consume_latency: a consumer span's start minus its message's publish;
// - calc_duration: the price calculation span's (named `price_calc_span`) duration.
void AddDerivedAttributes(base::Span& span, const model::OrderRecord& record,
                          std::string_view price_calc_span);

// Whether AddDerivedAttributes could add anything to `span` (a cheap test, so that ingest looks
// up the order only for spans that need it).
bool MayDeriveAttributes(const base::Span& span, std::string_view price_calc_span);

// The same figures, for metrics: the seconds between reaching `from` and `to` (one of the
// record's statuses, already found), when `from` is in the record and reached no later.
std::optional<double> StageSeconds(const model::OrderRecord& record, std::string_view from,
                                   const model::StatusReached& to);

}  // namespace ordertrace::lifecycle
