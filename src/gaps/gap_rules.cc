#include "gaps/gap_rules.h"

#include <algorithm>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"

namespace ordertrace::gaps {
namespace {

using model::MessageHop;
using model::OrderRecord;
using model::StatusReached;

std::string Seconds(uint64_t nanos) { return absl::StrCat(static_cast<double>(nanos) / 1e9, " s"); }

// A gap of `record` with the fields every kind shares.
Gap MakeGap(const OrderRecord& record, std::string_view kind, std::string_view stage,
            std::string_view message_id = "") {
  Gap gap;
  gap.id = GapId(record.order_id, kind, message_id.empty() ? stage : "", message_id);
  gap.order_id = record.order_id;
  gap.partner_id = record.partner_id;
  gap.kind = std::string(kind);
  gap.stage = std::string(stage);
  gap.message_id = std::string(message_id);
  gap.trace_id = record.trace_id;
  gap.last_success = record.last_success;
  if (const StatusReached* current = record.CurrentStatus(); current != nullptr) {
    gap.service = current->service;
  }
  if (record.last_success.has_value()) gap.service = record.last_success->service;
  if (const MessageHop* last = record.LastMessage(); last != nullptr) gap.queue = last->queue;
  return gap;
}

void Resolve(Gap& gap, uint64_t at, std::string_view by) {
  gap.resolved_at_unix_nano = std::max(at, gap.since_unix_nano);
  gap.resolved_by = std::string(by);
}

// A status of the record that the lifecycle knows, with its lifecycle position.
struct Known {
  const StatusReached* reached;
  int position;
};
using KnownList = absl::InlinedVector<Known, 16>;

// The record's statuses that the lifecycle knows, in the record's order (event version, then
// time); `positions` gets every status's position (-1: unknown). A status the lifecycle does not
// know neither opens nor leaves a stage: an order must not hide from the detector by reporting
// one. Positions are looked up once per status: this runs for every record ingest changes.
KnownList KnownStatuses(const StageModel& model, const OrderRecord& record,
                        absl::InlinedVector<int, 16>* positions = nullptr) {
  KnownList known;
  for (const StatusReached& reached : record.statuses) {
    const int position = model.IndexOf(reached.status);
    if (positions != nullptr) positions->push_back(position);
    if (position >= 0) known.push_back({&reached, position});
  }
  return known;
}

// The status the order was in at `at` (the latest reached by then), or nullptr.
const StatusReached* StatusAt(const KnownList& known, uint64_t at) {
  const StatusReached* in = nullptr;
  for (const Known& k : known) {
    const StatusReached* reached = k.reached;
    if (reached->at_unix_nano <= at &&
        (in == nullptr || reached->at_unix_nano >= in->at_unix_nano)) {
      in = reached;
    }
  }
  return in;
}

// The status that followed `reached` in `known`, or nullptr.
const StatusReached* NextAfter(const KnownList& known, const StatusReached* reached) {
  for (size_t i = 0; i + 1 < known.size(); ++i) {
    if (known[i].reached == reached) return known[i + 1].reached;
  }
  return nullptr;
}

uint64_t StageDeadlineOf(const StageModel& model, const StageRule& rule, const OrderRecord& record,
                         const StatusReached& reached) {
  return AddSaturating(reached.at_unix_nano,
                       AddSaturating(model.SlaNanos(rule, record.partner_id), model.GraceNanos()));
}

uint64_t MessageDeadlineOf(const StageModel& model, const MessageHop& hop) {
  return AddSaturating(hop.published_at_unix_nano,
                       AddSaturating(model.MessageSlaNanos(), model.GraceNanos()));
}

std::string_view StageKind(const StageRule& rule) {
  return rule.calculation ? kCalculationOverdue : kMissingTransition;
}

class Evaluation {
 public:
  Evaluation(const StageModel& model, const OrderRecord& record)
      : model_(model), record_(record), known_(KnownStatuses(model, record, &positions_)) {
    for (const Known& k : known_) {
      if (model_.IsTerminalAt(k.position)) {
        terminal_ = k.reached;
        break;
      }
    }
  }

  OrderGaps Run() && {
    StageGaps();
    MessageGaps();
    TransitionConflicts();
    BackwardsConflicts();
    Disagreement();
    return std::move(out_);
  }

 private:
  // Each stage the order left: a gap when it left after the deadline. The stage it is in: a
  // pending deadline, unless the order has ended.
  void StageGaps() {
    for (size_t i = 0; i < known_.size(); ++i) {
      const StatusReached& reached = *known_[i].reached;
      const int position = known_[i].position;
      if (model_.IsTerminalAt(position)) continue;
      const StageRule* rule = model_.RuleAt(position);
      if (rule == nullptr) continue;
      const uint64_t deadline = StageDeadlineOf(model_, *rule, record_, reached);
      if (i + 1 < known_.size()) {
        const StatusReached& next = *known_[i + 1].reached;
        if (next.at_unix_nano <= deadline) continue;
        Gap gap = OverdueStageGap(
            model_, record_,
            StageDeadline{position, reached.status, reached.at_unix_nano, deadline, ""});
        Resolve(gap, next.at_unix_nano, next.status);
        Add(std::move(gap));
      } else if (terminal_ == nullptr) {
        StageDeadline pending{position, reached.status, reached.at_unix_nano, deadline,
                              GapId(record_.order_id, StageKind(*rule), reached.status)};
        out_.stage = std::move(pending);
      }
    }
  }

