// Gaps are a function of the spans. The same spans, delivered in many random
// orders and batchings (as exporters flushing backlogs, a replay, live traffic with disorder),
// with clean restarts and kill -9 restarts of the detector between batches, end with the same
// set of gaps (order, kind, stage, since, deadline, resolution and what resolved it) as one
// in-order delivery. Unit level: the record builder, the detector and an in-memory gap store,
// with a manual clock; ingest is simulated as the ingester does it (fold a request's spans,
// report each changed record with its earlier version, then the request's spans).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/default_lifecycle.h"
#include "base/span.h"
#include "gaps/gap_detector.h"
#include "gaps/memory_gap_store.h"
#include "gaps/stage_model.h"
#include "lifecycle/order_record_builder.h"

namespace ordertrace::gaps {
namespace {

using base::AnyValue;
using base::Span;
using model::OrderRecord;

constexpr uint64_t kSecond = 1'000'000'000ULL;
constexpr uint64_t kDayStart = 1'790'000'000ULL * kSecond;  // 2026-09-21
// SLAs are divided by this (as order-sim's demos do): a business day fits in a few hours.
constexpr double kTimeScale = 60;

// What happens to one order in the simulated day.
enum class Story {
  kCloses,          // every status within its SLA
  kOverrunsStage,   // one stage past its SLA, then on to CLOSED
  kStuck,           // stops in some stage
  kSkipsPackaging,  // SHIPPED straight after MANUFACTURING_COMPLETED
  kLateReport,      // skips MANUFACTURING_COMPLETED, then reports it late (backwards)
  kLostMessage,     // the price request is never consumed; stops in SUBMITTED
  kLateConsumer,    // the price request is consumed after its SLA
  kDisagreement,    // CRM holds an older status and refuses approval; stops
  kBackAfterClose,  // closed, then MES reports SHIPPED again (status_backwards, left open)
};
constexpr int kStoryCount = 9;

struct Transition {
  std::string status;
  std::string service;
  std::string span_name;
};

// The default lifecycle (base/default_lifecycle.h), every order's path when nothing goes wrong.
const std::vector<Transition>& Path() {
  static const std::vector<Transition> path = [] {
    std::vector<Transition> steps;
    for (const base::LifecycleStep& step : base::kDefaultLifecycle) {
      steps.push_back(
          {std::string(step.status), std::string(step.service), std::string(step.span_name)});
    }
    return steps;
  }();
  return path;
}

// One span and the service that emits it.
struct SentSpan {
  std::string service;
  Span span;
};

// A simulated day of orders: spans with their ground truth stories.
class Day {
 public:
  Day(const StageModel& model, uint32_t seed, int orders) : model_(model), rng_(seed) {
    for (int i = 0; i < orders; ++i) AddOrder(i, static_cast<Story>(i % kStoryCount));
  }
  const std::vector<SentSpan>& spans() const { return spans_; }
  uint64_t last_event() const { return last_event_; }

 private:
  uint64_t SlaOf(const std::string& status) {
    const StageRule* rule = model_.RuleFor(status);
    return rule == nullptr ? 0 : model_.SlaNanos(*rule, "");
  }
  uint64_t Within(uint64_t sla) {
    return static_cast<uint64_t>(std::uniform_real_distribution<double>(0.1, 0.8)(rng_) *
                                 static_cast<double>(sla));
  }

  void AddOrder(int n, Story story) {
    const std::string order_id = absl::StrCat("order-", n);
    base::TraceId trace;
    for (size_t i = 0; i < 16; ++i) trace.bytes[i] = static_cast<uint8_t>(rng_());
    trace.bytes[0] = static_cast<uint8_t>(n);
    uint64_t at = kDayStart + std::uniform_int_distribution<uint64_t>(0, 3600)(rng_) * kSecond;
    const int stop_at = 1 + static_cast<int>(rng_() % (Path().size() - 2));
    const int overrun_at = static_cast<int>(rng_() % (Path().size() - 1));
    int64_t version = 0;
    std::string prev;
    for (size_t i = 0; i < Path().size(); ++i) {
      const Transition& step = Path()[i];
      if (story == Story::kSkipsPackaging && step.status == "PACKAGING") continue;
      if (story == Story::kLateReport && step.status == "MANUFACTURING_COMPLETED") continue;
      AddTransition(order_id, trace, step, prev, ++version, at);
      if (step.status == "SUBMITTED") AddPriceRequest(order_id, trace, story, at);
      if (story == Story::kLateReport && step.status == "SHIPPED") {
        // The skipped status reported after the fact: a later event with an earlier status.
        Transition late = Path()[7];
        AddTransition(order_id, trace, late, "SHIPPED", ++version, at + 2 * kSecond);
      }
      if (story == Story::kDisagreement && step.status == "PRICE_CALCULATED") {
        AddRefusal(order_id, trace, at + 3 * kSecond);
        return;
      }
      if (story == Story::kStuck && static_cast<int>(i) == stop_at) return;
      if (story == Story::kLostMessage && step.status == "SUBMITTED") return;
      if (i + 1 == Path().size()) {
        if (story == Story::kBackAfterClose) {
          AddTransition(order_id, trace, Path()[9], "CLOSED", ++version, at + 60 * kSecond);
        }
        return;
      }
      uint64_t sla = SlaOf(step.status);
      uint64_t stay = Within(sla);
      if (story == Story::kOverrunsStage && static_cast<int>(i) == overrun_at) {
        stay = sla + sla / 2 + model_.GraceNanos();
      }
      at += std::max<uint64_t>(stay, kSecond);
      prev = step.status;
    }
  }

