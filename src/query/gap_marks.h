// The `gap_detected` mark on a trace's root spans: a trace read through the API
// shows whether its order ever had a gap. Knows nothing about HTTP or how gaps are stored.
#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/span.h"

namespace ordertrace::query {

// Whether the gap history holds a gap, open or resolved, of the order `order_id`.
using OrderHadGap = std::function<absl::StatusOr<bool>(const std::string& order_id)>;

// Adds `gap_detected` (true) to each root span of `trace` that names an order (its own or its
// resource's order_id) for which `had_gap` says yes. The first failed lookup is returned; the
// roots marked before it stay marked.
absl::Status MarkGapDetected(base::TraceBatch& trace, const OrderHadGap& had_gap);

}  // namespace ordertrace::query