  void MessageGaps() {
    for (const MessageHop& hop : record_.messages) {
      if (hop.message_id.empty() || hop.published_at_unix_nano == 0) continue;
      MessageDeadline pending{hop.message_id, hop.published_at_unix_nano,
                              MessageDeadlineOf(model_, hop),
                              GapId(record_.order_id, kMessageNotConsumed, "", hop.message_id)};
      if (hop.consumed_at_unix_nano == 0) {
        out_.messages.push_back(std::move(pending));
      } else if (hop.consumed_at_unix_nano > pending.deadline_unix_nano) {
        Gap gap = UnconsumedMessageGap(model_, record_, pending);
        Resolve(gap, hop.consumed_at_unix_nano, "consumed");
        Add(std::move(gap));
      }
    }
  }

  // A conflict is open until the order reaches a terminal status after it: one that comes
  // after the terminal status (an order going back once closed) stays open.
  void AddConflict(Gap gap) {
    if (terminal_ != nullptr && terminal_->at_unix_nano >= gap.since_unix_nano) {
      Resolve(gap, terminal_->at_unix_nano, terminal_->status);
    }
    Add(std::move(gap));
  }

  // Each transition the lifecycle does not allow, in first reports and in revisits.
  void TransitionConflicts() {
    for (size_t i = 0; i < record_.statuses.size(); ++i) {
      TransitionConflict(record_.statuses[i], positions_[i]);
    }
    for (const StatusReached& revisit : record_.revisits) {
      TransitionConflict(revisit, model_.IndexOf(revisit.status));
    }
  }

  void TransitionConflict(const StatusReached& reached, int to) {
    if (to < 0) return UnknownStatusConflict(reached);
    if (reached.prev_status.empty()) return;
    const int from = model_.IndexOf(reached.prev_status);
    if (model_.IsAllowedAt(from, to)) return;
    std::string_view kind = kForbiddenTransition;
    std::string stage = reached.status;
    std::vector<std::string> expected = model_.NextOf(reached.prev_status);
    if (from >= 0 && to < from) {
      kind = kStatusBackwards;
    } else if (from >= 0 && to > from + 1) {
      // Skipped when the lifecycle leads from `from` to `to` through the statuses between.
      bool path = true;
      for (int i = from; i < to && path; ++i) {
        path = model_.IsAllowed(model_.statuses()[i], model_.statuses()[i + 1]);
      }
      if (path) {
        kind = kSkippedStatus;
        stage = model_.statuses()[from + 1];
        expected = {stage};
      }
    }
    Gap gap = MakeGap(record_, kind, stage);
    gap.expected = std::move(expected);
    gap.service = reached.service;
    gap.since_unix_nano = reached.at_unix_nano;
    gap.deadline_unix_nano = reached.at_unix_nano;
    gap.detail = absl::StrCat(reached.service, " moved the order from ", reached.prev_status,
                              " to ", reached.status, ", which the lifecycle does not allow");
    AddConflict(std::move(gap));
  }

  // A status the lifecycle does not know is a conflict with the model, whatever it came from:
  // the order's stage (and its deadline) stays the last known one.
  void UnknownStatusConflict(const StatusReached& reached) {
    Gap gap = MakeGap(record_, kForbiddenTransition, reached.status);
    if (!reached.prev_status.empty()) gap.expected = model_.NextOf(reached.prev_status);
    gap.service = reached.service;
    gap.since_unix_nano = reached.at_unix_nano;
    gap.deadline_unix_nano = reached.at_unix_nano;
    gap.detail = absl::StrCat(reached.service, " set ", reached.status,
                              ", a status the lifecycle does not know",
                              reached.prev_status.empty() ? "" : " (from ", reached.prev_status,
                              reached.prev_status.empty() ? "" : ")");
    AddConflict(std::move(gap));
  }

  // A later event that carries an earlier status: the order went backwards (a first report,
  // or a revisit such as SHIPPED again after CLOSED).
  void BackwardsConflicts() {
    const auto& statuses = record_.statuses;
    const size_t n = statuses.size();
    absl::InlinedVector<const StatusReached*, 16> reports;
    for (const StatusReached& s : statuses) reports.push_back(&s);
    for (const StatusReached& s : record_.revisits) reports.push_back(&s);
    absl::InlinedVector<int, 16> position(positions_.begin(), positions_.end());
    for (const StatusReached& s : record_.revisits) position.push_back(model_.IndexOf(s.status));
    for (size_t i = 0; i < reports.size(); ++i) {
      const StatusReached& a = *reports[i];
      if (position[i] < 0) continue;
      for (size_t j = 0; j < n; ++j) {
        const StatusReached& b = statuses[j];
        if (a.event_version > b.event_version && b.event_version >= 0 &&
            position[i] < position[j]) {
          Gap gap = MakeGap(record_, kStatusBackwards, a.status);
          gap.expected = model_.NextOf(b.status);
          gap.service = a.service;
          gap.since_unix_nano = a.at_unix_nano;
          gap.deadline_unix_nano = a.at_unix_nano;
          gap.detail = absl::StrCat(a.service, " set ", a.status, " (event ", a.event_version,
                                    ") after ", b.status, " (event ", b.event_version, ")");
          AddConflict(std::move(gap));
        }
      }
    }
  }