  Span MakeSpan(const base::TraceId& trace, const std::string& name, uint64_t end) {
    Span span;
    span.trace_id = trace;
    ++next_span_;
    for (size_t i = 0; i < 8; ++i)
      span.span_id.bytes[i] = static_cast<uint8_t>(next_span_ >> (8 * i));
    span.name = name;
    span.start_time_unix_nano = end - kSecond / 2;
    span.end_time_unix_nano = end;
    last_event_ = std::max(last_event_, end);
    return span;
  }

  void AddTransition(const std::string& order_id, const base::TraceId& trace,
                     const Transition& step, const std::string& prev, int64_t version,
                     uint64_t at) {
    Span span = MakeSpan(trace, step.span_name, at);
    span.attributes.push_back({"order_id", AnyValue::String(order_id)});
    span.attributes.push_back({"new_status", AnyValue::String(step.status)});
    if (!prev.empty()) span.attributes.push_back({"prev_status", AnyValue::String(prev)});
    span.attributes.push_back({"event_version", AnyValue::Int(version)});
    spans_.push_back({step.service, std::move(span)});
    // Detail under it: changes only the order's last step, never its statuses.
    Span detail = MakeSpan(trace, step.span_name + ".db", at - kSecond / 4);
    detail.attributes.push_back({"order_id", AnyValue::String(order_id)});
    spans_.push_back({step.service, std::move(detail)});
  }

  void AddPriceRequest(const std::string& order_id, const base::TraceId& trace, Story story,
                       uint64_t submitted) {
    const std::string message_id = absl::StrCat("msg-", order_id);
    Span publish = MakeSpan(trace, "mq.publish.price", submitted + kSecond);
    publish.kind = base::SpanKind::kProducer;
    publish.attributes.push_back({"order_id", AnyValue::String(order_id)});
    publish.attributes.push_back({"message_id", AnyValue::String(message_id)});
    publish.attributes.push_back({"queue", AnyValue::String("price.requests")});
    spans_.push_back({"shop-api", std::move(publish)});
    if (story == Story::kLostMessage) return;
    const uint64_t delay = story == Story::kLateConsumer
                               ? model_.MessageSlaNanos() + model_.GraceNanos() + 20 * kSecond
                               : 2 * kSecond;
    Span consume = MakeSpan(trace, "mq.consume.price", submitted + kSecond + delay);
    consume.start_time_unix_nano = submitted + kSecond + delay;
    consume.kind = base::SpanKind::kConsumer;
    consume.attributes.push_back({"order_id", AnyValue::String(order_id)});
    consume.attributes.push_back({"message_id", AnyValue::String(message_id)});
    consume.attributes.push_back({"queue", AnyValue::String("price.requests")});
    spans_.push_back({"mes-api", std::move(consume)});
  }

  void AddRefusal(const std::string& order_id, const base::TraceId& trace, uint64_t at) {
    Span refusal = MakeSpan(trace, "crm.approve.manufacturing", at);
    refusal.status.code = base::StatusCode::kError;
    refusal.attributes.push_back({"order_id", AnyValue::String(order_id)});
    refusal.attributes.push_back({"error_code", AnyValue::String("STATUS_CONFLICT")});
    refusal.attributes.push_back({"current_status", AnyValue::String("PRICE_CALCULATION_STARTED")});
    spans_.push_back({"crm-api", std::move(refusal)});
  }

