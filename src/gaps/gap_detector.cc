#include "gaps/gap_detector.h"

#include <pthread.h>

#include <algorithm>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"

namespace ordertrace::gaps {
namespace {

bool IsStageKind(std::string_view kind) {
  return kind == kMissingTransition || kind == kCalculationOverdue || kind == kStatusDisagreement;
}

bool IsConflictKind(std::string_view kind) {
  return kind == kForbiddenTransition || kind == kStatusBackwards || kind == kSkippedStatus;
}

const model::MessageHop* FindHop(const model::OrderRecord& record, std::string_view message_id) {
  for (const model::MessageHop& hop : record.messages) {
    if (hop.message_id == message_id) return &hop;
  }
  return nullptr;
}

std::string Seconds(uint64_t nanos) { return absl::StrCat(static_cast<double>(nanos) / 1e9, " s"); }

}  // namespace

std::string GapId(std::string_view order_id, std::string_view kind, std::string_view stage,
                  std::string_view message_id) {
  std::string id;
  id.reserve(order_id.size() + kind.size() + stage.size() + message_id.size() + 3);
  id.append(order_id).append("/").append(kind).append("/").append(stage);
  if (!message_id.empty()) id.append("/").append(message_id);
  return id;
}

GapDetector::GapDetector(const LifecycleModel& model, const model::Clock& clock, OrderLookup lookup,
                         GapStore* store, GapSink* sink, GapDetectorOptions options)
    : model_(model),
      clock_(clock),
      lookup_(std::move(lookup)),
      store_(store),
      sink_(sink),
      options_(options) {}

GapDetector::~GapDetector() { Shutdown(); }

std::pair<uint64_t, uint64_t> GapDetector::Fingerprint(const std::string& gap_id) {
  // Two unrelated 64-bit hashes (libstdc++'s and Abseil's): a collision would need both.
  return {std::hash<std::string>()(gap_id), absl::Hash<std::string>()(gap_id)};
}

absl::Status GapDetector::Recover() {
  if (store_ == nullptr) return absl::OkStatus();
  absl::StatusOr<std::vector<Gap>> gaps = store_->LoadGaps();
  if (!gaps.ok()) return gaps.status();
  std::sort(gaps->begin(), gaps->end(), [](const Gap& a, const Gap& b) {
    return a.resolved_at_unix_nano < b.resolved_at_unix_nano;
  });
  Events events;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (Gap& gap : *gaps) {
      if (!known_ids_.insert(Fingerprint(gap.id)).second) continue;
      if (gap.IsOpen()) {
        open_by_order_[gap.order_id].push_back(gap.id);
        events.opened.push_back(gap);
        open_.emplace(gap.id, std::move(gap));
      } else {
        resolved_.push_back(std::move(gap));
        if (resolved_.size() > options_.max_resolved_in_memory) resolved_.pop_front();
      }
    }
  }
  if (sink_ != nullptr) {
    for (const Gap& gap : events.opened) sink_->OnGapOpened(gap);
  }
  return absl::OkStatus();
}

void GapDetector::OnOrderRecord(const model::OrderRecord& record) {
  Events events;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t now = clock_.NowUnixNano();
    const model::StatusReached* current = record.CurrentStatus();
    const bool terminal = current != nullptr && model_.IsTerminal(current->status);
    if (!firing_.empty() && firing_.contains(record.order_id)) {
      updated_while_firing_.insert(record.order_id);
    }

    // Conflicts first: one found when the order is already terminal (a skip into CLOSED) is
    // then opened and resolved together, so it is recorded and alerted once.
    CheckConflictsLocked(record, events);

    // What the record now answers.
    if (auto it = open_by_order_.find(record.order_id); it != open_by_order_.end()) {
      std::vector<std::string> ids = it->second;
      for (const std::string& id : ids) {
        const Gap& gap = open_.at(id);
        bool answered = false;
        if (IsStageKind(gap.kind)) {
          answered = current == nullptr || current->status != gap.stage;
        } else if (gap.kind == kMessageNotConsumed) {
          const model::MessageHop* hop = FindHop(record, gap.message_id);
          answered = hop != nullptr && hop->consumed_at_unix_nano != 0;
        } else if (IsConflictKind(gap.kind)) {
          answered = terminal;
        }
        if (answered) ResolveLocked(id, now, events);
      }
    }

    // The stage deadline.
    const StageRule* rule =
        current != nullptr && !terminal ? model_.RuleFor(current->status) : nullptr;
    if (rule != nullptr) {
      std::string id =
          GapId(record.order_id, rule->calculation ? kCalculationOverdue : kMissingTransition,
                current->status);
      if (known_ids_.contains(Fingerprint(id))) {
        DisarmStageLocked(record.order_id);
      } else {
        uint64_t deadline =
            current->at_unix_nano + model_.SlaNanos(*rule, record.partner_id) + model_.GraceNanos();
        ArmStageLocked(record.order_id, static_cast<int16_t>(model_.IndexOf(current->status)),
                       std::max<uint64_t>(deadline, 1));
      }
    } else {
      DisarmStageLocked(record.order_id);
    }

    // Message deadlines.
    for (const model::MessageHop& hop : record.messages) {
      if (hop.message_id.empty()) continue;
      if (hop.consumed_at_unix_nano != 0 || hop.published_at_unix_nano == 0) {
        DisarmMessageLocked(hop.message_id);
        continue;
      }
      if (known_ids_.contains(
              Fingerprint(GapId(record.order_id, kMessageNotConsumed, "", hop.message_id)))) {
        continue;
      }
      ArmMessageLocked(hop.message_id, record.order_id,
                       hop.published_at_unix_nano + model_.MessageSlaNanos() + model_.GraceNanos());
    }
    // Also when something is already due (a clock that jumped ahead).
    wake =
        std::exchange(wake_needed_, false) || (!timers_.empty() && timers_.top().deadline <= now);
  }
  if (wake) wake_.notify_all();
  Announce(events);
}

