// The stage model the gap rules judge orders against (docs/gaps.md; ordertrace.yaml's
// `lifecycle:` section): the statuses, the allowed transitions, the terminal statuses, and for
// each stage the status(es) expected next with an SLA, with overrides per partner. Built once
// from options (defaults: base/default_lifecycle.h) and validated: a model that contradicts
// itself is refused. Folding spans into order records is src/lifecycle's; the transitions the
// services enforce are services/common/order_transitions.h.
//
// Immutable after Create; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"

namespace ordertrace::gaps {

// One stage: an order in `status` must reach one of `expected` within `sla_nanos`.
struct StageRule {
  std::string status;
  std::vector<std::string> expected;
  uint64_t sla_nanos = 0;
  // A long business operation (the price calculation): its gap is kind calculation_overdue.
  bool calculation = false;
};

struct StageModelOptions {
  std::vector<std::string> statuses;                             // in lifecycle order
  std::vector<std::pair<std::string, std::string>> transitions;  // allowed (from, to)
  std::vector<std::string> terminal;
  std::vector<StageRule> stages;
  // A message published and not consumed within this is a gap.
  uint64_t message_sla_nanos = 0;
  // Added to every deadline: export delay and clock skew between services.
  uint64_t grace_nanos = 0;
  // partner id -> stage -> SLA, replacing the stage's SLA for that partner's orders.
  std::map<std::string, std::map<std::string, uint64_t>> partner_sla_nanos;
  // SLAs (not the grace) are divided by this: simulations that compress time (order-sim's
  // --time-scale) use the same factor here. 1 in production.
  double time_scale = 1;
};

// The default lifecycle (base/default_lifecycle.h) as a chain: each status may go only to the
// next, CLOSED is terminal, each other stage expects the next status within its SLA (in
// real-life time), the price calculation's stage is a calculation; messages 5 min, grace 5 s.
StageModelOptions DefaultStageModelOptions();

class StageModel {
 public:
  // kInvalidArgument naming the contradiction: unknown or duplicate statuses, a transition or
  // an expected status that is not in the lifecycle, an expected status the stage cannot reach
  // by an allowed transition, a terminal status with a way out or an SLA, a dead end that is not
  // terminal, a zero SLA, a partner override for a stage without a rule.
  static absl::StatusOr<StageModel> Create(StageModelOptions options);

  // Position in the lifecycle; -1 for an unknown status.
  int IndexOf(std::string_view status) const;
  bool IsAllowed(std::string_view from, std::string_view to) const;
  // The same by lifecycle positions.
  bool IsAllowedAt(int from, int to) const;
  bool IsTerminal(std::string_view status) const;
  // The rule of `status`'s stage; nullptr when the stage has none (terminal, or unwatched).
  const StageRule* RuleFor(std::string_view status) const;
  // The same by lifecycle position (IndexOf), for callers that looked it up already.
  const StageRule* RuleAt(int position) const {
    if (position < 0 || position >= static_cast<int>(rule_at_.size())) return nullptr;
    return rule_at_[position] < 0 ? nullptr : &options_.stages[rule_at_[position]];
  }
  bool IsTerminalAt(int position) const {
    return position >= 0 && position < static_cast<int>(terminal_at_.size()) &&
           terminal_at_[position];
  }
  // The stage's SLA for `partner_id` (its override, or the stage's), already time-scaled.
  uint64_t SlaNanos(const StageRule& rule, std::string_view partner_id) const;
  uint64_t MessageSlaNanos() const;
  uint64_t GraceNanos() const { return options_.grace_nanos; }
  // Allowed next statuses of `status`.
  std::vector<std::string> NextOf(std::string_view status) const;
  const std::vector<std::string>& statuses() const { return options_.statuses; }

 private:
  explicit StageModel(StageModelOptions options);
  uint64_t Scaled(uint64_t nanos) const;

  StageModelOptions options_;
  // Status name -> position: IndexOf runs for every status of every changed order record.
  absl::flat_hash_map<std::string, int> index_;
  // Allowed transitions as (from position << 32 | to position), for IsAllowed.
  absl::flat_hash_set<uint64_t> allowed_;
  // By position: the index of the stage's rule in options_.stages (-1: none; an index, not a
  // pointer, so that copies stay valid), whether the status is terminal.
  std::vector<int> rule_at_;
  std::vector<bool> terminal_at_;
};

}  // namespace ordertrace::gaps
