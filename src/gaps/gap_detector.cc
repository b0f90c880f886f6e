#include "gaps/gap_detector.h"

#include <pthread.h>

#include <algorithm>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"

namespace ordertrace::gaps {
namespace {

const Gap* FindById(const std::vector<Gap>& gaps, const std::string& id) {
  for (const Gap& gap : gaps) {
    if (gap.id == id) return &gap;
  }
  return nullptr;
}

}  // namespace

std::string GapId(std::string_view order_id, std::string_view kind, std::string_view stage,
                  std::string_view message_id) {
  std::string id;
  id.reserve(order_id.size() + kind.size() + stage.size() + message_id.size() + 3);
  id.append(order_id).append("/").append(kind).append("/").append(stage);
  if (!message_id.empty()) id.append("/").append(message_id);
  return id;
}

GapDetector::GapDetector(const StageModel& model, const base::Clock& clock, OrderLookup lookup,
                         GapStore* store, GapSink* sink, GapDetectorOptions options)
    : model_(model),
      clock_(clock),
      lookup_(std::move(lookup)),
      store_(store),
      sink_(sink),
      options_(options),
      sources_(options.watermarks, model.GraceNanos(), clock.NowUnixNano()),
      status_sources_(model.statuses().size()),
      held_(model.statuses().size() + 1) {
  if (store_ != nullptr) {
    writer_ = std::thread([this] { WriterLoop(); });
  } else {
    writer_exited_ = true;
  }
}

GapDetector::~GapDetector() { Shutdown(); }

absl::Status GapDetector::Recover() {
  if (store_ == nullptr) return absl::OkStatus();
  absl::StatusOr<std::vector<Gap>> open = store_->LoadOpen();
  if (!open.ok()) return open.status();
  std::lock_guard<std::mutex> lock(mu_);
  Events events;
  for (Gap& gap : *open) {
    if (!gap.IsOpen() || open_.Contains(gap.id)) continue;
    if (gap.kind == kSourceSilent) silent_gaps_[gap.service] = gap.id;
    if (gap.paged) {
      events.opened.push_back(gap);
    } else {
      unpaged_.insert(FingerprintOf(gap.id));
    }
    open_.Add(std::move(gap));
  }
  AnnounceLocked(events);
  return absl::OkStatus();
}

void GapDetector::RestoreOrder(const model::OrderRecord& record) {
  const OrderGaps implied = EvaluateOrder(model_, record);
  // What the store holds for the order (read outside the lock) stands for what its record
  // implied before: the difference is what a crash kept from being written or deleted.
  OrderGaps stored;
  bool read = store_ == nullptr;
  if (store_ != nullptr) {
    GapHistoryQuery query;
    query.state = GapHistoryQuery::State::kAll;
    query.order_id = record.order_id;
    query.limit = 1000;
    read = true;
    do {
      absl::StatusOr<GapPage> page = store_->Query(query);
      if (!page.ok()) {
        read = false;
        break;
      }
      for (Gap& gap : page->gaps) {
        if (gap.IsOpen() && IsDeadlineKind(gap.kind)) continue;  // a judged deadline: open_
        stored.settled.push_back(std::move(gap));
      }
      query.cursor = page->next_cursor;
    } while (!query.cursor.empty());
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!read) ++stats_.store_errors;  // not reconciled; its deadlines are armed all the same
  // The services that reported its statuses are sources to wait for after the restart.
  LearnSourceLocked(record, clock_.NowUnixNano());
  Events events;
  ApplyLocked(read ? &stored : nullptr, implied, record, events);
  AnnounceLocked(events);
}

void GapDetector::OnOrderChanged(const model::OrderRecord* before,
                                 const model::OrderRecord& after) {
  // What each version implies is computed outside the lock: it is pure.
  std::optional<OrderGaps> was;
  if (before != nullptr) was = EvaluateOrder(model_, *before);
  const OrderGaps implied = EvaluateOrder(model_, after);
  Events events;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t now = clock_.NowUnixNano();
    if (!firing_.empty() && firing_.contains(after.order_id)) {
      updated_while_firing_.insert(after.order_id);
    }
    LearnSourceLocked(after, now);
    ApplyLocked(was ? &*was : nullptr, implied, after, events);
    // Also when something is already due (a clock that jumped ahead).
    wake =
        std::exchange(wake_needed_, false) || (!timers_.empty() && timers_.top().deadline <= now);
    AnnounceLocked(events);
  }
  if (wake) wake_.notify_all();
}