  const StageModel& model_;
  std::mt19937 rng_;
  std::vector<SentSpan> spans_;
  uint64_t next_span_ = 0;
  uint64_t last_event_ = 0;
};

// A gap store that a "kill -9" cuts off: writes the detector had not made yet are lost.
class CrashableGapStore final : public GapStore {
 public:
  absl::Status Apply(const std::vector<Gap>& puts,
                     const std::vector<std::string>& deletes) override {
    if (crashed_) return absl::OkStatus();  // the process is gone; nothing reaches the disk
    return store_.Apply(puts, deletes);
  }
  absl::StatusOr<std::optional<Gap>> Get(const std::string& id) override { return store_.Get(id); }
  absl::StatusOr<std::vector<Gap>> LoadOpen() override { return store_.LoadOpen(); }
  absl::StatusOr<GapPage> Query(const GapHistoryQuery& query) override {
    return store_.Query(query);
  }
  void Crash(bool crashed) { crashed_ = crashed; }
  std::map<std::string, Gap> Snapshot() const { return store_.Snapshot(); }

 private:
  MemoryGapStore store_;
  std::atomic<bool> crashed_{false};
};

// ordertrace's ingest and gap detection, simulated: durable order records, a detector over a
// gap store, restarts.
class System {
 public:
  System(const StageModel& model, base::ManualClock& clock) : model_(model), clock_(clock) {
    Start();
  }

  // One export request: the spans, grouped by service as an exporter sends them.
  void Ingest(const std::vector<const SentSpan*>& request) {
    base::TraceBatch batch;
    std::map<std::string, size_t> by_service;
    for (const SentSpan* sent : request) {
      auto [it, added] = by_service.emplace(sent->service, batch.resource_spans.size());
      if (added) {
        base::ResourceSpans rs;
        rs.resource.attributes.push_back({"service.name", AnyValue::String(sent->service)});
        rs.scope_spans.emplace_back();
        batch.resource_spans.push_back(std::move(rs));
      }
      batch.resource_spans[it->second].scope_spans[0].spans.push_back(sent->span);
    }
    std::map<std::string, std::optional<OrderRecord>> before;
    for (const base::ResourceSpans& rs : batch.resource_spans) {
      for (const Span& span : rs.scope_spans[0].spans) {
        std::optional<std::string> order_id = lifecycle::OrderIdOf(span, rs.resource);
        if (!order_id) continue;
        auto stored = records_.find(*order_id);
        if (!before.contains(*order_id)) {
          before[*order_id] =
              stored == records_.end() ? std::nullopt : std::optional<OrderRecord>(stored->second);
        }
        OrderRecord& record = records_[*order_id];
        record.order_id = *order_id;
        lifecycle::ApplySpan(span, rs.resource, record);
      }
    }
    for (const auto& [order_id, was] : before) {
      const OrderRecord& now = records_.at(order_id);
      if (was.has_value() && *was == now) continue;
      detector_->OnOrderChanged(was.has_value() ? &*was : nullptr, now);
    }
    detector_->OnSpansArrived(batch);
  }

  void FireDue() { detector_->FireDue(); }

  // A clean stop (the detector's writes drain) or a kill -9 (the queued ones are lost), then a
  // start as ordertrace does it: open gaps, then every stored record.
  void Restart(bool kill) {
    if (kill) store_.Crash(true);
    detector_.reset();
    store_.Crash(false);
    Start();
  }

  // Every gap in the store once all is said: its arrival-independent part, by id.
  std::map<std::string, std::string> Outcomes() {
    detector_->Flush();
    std::map<std::string, std::string> out;
    for (const auto& [id, gap] : store_.Snapshot()) {
      if (gap.kind == kSourceSilent) continue;  // about arrival, not about the orders
      auto [gid, order, kind, stage, since, deadline, resolved_at, resolved_by] = gap.Outcome();
      out[id] = absl::StrCat(order, " ", kind, " ", stage, " since=", since, " deadline=", deadline,
                             " resolved_at=", resolved_at, " by=", resolved_by);
    }
    return out;
  }
  GapDetectorStats Stats() const { return detector_->Stats(); }
  // Gaps that were paged (an alert fired) and then resolved or withdrawn.
  std::vector<std::string> PagedThenResolved() {
    detector_->Flush();
    std::vector<std::string> ids;
    for (const auto& [id, gap] : store_.Snapshot()) {
      if (gap.paged && !gap.IsOpen()) ids.push_back(id);
    }
    return ids;
  }

 private:
  void Start() {
    detector_ = std::make_unique<GapDetector>(
        model_, clock_,
        [this](const std::string& order_id) -> absl::StatusOr<std::optional<OrderRecord>> {
          auto it = records_.find(order_id);
          if (it == records_.end()) return std::optional<OrderRecord>();
          return std::optional<OrderRecord>(it->second);
        },
        &store_, nullptr);
    ASSERT_TRUE(detector_->Recover().ok());
    for (const auto& [order_id, record] : records_) detector_->RestoreOrder(record);
  }