void GapDetector::CheckConflictsLocked(const model::OrderRecord& record, Events& events) {
  const model::StatusReached* current = record.CurrentStatus();
  if (current == nullptr) return;
  for (const model::StatusReached& reached : record.statuses) {
    int to = model_.IndexOf(reached.status);
    int from = model_.IndexOf(reached.prev_status);
    if (reached.prev_status.empty() || to < 0 ||
        model_.IsAllowed(reached.prev_status, reached.status)) {
      continue;
    }
    std::string_view kind = kForbiddenTransition;
    std::string stage = reached.status;
    std::vector<std::string> expected = model_.NextOf(reached.prev_status);
    if (from >= 0 && to < from) {
      kind = kStatusBackwards;
    } else if (from >= 0 && to > from + 1) {
      // Skipped when the lifecycle leads from `from` to `to` through the statuses in between.
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
    Gap gap = MakeGap(record, kind, stage, "");
    gap.expected = expected;
    gap.service = reached.service;
    gap.since_unix_nano = reached.at_unix_nano;
    gap.deadline_unix_nano = reached.at_unix_nano;
    gap.detail = absl::StrCat(reached.service, " moved the order from ", reached.prev_status,
                              " to ", reached.status, ", which the lifecycle does not allow");
    OpenLocked(std::move(gap), events);
  }
  // A later event that carries an earlier status: the order went backwards. Positions are
  // looked up once per status, not once per pair.
  const size_t n = record.statuses.size();
  absl::InlinedVector<int, 16> position(n);
  for (size_t i = 0; i < n; ++i) position[i] = model_.IndexOf(record.statuses[i].status);
  for (size_t i = 0; i < n; ++i) {
    const model::StatusReached& a = record.statuses[i];
    if (position[i] < 0) continue;
    for (size_t j = 0; j < n; ++j) {
      const model::StatusReached& b = record.statuses[j];
      if (a.event_version > b.event_version && b.event_version >= 0 && position[i] < position[j]) {
        Gap gap = MakeGap(record, kStatusBackwards, a.status, "");
        gap.expected = model_.NextOf(b.status);
        gap.service = a.service;
        gap.since_unix_nano = a.at_unix_nano;
        gap.deadline_unix_nano = a.at_unix_nano;
        gap.detail = absl::StrCat(a.service, " set ", a.status, " (event ", a.event_version,
                                  ") after ", b.status, " (event ", b.event_version, ")");
        OpenLocked(std::move(gap), events);
      }
    }
  }
  // A service refusing a step because it holds an older status than the order has.
  if (record.last_error.has_value() && !record.last_error->reported_status.empty()) {
    const model::Operation& error = *record.last_error;
    int reported = model_.IndexOf(error.reported_status);
    if (reported >= 0 && reported < model_.IndexOf(current->status) &&
        error.at_unix_nano >= current->at_unix_nano) {
      Gap gap = MakeGap(record, kStatusDisagreement, current->status, "");
      gap.expected = {current->status};
      gap.service = error.service;
      gap.since_unix_nano = current->at_unix_nano;
      gap.deadline_unix_nano = error.at_unix_nano;
      gap.detail = absl::StrCat(error.service, " holds ", error.reported_status,
                                " while the order is ", current->status, " (", error.span_name,
                                " refused: ", error.error_message, ")");
      OpenLocked(std::move(gap), events);
    }
  }
}

Gap GapDetector::MakeGap(const model::OrderRecord& record, std::string_view kind,
                         std::string_view stage, std::string_view message_id) const {
  Gap gap;
  gap.id = GapId(record.order_id, kind, message_id.empty() ? stage : "", message_id);
  gap.order_id = record.order_id;
  gap.partner_id = record.partner_id;
  gap.kind = std::string(kind);
  gap.stage = std::string(stage);
  gap.message_id = std::string(message_id);
  gap.trace_id = record.trace_id;
  gap.last_success = record.last_success;
  if (const model::StatusReached* current = record.CurrentStatus(); current != nullptr) {
    gap.service = current->service;
  }
  if (record.last_success.has_value()) gap.service = record.last_success->service;
  if (const model::MessageHop* last = record.LastMessage(); last != nullptr) {
    gap.queue = last->queue;
  }
  return gap;
}

size_t GapDetector::FireDue() {
  std::vector<Fired> due;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t now = clock_.NowUnixNano();
    while (!timers_.empty() && timers_.top().deadline <= now) {
      Timer timer = timers_.top();
      timers_.pop();
      if ((timer.generation & kMessageBit) != 0) {
        MessageWatch& watch = message_watches_[timer.slot];
        if (watch.deadline != timer.deadline ||
            watch.generation != (timer.generation & ~kMessageBit)) {
          continue;
        }
        due.push_back({true, watch.order_id, watch.message_id, -1, timer.deadline});
        firing_.insert(watch.order_id);
        DisarmMessageLocked(std::string(watch.message_id));
      } else {
        StageWatch& watch = stage_watches_[timer.slot];
        if (watch.deadline != timer.deadline || watch.generation != timer.generation) continue;
        due.push_back({false, watch.order_id, "", watch.stage, timer.deadline});
        firing_.insert(watch.order_id);
        DisarmStageLocked(std::string(watch.order_id));
      }
    }
  }
  size_t opened = 0;
  Events events;
  for (const Fired& fired : due) {
    absl::StatusOr<std::optional<model::OrderRecord>> record = lookup_(fired.order_id);
    std::lock_guard<std::mutex> lock(mu_);
    firing_.erase(fired.order_id);
    if (updated_while_firing_.erase(fired.order_id) != 0) {
      // The order changed while its record was being read: that update re-armed what is still
      // pending, and the read may predate it.
      continue;
    }
    if (!record.ok()) {
      // Try again shortly: a passed deadline must not be forgotten.
      ++stats_.lookup_errors;
      uint64_t retry = clock_.NowUnixNano() + 1'000'000'000ULL;
      if (fired.message) {
        ArmMessageLocked(fired.message_id, fired.order_id, retry);
      } else {
        ArmStageLocked(fired.order_id, fired.stage, retry);
      }
      continue;
    }
    if (!record->has_value()) continue;
    const model::OrderRecord& order = **record;
    const model::StatusReached* current = order.CurrentStatus();
    size_t before = events.opened.size();
    if (fired.message) {
      const model::MessageHop* hop = FindHop(order, fired.message_id);
      if (hop == nullptr || hop->consumed_at_unix_nano != 0) continue;
      // Only statuses of the model become a stage (a metric label): span input is untrusted.
      std::string_view stage = current != nullptr && model_.IndexOf(current->status) >= 0
                                   ? std::string_view(current->status)
                                   : std::string_view();
      Gap gap = MakeGap(order, kMessageNotConsumed, stage, fired.message_id);
      gap.queue = hop->queue;
      gap.since_unix_nano = hop->published_at_unix_nano;
      // From the record, not the timer: a lookup retry re-arms the timer at a later moment.
      gap.deadline_unix_nano =
          hop->published_at_unix_nano + model_.MessageSlaNanos() + model_.GraceNanos();
      gap.detail = absl::StrCat("message ", fired.message_id, " to ", hop->queue,
                                " not consumed within ", Seconds(model_.MessageSlaNanos()));
      OpenLocked(std::move(gap), events);
    } else {
      if (current == nullptr || model_.IndexOf(current->status) != fired.stage) continue;
      const StageRule* rule = model_.RuleFor(current->status);
      if (rule == nullptr) continue;
      Gap gap = MakeGap(order, rule->calculation ? kCalculationOverdue : kMissingTransition,
                        current->status, "");
      gap.expected = rule->expected;
      gap.since_unix_nano = current->at_unix_nano;
      gap.deadline_unix_nano =
          current->at_unix_nano + model_.SlaNanos(*rule, order.partner_id) + model_.GraceNanos();
      gap.detail = absl::StrCat("in ", current->status, " since ", current->service, "'s ",
                                current->span_name, "; expected ", rule->expected.front(),
                                " within ", Seconds(model_.SlaNanos(*rule, order.partner_id)));
      OpenLocked(std::move(gap), events);
    }
    opened += events.opened.size() - before;
  }
  Announce(events);
  return opened;
}