void GapDetector::OnSpansArrived(const base::TraceBatch& batch) {
  Events events;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t now = clock_.NowUnixNano();
    for (const base::ResourceSpans& rs : batch.resource_spans) ReportSourceLocked(rs, now, events);
    AnnounceLocked(events);
    // Watermarks moved: held deadlines may now be judged. At most every kHeldRecheck: while a
    // source is silent something stays held, and waking the thread per request would cost
    // every request a pass over the held heaps.
    if ((held_count_ > 0 || !tentative_.empty()) && now >= next_held_wake_) {
      wake = true;
      next_held_wake_ = now + kHeldRecheckNanos;
    }
  }
  if (wake) wake_.notify_all();
}

void GapDetector::ReportSourceLocked(const base::ResourceSpans& rs, uint64_t now, Events& events) {
  const std::string_view service = base::ServiceNameView(rs.resource);
  const uint64_t late_before = sources_.LateBefore(service);
  // A span stamped further ahead than max_future (a wrong clock, a hostile timestamp) is
  // counted but moves nothing; the request's other spans still do.
  const uint64_t future = AddSaturating(now, sources_.options().max_future_nanos);
  uint64_t max_end = 0, spans = 0, late = 0;
  for (const base::ScopeSpans& ss : rs.scope_spans) {
    for (const base::Span& span : ss.spans) {
      if (span.end_time_unix_nano <= future) max_end = std::max(max_end, span.end_time_unix_nano);
      late += span.end_time_unix_nano < late_before ? 1 : 0;
      ++spans;
    }
  }
  if (spans == 0) return;
  const int source = sources_.Report(service, max_end, spans, late, now);
  ResolveSilentLocked(sources_.ServiceOf(source), now, events);
}

void GapDetector::ResolveSilentLocked(const std::string& service, uint64_t now, Events& events) {
  // A silent source that reports again: its signal resolves.
  auto silent = silent_gaps_.find(service);
  if (silent == silent_gaps_.end()) return;
  if (const Gap* open = open_.Find(silent->second); open != nullptr) {
    Gap gap = *open;
    gap.resolved_at_unix_nano = std::max(now, gap.since_unix_nano);
    gap.resolved_by = "reported";
    RemoveOpenLocked(gap.id);
    ++stats_.resolved_total;
    QueueWriteLocked(GapWrite::Kind::kPut, gap);
    events.resolved.push_back(std::move(gap));
  }
  silent_gaps_.erase(silent);
}

void GapDetector::LearnSourceLocked(const model::OrderRecord& record, uint64_t now) {
  // The status an order is in was reported by a service: that service is a source the next
  // order reaching the status waits for. Learnt from the current status only (one lookup per
  // change); every status is current for some order.
  const model::StatusReached* current = record.CurrentStatus();
  if (current == nullptr || current->service.empty()) return;
  const int position = model_.IndexOf(current->status);
  if (position < 0) return;
  std::vector<int>& known = status_sources_[position];
  const int source = sources_.Learn(current->service, now);
  if (std::find(known.begin(), known.end(), source) != known.end()) return;
  if (known.size() < kMaxSourcesPerStatus) {
    known.push_back(source);
  } else {
    // Full (services renamed, or a client naming services at will): the one that reported
    // least recently gives way, so a service that keeps reporting always gets in.
    auto oldest = std::min_element(known.begin(), known.end(), [&](int a, int b) {
      return sources_.LastReportOf(a) < sources_.LastReportOf(b);
    });
    *oldest = source;
  }
  if (std::find(producers_.begin(), producers_.end(), source) == producers_.end()) {
    producers_.clear();
    for (const std::vector<int>& sources : status_sources_) {
      for (int s : sources) {
        if (std::find(producers_.begin(), producers_.end(), s) == producers_.end()) {
          producers_.push_back(s);
        }
      }
    }
  }
}

void GapDetector::ApplyLocked(const OrderGaps* before, const OrderGaps& after,
                              const model::OrderRecord& record, Events& events) {
  const size_t late =
      SettleLocked(before, after, events) + TrackDeadlinesLocked(after, record, events);
  if (late > 0) {
    // Answered after it was judged: by the service that reported the order's newest status.
    const model::StatusReached* current = record.CurrentStatus();
    stats_.late_answers[current != nullptr ? current->service : std::string()] += late;
  }
}