  const StageModel& model_;
  base::ManualClock& clock_;
  CrashableGapStore store_;
  std::map<std::string, OrderRecord> records_;  // durable, as the store keeps them
  std::unique_ptr<GapDetector> detector_;
};

StageModel TestModel() {
  StageModelOptions options = DefaultStageModelOptions();
  options.time_scale = kTimeScale;
  return *StageModel::Create(options);
}

// Delivers everything, then lets the sources go quiet and judges what is left.
std::map<std::string, std::string> Settle(System& system, base::ManualClock& clock,
                                          const Day& day) {
  clock.Set(std::max(clock.NowUnixNano(), day.last_event()) + 2 * 24 * 3600 * kSecond);
  system.FireDue();
  clock.Advance(60 * kSecond);
  system.FireDue();
  return system.Outcomes();
}

std::map<std::string, std::string> InOrder(const StageModel& model, const Day& day) {
  base::ManualClock clock(day.last_event() + 3600 * kSecond);
  System system(model, clock);
  std::vector<const SentSpan*> all;
  for (const SentSpan& sent : day.spans()) all.push_back(&sent);
  std::stable_sort(all.begin(), all.end(), [](const SentSpan* a, const SentSpan* b) {
    return a->span.end_time_unix_nano < b->span.end_time_unix_nano;
  });
  system.Ingest(all);
  return Settle(system, clock, day);
}

std::string Diff(const std::map<std::string, std::string>& want,
                 const std::map<std::string, std::string>& got) {
  std::string out;
  for (const auto& [id, text] : want) {
    auto it = got.find(id);
    if (it == got.end()) {
      absl::StrAppend(&out, "  missing: ", text, "\n");
    } else if (it->second != text) {
      absl::StrAppend(&out, "  want: ", text, "\n  got:  ", it->second, "\n");
    }
  }
  for (const auto& [id, text] : got) {
    if (!want.contains(id)) absl::StrAppend(&out, "  extra: ", text, "\n");
  }
  return out;
}

size_t CountKind(const std::map<std::string, std::string>& outcomes, std::string_view kind,
                 bool resolved) {
  size_t n = 0;
  for (const auto& [id, text] : outcomes) {
    if (id.find("/" + std::string(kind) + "/") == std::string::npos) continue;
    if ((text.find("by= ") == std::string::npos && text.back() != '=') == resolved) ++n;
  }
  return n;
}

TEST(GapDeterminismTest, TheInOrderDayHasTheGapsOfItsStories) {
  const StageModel model = TestModel();
  const Day day(model, 7, 90);
  std::map<std::string, std::string> outcomes = InOrder(model, day);
  // 10 orders of each story: stuck ones open a stage gap each (a stuck order may stop in any
  // stage); the lost message opens one for the message and one for SUBMITTED.
  EXPECT_EQ(CountKind(outcomes, kMessageNotConsumed, /*resolved=*/false), 10u);
  EXPECT_EQ(CountKind(outcomes, kMessageNotConsumed, /*resolved=*/true), 10u);  // late consumer
  EXPECT_EQ(CountKind(outcomes, kSkippedStatus, /*resolved=*/true), 20u);       // also late report
  EXPECT_EQ(CountKind(outcomes, kStatusBackwards, /*resolved=*/true), 10u);     // late report
  EXPECT_EQ(CountKind(outcomes, kStatusBackwards, /*resolved=*/false), 10u);    // after CLOSED
  EXPECT_EQ(CountKind(outcomes, kStatusDisagreement, /*resolved=*/false), 10u);
  // Overruns that then finished: recorded resolved by the status that came late.
  EXPECT_GE(CountKind(outcomes, kMissingTransition, true) +
                CountKind(outcomes, kCalculationOverdue, true),
            10u);
  // Stuck: 10, lost message: 10 (SUBMITTED), disagreement: 10 (PRICE_CALCULATED).
  EXPECT_EQ(CountKind(outcomes, kMissingTransition, false) +
                CountKind(outcomes, kCalculationOverdue, false),
            30u);
}

struct Delivery {
  bool live;          // the clock follows the spans (else: a replay long after)
  size_t window;      // spans shuffled within windows of this many (in event-time order)
  size_t max_batch;   // spans per request: 1..max_batch
  double restart_p;   // chance of a restart after a request
  double kill_share;  // of restarts, the share that are kill -9
};

std::map<std::string, std::string> Deliver(
    const StageModel& model, const Day& day, const Delivery& how, std::mt19937& rng,
    GapDetectorStats* final_stats = nullptr,
    std::vector<std::string>* paged_then_resolved = nullptr) {
  std::vector<const SentSpan*> order;
  for (const SentSpan& sent : day.spans()) order.push_back(&sent);
  std::stable_sort(order.begin(), order.end(), [](const SentSpan* a, const SentSpan* b) {
    return a->span.end_time_unix_nano < b->span.end_time_unix_nano;
  });
  for (size_t begin = 0; begin < order.size(); begin += how.window) {
    auto end = order.begin() + std::min(order.size(), begin + how.window);
    std::shuffle(order.begin() + begin, end, rng);
  }
  base::ManualClock clock(how.live ? kDayStart : day.last_event() + 3600 * kSecond);
  System system(model, clock);
  std::uniform_real_distribution<double> chance(0, 1);
  size_t next = 0;
  uint64_t seen = 0;
  while (next < order.size()) {
    size_t size = 1 + rng() % how.max_batch;
    std::vector<const SentSpan*> request(order.begin() + next,
                                         order.begin() + std::min(order.size(), next + size));
    next += request.size();
    for (const SentSpan* sent : request) seen = std::max(seen, sent->span.end_time_unix_nano);
    if (how.live) {
      // Exported up to 3 s after the latest span it carries; the clock never goes back.
      clock.Set(std::max<uint64_t>(clock.NowUnixNano(), seen + (rng() % 3000) * 1'000'000ULL));
    } else {
      clock.Advance((rng() % 100) * 1'000'000ULL);
    }
    system.Ingest(request);
    if (chance(rng) < 0.5) system.FireDue();
    if (chance(rng) < how.restart_p) system.Restart(chance(rng) < how.kill_share);
  }
  std::map<std::string, std::string> outcomes = Settle(system, clock, day);
  if (final_stats != nullptr) *final_stats = system.Stats();
  if (paged_then_resolved != nullptr) *paged_then_resolved = system.PagedThenResolved();
  return outcomes;
}

// Rounds of every delivery; GAP_DETERMINISM_ROUNDS=N runs more (and more days) for a soak.
int Rounds() {
  const char* env = std::getenv("GAP_DETERMINISM_ROUNDS");
  return env != nullptr ? std::max(1, std::atoi(env)) : 4;
}

TEST(GapDeterminismTest, AnyOrderBatchingAndRestartsGiveTheSameGaps) {
  const StageModel model = TestModel();
  for (int round = 0; round < Rounds(); ++round) {
    const Day day(model, 11 + round, 80);
    const std::map<std::string, std::string> want = InOrder(model, day);
    ASSERT_GT(want.size(), 50u);
    std::mt19937 rng(2026 + round);
    const std::vector<Delivery> deliveries = {
        {false, 1, 64, 0, 0},         // a replay in order, in requests
        {false, 5000, 64, 0, 0},      // a replay shuffled across requests
        {false, 200, 16, 0.05, 0.5},  // a backlog with restarts and kills between requests
        {true, 1, 8, 0, 0},           // live, in order
        {true, 20, 8, 0.02, 0.5},     // live with disorder beyond the grace, and restarts
        {true, 300, 32, 0.05, 1.0},   // live with heavy disorder, only kills
    };
    for (size_t i = 0; i < deliveries.size(); ++i) {
      SCOPED_TRACE(absl::StrCat("round ", round, ", delivery ", i));
      GapDetectorStats stats;
      const std::map<std::string, std::string> got =
          Deliver(model, day, deliveries[i], rng, &stats);
      EXPECT_EQ(got, want) << Diff(want, got);
      EXPECT_EQ(stats.held, 0u) << "deadlines still waiting for evidence after the day";
    }
  }
}

// A replay of a past day, in order or shuffled across requests within the allowed lateness
// (300 spans of this day are about 15 minutes of it; the default allows an hour), pages
// nothing that later resolves and withdraws nothing: zero false alarms.
TEST(GapDeterminismTest, ReplayPagesNoGapThatLaterResolves) {
  const StageModel model = TestModel();
  const Day day(model, 5, 80);
  std::mt19937 rng(99);
  for (size_t window : {size_t{1}, size_t{300}}) {
    GapDetectorStats stats;
    std::vector<std::string> paged_then_resolved;
    Deliver(model, day, Delivery{false, window, 64, 0, 0}, rng, &stats, &paged_then_resolved);
    EXPECT_EQ(stats.Withdrawn(), 0u) << "window " << window;
    EXPECT_THAT(paged_then_resolved, testing::IsEmpty()) << "window " << window;
  }
}

}  // namespace
}  // namespace ordertrace::gaps
