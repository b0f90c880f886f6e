#include "gaps/gap_detector.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "gaps/gap_codec.h"
#include "gaps/memory_gap_store.h"
#include "lifecycle/order_record_builder.h"

namespace ordertrace::gaps {
namespace {

using model::MessageHop;
using model::Operation;
using model::OrderRecord;
using model::StatusReached;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

constexpr uint64_t kSecond = base::kNanosPerSecond;
constexpr uint64_t kMinute = 60 * kSecond;
constexpr uint64_t kHour = 60 * kMinute;
constexpr uint64_t kDay = 24 * kHour;
constexpr uint64_t kNow = 1'704'067'200ULL * kSecond + 12 * kHour;  // 2024-01-01T12:00Z
// The default model's SLAs and grace, and the watermarks' default idle_after.
constexpr uint64_t kGrace = 5 * kSecond;
constexpr uint64_t kInitiatedSla = 30 * kMinute;
constexpr uint64_t kSubmittedSla = 10 * kMinute;
constexpr uint64_t kCalculationSla = 30 * kMinute;
constexpr uint64_t kApprovedSla = 2 * kHour;
constexpr uint64_t kMessageSla = 5 * kMinute;
constexpr uint64_t kIdleAfter = 5 * kSecond;
constexpr uint64_t kSilentAfter = 120 * kSecond;

base::TraceId TraceIdOf(const std::string& order_id) {
  base::TraceId id;
  id.bytes[0] = 0x7a;
  for (size_t i = 0; i < order_id.size() && i + 1 < id.bytes.size(); ++i) {
    id.bytes[i + 1] = static_cast<uint8_t>(order_id[i]);
  }
  return id;
}

StatusReached Reached(std::string status, std::string prev, uint64_t at, int64_t version = -1,
                      std::string service = "shop-api") {
  StatusReached reached;
  reached.span_name = "Set" + status;
  reached.status = std::move(status);
  reached.prev_status = std::move(prev);
  reached.at_unix_nano = at;
  reached.event_version = version;
  reached.service = std::move(service);
  reached.span_id.bytes[0] = static_cast<uint8_t>(version);
  return reached;
}

// The default lifecycle from INITIATED up to `last`, a minute apart, `last` reached at `at`.
std::vector<StatusReached> ChainTo(const std::string& last, uint64_t at) {
  const std::vector<std::string> lifecycle = DefaultStageModelOptions().statuses;
  const int end =
      static_cast<int>(std::find(lifecycle.begin(), lifecycle.end(), last) - lifecycle.begin());
  EXPECT_LT(end, static_cast<int>(lifecycle.size())) << last;
  std::vector<StatusReached> chain;
  for (int i = 0; i <= end; ++i) {
    chain.push_back(Reached(lifecycle[i], i == 0 ? "" : lifecycle[i - 1],
                            at - static_cast<uint64_t>(end - i) * kMinute, i + 1));
  }
  return chain;
}

// Points the record's last success at its latest status, as the record builder would.
void TouchLastSuccess(OrderRecord& record) {
  if (record.statuses.empty()) return;
  const StatusReached& last = record.statuses.back();
  record.last_seen_unix_nano = std::max(record.last_seen_unix_nano, last.at_unix_nano);
  Operation op;
  op.span_name = last.span_name;
  op.service = last.service;
  op.at_unix_nano = last.at_unix_nano;
  op.trace_id = record.trace_id;
  op.span_id = last.span_id;
  record.last_success = op;
}

OrderRecord Order(const std::string& order_id, std::vector<StatusReached> statuses,
                  const std::string& partner_id = "acme") {
  OrderRecord record;
  record.order_id = order_id;
  record.partner_id = partner_id;
  record.trace_id = TraceIdOf(order_id);
  record.trace_ids = {record.trace_id};
  record.statuses = std::move(statuses);
  if (!record.statuses.empty()) {
    record.first_seen_unix_nano = record.statuses.front().at_unix_nano - kSecond;
  }
  TouchLastSuccess(record);
  return record;
}

// `record` grown by its next status (what ingest hands over when the next span arrives: a
// record only grows).
OrderRecord Then(OrderRecord record, const std::string& status, uint64_t at,
                 const std::string& service = "shop-api") {
  const StatusReached* current = record.CurrentStatus();
  const int64_t version = current == nullptr ? 1 : current->event_version + 1;
  record.statuses.push_back(
      Reached(status, current == nullptr ? "" : current->status, at, version, service));
  TouchLastSuccess(record);
  return record;
}

MessageHop Hop(std::string message_id, std::string queue, uint64_t published,
               uint64_t consumed = 0) {
  MessageHop hop;
  hop.message_id = std::move(message_id);
  hop.queue = std::move(queue);
  hop.published_at_unix_nano = published;
  hop.consumed_at_unix_nano = consumed;
  return hop;
}

// One request's spans from `service`, the latest ending at `end`.
base::TraceBatch SpansFrom(const std::string& service, uint64_t end) {
  base::TraceBatch batch;
  base::ResourceSpans& rs = batch.resource_spans.emplace_back();
  rs.resource.attributes.push_back({"service.name", base::AnyValue::String(service)});
  base::Span span;
  span.name = "Work";
  span.start_time_unix_nano = end - kSecond;
  span.end_time_unix_nano = end;
  rs.scope_spans.emplace_back().spans.push_back(std::move(span));
  return batch;
}

// The store the detector reads orders from when a deadline passes; the test controls it.
class FakeOrders {
 public:
  void Put(const OrderRecord& record) {
    std::lock_guard<std::mutex> lock(mu_);
    records_[record.order_id] = record;
  }
  std::optional<OrderRecord> Get(const std::string& order_id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = records_.find(order_id);
    if (it == records_.end()) return std::nullopt;
    return it->second;
  }
  void Erase(const std::string& order_id) {
    std::lock_guard<std::mutex> lock(mu_);
    records_.erase(order_id);
  }
  void SetFailing(bool failing) {
    std::lock_guard<std::mutex> lock(mu_);
    failing_ = failing;
  }
  OrderLookup Lookup() {
    return [this](const std::string& order_id) -> absl::StatusOr<std::optional<OrderRecord>> {
      std::lock_guard<std::mutex> lock(mu_);
      if (failing_) return absl::UnavailableError("store is busy");
      auto it = records_.find(order_id);
      if (it == records_.end()) return std::optional<OrderRecord>();
      return std::optional<OrderRecord>(it->second);
    };
  }

 private:
  std::mutex mu_;
  std::map<std::string, OrderRecord> records_;
  bool failing_ = false;
};

// A MemoryGapStore that counts the gaps put into it, by id.
class CountingGapStore final : public GapStore {
 public:
  absl::Status Apply(const std::vector<Gap>& puts,
                     const std::vector<std::string>& deletes) override {
    absl::Status status = store_.Apply(puts, deletes);
    if (status.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      for (const Gap& gap : puts) ++puts_[gap.id];
    }
    return status;
  }
  absl::StatusOr<std::optional<Gap>> Get(const std::string& gap_id) override {
    return store_.Get(gap_id);
  }
  absl::StatusOr<std::vector<Gap>> LoadOpen() override { return store_.LoadOpen(); }
  absl::StatusOr<GapPage> Query(const GapHistoryQuery& query) override {
    return store_.Query(query);
  }

  std::map<std::string, Gap> Snapshot() const { return store_.Snapshot(); }
  void SetFailing(bool failing) { store_.SetFailing(failing); }
  int Puts(const std::string& gap_id) {
    std::lock_guard<std::mutex> lock(mu_);
    return puts_[gap_id];
  }
  int TotalPuts() {
    std::lock_guard<std::mutex> lock(mu_);
    int total = 0;
    for (const auto& [id, count] : puts_) total += count;
    return total;
  }

 private:
  MemoryGapStore store_;
  std::mutex mu_;
  std::map<std::string, int> puts_;
};

class RecordingSink : public GapSink {
 public:
  void OnGapOpened(const Gap& gap) override {
    std::lock_guard<std::mutex> lock(mu_);
    opened_.push_back(gap);
  }
  void OnGapResolved(const Gap& gap) override {
    std::lock_guard<std::mutex> lock(mu_);
    resolved_.push_back(gap);
  }
  std::vector<Gap> opened() {
    std::lock_guard<std::mutex> lock(mu_);
    return opened_;
  }
  std::vector<Gap> resolved() {
    std::lock_guard<std::mutex> lock(mu_);
    return resolved_;
  }