namespace {

// The event time every source must have reported past before a settled gap is final: its
// resolution (a status between could still arrive), or when a conflict was seen.
uint64_t EvidenceTime(const Gap& gap) {
  return gap.IsOpen() ? gap.deadline_unix_nano : gap.resolved_at_unix_nano;
}

}  // namespace

size_t GapDetector::SettleLocked(const OrderGaps* before, const OrderGaps& after, Events& events) {
  const uint64_t now = clock_.NowUnixNano();
  size_t late = 0;
  for (Gap gap : after.settled) {
    if (Gap* open = open_.Find(gap.id); open != nullptr) {
      late += SettleOpenLocked(std::move(gap), *open, events);
      continue;
    }
    const Gap* prior = before != nullptr ? FindById(before->settled, gap.id) : nullptr;
    if (prior != nullptr && prior->Outcome() == gap.Outcome()) continue;  // nothing new
    ConfirmOrHoldLocked(std::move(gap), now, events);
  }
  if (before != nullptr) WithdrawSettledLocked(*before, after, events);
  return late;
}

size_t GapDetector::SettleOpenLocked(Gap gap, Gap& held, Events& events) {
  // Open until now (a judged deadline, an open conflict): the record settles it.
  gap.detected_at_unix_nano = held.detected_at_unix_nano;
  gap.paged = held.paged;
  if (gap.IsOpen()) {
    if (!(held.Outcome() == gap.Outcome())) {
      held = gap;
      QueueWriteLocked(GapWrite::Kind::kPut, gap);
    }
    return 0;
  }
  RemoveOpenLocked(gap.id);
  ++stats_.resolved_total;
  const size_t late = IsDeadlineKind(gap.kind) ? 1 : 0;
  // Over before it could page (found while a source caught up): recorded, not paged.
  if (!gap.paged) ++stats_.found_resolved_total[{gap.kind, gap.stage}];
  QueueWriteLocked(GapWrite::Kind::kPut, gap);
  if (gap.paged) events.resolved.push_back(std::move(gap));
  return late;
}

void GapDetector::ConfirmOrHoldLocked(Gap gap, uint64_t now, Events& events) {
  if (sources_.IsJudged(EvidenceTime(gap), producers_, now)) {
    tentative_.erase(gap.id);
    ConfirmLocked(std::move(gap), events);
  } else {
    tentative_heap_.push({EvidenceTime(gap), gap.id});
    tentative_[gap.id] = std::move(gap);
  }
}

void GapDetector::WithdrawSettledLocked(const OrderGaps& before, const OrderGaps& after,
                                        Events& events) {
  for (const Gap& prior : before.settled) {
    if (FindById(after.settled, prior.id) != nullptr) continue;
    // Late spans took back what the record implied (a status between, an earlier report).
    tentative_.erase(prior.id);
    Gap removed;
    removed.id = prior.id;
    if (const Gap* open = open_.Find(prior.id); open != nullptr) {
      Gap gap = *open;
      RemoveOpenLocked(prior.id);
      ++stats_.withdrawn_total[gap.kind];
      QueueWriteLocked(GapWrite::Kind::kDelete, std::move(removed));
      if (gap.paged) {
        gap.resolved_by = "withdrawn";
        events.resolved.push_back(std::move(gap));
      }
    } else {
      QueueWriteLocked(GapWrite::Kind::kRemove, std::move(removed));  // counted if it was stored
    }
  }
}

void GapDetector::ConfirmLocked(Gap gap, Events& events) {
  if (gap.IsOpen()) {
    if (open_.Contains(gap.id)) return;
    const bool page = sources_.IsCaughtUp(producers_, clock_.NowUnixNano());
    OpenLocked(std::move(gap), page, events);
    return;
  }
  // A breach found already over: recorded and counted (by the writer, when it is new), not
  // paged.
  gap.detected_at_unix_nano = clock_.NowUnixNano();
  gap.paged = false;
  QueueWriteLocked(GapWrite::Kind::kSettle, std::move(gap));
}