void GapDetector::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable() || stop_) return;
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "ot-gaps");
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (stop_) return;
        uint64_t now = clock_.NowUnixNano();
        uint64_t next = timers_.empty() ? 0 : timers_.top().deadline;
        if (next == 0 || next > now) {
          auto wait = options_.max_sleep;
          if (next != 0) {
            wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::nanoseconds(next - now)) +
                                      std::chrono::milliseconds(1));
          }
          sleeping_until_ =
              now + static_cast<uint64_t>(
                        std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count());
          wake_.wait_for(lock, wait);
          sleeping_until_ = 0;
          if (stop_) return;
        }
      }
      FireDue();
    }
  });
}

void GapDetector::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void GapDetector::ArmStageLocked(const std::string& order_id, int16_t stage, uint64_t deadline) {
  auto it = stage_by_order_.find(order_id);
  uint32_t slot;
  if (it == stage_by_order_.end()) {
    if (free_stage_slots_.empty()) {
      slot = static_cast<uint32_t>(stage_watches_.size());
      stage_watches_.emplace_back();
    } else {
      slot = free_stage_slots_.back();
      free_stage_slots_.pop_back();
    }
    StageWatch& watch = stage_watches_[slot];
    watch.order_id = order_id;
    stage_by_order_.emplace(std::string_view(watch.order_id), slot);
    ++stats_.tracked_orders;
  } else {
    slot = it->second;
    StageWatch& watch = stage_watches_[slot];
    if (watch.deadline == deadline && watch.stage == stage) return;
  }
  StageWatch& watch = stage_watches_[slot];
  watch.deadline = deadline;
  watch.stage = stage;
  watch.generation = (watch.generation + 1) & ~kMessageBit;
  PushTimerLocked({deadline, slot, watch.generation});
}