 private:
  std::mutex mu_;
  std::vector<Gap> opened_;
  std::vector<Gap> resolved_;
};

std::vector<std::string> Ids(const std::vector<Gap>& gaps) {
  std::vector<std::string> ids;
  for (const Gap& gap : gaps) ids.push_back(gap.id);
  return ids;
}

std::vector<std::string> OrderIds(const std::vector<Gap>& gaps) {
  std::vector<std::string> ids;
  for (const Gap& gap : gaps) ids.push_back(gap.order_id);
  return ids;
}

bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds bound) {
  const auto until = std::chrono::steady_clock::now() + bound;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

class GapDetectorTest : public testing::Test {
 protected:
  void SetUp() override {
    // A failing store is tried again quickly, so that its tests do not wait.
    options_.write_retry = std::chrono::milliseconds(5);
    // A source that only appears in records (lag unknown) is quiet after idle_after here, as a
    // live one: these tests are about what is judged, not how long a backlog may pause.
    options_.watermarks.catch_up_idle_after_nanos = options_.watermarks.idle_after_nanos;
    UseModel(DefaultStageModelOptions());
  }

  // Rebuilds the model and a fresh detector (same store) around it.
  void UseModel(StageModelOptions options) {
    detector_.reset();
    absl::StatusOr<StageModel> model = StageModel::Create(std::move(options));
    ASSERT_TRUE(model.ok()) << model.status();
    model_.emplace(*std::move(model));
    Restart();
  }

  // A new detector over the same store, orders and clock, announcing to a new sink: a restart.
  // It holds every deadline for idle_after after this.
  void Restart() {
    detector_.reset();
    sink_ = std::make_unique<RecordingSink>();
    detector_ = std::make_unique<GapDetector>(*model_, clock_, orders_.Lookup(), &store_,
                                              sink_.get(), options_);
  }

  // What ingest does: the store holds the new record, then the detector hears of the change.
  void Feed(const OrderRecord& record) {
    const std::optional<OrderRecord> before = orders_.Get(record.order_id);
    orders_.Put(record);
    detector_->OnOrderChanged(before ? &*before : nullptr, record);
  }

  // `service` reports a span ending now: it is live, so its deadlines are judged on the clock.
  void MakeLive(const std::string& service) {
    detector_->OnSpansArrived(SpansFrom(service, clock_.NowUnixNano()));
  }

  // Past the startup hold and shop-api's idleness: the evidence for what happened until now is
  // in, so settled gaps (conflicts, breaches already over) are confirmed.
  void Settle() {
    clock_.Advance(kIdleAfter);
    detector_->FireDue();
  }

  // The gaps in the store once every write decided so far is done.
  std::vector<Gap> Stored() {
    detector_->Flush();
    std::vector<Gap> gaps;
    for (const auto& [id, gap] : store_.Snapshot()) gaps.push_back(gap);
    return gaps;
  }
  std::vector<Gap> StoredOpen() {
    std::vector<Gap> open;
    for (const Gap& gap : Stored()) {
      if (gap.IsOpen()) open.push_back(gap);
    }
    return open;
  }
  std::optional<Gap> StoredGap(const std::string& id) {
    detector_->Flush();
    auto all = store_.Snapshot();
    auto it = all.find(id);
    if (it == all.end()) return std::nullopt;
    return it->second;
  }
  std::vector<Gap> QueryStore(GapHistoryQuery query) {
    detector_->Flush();
    absl::StatusOr<GapPage> page = store_.Query(query);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? page->gaps : std::vector<Gap>();
  }

  static uint64_t Count(const std::map<std::pair<std::string, std::string>, uint64_t>& counts,
                        std::string_view kind, const std::string& stage) {
    auto it = counts.find({std::string(kind), stage});
    return it == counts.end() ? 0 : it->second;
  }
  // Settled gaps are counted by the writer, once it knows they are new: flushed first.
  uint64_t Detected(std::string_view kind, const std::string& stage) {
    detector_->Flush();
    return Count(detector_->Stats().detected_total, kind, stage);
  }
  uint64_t FoundResolved(std::string_view kind, const std::string& stage) {
    detector_->Flush();
    return Count(detector_->Stats().found_resolved_total, kind, stage);
  }
  uint64_t OpenCount(std::string_view kind, const std::string& stage) {
    return Count(detector_->Stats().open, kind, stage);
  }

  base::ManualClock clock_{kNow};
  FakeOrders orders_;
  CountingGapStore store_;
  GapDetectorOptions options_;
  std::optional<StageModel> model_;
  std::unique_ptr<RecordingSink> sink_;
  std::unique_ptr<GapDetector> detector_;
};

// Missing transitions and calculations

TEST_F(GapDetectorTest, MissingTransitionOpensOnceAtItsDeadline) {
  const uint64_t t0 = kNow;
  const uint64_t deadline = t0 + kSubmittedSla + kGrace;
  OrderRecord order = Order("ord-1", ChainTo("SUBMITTED", t0));
  Feed(order);
  EXPECT_EQ(detector_->NextDeadline(), deadline);
  EXPECT_EQ(detector_->Stats().tracked_orders, 1u);

  clock_.Set(t0 + kSubmittedSla);  // past the SLA, within the grace
  EXPECT_EQ(detector_->FireDue(), 0u);
  clock_.Set(deadline - 1);
  EXPECT_EQ(detector_->FireDue(), 0u);
  EXPECT_THAT(sink_->opened(), IsEmpty());
  EXPECT_THAT(Stored(), IsEmpty());

  // shop-api has been quiet since the record: nothing more is on its way.
  clock_.Set(deadline);
  EXPECT_EQ(detector_->FireDue(), 1u);
  std::vector<Gap> open = detector_->OpenGapsOf("ord-1");
  ASSERT_THAT(open, SizeIs(1));
  const Gap& gap = open[0];
  EXPECT_EQ(gap.id, GapId("ord-1", kMissingTransition, "SUBMITTED"));
  EXPECT_EQ(gap.kind, kMissingTransition);
  EXPECT_EQ(gap.stage, "SUBMITTED");
  EXPECT_THAT(gap.expected, ElementsAre("PRICE_CALCULATION_STARTED"));
  EXPECT_EQ(gap.order_id, "ord-1");
  EXPECT_EQ(gap.partner_id, "acme");
  EXPECT_EQ(gap.trace_id, TraceIdOf("ord-1"));
  EXPECT_EQ(gap.since_unix_nano, t0);
  EXPECT_EQ(gap.deadline_unix_nano, deadline);
  EXPECT_EQ(gap.detected_at_unix_nano, deadline);
  EXPECT_EQ(gap.resolved_at_unix_nano, 0u);
  EXPECT_TRUE(gap.IsOpen());
  EXPECT_TRUE(gap.paged);
  EXPECT_EQ(gap.last_success, order.last_success);
  EXPECT_EQ(gap.service, "shop-api");
  EXPECT_FALSE(gap.detail.empty());

  ASSERT_THAT(sink_->opened(), SizeIs(1));
  EXPECT_EQ(sink_->opened()[0], gap);
  EXPECT_EQ(Detected(kMissingTransition, "SUBMITTED"), 1u);
  EXPECT_EQ(OpenCount(kMissingTransition, "SUBMITTED"), 1u);
  EXPECT_EQ(StoredGap(gap.id), gap);
  EXPECT_EQ(detector_->Stats().tracked_orders, 0u);

  // Nothing more, however long the order stays stuck.
  clock_.Advance(kDay);
  EXPECT_EQ(detector_->FireDue(), 0u);
  EXPECT_THAT(sink_->opened(), SizeIs(1));
}

TEST_F(GapDetectorTest, MissingTransitionResolvesWhenTheNextStatusArrives) {
  const uint64_t t0 = kNow;
  const OrderRecord submitted = Order("ord-1", ChainTo("SUBMITTED", t0));
  Feed(submitted);
  const uint64_t detected = t0 + kSubmittedSla + kGrace + 2 * kSecond;
  clock_.Set(detected);
  ASSERT_EQ(detector_->FireDue(), 1u);

  clock_.Advance(3 * kSecond);
  const uint64_t started_at = clock_.NowUnixNano() - kSecond;
  const OrderRecord started = Then(submitted, "PRICE_CALCULATION_STARTED", started_at);
  Feed(started);

  EXPECT_THAT(StoredOpen(), IsEmpty());
  std::vector<Gap> stored = Stored();
  ASSERT_THAT(stored, SizeIs(1));
  const Gap& gap = stored[0];
  EXPECT_EQ(gap.id, GapId("ord-1", kMissingTransition, "SUBMITTED"));
  // resolved_at is the resolving span's event time, not the arrival.
  EXPECT_EQ(gap.resolved_at_unix_nano, started_at);
  EXPECT_EQ(gap.resolved_by, "PRICE_CALCULATION_STARTED");
  EXPECT_EQ(gap.detected_at_unix_nano, detected);
  EXPECT_TRUE(gap.paged);
  EXPECT_FALSE(gap.IsOpen());
  ASSERT_THAT(sink_->resolved(), SizeIs(1));
  EXPECT_EQ(sink_->resolved()[0], gap);

  EXPECT_EQ(OpenCount(kMissingTransition, "SUBMITTED"), 0u);
  EXPECT_EQ(Detected(kMissingTransition, "SUBMITTED"), 1u);
  EXPECT_EQ(detector_->Stats().resolved_total, 1u);
  EXPECT_THAT(detector_->OpenGapsOf("ord-1"), IsEmpty());

  // The same record again changes nothing. (The old test also fed an older record back; records
  // only grow now, and a shrinking one is a withdrawal: see WithdrawnWhenLateSpansAnswerInTime.)
  Feed(started);
  clock_.Advance(kMinute);
  detector_->FireDue();
  EXPECT_THAT(sink_->opened(), SizeIs(1));
  EXPECT_THAT(sink_->resolved(), SizeIs(1));
  EXPECT_EQ(Detected(kMissingTransition, "SUBMITTED"), 1u);
}

TEST_F(GapDetectorTest, PriceCalculationPastItsSlaIsCalculationOverdue) {
  const uint64_t t0 = kNow;
  const OrderRecord order = Order("ord-1", ChainTo("PRICE_CALCULATION_STARTED", t0));
  Feed(order);
  EXPECT_EQ(detector_->NextDeadline(), t0 + kCalculationSla + kGrace);

  clock_.Set(t0 + kCalculationSla + kGrace - 1);
  EXPECT_EQ(detector_->FireDue(), 0u);
  clock_.Set(t0 + kCalculationSla + kGrace);
  EXPECT_EQ(detector_->FireDue(), 1u);

  std::vector<Gap> open = detector_->OpenGapsOf("ord-1");
  ASSERT_THAT(open, SizeIs(1));
  EXPECT_EQ(open[0].kind, kCalculationOverdue);
  EXPECT_EQ(open[0].stage, "PRICE_CALCULATION_STARTED");
  EXPECT_THAT(open[0].expected, ElementsAre("PRICE_CALCULATED"));
  EXPECT_EQ(Detected(kCalculationOverdue, "PRICE_CALCULATION_STARTED"), 1u);
  EXPECT_EQ(Detected(kMissingTransition, "PRICE_CALCULATION_STARTED"), 0u);

  clock_.Advance(kMinute);
  Feed(Then(order, "PRICE_CALCULATED", clock_.NowUnixNano()));
  ASSERT_THAT(sink_->resolved(), SizeIs(1));
  EXPECT_EQ(sink_->resolved()[0].resolved_by, "PRICE_CALCULATED");
  EXPECT_EQ(OpenCount(kCalculationOverdue, "PRICE_CALCULATION_STARTED"), 0u);
}

TEST_F(GapDetectorTest, PartnerOverrideMovesTheDeadlineForThatPartnerOnly) {
  StageModelOptions options = DefaultStageModelOptions();
  options.partner_sla_nanos["acme"]["SUBMITTED"] = kMinute;
  UseModel(options);
  const uint64_t t0 = kNow;
  Feed(Order("ord-acme", ChainTo("SUBMITTED", t0), "acme"));
  Feed(Order("ord-globex", ChainTo("SUBMITTED", t0), "globex"));
  EXPECT_EQ(detector_->NextDeadline(), t0 + kMinute + kGrace);

  clock_.Set(t0 + kMinute + kGrace);
  EXPECT_EQ(detector_->FireDue(), 1u);
  EXPECT_THAT(OrderIds(sink_->opened()), ElementsAre("ord-acme"));

  clock_.Set(t0 + kSubmittedSla + kGrace - 1);
  EXPECT_EQ(detector_->FireDue(), 0u);
  clock_.Set(t0 + kSubmittedSla + kGrace);
  EXPECT_EQ(detector_->FireDue(), 1u);
  EXPECT_THAT(OrderIds(sink_->opened()), ElementsAre("ord-acme", "ord-globex"));
  GapHistoryQuery globex;
  globex.partner_id = "globex";
  std::vector<Gap> gaps = QueryStore(globex);
  ASSERT_THAT(gaps, SizeIs(1));
  EXPECT_EQ(gaps[0].deadline_unix_nano, t0 + kSubmittedSla + kGrace);
}

TEST_F(GapDetectorTest, TimeScaleDividesTheSlaButNotTheGrace) {
  StageModelOptions options = DefaultStageModelOptions();
  options.time_scale = 60;
  UseModel(options);
  const uint64_t t0 = kNow;
  Feed(Order("ord-1", ChainTo("SUBMITTED", t0)));
  const uint64_t deadline = t0 + kSubmittedSla / 60 + kGrace;  // 10 s + 5 s
  EXPECT_EQ(detector_->NextDeadline(), deadline);

  clock_.Set(deadline - 1);
  EXPECT_EQ(detector_->FireDue(), 0u);
  clock_.Set(deadline);
  EXPECT_EQ(detector_->FireDue(), 1u);
  EXPECT_EQ(detector_->OpenGapsOf("ord-1")[0].deadline_unix_nano, deadline);
}

TEST_F(GapDetectorTest, DayOldSubmittedIsHeldUntilIdleAfterThenOpens) {
  const uint64_t since = kNow - kDay;
  Feed(Order("ord-old", ChainTo("SUBMITTED", since)));
  EXPECT_EQ(detector_->NextDeadline(), since + kSubmittedSla + kGrace);

  // Overdue on arrival is not enough (docs/gaps.md, "When ordertrace decides"). Right after
  // start, and while shop-api may still be flushing a backlog, the deadline is held, not judged.
  EXPECT_EQ(detector_->FireDue(), 0u);
  EXPECT_EQ(detector_->Stats().held, 1u);
  clock_.Advance(kIdleAfter - 1);
  EXPECT_EQ(detector_->FireDue(), 0u);

  clock_.Advance(1);
  EXPECT_EQ(detector_->FireDue(), 1u);
  EXPECT_EQ(detector_->Stats().held, 0u);
  std::vector<Gap> open = detector_->OpenGapsOf("ord-old");
  ASSERT_THAT(open, SizeIs(1));
  EXPECT_EQ(open[0].since_unix_nano, since);
  EXPECT_EQ(open[0].deadline_unix_nano, since + kSubmittedSla + kGrace);
  EXPECT_EQ(open[0].detected_at_unix_nano, kNow + kIdleAfter);
}

TEST_F(GapDetectorTest, SeveralExpectedStatusesAreAllNamed) {
  StageModelOptions options;
  options.statuses = {"SUBMITTED", "EXPRESS_REVIEW", "MANUAL_REVIEW", "CLOSED"};
  options.transitions = {{"SUBMITTED", "EXPRESS_REVIEW"},
                         {"SUBMITTED", "MANUAL_REVIEW"},
                         {"EXPRESS_REVIEW", "CLOSED"},
                         {"MANUAL_REVIEW", "CLOSED"}};
  options.terminal = {"CLOSED"};
  options.stages = {{"SUBMITTED", {"EXPRESS_REVIEW", "MANUAL_REVIEW"}, kMinute, false}};
  options.message_sla_nanos = kMinute;
  UseModel(options);
  Feed(Order("ord-1", {Reached("SUBMITTED", "", kNow, 1)}));
  clock_.Advance(kMinute);
  ASSERT_EQ(detector_->FireDue(), 1u);
  EXPECT_THAT(detector_->OpenGapsOf("ord-1")[0].expected,
              ElementsAre("EXPRESS_REVIEW", "MANUAL_REVIEW"));
}

TEST_F(GapDetectorTest, ClosedOrderHasNoDeadline) {
  const OrderRecord submitted = Order("ord-1", ChainTo("SUBMITTED", kNow));
  Feed(submitted);
  OrderRecord closed = submitted;
  for (const char* status :
       {"PRICE_CALCULATION_STARTED", "PRICE_CALCULATED", "MANUFACTURING_APPROVED",
        "MANUFACTURING_STARTED", "MANUFACTURING_COMPLETED", "PACKAGING", "SHIPPED", "CLOSED"}) {
    closed = Then(closed, status, closed.CurrentStatus()->at_unix_nano + kSecond);
  }
  Feed(closed);
  EXPECT_EQ(detector_->Stats().tracked_orders, 0u);
  clock_.Advance(kDay);
  EXPECT_EQ(detector_->FireDue(), 0u);
  EXPECT_THAT(Stored(), IsEmpty());
}

TEST_F(GapDetectorTest, OrderWithoutStatusesIsNotWatched) {
  Feed(Order("ord-1", {}));
  EXPECT_EQ(detector_->NextDeadline(), 0u);
  EXPECT_EQ(detector_->Stats().tracked_orders, 0u);
}

// Messages

TEST_F(GapDetectorTest, MessageNotConsumedOpensAtPublishedPlusSlaWithQueueAndMessageId) {
  const uint64_t published = kNow + 10 * kSecond;
  OrderRecord order = Order("ord-1", ChainTo("PRICE_CALCULATED", kNow));
  order.messages = {Hop("msg-7", "mes.manufacturing.requests", published)};
  Feed(order);
  EXPECT_EQ(detector_->Stats().tracked_messages, 1u);
  const uint64_t deadline = published + kMessageSla + kGrace;
  EXPECT_EQ(detector_->NextDeadline(), deadline);

  clock_.Set(deadline - 1);
  EXPECT_EQ(detector_->FireDue(), 0u);
  clock_.Set(deadline);
  EXPECT_EQ(detector_->FireDue(), 1u);

  std::vector<Gap> open = detector_->OpenGapsOf("ord-1");
  ASSERT_THAT(open, SizeIs(1));
  const Gap& gap = open[0];
  EXPECT_EQ(gap.id, GapId("ord-1", kMessageNotConsumed, "", "msg-7"));
  EXPECT_EQ(gap.kind, kMessageNotConsumed);
  EXPECT_EQ(gap.queue, "mes.manufacturing.requests");
  EXPECT_EQ(gap.message_id, "msg-7");
  EXPECT_EQ(gap.stage, "PRICE_CALCULATED");
  EXPECT_EQ(gap.since_unix_nano, published);
  EXPECT_EQ(gap.deadline_unix_nano, deadline);
  EXPECT_EQ(gap.detected_at_unix_nano, deadline);
  EXPECT_EQ(gap.trace_id, TraceIdOf("ord-1"));
  EXPECT_THAT(sink_->opened(), SizeIs(1));
  EXPECT_EQ(Detected(kMessageNotConsumed, "PRICE_CALCULATED"), 1u);
  EXPECT_EQ(detector_->Stats().tracked_messages, 0u);

  // Within PRICE_CALCULATED's own SLA of 2 h: the message gap does not fire again.
  clock_.Advance(30 * kMinute);
  EXPECT_EQ(detector_->FireDue(), 0u);
  Feed(order);  // the same record again
  clock_.Advance(30 * kMinute);
  EXPECT_EQ(detector_->FireDue(), 0u);
  EXPECT_THAT(sink_->opened(), SizeIs(1));
}

TEST_F(GapDetectorTest, MessageConsumedBeforeItsDeadlineOpensNothing) {
  const uint64_t published = kNow;
  OrderRecord order = Order("ord-1", ChainTo("PRICE_CALCULATED", kNow));
  order.messages = {Hop("msg-7", "mes.manufacturing.requests", published)};
  Feed(order);

  clock_.Advance(kMinute);
  order.messages[0].consumed_at_unix_nano = kNow + kMinute;
  Feed(order);
  EXPECT_EQ(detector_->Stats().tracked_messages, 0u);

  clock_.Set(published + kMessageSla + kGrace);
  EXPECT_EQ(detector_->FireDue(), 0u);
  EXPECT_THAT(Stored(), IsEmpty());
  EXPECT_THAT(sink_->opened(), IsEmpty());
}

TEST_F(GapDetectorTest, MessageConsumedInTheStoreButNotYetToldOpensNothing) {
  OrderRecord order = Order("ord-1", ChainTo("PRICE_CALCULATED", kNow));
  order.messages = {Hop("msg-7", "mes.manufacturing.requests", kNow)};
  Feed(order);
  order.messages[0].consumed_at_unix_nano = kNow + kSecond;
  orders_.Put(order);  // ingest wrote it, the detector has not heard yet

  clock_.Set(kNow + kMessageSla + kGrace);
  EXPECT_EQ(detector_->FireDue(), 0u);
  EXPECT_THAT(Stored(), IsEmpty());
}

TEST_F(GapDetectorTest, MessageConsumedAfterItsDeadlineResolvesTheGap) {
  OrderRecord order = Order("ord-1", ChainTo("PRICE_CALCULATED", kNow));
  order.messages = {Hop("msg-7", "mes.manufacturing.requests", kNow),
                    Hop("msg-8", "mes.manufacturing.requests", kNow, kNow + kSecond)};
  Feed(order);
  clock_.Set(kNow + kMessageSla + kGrace);
  ASSERT_EQ(detector_->FireDue(), 1u);  // msg-8 was consumed
  EXPECT_EQ(detector_->OpenGapsOf("ord-1")[0].message_id, "msg-7");

  clock_.Advance(kMinute);
  const uint64_t consumed = clock_.NowUnixNano() - kSecond;
  order.messages[0].consumed_at_unix_nano = consumed;
  Feed(order);
  EXPECT_THAT(StoredOpen(), IsEmpty());
  ASSERT_THAT(sink_->resolved(), SizeIs(1));
  EXPECT_EQ(sink_->resolved()[0].message_id, "msg-7");
  // Resolved when the consumer took it (event time), by "consumed".
  EXPECT_EQ(sink_->resolved()[0].resolved_at_unix_nano, consumed);
  EXPECT_EQ(sink_->resolved()[0].resolved_by, "consumed");
  EXPECT_EQ(OpenCount(kMessageNotConsumed, "PRICE_CALCULATED"), 0u);
}

TEST_F(GapDetectorTest, MessageGapStaysOpenWhenTheOrderMovesOnWithoutItsConsumer) {
  OrderRecord order = Order("ord-1", ChainTo("PRICE_CALCULATED", kNow));
  order.messages = {Hop("msg-7", "q", kNow)};
  Feed(order);
  clock_.Set(kNow + kMessageSla + kGrace);
  ASSERT_EQ(detector_->FireDue(), 1u);

  Feed(Then(order, "MANUFACTURING_APPROVED", clock_.NowUnixNano()));
  EXPECT_THAT(Ids(detector_->OpenGapsOf("ord-1")),
              ElementsAre(GapId("ord-1", kMessageNotConsumed, "", "msg-7")));
  EXPECT_THAT(Ids(StoredOpen()), ElementsAre(GapId("ord-1", kMessageNotConsumed, "", "msg-7")));
}

// Conflicts

TEST_F(GapDetectorTest, ForbiddenTransitionOpensOnceTheEvidenceIsIn) {
  StageModelOptions options;
  options.statuses = {"INITIATED",     "SUBMITTED", "EXPRESS_REVIEW",
                      "MANUAL_REVIEW", "APPROVED",  "CLOSED"};
  options.transitions = {{"INITIATED", "SUBMITTED"},     {"SUBMITTED", "EXPRESS_REVIEW"},
                         {"SUBMITTED", "MANUAL_REVIEW"}, {"EXPRESS_REVIEW", "APPROVED"},
                         {"MANUAL_REVIEW", "APPROVED"},  {"APPROVED", "CLOSED"}};
  options.terminal = {"CLOSED"};
  options.message_sla_nanos = kMinute;
  UseModel(options);

  const uint64_t moved_at = kNow - 30 * kSecond;
  Feed(Order("ord-1", {Reached("INITIATED", "", kNow - kHour, 1),
                       Reached("SUBMITTED", "INITIATED", kNow - 50 * kMinute, 2),
                       Reached("EXPRESS_REVIEW", "SUBMITTED", kNow - 40 * kMinute, 3),
                       Reached("MANUAL_REVIEW", "EXPRESS_REVIEW", moved_at, 4, "review-svc")}));
  // A conflict opens once every source has reported past it (a status between may still be on
  // its way), not at once.
  EXPECT_THAT(detector_->OpenGapsOf("ord-1"), IsEmpty());
  EXPECT_GT(detector_->Stats().held, 0u);
  Settle();

  std::vector<Gap> open = detector_->OpenGapsOf("ord-1");
  ASSERT_THAT(open, SizeIs(1));
  const Gap& gap = open[0];
  EXPECT_EQ(gap.kind, kForbiddenTransition);
  EXPECT_EQ(gap.stage, "MANUAL_REVIEW");
  EXPECT_THAT(gap.expected, ElementsAre("APPROVED"));
  EXPECT_EQ(gap.service, "review-svc");
  EXPECT_EQ(gap.since_unix_nano, moved_at);
  EXPECT_EQ(gap.deadline_unix_nano, moved_at);
  EXPECT_EQ(gap.detected_at_unix_nano, kNow + kIdleAfter);
  EXPECT_TRUE(gap.paged);
  EXPECT_THAT(sink_->opened(), SizeIs(1));
  EXPECT_EQ(Detected(kForbiddenTransition, "MANUAL_REVIEW"), 1u);
  EXPECT_EQ(StoredGap(gap.id), gap);
}

// A jump forward with no path of allowed transitions in between is forbidden, not a skip.
TEST_F(GapDetectorTest, ForwardJumpOffTheLifecyclesPathsIsForbiddenNotSkipped) {
  StageModelOptions options;
  options.statuses = {"NEW", "PAID", "REFUNDED", "REFUND_SENT", "SHIPPED", "CLOSED"};
  options.transitions = {
      {"NEW", "PAID"},           {"PAID", "REFUNDED"}, {"REFUNDED", "REFUND_SENT"},
      {"REFUND_SENT", "CLOSED"}, {"PAID", "SHIPPED"},  {"SHIPPED", "CLOSED"}};
  options.terminal = {"CLOSED"};
  options.message_sla_nanos = kMinute;
  UseModel(options);

  Feed(Order("ord-1", {Reached("NEW", "", kNow - 3 * kMinute, 1),
                       Reached("PAID", "NEW", kNow - 2 * kMinute, 2),
                       Reached("REFUNDED", "PAID", kNow - kMinute, 3),
                       Reached("SHIPPED", "REFUNDED", kNow, 4, "logistics")}));
  Settle();
  std::vector<Gap> open = detector_->OpenGapsOf("ord-1");
  ASSERT_THAT(open, SizeIs(1));
  EXPECT_EQ(open[0].kind, kForbiddenTransition);
  EXPECT_EQ(open[0].stage, "SHIPPED");
  EXPECT_THAT(open[0].expected, ElementsAre("REFUND_SENT"));
}

TEST_F(GapDetectorTest, TransitionFromAnUnknownStatusIsForbidden) {
  Feed(Order("ord-1", {Reached("INITIATED", "", kNow - kMinute, 1),
                       Reached("FILE_UPLOADED", "ON_HOLD", kNow, 2)}));
  Settle();
  std::vector<Gap> open = detector_->OpenGapsOf("ord-1");
  ASSERT_THAT(open, SizeIs(1));
  EXPECT_EQ(open[0].kind, kForbiddenTransition);
  EXPECT_EQ(open[0].stage, "FILE_UPLOADED");
}

TEST_F(GapDetectorTest, SkipIntoTheTerminalStatusIsRecordedResolvedAndNotAnnounced) {
  // PACKAGING -> CLOSED skips SHIPPED; the order is finished in the same record.
  std::vector<StatusReached> statuses = ChainTo("PACKAGING", kNow - kMinute);
  statuses.push_back(Reached("CLOSED", "PACKAGING", kNow - kSecond, 20, "crm-api"));
  const OrderRecord order = Order("ord-1", statuses);
  Feed(order);
  Settle();

  EXPECT_THAT(StoredOpen(), IsEmpty());
  std::vector<Gap> gaps = Stored();
  ASSERT_THAT(gaps, SizeIs(1));
  EXPECT_EQ(gaps[0].kind, kSkippedStatus);
  EXPECT_EQ(gaps[0].stage, "SHIPPED");
  EXPECT_EQ(gaps[0].resolved_by, "CLOSED");
  EXPECT_EQ(gaps[0].resolved_at_unix_nano, kNow - kSecond);
  // A conflict seen in the same record as CLOSED is recorded resolved, counted, and not
  // announced.
  EXPECT_FALSE(gaps[0].paged);
  EXPECT_THAT(sink_->opened(), IsEmpty());
  EXPECT_THAT(sink_->resolved(), IsEmpty());
  // Counted as found, not as paged (gap_detected_total counts what paged).
  EXPECT_EQ(Detected(kSkippedStatus, "SHIPPED"), 0u);
  EXPECT_EQ(FoundResolved(kSkippedStatus, "SHIPPED"), 1u);
  // Fed again, it is not recorded a second time.
  Feed(order);
  EXPECT_EQ(FoundResolved(kSkippedStatus, "SHIPPED"), 1u);
  EXPECT_EQ(store_.Puts(gaps[0].id), 1);
}

TEST_F(GapDetectorTest, SkippedStatusNamesTheStageThatWasSkipped) {
  // MANUFACTURING_COMPLETED -> SHIPPED skips PACKAGING.
  std::vector<StatusReached> statuses = ChainTo("MANUFACTURING_COMPLETED", kNow - kMinute);
  const uint64_t shipped_at = kNow - 10 * kSecond;
  statuses.push_back(Reached("SHIPPED", "MANUFACTURING_COMPLETED", shipped_at, 20, "logistics"));
  Feed(Order("ord-1", statuses));
  Settle();

  std::vector<Gap> open = detector_->OpenGapsOf("ord-1");
  ASSERT_THAT(open, SizeIs(1));
  EXPECT_EQ(open[0].id, GapId("ord-1", kSkippedStatus, "PACKAGING"));
  EXPECT_EQ(open[0].kind, kSkippedStatus);
  EXPECT_EQ(open[0].stage, "PACKAGING");
  EXPECT_THAT(open[0].expected, ElementsAre("PACKAGING"));
  EXPECT_EQ(open[0].service, "logistics");
  EXPECT_EQ(open[0].since_unix_nano, shipped_at);
  EXPECT_THAT(sink_->opened(), SizeIs(1));
  EXPECT_EQ(Detected(kSkippedStatus, "PACKAGING"), 1u);
  EXPECT_EQ(OpenCount(kSkippedStatus, "PACKAGING"), 1u);
}

TEST_F(GapDetectorTest, StatusBackwardsWhenALaterEventCarriesAnEarlierStatus) {
  // In record order (event version, then time), as the record builder keeps it.
  Feed(Order("ord-1", {Reached("INITIATED", "", kNow - 4 * kMinute, 1),
                       Reached("FILE_UPLOADED", "INITIATED", kNow - 3 * kMinute, 2),
                       Reached("PRICE_CALCULATION_STARTED", "SUBMITTED", kNow - 2 * kMinute, 4),
                       Reached("SUBMITTED", "FILE_UPLOADED", kNow - kMinute, 7, "legacy-erp")}));
  Settle();

  std::vector<Gap> open = detector_->OpenGapsOf("ord-1");
  ASSERT_THAT(open, SizeIs(1));
  EXPECT_EQ(open[0].kind, kStatusBackwards);
  EXPECT_EQ(open[0].stage, "SUBMITTED");
  EXPECT_THAT(open[0].expected, ElementsAre("PRICE_CALCULATED"));
  EXPECT_EQ(open[0].service, "legacy-erp");
  EXPECT_EQ(open[0].since_unix_nano, kNow - kMinute);
  EXPECT_THAT(sink_->opened(), SizeIs(1));
}

TEST_F(GapDetectorTest, StatusBackwardsWhenATransitionLeadsBack) {
  Feed(Order("ord-1", {Reached("INITIATED", "", kNow - 4 * kMinute),
                       Reached("PRICE_CALCULATED", "PRICE_CALCULATION_STARTED", kNow - 2 * kMinute),
                       Reached("SUBMITTED", "PRICE_CALCULATED", kNow - kMinute)}));
  Settle();
  GapHistoryQuery backwards;
  backwards.kind = std::string(kStatusBackwards);
  std::vector<Gap> open = QueryStore(backwards);
  ASSERT_THAT(open, SizeIs(1));
  EXPECT_EQ(open[0].stage, "SUBMITTED");
}

Operation Refusal(const OrderRecord& order, uint64_t at, std::string reported_status) {
  Operation refusal;
  refusal.span_name = "StartManufacturing";
  refusal.service = "mes-api";
  refusal.at_unix_nano = at;
  refusal.trace_id = order.trace_id;
  refusal.error_code = "FAILED_PRECONDITION";
  refusal.error_message = "order is not approved";
  refusal.reported_status = std::move(reported_status);
  return refusal;
}

TEST_F(GapDetectorTest, StatusDisagreementWhenAServiceHoldsAnOlderStatus) {
  const uint64_t approved_at = kNow - 10 * kSecond;
  OrderRecord order = Order("ord-1", ChainTo("MANUFACTURING_APPROVED", approved_at));
  order.last_error = Refusal(order, kNow - 2 * kSecond, "PRICE_CALCULATED");
  Feed(order);
  Settle();

  std::vector<Gap> open = detector_->OpenGapsOf("ord-1");
  ASSERT_THAT(open, SizeIs(1));
  EXPECT_EQ(open[0].kind, kStatusDisagreement);
  EXPECT_EQ(open[0].stage, "MANUFACTURING_APPROVED");
  EXPECT_THAT(open[0].expected, ElementsAre("MANUFACTURING_APPROVED"));
  EXPECT_EQ(open[0].service, "mes-api");
  EXPECT_EQ(open[0].since_unix_nano, approved_at);
  EXPECT_EQ(open[0].deadline_unix_nano, kNow - 2 * kSecond);
  EXPECT_EQ(open[0].detected_at_unix_nano, kNow + kIdleAfter);
  EXPECT_THAT(sink_->opened(), SizeIs(1));

  // It is about this stage: once the order moves on, it is answered. (The record keeps its
  // last error: records only grow.)
  clock_.Advance(kMinute);
  Feed(Then(order, "MANUFACTURING_STARTED", kNow + 30 * kSecond));
  EXPECT_THAT(detector_->OpenGapsOf("ord-1"), IsEmpty());
  ASSERT_THAT(sink_->resolved(), SizeIs(1));
  EXPECT_EQ(sink_->resolved()[0].kind, kStatusDisagreement);
  EXPECT_EQ(sink_->resolved()[0].resolved_by, "MANUFACTURING_STARTED");
  EXPECT_EQ(sink_->resolved()[0].resolved_at_unix_nano, kNow + 30 * kSecond);
}

TEST_F(GapDetectorTest, NoDisagreementFromAnErrorBeforeTheStatusOrWithAnUnknownStatus) {
  const uint64_t approved_at = kNow - 10 * kSecond;
  OrderRecord early = Order("ord-early", ChainTo("MANUFACTURING_APPROVED", approved_at));
  // Refused before the approval was known.
  early.last_error = Refusal(early, approved_at - kSecond, "PRICE_CALCULATED");
  Feed(early);

  OrderRecord unknown = Order("ord-unknown", ChainTo("MANUFACTURING_APPROVED", approved_at));
  unknown.last_error = Refusal(unknown, kNow, "WHO_KNOWS");
  Feed(unknown);

  OrderRecord agreeing = Order("ord-agreeing", ChainTo("MANUFACTURING_APPROVED", approved_at));
  agreeing.last_error = Refusal(agreeing, kNow, "MANUFACTURING_APPROVED");
  Feed(agreeing);
  Settle();

  EXPECT_THAT(Stored(), IsEmpty());
}

TEST_F(GapDetectorTest, ConflictsStayOpenUntilTheOrderCloses) {
  // SUBMITTED -> PRICE_CALCULATED skips PRICE_CALCULATION_STARTED.
  OrderRecord order = Order("ord-1", ChainTo("SUBMITTED", kNow - 2 * kMinute));
  order.statuses.push_back(Reached("PRICE_CALCULATED", "SUBMITTED", kNow - kMinute, 5));
  TouchLastSuccess(order);
  Feed(order);
  Settle();
  const std::string id = GapId("ord-1", kSkippedStatus, "PRICE_CALCULATION_STARTED");
  ASSERT_THAT(Ids(detector_->OpenGapsOf("ord-1")), ElementsAre(id));

  clock_.Advance(kHour);
  for (const char* status : {"MANUFACTURING_APPROVED", "MANUFACTURING_STARTED",
                             "MANUFACTURING_COMPLETED", "PACKAGING"}) {
    order = Then(order, status, order.CurrentStatus()->at_unix_nano + kMinute);
  }
  Feed(order);
  EXPECT_THAT(Ids(detector_->OpenGapsOf("ord-1")), ElementsAre(id));
  EXPECT_THAT(sink_->resolved(), IsEmpty());

  clock_.Advance(kHour);
  order = Then(order, "SHIPPED", clock_.NowUnixNano() - kMinute);
  const uint64_t closed_at = clock_.NowUnixNano();
  order = Then(order, "CLOSED", closed_at);
  Feed(order);
  EXPECT_THAT(detector_->OpenGapsOf("ord-1"), IsEmpty());
  ASSERT_THAT(sink_->resolved(), SizeIs(1));
  EXPECT_EQ(sink_->resolved()[0].kind, kSkippedStatus);
  EXPECT_EQ(sink_->resolved()[0].resolved_at_unix_nano, closed_at);
  EXPECT_EQ(sink_->resolved()[0].resolved_by, "CLOSED");
  EXPECT_EQ(OpenCount(kSkippedStatus, "PRICE_CALCULATION_STARTED"), 0u);
  EXPECT_THAT(sink_->opened(), SizeIs(1));
  EXPECT_EQ(StoredGap(id)->resolved_by, "CLOSED");
}

TEST_F(GapDetectorTest, ConflictSeenTwiceOpensOneGap) {
  std::vector<StatusReached> statuses = ChainTo("MANUFACTURING_COMPLETED", kNow - kMinute);
  statuses.push_back(Reached("SHIPPED", "MANUFACTURING_COMPLETED", kNow, 20));
  const OrderRecord order = Order("ord-1", statuses);
  Feed(order);
  Feed(order);
  Settle();
  clock_.Advance(kMinute);
  Feed(order);
  EXPECT_THAT(Stored(), SizeIs(1));
  EXPECT_THAT(sink_->opened(), SizeIs(1));
  EXPECT_EQ(Detected(kSkippedStatus, "PACKAGING"), 1u);
  EXPECT_EQ(store_.TotalPuts(), 1);
}

// No double fire, restarts

TEST_F(GapDetectorTest, SameRecordFedTwiceOpensOneGap) {
  const OrderRecord order = Order("ord-1", ChainTo("SUBMITTED", kNow));
  Feed(order);
  Feed(order);
  EXPECT_EQ(detector_->Stats().tracked_orders, 1u);
  clock_.Set(kNow + kSubmittedSla + kGrace);
  EXPECT_EQ(detector_->FireDue(), 1u);
  EXPECT_EQ(detector_->FireDue(), 0u);

  // The same record after the gap opened: still one gap, and no deadline armed again.
  Feed(order);
  EXPECT_EQ(detector_->Stats().tracked_orders, 0u);
  clock_.Advance(kDay);
  EXPECT_EQ(detector_->FireDue(), 0u);
  EXPECT_THAT(sink_->opened(), SizeIs(1));
  EXPECT_EQ(Detected(kMissingTransition, "SUBMITTED"), 1u);
  Stored();
  EXPECT_EQ(store_.TotalPuts(), 1);
}

TEST_F(GapDetectorTest, RecoverReannouncesOpenGapsWithoutCountingOrSavingThemAgain) {
  const uint64_t t0 = kNow;
  const OrderRecord stuck = Order("ord-stuck", ChainTo("SUBMITTED", t0));
  const OrderRecord answered = Order("ord-answered", ChainTo("SUBMITTED", t0), "globex");
  std::vector<StatusReached> skip = ChainTo("MANUFACTURING_COMPLETED", t0);
  skip.push_back(Reached("SHIPPED", "MANUFACTURING_COMPLETED", t0, 20));
  const OrderRecord conflicting = Order("ord-conflict", skip);
  Feed(stuck);
  Feed(answered);
  Feed(conflicting);
  clock_.Set(t0 + kSubmittedSla + kGrace);
  ASSERT_EQ(detector_->FireDue(), 2u);
  clock_.Advance(kSecond);
  const OrderRecord answered_later =
      Then(answered, "PRICE_CALCULATION_STARTED", clock_.NowUnixNano());
  Feed(answered_later);
  ASSERT_THAT(StoredOpen(), SizeIs(2));
  const int puts = store_.TotalPuts();  // how the writer batched them may vary
  const std::vector<Gap> before = Stored();

  clock_.Advance(kMinute);
  Restart();
  ASSERT_TRUE(detector_->Recover().ok());
  EXPECT_THAT(Ids(sink_->opened()),
              UnorderedElementsAre(GapId("ord-stuck", kMissingTransition, "SUBMITTED"),
                                   GapId("ord-conflict", kSkippedStatus, "PACKAGING")));
  EXPECT_THAT(sink_->resolved(), IsEmpty());
  EXPECT_THAT(detector_->Stats().detected_total, IsEmpty());
  EXPECT_EQ(OpenCount(kMissingTransition, "SUBMITTED"), 1u);
  EXPECT_EQ(OpenCount(kSkippedStatus, "PACKAGING"), 1u);
  EXPECT_THAT(detector_->OpenGapsOf("ord-stuck"), SizeIs(1));

  // Every stored order is restored; nothing opens, resolves or is written again.
  for (const OrderRecord& record : {stuck, answered_later, conflicting}) {
    detector_->RestoreOrder(record);
  }
  EXPECT_EQ(detector_->FireDue(), 0u);
  clock_.Advance(kMinute);
  EXPECT_EQ(detector_->FireDue(), 0u);
  EXPECT_THAT(sink_->opened(), SizeIs(2));
  EXPECT_THAT(sink_->resolved(), IsEmpty());
  EXPECT_THAT(detector_->Stats().detected_total, IsEmpty());
  EXPECT_EQ(Stored(), before);  // the same gaps, the same moments
  EXPECT_EQ(store_.TotalPuts(), puts);

  // A restored gap still resolves when its answer arrives.
  Feed(Then(stuck, "PRICE_CALCULATION_STARTED", clock_.NowUnixNano()));
  ASSERT_THAT(sink_->resolved(), SizeIs(1));
  EXPECT_EQ(sink_->resolved()[0].id, GapId("ord-stuck", kMissingTransition, "SUBMITTED"));
  EXPECT_FALSE(StoredGap(sink_->resolved()[0].id)->IsOpen());
}

TEST_F(GapDetectorTest, DeadlineThatPassedWhileDownIsJudgedOnceTheStartupHoldEnds) {
  const OrderRecord order = Order("ord-1", ChainTo("SUBMITTED", kNow));
  Feed(order);
  clock_.Advance(kMinute);
  EXPECT_EQ(detector_->FireDue(), 0u);

  detector_.reset();  // down
  clock_.Set(kNow + kHour);
  Restart();
  ASSERT_TRUE(detector_->Recover().ok());
  detector_->RestoreOrder(order);  // rebuilt from the store
  // Exporters may still flush what they queued while ordertrace was down, so nothing is judged
  // on the wall clock for idle_after after the start.
  EXPECT_EQ(detector_->FireDue(), 0u);
  EXPECT_EQ(detector_->Stats().held, 1u);
  clock_.Advance(kIdleAfter);
  EXPECT_EQ(detector_->FireDue(), 1u);
  std::vector<Gap> open = detector_->OpenGapsOf("ord-1");
  ASSERT_THAT(open, SizeIs(1));
  EXPECT_EQ(open[0].deadline_unix_nano, kNow + kSubmittedSla + kGrace);
  EXPECT_EQ(open[0].detected_at_unix_nano, kNow + kHour + kIdleAfter);
  EXPECT_EQ(Detected(kMissingTransition, "SUBMITTED"), 1u);
}

TEST_F(GapDetectorTest, RecoverWithoutStoreIsANoOp) {
  GapDetector detector(*model_, clock_, orders_.Lookup(), nullptr, nullptr, options_);
  EXPECT_TRUE(detector.Recover().ok());
  const OrderRecord order = Order("ord-1", ChainTo("SUBMITTED", kNow - kDay));
  orders_.Put(order);
  detector.OnOrderChanged(nullptr, order);
  clock_.Advance(kIdleAfter);
  EXPECT_EQ(detector.FireDue(), 1u);  // no sink, no store: still detected
  EXPECT_THAT(detector.OpenGapsOf("ord-1"), SizeIs(1));
  detector.Flush();  // returns at once: there is no writer
}

// Lookups at fire time

TEST_F(GapDetectorTest, LookupFailureAtFireTimeRetriesUntilTheGapOpens) {
  const uint64_t deadline = kNow + kSubmittedSla + kGrace;
  Feed(Order("ord-1", ChainTo("SUBMITTED", kNow)));
  orders_.SetFailing(true);
  clock_.Set(deadline);
  EXPECT_EQ(detector_->FireDue(), 0u);
  EXPECT_EQ(detector_->Stats().lookup_errors, 1u);
  EXPECT_EQ(detector_->NextDeadline(), deadline + kSecond);  // retried, not forgotten

  clock_.Set(deadline + kSecond);
  EXPECT_EQ(detector_->FireDue(), 0u);  // still failing
  EXPECT_EQ(detector_->Stats().lookup_errors, 2u);

  orders_.SetFailing(false);
  clock_.Set(deadline + 2 * kSecond);
  EXPECT_EQ(detector_->FireDue(), 1u);
  EXPECT_THAT(sink_->opened(), SizeIs(1));
  EXPECT_EQ(detector_->FireDue(), 0u);
}

// The deadline a gap reports is since + SLA + grace (gap.h), which Alertmanager's startsAt and
// the API's detection delay are computed from; a retried lookup must not move it.
TEST_F(GapDetectorTest, GapOpenedAfterALookupRetryKeepsItsTrueDeadline) {
  const uint64_t deadline = kNow + kSubmittedSla + kGrace;
  Feed(Order("ord-1", ChainTo("SUBMITTED", kNow)));
  OrderRecord order = Order("ord-2", ChainTo("PRICE_CALCULATED", kNow));
  order.messages = {Hop("msg-7", "q", kNow)};
  Feed(order);
  orders_.SetFailing(true);
  clock_.Set(deadline);
  EXPECT_EQ(detector_->FireDue(), 0u);
  orders_.SetFailing(false);
  clock_.Set(deadline + 3 * kSecond);
  EXPECT_EQ(detector_->FireDue(), 2u);

  std::vector<Gap> stage = detector_->OpenGapsOf("ord-1");
  ASSERT_THAT(stage, SizeIs(1));
  EXPECT_EQ(stage[0].deadline_unix_nano, deadline);
  EXPECT_EQ(stage[0].detected_at_unix_nano, deadline + 3 * kSecond);
  std::vector<Gap> message = detector_->OpenGapsOf("ord-2");
  ASSERT_THAT(message, SizeIs(1));
  EXPECT_EQ(message[0].deadline_unix_nano, kNow + kMessageSla + kGrace);
}

TEST_F(GapDetectorTest, OrderThatMovedOnByFireTimeOpensNothing) {
  const OrderRecord order = Order("ord-1", ChainTo("SUBMITTED", kNow));
  Feed(order);
  Feed(Order("ord-gone", ChainTo("SUBMITTED", kNow)));
  // The store already holds newer records the detector has not been told about.
  orders_.Put(Then(order, "PRICE_CALCULATION_STARTED", kNow + kMinute));
  orders_.Erase("ord-gone");

  clock_.Set(kNow + kSubmittedSla + kGrace);
  EXPECT_EQ(detector_->FireDue(), 0u);
  EXPECT_THAT(Stored(), IsEmpty());
  EXPECT_THAT(sink_->opened(), IsEmpty());
  EXPECT_EQ(detector_->Stats().lookup_errors, 0u);
}

// Gap history: the store holds what the detector decided.

TEST_F(GapDetectorTest, StoreAnswersFiltersNewestSinceFirst) {
  // ord-b (globex): a skipped status at kNow.
  std::vector<StatusReached> skip = ChainTo("MANUFACTURING_COMPLETED", kNow - kMinute);
  skip.push_back(Reached("SHIPPED", "MANUFACTURING_COMPLETED", kNow, 20));
  Feed(Order("ord-b", skip, "globex"));
  // ord-c (acme): a message published an hour ago, never consumed.
  OrderRecord c = Order("ord-c", ChainTo("PRICE_CALCULATED", kNow - kHour));
  c.messages = {Hop("msg-c", "q", kNow - kHour)};
  Feed(c);
  // ord-a (acme): in SUBMITTED for two hours.
  Feed(Order("ord-a", ChainTo("SUBMITTED", kNow - 2 * kHour)));
  // ord-d (globex): in SUBMITTED for three hours, then answered.
  const OrderRecord d = Order("ord-d", ChainTo("SUBMITTED", kNow - 3 * kHour), "globex");
  Feed(d);
  clock_.Advance(kIdleAfter);
  ASSERT_EQ(detector_->FireDue(), 3u);
  Feed(Then(d, "PRICE_CALCULATION_STARTED", clock_.NowUnixNano()));

  auto orders = [&](GapHistoryQuery query) { return OrderIds(QueryStore(query)); };
  auto where = [](GapHistoryQuery::State state) {
    GapHistoryQuery query;
    query.state = state;
    return query;
  };
  const auto kAll = GapHistoryQuery::State::kAll;
  // Newest first is by `since` (event time), not by detection.
  EXPECT_THAT(orders({}), ElementsAre("ord-b", "ord-c", "ord-a"));
  EXPECT_THAT(orders(where(GapHistoryQuery::State::kResolved)), ElementsAre("ord-d"));
  EXPECT_THAT(orders(where(kAll)), ElementsAre("ord-b", "ord-c", "ord-a", "ord-d"));
  GapHistoryQuery query = where(kAll);
  query.kind = std::string(kMissingTransition);
  EXPECT_THAT(orders(query), ElementsAre("ord-a", "ord-d"));
  query.partner_id = "globex";
  EXPECT_THAT(orders(query), ElementsAre("ord-d"));
  query = {};
  query.kind = std::string(kMessageNotConsumed);
  EXPECT_THAT(orders(query), ElementsAre("ord-c"));
  query.kind = "no_such_kind";
  EXPECT_THAT(orders(query), IsEmpty());
  query = where(kAll);
  query.stage = "SUBMITTED";
  EXPECT_THAT(orders(query), ElementsAre("ord-a", "ord-d"));
  query = where(kAll);
  query.order_id = "ord-c";
  EXPECT_THAT(orders(query), ElementsAre("ord-c"));

  // Pages of two, with a cursor.
  query = where(kAll);
  query.limit = 2;
  detector_->Flush();
  absl::StatusOr<GapPage> page = store_.Query(query);
  ASSERT_TRUE(page.ok());
  EXPECT_THAT(OrderIds(page->gaps), ElementsAre("ord-b", "ord-c"));
  ASSERT_FALSE(page->next_cursor.empty());
  query.cursor = page->next_cursor;
  page = store_.Query(query);
  ASSERT_TRUE(page.ok());
  EXPECT_THAT(OrderIds(page->gaps), ElementsAre("ord-a", "ord-d"));
}

TEST_F(GapDetectorTest, OpenGapsOfListsAnOrdersOpenGapsOnly) {
  Feed(Order("ord-a", ChainTo("SUBMITTED", kNow - kHour)));
  OrderRecord b = Order("ord-b", ChainTo("PRICE_CALCULATED", kNow - kHour));
  b.messages = {Hop("msg-b", "q", kNow - kHour)};
  Feed(b);
  const OrderRecord r = Order("ord-r", ChainTo("SUBMITTED", kNow - kHour));
  Feed(r);
  Feed(Order("ord-quiet", ChainTo("SUBMITTED", kNow)));
  clock_.Advance(kIdleAfter);
  ASSERT_EQ(detector_->FireDue(), 3u);
  Feed(Then(r, "PRICE_CALCULATION_STARTED", kNow));

  EXPECT_THAT(Ids(detector_->OpenGapsOf("ord-a")),
              ElementsAre(GapId("ord-a", kMissingTransition, "SUBMITTED")));
  EXPECT_THAT(Ids(detector_->OpenGapsOf("ord-b")),
              ElementsAre(GapId("ord-b", kMessageNotConsumed, "", "msg-b")));
  EXPECT_THAT(detector_->OpenGapsOf("ord-r"), IsEmpty());  // resolved
  EXPECT_THAT(detector_->OpenGapsOf("ord-quiet"), IsEmpty());
  EXPECT_THAT(detector_->OpenGapsOf("ord-unknown"), IsEmpty());
}

TEST_F(GapDetectorTest, NextDeadlineIsTheEarliestPendingOne) {
  EXPECT_EQ(detector_->NextDeadline(), 0u);
  Feed(Order("ord-calc", ChainTo("PRICE_CALCULATION_STARTED", kNow)));
  EXPECT_EQ(detector_->NextDeadline(), kNow + kCalculationSla + kGrace);
  Feed(Order("ord-sub", ChainTo("SUBMITTED", kNow)));
  EXPECT_EQ(detector_->NextDeadline(), kNow + kSubmittedSla + kGrace);
  OrderRecord msg = Order("ord-msg", ChainTo("PRICE_CALCULATED", kNow));
  msg.messages = {Hop("msg-1", "q", kNow - kMinute)};
  Feed(msg);
  EXPECT_EQ(detector_->NextDeadline(), kNow - kMinute + kMessageSla + kGrace);
  EXPECT_EQ(detector_->Stats().tracked_orders, 3u);
  EXPECT_EQ(detector_->Stats().tracked_messages, 1u);

  clock_.Set(kNow + kMessageSla);
  ASSERT_EQ(detector_->FireDue(), 1u);
  EXPECT_EQ(detector_->NextDeadline(), kNow + kSubmittedSla + kGrace);
  clock_.Set(kNow + kSubmittedSla + kGrace);
  ASSERT_EQ(detector_->FireDue(), 1u);
  EXPECT_EQ(detector_->NextDeadline(), kNow + kCalculationSla + kGrace);
}

TEST_F(GapDetectorTest, RearmingOneOrderTenThousandTimesKeepsTimersBounded) {
  uint64_t last_deadline = 0;
  uint64_t max_pending = 0;
  for (uint64_t i = 0; i < 10000; ++i) {
    // Deadlines jump back and forth, so superseded timers sit both before and after the live one.
    const uint64_t at = kNow + ((i * 7919) % 10007) * kSecond / 10;
    Feed(Order("ord-1", ChainTo("SUBMITTED", at)));
    last_deadline = at + kSubmittedSla + kGrace;
    max_pending = std::max(max_pending, detector_->Stats().pending_timers);
  }
  EXPECT_LE(max_pending, 2048u);
  EXPECT_EQ(detector_->Stats().tracked_orders, 1u);

  clock_.Set(last_deadline - 1);  // past most superseded deadlines: none of them fires
  EXPECT_EQ(detector_->FireDue(), 0u);
  clock_.Set(last_deadline);
  EXPECT_EQ(detector_->FireDue(), 1u);
  EXPECT_EQ(detector_->OpenGapsOf("ord-1")[0].deadline_unix_nano, last_deadline);
  clock_.Advance(kDay);
  EXPECT_EQ(detector_->FireDue(), 0u);
  EXPECT_THAT(sink_->opened(), SizeIs(1));
  EXPECT_LE(detector_->Stats().pending_timers, 2048u);
}

TEST_F(GapDetectorTest, ManyOrdersEachFireOnce) {
  constexpr int kOrders = 500;
  for (int i = 0; i < kOrders; ++i) {
    Feed(Order("ord-" + std::to_string(i), ChainTo("SUBMITTED", kNow + i * kSecond)));
  }
  size_t opened = 0;
  for (int step = 0; step <= kOrders; ++step) {
    clock_.Set(kNow + kSubmittedSla + kGrace + step * kSecond);
    opened += detector_->FireDue();
    EXPECT_EQ(opened, static_cast<size_t>(step + 1 > kOrders ? kOrders : step + 1));
  }
  EXPECT_EQ(Detected(kMissingTransition, "SUBMITTED"), static_cast<uint64_t>(kOrders));
  EXPECT_EQ(OpenCount(kMissingTransition, "SUBMITTED"), static_cast<uint64_t>(kOrders));
}

// Breaches already over, withdrawals, conflicts whatever arrived together, restarts, silent
// sources, a failing store (docs/gaps.md).

TEST_F(GapDetectorTest, OverrunFoundAlreadyOverIsRecordedNotPaged) {
  const uint64_t t = kNow - kHour - kMinute;  // FILE_UPLOADED's own deadline is still ahead
  const OrderRecord order =
      Then(Order("ord-1", {Reached("INITIATED", "", t, 1)}), "FILE_UPLOADED", t + kHour);
  Feed(order);
  Settle();

  const std::string id = GapId("ord-1", kMissingTransition, "INITIATED");
  std::optional<Gap> gap = StoredGap(id);
  ASSERT_TRUE(gap.has_value());
  EXPECT_EQ(gap->since_unix_nano, t);
  EXPECT_EQ(gap->deadline_unix_nano, t + kInitiatedSla + kGrace);
  EXPECT_EQ(gap->resolved_by, "FILE_UPLOADED");
  EXPECT_EQ(gap->resolved_at_unix_nano, t + kHour);
  EXPECT_FALSE(gap->paged);
  EXPECT_EQ(gap->Outcome(), EvaluateOrder(*model_, order).settled.at(0).Outcome());
  EXPECT_THAT(sink_->opened(), IsEmpty());
  EXPECT_THAT(sink_->resolved(), IsEmpty());
  EXPECT_EQ(Detected(kMissingTransition, "INITIATED"), 0u) << "counted as paged";
  EXPECT_EQ(FoundResolved(kMissingTransition, "INITIATED"), 1u);
  EXPECT_EQ(OpenCount(kMissingTransition, "INITIATED"), 0u);
}

TEST_F(GapDetectorTest, OverrunSeenLiveEndsWithTheSameOutcome) {
  const uint64_t t = kNow;
  const OrderRecord initiated = Order("ord-1", {Reached("INITIATED", "", t, 1)});
  Feed(initiated);
  clock_.Set(t + kInitiatedSla + kGrace);
  ASSERT_EQ(detector_->FireDue(), 1u);
  clock_.Set(t + kHour);
  const OrderRecord uploaded = Then(initiated, "FILE_UPLOADED", t + kHour);
  Feed(uploaded);

  std::optional<Gap> gap = StoredGap(GapId("ord-1", kMissingTransition, "INITIATED"));
  ASSERT_TRUE(gap.has_value());
  // The same as found already over (OverrunFoundAlreadyOverIsRecordedNotPaged); only when it
  // was found, and that it paged, differ.
  EXPECT_EQ(gap->Outcome(), EvaluateOrder(*model_, uploaded).settled.at(0).Outcome());
  EXPECT_EQ(gap->resolved_by, "FILE_UPLOADED");
  EXPECT_EQ(gap->resolved_at_unix_nano, t + kHour);
  EXPECT_TRUE(gap->paged);
  EXPECT_EQ(gap->detected_at_unix_nano, t + kInitiatedSla + kGrace);
  EXPECT_THAT(sink_->opened(), SizeIs(1));
  EXPECT_THAT(sink_->resolved(), SizeIs(1));
  EXPECT_EQ(Detected(kMissingTransition, "INITIATED"), 1u);
  EXPECT_EQ(FoundResolved(kMissingTransition, "INITIATED"), 0u);
}

TEST_F(GapDetectorTest, WithdrawnWhenLateSpansAnswerInTime) {
  const OrderRecord submitted = Order("ord-1", ChainTo("SUBMITTED", kNow));
  Feed(submitted);
  clock_.Set(kNow + kSubmittedSla + kGrace);
  ASSERT_EQ(detector_->FireDue(), 1u);
  const std::string id = GapId("ord-1", kMissingTransition, "SUBMITTED");
  ASSERT_TRUE(StoredGap(id).has_value());

  // A span exported late: the order had moved on five minutes after SUBMITTED, in time.
  clock_.Advance(kMinute);
  Feed(Then(submitted, "PRICE_CALCULATION_STARTED", kNow + 5 * kMinute));

  EXPECT_FALSE(StoredGap(id).has_value());
  EXPECT_THAT(detector_->OpenGapsOf("ord-1"), IsEmpty());
  EXPECT_EQ(detector_->Stats().Withdrawn(), 1u);
  // The answer came after the stage was judged: a late answer, by the service that sent it.
  uint64_t late_answers = 0;
  for (const auto& [service, count] : detector_->Stats().late_answers) late_answers += count;
  EXPECT_EQ(late_answers, 1u);
  EXPECT_EQ(detector_->Stats().resolved_total, 0u);
  ASSERT_THAT(sink_->resolved(), SizeIs(1));  // the alert ends
  EXPECT_EQ(sink_->resolved()[0].id, id);
  EXPECT_EQ(sink_->resolved()[0].resolved_by, "withdrawn");
  EXPECT_EQ(OpenCount(kMissingTransition, "SUBMITTED"), 0u);
}

// MES reports SHIPPED again after CLOSED (order-sim's status_backwards fault), as a record that
// holds both reports of SHIPPED.
OrderRecord ShippedAgainAfterClosed(const std::string& order_id, bool again) {
  OrderRecord order = Order(order_id, ChainTo("CLOSED", kNow - 10 * kMinute));
  if (again) {
    order.statuses.push_back(Reached("SHIPPED", "CLOSED", kNow - 5 * kMinute, 12, "mes"));
    TouchLastSuccess(order);
  }
  return order;
}

TEST_F(GapDetectorTest, StatusBackAfterClosedIsFoundOnceInOneRecordOrTwo) {
  Feed(ShippedAgainAfterClosed("ord-together", true));
  Feed(ShippedAgainAfterClosed("ord-apart", false));
  Feed(ShippedAgainAfterClosed("ord-apart", true));
  Settle();
  Feed(ShippedAgainAfterClosed("ord-apart", true));

  std::vector<Gap> gaps = Stored();
  ASSERT_THAT(gaps, SizeIs(2));
  EXPECT_EQ(gaps[0].id, GapId("ord-apart", kStatusBackwards, "SHIPPED"));
  EXPECT_EQ(gaps[1].id, GapId("ord-together", kStatusBackwards, "SHIPPED"));
  for (const Gap& gap : gaps) {
    EXPECT_EQ(gap.kind, kStatusBackwards);
    EXPECT_EQ(gap.since_unix_nano, kNow - 5 * kMinute);
    EXPECT_EQ(gap.service, "mes");
  }
  // The same outcome whatever arrived together (but the order id).
  EXPECT_EQ(gaps[0].resolved_by, gaps[1].resolved_by);
  EXPECT_EQ(gaps[0].resolved_at_unix_nano, gaps[1].resolved_at_unix_nano);
  EXPECT_EQ(gaps[0].paged, gaps[1].paged);
  EXPECT_EQ(Detected(kStatusBackwards, "SHIPPED"), 2u);
}

// The same through the record builder, from spans. Disabled: lifecycle/order_record_builder.cc
// keeps the earliest report of a status ("the earliest report wins"), so the second SHIPPED
// never reaches the record, in one request or two, and no gap is found.
base::Span TransitionSpan(const std::string& order_id, const std::string& status,
                          const std::string& prev, int64_t version, uint64_t end) {
  base::Span span;
  span.name = "Set" + status;
  span.span_id.bytes[0] = static_cast<uint8_t>(version);
  span.trace_id = TraceIdOf(order_id);
  span.start_time_unix_nano = end - kSecond;
  span.end_time_unix_nano = end;
  span.attributes = {{"order_id", base::AnyValue::String(order_id)},
                     {"new_status", base::AnyValue::String(status)},
                     {"event_version", base::AnyValue::Int(version)}};
  if (!prev.empty()) span.attributes.push_back({"prev_status", base::AnyValue::String(prev)});
  return span;
}

TEST_F(GapDetectorTest, StatusBackAfterClosedFromSpansIsFoundInOneRequestOrTwo) {
  base::Resource mes;
  mes.attributes = {{"service.name", base::AnyValue::String("mes")}};
  const std::vector<std::string> lifecycle = DefaultStageModelOptions().statuses;
  auto fold = [&](const std::string& order_id, bool again, OrderRecord record) {
    record.order_id = order_id;
    if (record.statuses.empty()) {
      for (size_t i = 0; i < lifecycle.size(); ++i) {
        lifecycle::ApplySpan(
            TransitionSpan(order_id, lifecycle[i], i ? lifecycle[i - 1] : "",
                           static_cast<int64_t>(i + 1), kNow - kHour + i * kMinute),
            mes, record);
      }
    }
    if (again) {
      lifecycle::ApplySpan(TransitionSpan(order_id, "SHIPPED", "CLOSED", 12, kNow - kMinute), mes,
                           record);
    }
    return record;
  };
  Feed(fold("ord-together", true, {}));
  const OrderRecord closed = fold("ord-apart", false, {});
  Feed(closed);
  Feed(fold("ord-apart", true, closed));
  Settle();
  GapHistoryQuery query;
  query.state = GapHistoryQuery::State::kAll;
  query.kind = std::string(kStatusBackwards);
  EXPECT_THAT(OrderIds(QueryStore(query)), UnorderedElementsAre("ord-together", "ord-apart"));
}

TEST_F(GapDetectorTest, RestartRearmsDeadlinesAndWritesBackASettledGapTheCrashLost) {
  // An overrun already over (INITIATED for an hour) and now in FILE_UPLOADED.
  const uint64_t t = kNow - kHour - kMinute;
  const OrderRecord order =
      Then(Order("ord-1", {Reached("INITIATED", "", t, 1)}), "FILE_UPLOADED", t + kHour);
  const std::string id = GapId("ord-1", kMissingTransition, "INITIATED");
  const uint64_t deadline = t + kHour + 30 * kMinute + kGrace;  // FILE_UPLOADED's
  Feed(order);
  Settle();
  const std::optional<Gap> written = StoredGap(id);
  ASSERT_TRUE(written.has_value());
  // The crash window: the record was written, its gap was not.
  ASSERT_TRUE(store_.Apply({}, {id}).ok());

  clock_.Advance(kMinute);
  Restart();
  ASSERT_TRUE(detector_->Recover().ok());
  detector_->RestoreOrder(order);
  EXPECT_EQ(detector_->NextDeadline(), deadline);
  Settle();
  std::optional<Gap> restored = StoredGap(id);
  ASSERT_TRUE(restored.has_value());
  EXPECT_EQ(restored->Outcome(), written->Outcome());
  EXPECT_FALSE(restored->paged);
  EXPECT_THAT(sink_->opened(), IsEmpty());
  EXPECT_EQ(store_.Puts(id), 2);  // written, then written back

  // Restored again: already there, not written again.
  Restart();
  ASSERT_TRUE(detector_->Recover().ok());
  detector_->RestoreOrder(order);
  Settle();
  Stored();
  EXPECT_EQ(store_.Puts(id), 2);
  EXPECT_EQ(Detected(kMissingTransition, "INITIATED"), 0u);

  // The re-armed deadline fires.
  clock_.Set(deadline);
  EXPECT_EQ(detector_->FireDue(), 1u);
  EXPECT_THAT(Ids(detector_->OpenGapsOf("ord-1")),
              ElementsAre(GapId("ord-1", kMissingTransition, "FILE_UPLOADED")));
}

TEST_F(GapDetectorTest, SilentSourceIsReportedOnceAndHoldsItsOrdersDeadlines) {
  // mes reports MANUFACTURING_STARTED; ord-waiting waits for it, due at kNow + 3 min + grace.
  Feed(Then(Order("ord-mes", ChainTo("MANUFACTURING_APPROVED", kNow - kHour)),
            "MANUFACTURING_STARTED", kNow - kHour + kMinute, "mes"));
  const uint64_t deadline = kNow + 3 * kMinute + kGrace;
  Feed(Order("ord-waiting", ChainTo("MANUFACTURING_APPROVED", deadline - kApprovedSla - kGrace)));
  MakeLive("mes");
  MakeLive("shop-api");

  // shop-api goes on; mes sends nothing more.
  while (clock_.NowUnixNano() < kNow + 4 * kMinute) {
    clock_.Advance(10 * kSecond);
    MakeLive("shop-api");
    detector_->FireDue();
  }
  std::vector<Gap> opened = sink_->opened();
  ASSERT_THAT(opened, SizeIs(1));
  const Gap silent = opened[0];
  EXPECT_EQ(silent.kind, kSourceSilent);
  EXPECT_EQ(silent.service, "mes");
  EXPECT_EQ(silent.since_unix_nano, kNow);
  EXPECT_TRUE(silent.order_id.empty());
  EXPECT_EQ(Detected(kSourceSilent, ""), 1u);
  // Its orders' deadlines are held, not one gap per order.
  EXPECT_GT(detector_->Stats().held, 0u);
  EXPECT_THAT(detector_->OpenGapsOf("ord-waiting"), IsEmpty());
  bool seen = false;
  for (const SourceStatus& source : detector_->Stats().sources) {
    if (source.service != "mes") continue;
    seen = true;
    EXPECT_EQ(source.state, SourceState::kSilent);
  }
  EXPECT_TRUE(seen);

  // mes reports again: the signal resolves, and the evidence for the held deadline is in.
  MakeLive("mes");
  ASSERT_THAT(sink_->resolved(), SizeIs(1));
  EXPECT_EQ(sink_->resolved()[0].id, silent.id);
  EXPECT_EQ(sink_->resolved()[0].resolved_by, "reported");
  EXPECT_EQ(detector_->FireDue(), 1u);
  EXPECT_THAT(Ids(detector_->OpenGapsOf("ord-waiting")),
              ElementsAre(GapId("ord-waiting", kMissingTransition, "MANUFACTURING_APPROVED")));
  EXPECT_EQ(detector_->Stats().held, 0u);
  std::optional<Gap> stored = StoredGap(silent.id);
  ASSERT_TRUE(stored.has_value());
  EXPECT_FALSE(stored->IsOpen());
}

TEST_F(GapDetectorTest, WriterRetriesAFailingStoreAndCountsItsErrors) {
  store_.SetFailing(true);
  std::vector<StatusReached> statuses = ChainTo("MANUFACTURING_COMPLETED", kNow - kMinute);
  statuses.push_back(Reached("SHIPPED", "MANUFACTURING_COMPLETED", kNow, 20));
  Feed(Order("ord-1", statuses));
  Settle();
  EXPECT_THAT(sink_->opened(), SizeIs(1));  // the alert does not wait for the store
  ASSERT_TRUE(
      WaitFor([&] { return detector_->Stats().store_errors >= 2; }, std::chrono::seconds(5)));

  store_.SetFailing(false);
  EXPECT_THAT(Ids(StoredOpen()), ElementsAre(GapId("ord-1", kSkippedStatus, "PACKAGING")));
  EXPECT_EQ(detector_->Stats().writes_dropped, 0u);
  EXPECT_EQ(detector_->Stats().writes_queued, 0u);
}

TEST_F(GapDetectorTest, WriterGivesUpAfterItsAttemptsAndCountsTheDrop) {
  options_.write_attempts = 2;
  Restart();
  store_.SetFailing(true);
  std::vector<StatusReached> statuses = ChainTo("MANUFACTURING_COMPLETED", kNow - kMinute);
  statuses.push_back(Reached("SHIPPED", "MANUFACTURING_COMPLETED", kNow, 20));
  Feed(Order("ord-1", statuses));
  Settle();
  detector_->Flush();  // returns once given up
  EXPECT_EQ(detector_->Stats().store_errors, 2u);
  EXPECT_EQ(detector_->Stats().writes_dropped, 1u);
  EXPECT_THAT(store_.Snapshot(), IsEmpty());
}

// The timer thread

GapDetectorOptions LongSleep() {
  GapDetectorOptions options;
  // Only a deadline (or the wake-up on a new record) can wake the thread in time.
  options.max_sleep = std::chrono::milliseconds(60'000);
  // A short startup hold and idleness, so that a deadline a moment ahead is judged on time.
  options.watermarks.idle_after_nanos = 20'000'000;  // 20 ms
  options.watermarks.catch_up_idle_after_nanos = 20'000'000;
  return options;
}

TEST(GapDetectorThreadTest, StartFiresADeadlineFromItsThreadAndShutdownStopsIt) {
  absl::StatusOr<StageModel> model = StageModel::Create(DefaultStageModelOptions());
  ASSERT_TRUE(model.ok());
  base::SystemClock clock;
  FakeOrders orders;
  RecordingSink sink;
  GapDetector detector(*model, clock, orders.Lookup(), nullptr, &sink, LongSleep());
  detector.Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // past the startup hold; asleep

  const uint64_t deadline = clock.NowUnixNano() + 100'000'000;  // 100 ms ahead
  OrderRecord order = Order("ord-1", ChainTo("SUBMITTED", deadline - kSubmittedSla - kGrace));
  orders.Put(order);
  detector.OnOrderChanged(nullptr, order);
  // shop-api is live: its deadline is judged on the wall clock.
  detector.OnSpansArrived(SpansFrom("shop-api", clock.NowUnixNano()));

  ASSERT_TRUE(WaitFor([&] { return !sink.opened().empty(); }, std::chrono::seconds(5)))
      << "the gap did not fire within 5 s of a deadline 100 ms ahead";
  const Gap gap = sink.opened()[0];
  EXPECT_GE(gap.detected_at_unix_nano, deadline);
  EXPECT_LT(gap.detected_at_unix_nano - deadline, kSecond) << "fired late";

  detector.Shutdown();
  detector.Shutdown();  // twice is fine
  // Stopped: a new overdue order is not fired by the thread any more.
  OrderRecord late = Order("ord-2", ChainTo("SUBMITTED", deadline - kDay));
  orders.Put(late);
  detector.OnOrderChanged(nullptr, late);
  // Shutdown joined the thread, so there is no round to wait for: a thread that lived on would
  // wake on the new record at once and fire its long-past deadline well within this.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_THAT(sink.opened(), SizeIs(1));
}

TEST(GapDetectorThreadTest, DestructorStopsARunningThread) {
  absl::StatusOr<StageModel> model = StageModel::Create(DefaultStageModelOptions());
  ASSERT_TRUE(model.ok());
  base::SystemClock clock;
  FakeOrders orders;
  const auto start = std::chrono::steady_clock::now();
  {
    GapDetector detector(*model, clock, orders.Lookup(), nullptr, nullptr, LongSleep());
    detector.Start();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
}

// GapId and the codec

TEST(GapIdTest, IsFixedByTheEvent) {
  EXPECT_EQ(GapId("ord-1", kMissingTransition, "SUBMITTED"), "ord-1/missing_transition/SUBMITTED");
  EXPECT_EQ(GapId("ord-1", kMessageNotConsumed, "", "msg-7"), "ord-1/message_not_consumed//msg-7");
  EXPECT_NE(GapId("ord-1", kMissingTransition, "SUBMITTED"),
            GapId("ord-1", kCalculationOverdue, "SUBMITTED"));
}

Gap FullGap() {
  Gap gap;
  gap.id = GapId("ord-1", kMessageNotConsumed, "", "msg-7");
  gap.order_id = "ord-1";
  gap.partner_id = "acme";
  gap.kind = std::string(kMessageNotConsumed);
  gap.stage = "PRICE_CALCULATED";
  gap.expected = {"MANUFACTURING_APPROVED", "CLOSED"};
  gap.service = "mes-api";
  gap.queue = "mes.manufacturing.requests";
  gap.message_id = "msg-7";
  gap.detail = "message msg-7 to \"mes\" not consumed \xC3\xA9 \\ within 300 s";
  gap.trace_id = TraceIdOf("ord-1");
  Operation op;
  op.span_name = "PublishManufacturingRequest";
  op.service = "shop-api";
  op.at_unix_nano = kNow - kMinute;
  op.trace_id = TraceIdOf("ord-1");
  op.span_id.bytes = {1, 2, 3, 4, 5, 6, 7, 8};
  gap.last_success = op;
  gap.since_unix_nano = kNow - kMinute;
  gap.deadline_unix_nano = kNow + kMessageSla;
  gap.detected_at_unix_nano = (1ULL << 63) + 5;  // the top bit of uint64 survives
  gap.resolved_at_unix_nano = UINT64_MAX;
  gap.resolved_by = "consumed";
  gap.paged = true;
  return gap;
}

TEST(GapCodecTest, RoundTripsEveryField) {
  Gap gap = FullGap();
  absl::StatusOr<Gap> decoded = DecodeGap(EncodeGap(gap));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, gap);
  EXPECT_FALSE(decoded->IsOpen());
  ASSERT_TRUE(decoded->last_success.has_value());
  EXPECT_EQ(decoded->last_success->span_id, gap.last_success->span_id);

  gap.paged = false;  // found already over
  decoded = DecodeGap(EncodeGap(gap));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, gap);
}

TEST(GapCodecTest, RoundTripsAnOpenGapWithoutLastSuccess) {
  Gap gap = FullGap();
  gap.last_success.reset();
  gap.resolved_at_unix_nano = 0;
  gap.resolved_by.clear();
  gap.expected.clear();
  absl::StatusOr<Gap> decoded = DecodeGap(EncodeGap(gap));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, gap);
  EXPECT_TRUE(decoded->IsOpen());
  EXPECT_FALSE(decoded->last_success.has_value());
}

TEST(GapCodecTest, MissingOptionalFieldsDefaultAndUnknownOnesAreIgnored) {
  absl::StatusOr<Gap> decoded = DecodeGap(
      R"({"id":"o/k/s","order_id":"o","kind":"missing_transition","from_the_future":[1,2]})");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->id, "o/k/s");
  EXPECT_EQ(decoded->kind, "missing_transition");
  EXPECT_TRUE(decoded->expected.empty());
  EXPECT_EQ(decoded->since_unix_nano, 0u);
  EXPECT_FALSE(decoded->trace_id.IsValid());
  EXPECT_FALSE(decoded->last_success.has_value());
  EXPECT_TRUE(decoded->IsOpen());
  EXPECT_TRUE(decoded->paged);  // older gaps have no `paged`: all were announced
}