void GapDetector::ConfirmJudgedLocked(uint64_t now, Events& events) {
  while (!tentative_heap_.empty()) {
    const Tentative top = tentative_heap_.top();
    auto it = tentative_.find(top.id);
    if (it == tentative_.end() || EvidenceTime(it->second) != top.evidence) {
      tentative_heap_.pop();  // superseded
      continue;
    }
    if (!sources_.IsJudged(top.evidence, producers_, now)) break;
    tentative_heap_.pop();
    Gap gap = std::move(it->second);
    tentative_.erase(it);
    ConfirmLocked(std::move(gap), events);
  }
}

size_t GapDetector::TrackDeadlinesLocked(const OrderGaps& after, const model::OrderRecord& record,
                                         Events& events) {
  TrackStageLocked(after, record);
  TrackMessagesLocked(after, record);
  return WithdrawAnsweredLocked(after, record.order_id, events);
}

void GapDetector::FollowOpenLocked(Gap now_implied) {
  // A deadline already judged overdue and still unanswered stays open; later spans may still
  // change what it says (an earlier report of the status moves its start, the status a message
  // was published in arrives).
  Gap& open = *open_.Find(now_implied.id);
  if (open.Outcome() == now_implied.Outcome()) return;
  now_implied.detected_at_unix_nano = open.detected_at_unix_nano;
  now_implied.paged = open.paged;
  open = std::move(now_implied);
  QueueWriteLocked(GapWrite::Kind::kPut, open);
}

void GapDetector::TrackStageLocked(const OrderGaps& after, const model::OrderRecord& record) {
  const std::string& order_id = record.order_id;
  if (!after.stage.has_value()) {
    DisarmStageLocked(order_id);
    return;
  }
  const StageDeadline& stage = *after.stage;
  if (open_.Contains(stage.gap_id)) {
    DisarmStageLocked(order_id);
    FollowOpenLocked(OverdueStageGap(model_, record, stage));
  } else {
    ArmStageLocked(order_id, static_cast<int16_t>(stage.stage),
                   std::max<uint64_t>(stage.deadline_unix_nano, 1));
  }
}

void GapDetector::TrackMessagesLocked(const OrderGaps& after, const model::OrderRecord& record) {
  for (const model::MessageHop& hop : record.messages) {
    if (hop.consumed_at_unix_nano != 0) DisarmMessageLocked(hop.message_id);
  }
  for (const MessageDeadline& message : after.messages) {
    if (open_.Contains(message.gap_id)) {
      DisarmMessageLocked(message.message_id);
      FollowOpenLocked(UnconsumedMessageGap(model_, record, message));
    } else {
      ArmMessageLocked(message.message_id, record.order_id,
                       std::max<uint64_t>(message.deadline_unix_nano, 1));
    }
  }
}

size_t GapDetector::WithdrawAnsweredLocked(const OrderGaps& after, const std::string& order_id,
                                           Events& events) {
  // Judged deadlines the record now answers in time: the gap never was.
  size_t late = 0;
  for (const std::string& id : open_.IdsOf(order_id)) {
    const Gap& gap = *open_.Find(id);
    if (!IsDeadlineKind(gap.kind)) continue;
    if (after.stage.has_value() && after.stage->gap_id == id) continue;
    if (std::any_of(after.messages.begin(), after.messages.end(),
                    [&](const MessageDeadline& m) { return m.gap_id == id; })) {
      continue;
    }
    Gap withdrawn = gap;
    RemoveOpenLocked(id);
    ++stats_.withdrawn_total[withdrawn.kind];
    ++late;
    Gap deleted;
    deleted.id = id;
    QueueWriteLocked(GapWrite::Kind::kDelete, std::move(deleted));
    if (withdrawn.paged) {
      withdrawn.resolved_by = "withdrawn";
      events.resolved.push_back(std::move(withdrawn));
    }
  }
  return late;
}

size_t GapDetector::FireDue() {
  std::vector<Judged> judged;
  {
    std::lock_guard<std::mutex> lock(mu_);
    judged = DecideDueLocked(clock_.NowUnixNano());
  }
  return OpenJudged(judged);
}

std::vector<GapDetector::Judged> GapDetector::DecideDueLocked(uint64_t now) {
  Events events;
  std::vector<Judged> judged = TakeJudgedLocked(now);
  ConfirmJudgedLocked(now, events);
  PageJudgedLocked(now, events);
  CheckSourcesLocked(now, events);
  for (const Judged& j : judged) ++firing_[j.order_id];
  // Announced before the lock is let go, in the order decided: an ingest thread that resolves
  // one of these meanwhile announces after it, and Alertmanager hears the last word last.
  AnnounceLocked(events);
  return judged;
}