void GapDetector::DisarmStageLocked(const std::string& order_id) {
  auto it = stage_by_order_.find(order_id);
  if (it == stage_by_order_.end()) return;
  uint32_t slot = it->second;
  stage_by_order_.erase(it);
  StageWatch& watch = stage_watches_[slot];
  watch.deadline = 0;
  watch.stage = -1;
  watch.generation = (watch.generation + 1) & ~kMessageBit;
  std::string().swap(watch.order_id);
  free_stage_slots_.push_back(slot);
  --stats_.tracked_orders;
}

void GapDetector::ArmMessageLocked(const std::string& message_id, const std::string& order_id,
                                   uint64_t deadline) {
  auto it = message_by_id_.find(message_id);
  uint32_t slot;
  if (it == message_by_id_.end()) {
    if (free_message_slots_.empty()) {
      slot = static_cast<uint32_t>(message_watches_.size());
      message_watches_.emplace_back();
    } else {
      slot = free_message_slots_.back();
      free_message_slots_.pop_back();
    }
    MessageWatch& watch = message_watches_[slot];
    watch.message_id = message_id;
    watch.order_id = order_id;
    message_by_id_.emplace(std::string_view(watch.message_id), slot);
    ++stats_.tracked_messages;
  } else {
    slot = it->second;
    if (message_watches_[slot].deadline == deadline) return;
  }
  MessageWatch& watch = message_watches_[slot];
  watch.deadline = deadline;
  watch.generation = (watch.generation + 1) & ~kMessageBit;
  PushTimerLocked({deadline, slot, watch.generation | kMessageBit});
}

void GapDetector::DisarmMessageLocked(const std::string& message_id) {
  auto it = message_by_id_.find(message_id);
  if (it == message_by_id_.end()) return;
  uint32_t slot = it->second;
  message_by_id_.erase(it);
  MessageWatch& watch = message_watches_[slot];
  watch.deadline = 0;
  watch.generation = (watch.generation + 1) & ~kMessageBit;
  std::string().swap(watch.message_id);
  std::string().swap(watch.order_id);
  free_message_slots_.push_back(slot);
  --stats_.tracked_messages;
}

void GapDetector::PushTimerLocked(Timer timer) {
  if (sleeping_until_ != 0 && timer.deadline < sleeping_until_) wake_needed_ = true;
  timers_.push(timer);
  if (timers_.size() > 2 * (stage_by_order_.size() + message_by_id_.size()) + 1024) {
    CompactTimersLocked();
  }
}