// Gaps written before resolved_by existed were resolved when they had a resolution time.
TEST(GapCodecTest, AnOldResolvedGapDecodesAsResolved) {
  absl::StatusOr<Gap> decoded =
      DecodeGap(R"({"id":"o/k/s","order_id":"o","kind":"missing_transition","resolved_at":42})");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_FALSE(decoded->IsOpen());
  EXPECT_EQ(decoded->resolved_at_unix_nano, 42u);
  EXPECT_TRUE(decoded->paged);
}

TEST(GapCodecTest, GarbageIsAnErrorNotACrash) {
  const std::string valid = EncodeGap(FullGap());
  const std::vector<std::string> garbage = {
      "",
      "garbage",
      "[1,2,3]",
      "\"a string\"",
      "{}",
      R"({"id":1,"order_id":"o","kind":"k"})",
      R"({"id":"x","kind":"k"})",
      R"({"id":"x","order_id":"o","kind":"k","since":"yesterday"})",
      R"({"id":"x","order_id":"o","kind":"k","expected":"PACKAGING"})",
      R"({"id":"x","order_id":"o","kind":"k","expected":[1,2]})",
      R"({"id":"x","order_id":"o","kind":"k","last_success":{"at":"noon"}})",
      valid.substr(0, valid.size() / 2),
      std::string("\0\xff\xfe{", 4),
  };
  for (const std::string& text : garbage) {
    absl::StatusOr<Gap> decoded = DecodeGap(text);
    EXPECT_FALSE(decoded.ok()) << "decoded: " << text;
    if (!decoded.ok()) {
      EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss) << text;
    }
  }
}

TEST(GapCodecTest, BadIdsAndAStrangeLastSuccessDecodeToDefaults) {
  absl::StatusOr<Gap> decoded =
      DecodeGap(R"({"id":"x","order_id":"o","kind":"k","trace_id":"not-hex","last_success":5})");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_FALSE(decoded->trace_id.IsValid());
  EXPECT_FALSE(decoded->last_success.has_value());
}

}  // namespace
}  // namespace ordertrace::gaps