size_t GapDetector::OpenJudged(const std::vector<Judged>& judged) {
  size_t opened = 0;
  for (const Judged& j : judged) {
    // Read and evaluated outside the lock.
    absl::StatusOr<std::optional<model::OrderRecord>> record = lookup_(j.order_id);
    std::optional<OrderGaps> implied;
    if (record.ok() && record->has_value()) implied = EvaluateOrder(model_, **record);
    std::lock_guard<std::mutex> lock(mu_);
    Events found;
    if (OpenJudgedLocked(j, record, implied ? &*implied : nullptr, found)) ++opened;
    AnnounceLocked(found);
  }
  return opened;
}

bool GapDetector::OpenJudgedLocked(const Judged& judged,
                                   const absl::StatusOr<std::optional<model::OrderRecord>>& record,
                                   const OrderGaps* implied, Events& events) {
  // One pass may judge an order twice (its stage and a message): the flag that an update came
  // meanwhile holds until the last of its reads is done.
  const bool updated = updated_while_firing_.contains(judged.order_id);
  if (auto firing = firing_.find(judged.order_id);
      firing != firing_.end() && --firing->second == 0) {
    firing_.erase(firing);
    updated_while_firing_.erase(judged.order_id);
  }
  if (updated) {
    // The order changed while its record was being read: that update re-armed what is still
    // pending, and the read may predate it.
    return false;
  }
  if (!record.ok()) {
    // Try again shortly: a judged deadline must not be forgotten.
    ++stats_.lookup_errors;
    const uint64_t retry = clock_.NowUnixNano() + 1'000'000'000ULL;
    if (judged.message) {
      ArmMessageLocked(judged.message_id, judged.order_id, retry);
    } else {
      ArmStageLocked(judged.order_id, judged.stage, retry);
    }
    return false;
  }
  if (!record->has_value() || implied == nullptr) return false;
  const model::OrderRecord& order = **record;
  Gap gap;
  if (judged.message) {
    auto it =
        std::find_if(implied->messages.begin(), implied->messages.end(),
                     [&](const MessageDeadline& m) { return m.message_id == judged.message_id; });
    if (it == implied->messages.end()) return false;
    gap = UnconsumedMessageGap(model_, order, *it);
  } else {
    // A lookup retry re-arms at a later moment: the record's deadline, not the timer's, counts.
    if (!implied->stage.has_value() || implied->stage->stage != judged.stage) return false;
    gap = OverdueStageGap(model_, order, *implied->stage);
  }
  if (open_.Contains(gap.id)) return false;
  // Paged only once the responsible sources have reached the present: in a backlog the answer
  // may be further on.
  const size_t key = judged.message ? 0 : 1 + static_cast<size_t>(judged.stage);
  const bool page = sources_.IsCaughtUp(ResponsibleLocked(key), clock_.NowUnixNano());
  OpenLocked(std::move(gap), page, events);
  return true;
}

std::vector<GapDetector::Judged> GapDetector::TakeJudgedLocked(uint64_t now) {
  // Passed on the wall clock: wait for evidence.
  while (!timers_.empty() && timers_.top().deadline <= now) {
    Timer timer = timers_.top();
    timers_.pop();
    if (!IsLiveLocked(timer)) continue;
    if ((timer.generation & kMessageBit) != 0) {
      message_watches_[timer.slot].held = true;
    } else {
      stage_watches_[timer.slot].held = true;
    }
    ++held_count_;
    held_[HeldKeyLocked(timer)].push(timer);
  }
  // Evidence in: judged. Each heap is ordered by deadline, and a later deadline needs at least
  // the evidence an earlier one does.
  std::vector<Judged> judged;
  for (size_t key = 0; key < held_.size(); ++key) {
    TimerHeap& heap = held_[key];
    while (!heap.empty()) {
      const Timer timer = heap.top();
      if (!IsLiveLocked(timer)) {
        heap.pop();
        continue;
      }
      if (!IsJudgedLocked(key, timer.deadline, now)) break;
      heap.pop();
      if ((timer.generation & kMessageBit) != 0) {
        const MessageWatch& watch = message_watches_[timer.slot];
        judged.push_back({true, watch.order_id, watch.message_id, -1, timer.deadline});
        DisarmMessageLocked(std::string(watch.message_id));
      } else {
        const StageWatch& watch = stage_watches_[timer.slot];
        judged.push_back({false, watch.order_id, "", watch.stage, timer.deadline});
        DisarmStageLocked(std::string(watch.order_id));
      }
    }
  }
  return judged;
}

