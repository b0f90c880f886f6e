// A gap: something that should have happened to an order and did not (a status past its SLA, a
// message never consumed), or statuses that contradict the lifecycle. Found by GapDetector, served
// by the API, raised and resolved in Alertmanager. Plain data; thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/ids.h"
#include "model/order_record.h"

namespace ordertrace::gaps {

// The kinds of gap (issue 5, "Gaps").
inline constexpr std::string_view kMissingTransition = "missing_transition";
inline constexpr std::string_view kCalculationOverdue = "calculation_overdue";
inline constexpr std::string_view kMessageNotConsumed = "message_not_consumed";
inline constexpr std::string_view kForbiddenTransition = "forbidden_transition";
inline constexpr std::string_view kStatusBackwards = "status_backwards";
inline constexpr std::string_view kSkippedStatus = "skipped_status";
inline constexpr std::string_view kStatusDisagreement = "status_disagreement";

struct Gap {
  // Stable for one event: the order, the kind, the stage and (for messages) the message id, so
  // that the same event never opens a second gap, also across restarts.
  std::string id;
  std::string order_id;
  std::string partner_id;
  std::string kind;
  std::string stage;                  // the status the order was in (or reached, for conflicts)
  std::vector<std::string> expected;  // the status(es) that should have come
  std::string service;                // where the order stopped
  std::string queue;                  // the queue, for message gaps
  std::string message_id;
  std::string detail;  // one sentence for people
  model::TraceId trace_id;
  std::optional<model::Operation> last_success;
  uint64_t since_unix_nano = 0;     // when the stage was reached / the message published
  uint64_t deadline_unix_nano = 0;  // since + SLA + grace; for conflicts, when it was seen
  uint64_t detected_at_unix_nano = 0;
  uint64_t resolved_at_unix_nano = 0;  // 0 while open

  bool IsOpen() const { return resolved_at_unix_nano == 0; }
  friend bool operator==(const Gap&, const Gap&) = default;
};

// The id of a gap (see Gap::id).
std::string GapId(std::string_view order_id, std::string_view kind, std::string_view stage,
                  std::string_view message_id = "");

// Where a gap goes once found or resolved (Alertmanager, tests). Called from the detector's
// threads; implementations must be thread-safe and must not block for long.
class GapSink {
 public:
  virtual ~GapSink() = default;
  virtual void OnGapOpened(const Gap& gap) = 0;
  virtual void OnGapResolved(const Gap& gap) = 0;
};

}  // namespace ordertrace::gaps