  // A service refusing a step because it holds an older status than the order was in: open
  // until the order leaves that stage.
  void Disagreement() {
    if (!record_.last_error.has_value() || record_.last_error->reported_status.empty()) return;
    const model::Operation& error = *record_.last_error;
    const int reported = model_.IndexOf(error.reported_status);
    const StatusReached* in = StatusAt(known_, error.at_unix_nano);
    if (reported < 0 || in == nullptr || reported >= model_.IndexOf(in->status)) return;
    Gap gap = MakeGap(record_, kStatusDisagreement, in->status);
    gap.expected = {in->status};
    gap.service = error.service;
    gap.since_unix_nano = in->at_unix_nano;
    gap.deadline_unix_nano = error.at_unix_nano;
    gap.detail =
        absl::StrCat(error.service, " holds ", error.reported_status, " while the order is ",
                     in->status, " (", error.span_name, " refused: ", error.error_message, ")");
    if (const StatusReached* next = NextAfter(known_, in); next != nullptr) {
      Resolve(gap, std::max(next->at_unix_nano, error.at_unix_nano), next->status);
    }
    Add(std::move(gap));
  }

  // The first finding of an id counts (the checks run in a fixed order).
  void Add(Gap gap) {
    for (const Gap& existing : out_.settled) {
      if (existing.id == gap.id) return;
    }
    out_.settled.push_back(std::move(gap));
  }

  const StageModel& model_;
  const OrderRecord& record_;
  absl::InlinedVector<int, 16> positions_;  // of record_.statuses, in order; -1: unknown
  const KnownList known_;
  const StatusReached* terminal_ = nullptr;  // the first terminal status reached
  OrderGaps out_;
};

}  // namespace

bool IsDeadlineKind(std::string_view kind) {
  return kind == kMissingTransition || kind == kCalculationOverdue || kind == kMessageNotConsumed;
}

OrderGaps EvaluateOrder(const StageModel& model, const OrderRecord& record) {
  return Evaluation(model, record).Run();
}

Gap OverdueStageGap(const StageModel& model, const OrderRecord& record,
                    const StageDeadline& deadline) {
  const StageRule* rule = model.RuleFor(deadline.status);
  Gap gap =
      MakeGap(record, rule != nullptr ? StageKind(*rule) : kMissingTransition, deadline.status);
  if (rule != nullptr) gap.expected = rule->expected;
  gap.since_unix_nano = deadline.since_unix_nano;
  gap.deadline_unix_nano = deadline.deadline_unix_nano;
  std::string by_service, by_span;
  for (const StatusReached& reached : record.statuses) {
    if (reached.status == deadline.status) {
      by_service = reached.service;
      by_span = reached.span_name;
    }
  }
  const uint64_t sla = rule != nullptr ? model.SlaNanos(*rule, record.partner_id) : 0;
  gap.detail = absl::StrCat(
      "in ", deadline.status, " since ", by_service, "'s ", by_span, "; expected ",
      gap.expected.empty() ? std::string() : gap.expected.front(), " within ", Seconds(sla));
  return gap;
}

namespace {

// The status a message belongs to: the one its publishing operation reached (a service
// publishes within the transition, before that span ends), else the one the order was in when
// the message was published.
const StatusReached* StatusOfMessage(const KnownList& known, const MessageHop* hop,
                                     uint64_t published_unix_nano) {
  if (hop != nullptr && hop->published_by.IsValid()) {
    for (const Known& k : known) {
      if (k.reached->span_id == hop->published_by) return k.reached;
    }
  }
  return StatusAt(known, published_unix_nano);
}

}  // namespace

Gap UnconsumedMessageGap(const StageModel& model, const OrderRecord& record,
                         const MessageDeadline& deadline) {
  // The stage is the status the message belongs to: a function of the record, not of the
  // moment the gap was found.
  const MessageHop* hop = nullptr;
  for (const MessageHop& m : record.messages) {
    if (m.message_id == deadline.message_id) hop = &m;
  }
  const auto known = KnownStatuses(model, record);
  const StatusReached* in = StatusOfMessage(known, hop, deadline.published_unix_nano);
  Gap gap =
      MakeGap(record, kMessageNotConsumed, in != nullptr ? in->status : "", deadline.message_id);
  if (hop != nullptr) gap.queue = hop->queue;
  gap.since_unix_nano = deadline.published_unix_nano;
  gap.deadline_unix_nano = deadline.deadline_unix_nano;
  gap.detail = absl::StrCat("message ", deadline.message_id, " to ", gap.queue,
                            " not consumed within ", Seconds(model.MessageSlaNanos()));
  return gap;
}

}  // namespace ordertrace::gaps