size_t GapDetector::HeldKeyLocked(const Timer& timer) const {
  if ((timer.generation & kMessageBit) != 0) return 0;
  return 1 + static_cast<size_t>(stage_watches_[timer.slot].stage);
}

bool GapDetector::IsJudgedLocked(size_t held_key, uint64_t deadline, uint64_t now) const {
  return sources_.IsJudged(deadline, ResponsibleLocked(held_key), now);
}

absl::InlinedVector<int, 4> GapDetector::ResponsibleLocked(size_t held_key) const {
  absl::InlinedVector<int, 4> responsible;
  if (held_key == 0) {
    // A message: its consumer is not known; the services that report statuses.
    responsible.assign(producers_.begin(), producers_.end());
    return responsible;
  }
  if (held_key > 0) {
    const StageRule* rule = model_.RuleFor(model_.statuses()[held_key - 1]);
    if (rule != nullptr) {
      for (const std::string& expected : rule->expected) {
        const int position = model_.IndexOf(expected);
        if (position < 0) continue;
        for (int source : status_sources_[position]) {
          if (std::find(responsible.begin(), responsible.end(), source) == responsible.end()) {
            responsible.push_back(source);
          }
        }
      }
    }
  }
  return responsible;
}

bool GapDetector::IsLiveLocked(const Timer& timer) const {
  if ((timer.generation & kMessageBit) != 0) {
    const MessageWatch& watch = message_watches_[timer.slot];
    return watch.deadline == timer.deadline &&
           watch.generation == (timer.generation & ~kMessageBit);
  }
  const StageWatch& watch = stage_watches_[timer.slot];
  return watch.deadline == timer.deadline && watch.generation == timer.generation;
}

void GapDetector::CheckSourcesLocked(uint64_t now, Events& events) {
  for (int source = 0; source < static_cast<int>(sources_.size()); ++source) {
    if (sources_.StateOf(source, now) != SourceState::kSilent) continue;
    const std::string& service = sources_.ServiceOf(source);
    if (silent_gaps_.contains(service)) continue;
    const uint64_t last = sources_.LastReportOf(source);
    Gap gap;
    gap.id = absl::StrCat(std::string(kSourceSilent), "/", service, "/", last);
    gap.kind = std::string(kSourceSilent);
    gap.service = service;
    gap.since_unix_nano = last;
    gap.deadline_unix_nano = AddSaturating(last, sources_.options().silent_after_nanos);
    gap.detail = absl::StrCat(service,
                              " has sent no spans since its last report while other "
                              "services go on; the deadlines of orders waiting on it are held");
    silent_gaps_[service] = gap.id;
    OpenLocked(std::move(gap), /*page=*/true, events);
  }
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
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    write_stop_ = true;
  }
  write_ready_.notify_all();
  if (writer_.joinable()) writer_.join();
}

void GapDetector::Flush() {
  std::unique_lock<std::mutex> lock(write_mu_);
  write_done_.wait(lock, [this] { return (writes_.empty() && !writing_) || writer_exited_; });
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
  if (std::exchange(watch.held, false)) --held_count_;
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
  if (std::exchange(watch.held, false)) --held_count_;
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
  if (std::exchange(watch.held, false)) --held_count_;
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
  if (std::exchange(watch.held, false)) --held_count_;
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
  size_t queued = timers_.size();
  for (const TimerHeap& heap : held_) queued += heap.size();
  if (queued > 2 * (stage_by_order_.size() + message_by_id_.size()) + 1024) CompactTimersLocked();
}

