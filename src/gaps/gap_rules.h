// The gaps an order's record implies under the lifecycle: a pure function of the record, and so
// of the spans (the record is a min/max fold of them), whatever order they arrived in.
//
// A record implies two sorts of thing:
// - settled gaps, which the record alone decides: a stage the order left after its deadline
//   (resolved by the status that left it), a message consumed after its deadline, and the
//   conflicts (a forbidden, backwards or skipped transition, services that disagree), open
//   until the order reaches a terminal status or leaves the disputed stage;
// - pending deadlines: the stage the order is in and the messages not yet consumed. Whether
//   one is overdue depends on evidence that may still be on its way (a span not yet exported):
//   the GapDetector judges it once the sources have reported past it (source_watermarks.h).
//
// Stateless free functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gaps/gap.h"
#include "gaps/stage_model.h"
#include "model/order_record.h"

namespace ordertrace::gaps {

// The order is in `status` (lifecycle position `stage`) since `since`; one of the stage's
// expected statuses is due by `deadline`.
struct StageDeadline {
  int stage = -1;
  std::string status;
  uint64_t since_unix_nano = 0;
  uint64_t deadline_unix_nano = 0;
  std::string gap_id;
};

// A message published at `published` and not consumed; due by `deadline`.
struct MessageDeadline {
  std::string message_id;
  uint64_t published_unix_nano = 0;
  uint64_t deadline_unix_nano = 0;
  std::string gap_id;
};

struct OrderGaps {
  std::vector<Gap> settled;  // by id, each id once
  std::optional<StageDeadline> stage;
  std::vector<MessageDeadline> messages;
};

// Everything `record` implies. Gaps carry everything but detected_at and paged.
OrderGaps EvaluateOrder(const StageModel& model, const model::OrderRecord& record);

// The open gap a pending deadline becomes once judged overdue.
Gap OverdueStageGap(const StageModel& model, const model::OrderRecord& record,
                    const StageDeadline& deadline);
Gap UnconsumedMessageGap(const StageModel& model, const model::OrderRecord& record,
                         const MessageDeadline& deadline);

// Kinds the GapDetector judges from a pending deadline (the others are settled by the record).
bool IsDeadlineKind(std::string_view kind);

// a + b, saturating at the largest time instead of wrapping (a span stamped near 2^64 ns).
inline uint64_t AddSaturating(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

}  // namespace ordertrace::gaps
