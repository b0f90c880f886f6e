// A gap: something that should have happened to an order and did not (a status past its SLA, a
// message never consumed), statuses that contradict the lifecycle, or a service that stopped
// reporting. Found by GapDetector, kept in a GapStore, served by the API, raised and resolved in
// Alertmanager. Plain data; thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "base/ids.h"
#include "model/order_record.h"

namespace ordertrace::gaps {

// The kinds of gap about an order.
inline constexpr std::string_view kMissingTransition = "missing_transition";
inline constexpr std::string_view kCalculationOverdue = "calculation_overdue";
inline constexpr std::string_view kMessageNotConsumed = "message_not_consumed";
inline constexpr std::string_view kForbiddenTransition = "forbidden_transition";
inline constexpr std::string_view kStatusBackwards = "status_backwards";
inline constexpr std::string_view kSkippedStatus = "skipped_status";
inline constexpr std::string_view kStatusDisagreement = "status_disagreement";
// Not about one order: a service (a source of spans) stopped reporting while others go on. Its
// order_id is empty and `service` names the source; `since` is its last report (wall clock).
inline constexpr std::string_view kSourceSilent = "source_silent";

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
  base::TraceId trace_id;
  std::optional<model::Operation> last_success;
  // Event time (the spans' own clocks), so that they do not depend on when spans arrived:
  uint64_t since_unix_nano = 0;        // when the stage was reached / the message published
  uint64_t deadline_unix_nano = 0;     // since + SLA + grace; for conflicts, when it was seen
  uint64_t resolved_at_unix_nano = 0;  // when the resolving event happened; 0 while open
  // What resolved it: the status that left the stage, "consumed" for a message, the terminal
  // status for a conflict, "reported" for a silent source. Empty while open.
  std::string resolved_by;
  // Wall clock: when ordertrace found it (the only field that depends on arrival).
  uint64_t detected_at_unix_nano = 0;
  // Whether it was announced open (an alert fired). A breach found already over is recorded
  // and counted, not paged.
  bool paged = false;

  bool IsOpen() const { return resolved_by.empty(); }
  // The part of a gap that is a function of the spans alone: equal for the same spans whatever
  // their arrival order, batching or restarts (detected_at, paged and the descriptive fields
  // that name the order's latest step may differ).
  auto Outcome() const {
    return std::tie(id, order_id, kind, stage, since_unix_nano, deadline_unix_nano,
                    resolved_at_unix_nano, resolved_by);
  }
  friend bool operator==(const Gap&, const Gap&) = default;
};

// The id of a gap (see Gap::id).
std::string GapId(std::string_view order_id, std::string_view kind, std::string_view stage,
                  std::string_view message_id = "");

// Where a gap goes once found or resolved (Alertmanager, tests). Called from the detector's
// threads under its mutex, in the order the detector decided: implementations must be
// thread-safe, must not block for long and must not call back into the detector. Only gaps found
// open are announced; OnGapResolved also ends a gap that late spans withdrew (it never was).
class GapSink {
 public:
  virtual ~GapSink() = default;
  virtual void OnGapOpened(const Gap& gap) = 0;
  virtual void OnGapResolved(const Gap& gap) = 0;
};

}  // namespace ordertrace::gaps