void GapDetector::CompactTimersLocked() {
  // Re-arming leaves superseded timers behind; rebuild from the live watches.
  std::vector<Timer> waiting;
  std::vector<std::vector<Timer>> held(held_.size());
  waiting.reserve(stage_by_order_.size() + message_by_id_.size());
  auto place = [&](const Timer& timer, bool is_held) {
    if (is_held) {
      held[HeldKeyLocked(timer)].push_back(timer);
    } else {
      waiting.push_back(timer);
    }
  };
  for (const auto& [order_id, slot] : stage_by_order_) {
    const StageWatch& watch = stage_watches_[slot];
    place({watch.deadline, slot, watch.generation}, watch.held);
  }
  for (const auto& [message_id, slot] : message_by_id_) {
    const MessageWatch& watch = message_watches_[slot];
    place({watch.deadline, slot, watch.generation | kMessageBit}, watch.held);
  }
  timers_ = TimerHeap(std::greater<Timer>(), std::move(waiting));
  for (size_t key = 0; key < held_.size(); ++key) {
    held_[key] = TimerHeap(std::greater<Timer>(), std::move(held[key]));
  }
}

void GapDetector::OpenLocked(Gap gap, bool page, Events& events) {
  if (gap.detected_at_unix_nano == 0) gap.detected_at_unix_nano = clock_.NowUnixNano();
  gap.paged = page;
  if (page) CountLocked(gap);
  QueueWriteLocked(GapWrite::Kind::kPut, gap);
  if (page) {
    events.opened.push_back(gap);
  } else {
    unpaged_.insert(FingerprintOf(gap.id));
  }
  open_.Add(std::move(gap));
}

void GapDetector::PageJudgedLocked(uint64_t now, Events& events) {
  if (unpaged_.empty() || !sources_.IsCaughtUp(producers_, now)) return;
  std::vector<GapFingerprint> paged;
  for (const GapFingerprint& id : unpaged_) {
    Gap* open = open_.Find(id);
    if (open == nullptr) {
      paged.push_back(id);  // resolved or withdrawn meanwhile: never paged
      continue;
    }
    Gap& gap = *open;
    gap.paged = true;
    CountLocked(gap);
    QueueWriteLocked(GapWrite::Kind::kPut, gap);
    events.opened.push_back(gap);
    paged.push_back(id);
  }
  for (const GapFingerprint& id : paged) unpaged_.erase(id);
}

void GapDetector::RemoveOpenLocked(const std::string& gap_id) {
  if (open_.Remove(gap_id).has_value()) unpaged_.erase(FingerprintOf(gap_id));
}

void GapDetector::CountLocked(const Gap& gap) { ++stats_.detected_total[{gap.kind, gap.stage}]; }

void GapDetector::QueueWriteLocked(GapWrite::Kind kind, Gap gap) {
  if (store_ == nullptr) {
    // Nothing to tell what is new from what is known: every settled gap counts.
    if (kind == GapWrite::Kind::kSettle) ++stats_.found_resolved_total[{gap.kind, gap.stage}];
    return;
  }
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    writes_.push_back(GapWrite{kind, std::move(gap)});
  }
  write_ready_.notify_one();
}

void GapDetector::WriterLoop() {
  pthread_setname_np(pthread_self(), "ot-gap-writer");
  for (;;) {
    std::vector<GapWrite> batch;
    bool stopping = false;
    if (!TakeWrites(batch, stopping)) return;
    const NetWrites net = FoldWrites(batch);
    if (!net.read_failed && store_->Apply(net.puts, net.deletes).ok()) {
      CountWritten(net);
    } else {
      RetryWrites(std::move(batch), stopping);
    }
  }
}

bool GapDetector::TakeWrites(std::vector<GapWrite>& batch, bool& stopping) {
  constexpr size_t kWritesPerBatch = 1000;
  std::unique_lock<std::mutex> lock(write_mu_);
  write_ready_.wait(lock, [this] { return write_stop_ || !writes_.empty(); });
  if (writes_.empty()) {  // stopping, and everything is written
    writer_exited_ = true;
    write_done_.notify_all();
    return false;
  }
  stopping = write_stop_;
  while (!writes_.empty() && batch.size() < kWritesPerBatch) {
    batch.push_back(std::move(writes_.front()));
    writes_.pop_front();
  }
  writing_ = true;
  return true;
}