void GapDetector::CompactTimersLocked() {
  // Re-arming leaves superseded timers behind; rebuild from the live watches.
  std::vector<Timer> live;
  live.reserve(stage_by_order_.size() + message_by_id_.size());
  for (const auto& [order_id, slot] : stage_by_order_) {
    const StageWatch& watch = stage_watches_[slot];
    live.push_back({watch.deadline, slot, watch.generation});
  }
  for (const auto& [message_id, slot] : message_by_id_) {
    const MessageWatch& watch = message_watches_[slot];
    live.push_back({watch.deadline, slot, watch.generation | kMessageBit});
  }
  timers_ = std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>>(
      std::greater<Timer>(), std::move(live));
}

void GapDetector::OpenLocked(Gap gap, Events& events) {
  if (!known_ids_.insert(Fingerprint(gap.id)).second) return;
  gap.detected_at_unix_nano = clock_.NowUnixNano();
  ++stats_.detected_total[{gap.kind, gap.stage}];
  if (store_ != nullptr && !store_->SaveGap(gap).ok()) ++stats_.store_errors;
  open_by_order_[gap.order_id].push_back(gap.id);
  events.opened.push_back(gap);
  open_.emplace(gap.id, std::move(gap));
}

void GapDetector::ResolveLocked(const std::string& gap_id, uint64_t at, Events& events) {
  auto it = open_.find(gap_id);
  if (it == open_.end()) return;
  Gap gap = std::move(it->second);
  open_.erase(it);
  auto& ids = open_by_order_[gap.order_id];
  ids.erase(std::remove(ids.begin(), ids.end(), gap_id), ids.end());
  if (ids.empty()) open_by_order_.erase(gap.order_id);
  gap.resolved_at_unix_nano = std::max<uint64_t>(at, gap.detected_at_unix_nano);
  ++stats_.resolved_total;
  if (store_ != nullptr && !store_->SaveGap(gap).ok()) ++stats_.store_errors;
  events.resolved.push_back(gap);
  resolved_.push_back(std::move(gap));
  if (resolved_.size() > options_.max_resolved_in_memory) resolved_.pop_front();
}

void GapDetector::Announce(const Events& events) {
  if (sink_ == nullptr) return;
  for (const Gap& gap : events.opened) sink_->OnGapOpened(gap);
  for (const Gap& gap : events.resolved) sink_->OnGapResolved(gap);
}

std::vector<Gap> GapDetector::Query(const GapQuery& query) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Gap> out;
  auto matches = [&](const Gap& gap) {
    return (query.kind.empty() || gap.kind == query.kind) &&
           (query.stage.empty() || gap.stage == query.stage) &&
           (query.partner_id.empty() || gap.partner_id == query.partner_id) &&
           (query.order_id.empty() || gap.order_id == query.order_id);
  };
  if (query.state != GapQuery::State::kResolved) {
    for (const auto& [id, gap] : open_) {
      if (matches(gap)) out.push_back(gap);
    }
  }
  if (query.state != GapQuery::State::kOpen) {
    for (const Gap& gap : resolved_) {
      if (matches(gap)) out.push_back(gap);
    }
  }
  // Newest first.
  std::sort(out.begin(), out.end(), [](const Gap& a, const Gap& b) {
    return std::tie(a.detected_at_unix_nano, a.id) > std::tie(b.detected_at_unix_nano, b.id);
  });
  if (out.size() > query.limit) out.resize(query.limit);
  return out;
}

std::vector<Gap> GapDetector::OpenGapsOf(const std::string& order_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Gap> out;
  auto it = open_by_order_.find(order_id);
  if (it == open_by_order_.end()) return out;
  for (const std::string& id : it->second) out.push_back(open_.at(id));
  return out;
}

bool GapDetector::HasGapInTrace(const model::TraceId& trace_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, gap] : open_) {
    if (gap.trace_id == trace_id) return true;
  }
  for (const Gap& gap : resolved_) {
    if (gap.trace_id == trace_id) return true;
  }
  return false;
}

GapDetectorStats GapDetector::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  GapDetectorStats stats = stats_;
  // Every (kind, stage) ever detected has an open series, 0 when none is open now.
  for (const auto& [key, count] : stats.detected_total) stats.open[key];
  for (const auto& [id, gap] : open_) ++stats.open[{gap.kind, gap.stage}];
  stats.pending_timers = timers_.size();
  return stats;
}

uint64_t GapDetector::NextDeadline() const {
  std::lock_guard<std::mutex> lock(mu_);
  return timers_.empty() ? 0 : timers_.top().deadline;
}

}  // namespace ordertrace::gaps