GapDetector::NetWrites GapDetector::FoldWrites(const std::vector<GapWrite>& batch) {
  // The batch's net effect per gap, in decision order. kSettle and kRemove read what is
  // stored (or what this batch already wrote) to keep when and whether it was paged, and to
  // count what is new and what is withdrawn.
  NetWrites out;
  std::map<std::string, std::optional<Gap>> net;
  auto existing_of = [&](const std::string& id) -> std::optional<Gap> {
    if (auto it = net.find(id); it != net.end()) return it->second;
    absl::StatusOr<std::optional<Gap>> stored = store_->Get(id);
    if (!stored.ok()) {
      out.read_failed = true;
      return std::nullopt;
    }
    return *stored;
  };
  for (const GapWrite& write : batch) {
    switch (write.kind) {
      case GapWrite::Kind::kDelete:
        net[write.gap.id] = std::nullopt;
        break;
      case GapWrite::Kind::kRemove:
        if (std::optional<Gap> stored = existing_of(write.gap.id); stored.has_value()) {
          out.withdrawn.push_back(stored->kind);
        }
        net[write.gap.id] = std::nullopt;
        break;
      case GapWrite::Kind::kPut:
        net[write.gap.id] = write.gap;
        break;
      case GapWrite::Kind::kSettle: {
        Gap gap = write.gap;
        std::optional<Gap> existing = existing_of(gap.id);
        if (existing.has_value()) {
          if (existing->Outcome() == gap.Outcome()) break;
          gap.detected_at_unix_nano = existing->detected_at_unix_nano;
          gap.paged = existing->paged;
        } else {
          out.found_resolved.emplace_back(gap.kind, gap.stage);
        }
        net[gap.id] = std::move(gap);
        break;
      }
    }
  }
  for (auto& [id, gap] : net) {
    if (gap.has_value()) {
      out.puts.push_back(std::move(*gap));
    } else {
      out.deletes.push_back(id);
    }
  }
  return out;
}

void GapDetector::CountWritten(const NetWrites& net) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::string& kind : net.withdrawn) ++stats_.withdrawn_total[kind];
    for (const auto& key : net.found_resolved) ++stats_.found_resolved_total[key];
  }
  std::lock_guard<std::mutex> lock(write_mu_);
  writing_ = false;
  write_done_.notify_all();
}

void GapDetector::RetryWrites(std::vector<GapWrite> batch, bool stopping) {
  uint64_t dropped = 0;
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    // Back to the front, in order, to be tried again; given up after write_attempts (or at
    // shutdown, which must not wait on a broken store).
    for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
      if (++it->attempts >= options_.write_attempts || stopping) {
        ++dropped;
        continue;
      }
      writes_.push_front(std::move(*it));
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.store_errors;
    stats_.writes_dropped += dropped;
  }
  std::unique_lock<std::mutex> lock(write_mu_);
  writing_ = false;
  write_done_.notify_all();
  write_ready_.wait_for(lock, options_.write_retry, [this] { return write_stop_; });
}

void GapDetector::AnnounceLocked(const Events& events) {
  if (sink_ == nullptr) return;
  for (const Gap& gap : events.opened) sink_->OnGapOpened(gap);
  for (const Gap& gap : events.resolved) sink_->OnGapResolved(gap);
}

std::vector<Gap> GapDetector::OpenGapsOf(const std::string& order_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Gap> out;
  for (const std::string& id : open_.IdsOf(order_id)) out.push_back(*open_.Find(id));
  return out;
}

GapDetectorStats GapDetector::Stats() const {
  GapDetectorStats stats;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats = stats_;
    // Every (kind, stage) ever found has an open series, 0 when none is open now.
    for (const auto& [key, count] : stats.detected_total) stats.open[key];
    for (const auto& [key, count] : stats.found_resolved_total) stats.open[key];
    open_.ForEach([&](const Gap& gap) { ++stats.open[{gap.kind, gap.stage}]; });
    stats.pending_timers = timers_.size();
    stats.held = held_count_ + tentative_.size();
    stats.sources = sources_.Snapshot(clock_.NowUnixNano());
  }
  std::lock_guard<std::mutex> lock(write_mu_);
  stats.writes_queued = writes_.size();
  return stats;
}

uint64_t GapDetector::NextDeadline() const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t next = timers_.empty() ? 0 : timers_.top().deadline;
  for (const TimerHeap& heap : held_) {
    if (!heap.empty() && (next == 0 || heap.top().deadline < next)) next = heap.top().deadline;
  }
  return next;
}

}  // namespace ordertrace::gaps
