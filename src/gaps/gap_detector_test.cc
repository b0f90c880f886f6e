#include "gaps/gap_detector.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gaps/gap_codec.h"
#include "model/clock.h"

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

constexpr uint64_t kSecond = model::kNanosPerSecond;
constexpr uint64_t kMinute = 60 * kSecond;
constexpr uint64_t kHour = 60 * kMinute;
constexpr uint64_t kDay = 24 * kHour;
constexpr uint64_t kNow = 1'704'067'200ULL * kSecond + 12 * kHour;  // 2024-01-01T12:00Z
// The default model's SLAs and grace.
constexpr uint64_t kGrace = 5 * kSecond;
constexpr uint64_t kSubmittedSla = 10 * kMinute;
constexpr uint64_t kCalculationSla = 30 * kMinute;
constexpr uint64_t kMessageSla = 5 * kMinute;

model::TraceId TraceIdOf(const std::string& order_id) {
  model::TraceId id;
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
  const std::vector<std::string> lifecycle = DefaultLifecycleModelOptions().statuses;
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

OrderRecord Order(const std::string& order_id, std::vector<StatusReached> statuses,
                  const std::string& partner_id = "acme") {
  OrderRecord record;
  record.order_id = order_id;
  record.partner_id = partner_id;
  record.trace_id = TraceIdOf(order_id);
  record.trace_ids = {record.trace_id};
  record.statuses = std::move(statuses);
  if (!record.statuses.empty()) {
    const StatusReached& last = record.statuses.back();
    record.first_seen_unix_nano = record.statuses.front().at_unix_nano - kSecond;
    record.last_seen_unix_nano = last.at_unix_nano;
    Operation op;
    op.span_name = last.span_name;
    op.service = last.service;
    op.at_unix_nano = last.at_unix_nano;
    op.trace_id = record.trace_id;
    op.span_id = last.span_id;
    record.last_success = op;
  }
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

// The store the detector reads orders from when a deadline passes; the test controls it.
class FakeOrders {
 public:
  void Put(const OrderRecord& record) {
    std::lock_guard<std::mutex> lock(mu_);
    records_[record.order_id] = record;
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

class FakeGapStore : public GapStore {
 public:
  absl::Status SaveGap(const Gap& gap) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (failing_) return absl::UnavailableError("disk full");
    gaps_[gap.id] = gap;
    ++saves_;
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<Gap>> LoadGaps() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Gap> out;
    for (const auto& [id, gap] : gaps_) out.push_back(gap);
    return out;
  }
  int saves() {
    std::lock_guard<std::mutex> lock(mu_);
    return saves_;
  }
  std::map<std::string, Gap> gaps() {
    std::lock_guard<std::mutex> lock(mu_);
    return gaps_;
  }
  void SetFailing(bool failing) {
    std::lock_guard<std::mutex> lock(mu_);
    failing_ = failing;
  }

 private:
  std::mutex mu_;
  std::map<std::string, Gap> gaps_;
  int saves_ = 0;
  bool failing_ = false;
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

GapQuery Query(GapQuery::State state) {
  GapQuery query;
  query.state = state;
  return query;
}

// A GapQuery spelled out filter by filter: Where().State(kAll).Kind("...").
class Where {
 public:
  Where& State(GapQuery::State state) {
    query_.state = state;
    return *this;
  }
  Where& Kind(std::string kind) {
    query_.kind = std::move(kind);
    return *this;
  }
  Where& Stage(std::string stage) {
    query_.stage = std::move(stage);
    return *this;
  }
  Where& Partner(std::string partner_id) {
    query_.partner_id = std::move(partner_id);
    return *this;
  }
  Where& OrderId(std::string order_id) {
    query_.order_id = std::move(order_id);
    return *this;
  }
  Where& Limit(size_t limit) {
    query_.limit = limit;
    return *this;
  }
  operator GapQuery() const { return query_; }

 private:
  GapQuery query_;
};

GapDetectorOptions LongSleep() {
  GapDetectorOptions options;
  // Only a deadline (or the wake-up on a new record) can wake the thread in time.
  options.max_sleep = std::chrono::milliseconds(60'000);
  return options;
}

class GapDetectorTest : public testing::Test {
 protected:
  void SetUp() override { UseModel(DefaultLifecycleModelOptions()); }

  // Rebuilds the model and a fresh detector (same store) around it.
  void UseModel(LifecycleModelOptions options) {
    detector_.reset();
    absl::StatusOr<LifecycleModel> model = LifecycleModel::Create(std::move(options));
    ASSERT_TRUE(model.ok()) << model.status();
    model_.emplace(*std::move(model));
    Restart();
  }

  // A new detector over the same store, orders and clock, announcing to a new sink: a restart.
  void Restart() {
    detector_.reset();
    sink_ = std::make_unique<RecordingSink>();
    detector_ =
        std::make_unique<GapDetector>(*model_, clock_, orders_.Lookup(), &store_, sink_.get());
  }

  // What ingest does: the store holds the new record, then the detector hears of it.
  void Feed(const OrderRecord& record) {
    orders_.Put(record);
    detector_->OnOrderRecord(record);
  }

  uint64_t Detected(const std::string& kind, const std::string& stage) {
    auto stats = detector_->Stats().detected_total;
    auto it = stats.find({kind, stage});
    return it == stats.end() ? 0 : it->second;
  }
  uint64_t OpenCount(const std::string& kind, const std::string& stage) {
    auto stats = detector_->Stats().open;
    auto it = stats.find({kind, stage});
    return it == stats.end() ? 0 : it->second;
  }
  std::vector<Gap> All() { return detector_->Query(Query(GapQuery::State::kAll)); }

  model::ManualClock clock_{kNow};
  FakeOrders orders_;
  FakeGapStore store_;
  std::optional<LifecycleModel> model_;
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
  EXPECT_THAT(All(), IsEmpty());

  clock_.Set(deadline);
  EXPECT_EQ(detector_->FireDue(), 1u);
  std::vector<Gap> open = detector_->Query({});
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
  EXPECT_EQ(gap.last_success, order.last_success);
  EXPECT_EQ(gap.service, "shop-api");
  EXPECT_FALSE(gap.detail.empty());

  ASSERT_THAT(sink_->opened(), SizeIs(1));
  EXPECT_EQ(sink_->opened()[0], gap);
  EXPECT_EQ(Detected("missing_transition", "SUBMITTED"), 1u);
  EXPECT_EQ(OpenCount("missing_transition", "SUBMITTED"), 1u);
  EXPECT_EQ(store_.gaps().at(gap.id), gap);
  EXPECT_EQ(detector_->Stats().tracked_orders, 0u);

  // Nothing more, however long the order stays stuck.
  clock_.Advance(kDay);
  EXPECT_EQ(detector_->FireDue(), 0u);
  EXPECT_THAT(sink_->opened(), SizeIs(1));
}

TEST_F(GapDetectorTest, MissingTransitionResolvesWhenTheNextStatusArrives) {
  const uint64_t t0 = kNow;
  Feed(Order("ord-1", ChainTo("SUBMITTED", t0)));
  clock_.Set(t0 + kSubmittedSla + kGrace + 2 * kSecond);
  ASSERT_EQ(detector_->FireDue(), 1u);

  clock_.Advance(3 * kSecond);
  const uint64_t arrival = clock_.NowUnixNano();
  Feed(Order("ord-1", ChainTo("PRICE_CALCULATION_STARTED", arrival - kSecond)));

  EXPECT_THAT(detector_->Query({}), IsEmpty());
  std::vector<Gap> resolved = detector_->Query(Query(GapQuery::State::kResolved));
  ASSERT_THAT(resolved, SizeIs(1));
  EXPECT_EQ(resolved[0].id, GapId("ord-1", kMissingTransition, "SUBMITTED"));
  EXPECT_EQ(resolved[0].resolved_at_unix_nano, arrival);
  EXPECT_EQ(resolved[0].detected_at_unix_nano, t0 + kSubmittedSla + kGrace + 2 * kSecond);
  EXPECT_FALSE(resolved[0].IsOpen());
  ASSERT_THAT(sink_->resolved(), SizeIs(1));
  EXPECT_EQ(sink_->resolved()[0], resolved[0]);
  EXPECT_EQ(store_.gaps().at(resolved[0].id).resolved_at_unix_nano, arrival);

  GapDetectorStats stats = detector_->Stats();
  EXPECT_EQ(OpenCount("missing_transition", "SUBMITTED"), 0u);
  EXPECT_EQ(Detected("missing_transition", "SUBMITTED"), 1u);
  EXPECT_EQ(stats.resolved_total, 1u);
  EXPECT_THAT(detector_->OpenGapsOf("ord-1"), IsEmpty());

  // The same gap never comes back, not even from a late copy of the old record.
  Feed(Order("ord-1", ChainTo("SUBMITTED", t0)));
  clock_.Advance(kHour);
  detector_->FireDue();
  Feed(Order("ord-1", ChainTo("PRICE_CALCULATION_STARTED", arrival - kSecond)));
  EXPECT_THAT(sink_->opened(), SizeIs(1));
  EXPECT_EQ(Detected("missing_transition", "SUBMITTED"), 1u);
  EXPECT_THAT(sink_->resolved(), SizeIs(1));
}

TEST_F(GapDetectorTest, PriceCalculationPastItsSlaIsCalculationOverdue) {
  const uint64_t t0 = kNow;
  Feed(Order("ord-1", ChainTo("PRICE_CALCULATION_STARTED", t0)));
  EXPECT_EQ(detector_->NextDeadline(), t0 + kCalculationSla + kGrace);

  clock_.Set(t0 + kCalculationSla + kGrace - 1);
  EXPECT_EQ(detector_->FireDue(), 0u);
  clock_.Set(t0 + kCalculationSla + kGrace);
  EXPECT_EQ(detector_->FireDue(), 1u);

  std::vector<Gap> open = detector_->Query({});
  ASSERT_THAT(open, SizeIs(1));
  EXPECT_EQ(open[0].kind, kCalculationOverdue);
  EXPECT_EQ(open[0].stage, "PRICE_CALCULATION_STARTED");
  EXPECT_THAT(open[0].expected, ElementsAre("PRICE_CALCULATED"));
  EXPECT_EQ(Detected("calculation_overdue", "PRICE_CALCULATION_STARTED"), 1u);
  EXPECT_EQ(Detected("missing_transition", "PRICE_CALCULATION_STARTED"), 0u);

  clock_.Advance(kMinute);
  Feed(Order("ord-1", ChainTo("PRICE_CALCULATED", clock_.NowUnixNano())));
  EXPECT_THAT(sink_->resolved(), SizeIs(1));
  EXPECT_EQ(OpenCount("calculation_overdue", "PRICE_CALCULATION_STARTED"), 0u);
}

TEST_F(GapDetectorTest, PartnerOverrideMovesTheDeadlineForThatPartnerOnly) {
  LifecycleModelOptions options = DefaultLifecycleModelOptions();
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
  EXPECT_EQ(detector_->Query(Where().Partner("globex"))[0].deadline_unix_nano,
            t0 + kSubmittedSla + kGrace);
}

TEST_F(GapDetectorTest, TimeScaleDividesTheSlaButNotTheGrace) {
  LifecycleModelOptions options = DefaultLifecycleModelOptions();
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
  EXPECT_EQ(detector_->Query({})[0].deadline_unix_nano, deadline);
}

TEST_F(GapDetectorTest, DayOldSubmittedIsOverdueOnArrival) {
  const uint64_t since = kNow - kDay;
  Feed(Order("ord-old", ChainTo("SUBMITTED", since)));
  EXPECT_EQ(detector_->NextDeadline(), since + kSubmittedSla + kGrace);

  EXPECT_EQ(detector_->FireDue(), 1u);  // the clock has not moved
  std::vector<Gap> open = detector_->Query({});
  ASSERT_THAT(open, SizeIs(1));
  EXPECT_EQ(open[0].since_unix_nano, since);
  EXPECT_EQ(open[0].deadline_unix_nano, since + kSubmittedSla + kGrace);
  EXPECT_EQ(open[0].detected_at_unix_nano, kNow);
}

TEST_F(GapDetectorTest, SeveralExpectedStatusesAreAllNamed) {
  LifecycleModelOptions options;
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
  EXPECT_THAT(detector_->Query({})[0].expected, ElementsAre("EXPRESS_REVIEW", "MANUAL_REVIEW"));
}

TEST_F(GapDetectorTest, ClosedOrderHasNoDeadline) {
  Feed(Order("ord-1", ChainTo("SUBMITTED", kNow)));
  Feed(Order("ord-1", ChainTo("CLOSED", kNow + kMinute)));
  EXPECT_EQ(detector_->Stats().tracked_orders, 0u);
  clock_.Advance(kDay);
  EXPECT_EQ(detector_->FireDue(), 0u);
  EXPECT_THAT(All(), IsEmpty());
}

TEST_F(GapDetectorTest, OrderWithoutStatusesIsNotWatched) {
  OrderRecord record = Order("ord-1", {});
  Feed(record);
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

  std::vector<Gap> open = detector_->Query({});
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
  EXPECT_EQ(Detected("message_not_consumed", "PRICE_CALCULATED"), 1u);
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
  EXPECT_THAT(All(), IsEmpty());
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
  EXPECT_THAT(All(), IsEmpty());
}

TEST_F(GapDetectorTest, MessageConsumedAfterItsDeadlineResolvesTheGap) {
  OrderRecord order = Order("ord-1", ChainTo("PRICE_CALCULATED", kNow));
  order.messages = {Hop("msg-7", "mes.manufacturing.requests", kNow),
                    Hop("msg-8", "mes.manufacturing.requests", kNow, kNow + kSecond)};
  Feed(order);
  clock_.Set(kNow + kMessageSla + kGrace);
  ASSERT_EQ(detector_->FireDue(), 1u);  // msg-8 was consumed
  EXPECT_EQ(detector_->Query({})[0].message_id, "msg-7");

  clock_.Advance(kMinute);
  order.messages[0].consumed_at_unix_nano = clock_.NowUnixNano() - kSecond;
  Feed(order);
  EXPECT_THAT(detector_->Query({}), IsEmpty());
  ASSERT_THAT(sink_->resolved(), SizeIs(1));
  EXPECT_EQ(sink_->resolved()[0].message_id, "msg-7");
  EXPECT_EQ(sink_->resolved()[0].resolved_at_unix_nano, clock_.NowUnixNano());
  EXPECT_EQ(OpenCount("message_not_consumed", "PRICE_CALCULATED"), 0u);
}

TEST_F(GapDetectorTest, MessageGapStaysOpenWhenTheOrderMovesOnWithoutItsConsumer) {
  OrderRecord order = Order("ord-1", ChainTo("PRICE_CALCULATED", kNow));
  order.messages = {Hop("msg-7", "q", kNow)};
  Feed(order);
  clock_.Set(kNow + kMessageSla + kGrace);
  ASSERT_EQ(detector_->FireDue(), 1u);

  OrderRecord moved = Order("ord-1", ChainTo("MANUFACTURING_APPROVED", clock_.NowUnixNano()));
  moved.messages = order.messages;
  Feed(moved);
  EXPECT_THAT(Ids(detector_->Query({})),
              ElementsAre(GapId("ord-1", kMessageNotConsumed, "", "msg-7")));
}

// Conflicts

TEST_F(GapDetectorTest, ForbiddenTransitionOpensAtOnce) {
  LifecycleModelOptions options;
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

  std::vector<Gap> open = detector_->Query({});
  ASSERT_THAT(open, SizeIs(1));
  const Gap& gap = open[0];
  EXPECT_EQ(gap.kind, kForbiddenTransition);
  EXPECT_EQ(gap.stage, "MANUAL_REVIEW");
  EXPECT_THAT(gap.expected, ElementsAre("APPROVED"));
  EXPECT_EQ(gap.service, "review-svc");
  EXPECT_EQ(gap.since_unix_nano, moved_at);
  EXPECT_EQ(gap.deadline_unix_nano, moved_at);
  EXPECT_EQ(gap.detected_at_unix_nano, kNow);
  EXPECT_THAT(sink_->opened(), SizeIs(1));
  EXPECT_EQ(Detected("forbidden_transition", "MANUAL_REVIEW"), 1u);
}

// A jump forward with no path of allowed transitions in between is forbidden, not a skip.
TEST_F(GapDetectorTest, ForwardJumpOffTheLifecyclesPathsIsForbiddenNotSkipped) {
  LifecycleModelOptions options;
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
  std::vector<Gap> open = detector_->Query({});
  ASSERT_THAT(open, SizeIs(1));
  EXPECT_EQ(open[0].kind, kForbiddenTransition);
  EXPECT_EQ(open[0].stage, "SHIPPED");
  EXPECT_THAT(open[0].expected, ElementsAre("REFUND_SENT"));
}

TEST_F(GapDetectorTest, TransitionFromAnUnknownStatusIsForbidden) {
  Feed(Order("ord-1", {Reached("INITIATED", "", kNow - kMinute, 1),
                       Reached("FILE_UPLOADED", "ON_HOLD", kNow, 2)}));
  std::vector<Gap> open = detector_->Query({});
  ASSERT_THAT(open, SizeIs(1));
  EXPECT_EQ(open[0].kind, kForbiddenTransition);
  EXPECT_EQ(open[0].stage, "FILE_UPLOADED");
}

TEST_F(GapDetectorTest, SkipIntoTheTerminalStatusIsRecordedAndResolvedAtOnce) {
  // PACKAGING -> CLOSED skips SHIPPED; the order is finished, so the gap opens and resolves.
  std::vector<StatusReached> statuses = ChainTo("PACKAGING", kNow - kMinute);
  statuses.push_back(Reached("CLOSED", "PACKAGING", kNow - kSecond, 20, "crm-api"));
  Feed(Order("ord-1", statuses));

  EXPECT_THAT(detector_->Query({}), SizeIs(0));
  GapQuery resolved;
  resolved.state = GapQuery::State::kResolved;
  std::vector<Gap> gaps = detector_->Query(resolved);
  ASSERT_THAT(gaps, SizeIs(1));
  EXPECT_EQ(gaps[0].kind, kSkippedStatus);
  EXPECT_EQ(gaps[0].stage, "SHIPPED");
  EXPECT_THAT(sink_->opened(), SizeIs(1));
  EXPECT_EQ(Detected("skipped_status", "SHIPPED"), 1u);
  // Fed again, it does not fire a second time.
  Feed(Order("ord-1", statuses));
  EXPECT_THAT(sink_->opened(), SizeIs(1));
}

TEST_F(GapDetectorTest, SkippedStatusNamesTheStageThatWasSkipped) {
  // FILE_UPLOADED -> SUBMITTED is allowed; MANUFACTURING_COMPLETED -> SHIPPED skips PACKAGING.
  std::vector<StatusReached> statuses = ChainTo("MANUFACTURING_COMPLETED", kNow - kMinute);
  const uint64_t shipped_at = kNow - 10 * kSecond;
  statuses.push_back(Reached("SHIPPED", "MANUFACTURING_COMPLETED", shipped_at, 20, "logistics"));
  Feed(Order("ord-1", statuses));

  std::vector<Gap> open = detector_->Query({});
  ASSERT_THAT(open, SizeIs(1));
  EXPECT_EQ(open[0].id, GapId("ord-1", kSkippedStatus, "PACKAGING"));
  EXPECT_EQ(open[0].kind, kSkippedStatus);
  EXPECT_EQ(open[0].stage, "PACKAGING");
  EXPECT_THAT(open[0].expected, ElementsAre("PACKAGING"));
  EXPECT_EQ(open[0].service, "logistics");
  EXPECT_EQ(open[0].since_unix_nano, shipped_at);
  EXPECT_THAT(sink_->opened(), SizeIs(1));
  EXPECT_EQ(Detected("skipped_status", "PACKAGING"), 1u);
  EXPECT_EQ(OpenCount("skipped_status", "PACKAGING"), 1u);
}

TEST_F(GapDetectorTest, StatusBackwardsWhenALaterEventCarriesAnEarlierStatus) {
  Feed(Order("ord-1", {Reached("INITIATED", "", kNow - 4 * kMinute, 1),
                       Reached("FILE_UPLOADED", "INITIATED", kNow - 3 * kMinute, 2),
                       Reached("SUBMITTED", "FILE_UPLOADED", kNow - kMinute, 7, "legacy-erp"),
                       Reached("PRICE_CALCULATION_STARTED", "SUBMITTED", kNow - 2 * kMinute, 4)}));

  std::vector<Gap> open = detector_->Query({});
  ASSERT_THAT(open, SizeIs(1));
  EXPECT_EQ(open[0].kind, kStatusBackwards);
  EXPECT_EQ(open[0].stage, "SUBMITTED");
  EXPECT_THAT(open[0].expected, ElementsAre("PRICE_CALCULATED"));
  EXPECT_EQ(open[0].service, "legacy-erp");
  EXPECT_EQ(open[0].since_unix_nano, kNow - kMinute);
  EXPECT_THAT(sink_->opened(), SizeIs(1));
}

TEST_F(GapDetectorTest, StatusBackwardsWhenATransitionLeadsBack) {
  Feed(Order("ord-1",
             {Reached("INITIATED", "", kNow - 4 * kMinute),
              Reached("SUBMITTED", "PRICE_CALCULATED", kNow - kMinute),
              Reached("PRICE_CALCULATED", "PRICE_CALCULATION_STARTED", kNow - 2 * kMinute)}));
  std::vector<Gap> open = detector_->Query(Where().Kind(std::string(kStatusBackwards)));
  ASSERT_THAT(open, SizeIs(1));
  EXPECT_EQ(open[0].stage, "SUBMITTED");
}

TEST_F(GapDetectorTest, StatusDisagreementWhenAServiceHoldsAnOlderStatus) {
  const uint64_t approved_at = kNow - 10 * kSecond;
  OrderRecord order = Order("ord-1", ChainTo("MANUFACTURING_APPROVED", approved_at));
  Operation refusal;
  refusal.span_name = "StartManufacturing";
  refusal.service = "mes-api";
  refusal.at_unix_nano = kNow - 2 * kSecond;
  refusal.trace_id = order.trace_id;
  refusal.error_code = "FAILED_PRECONDITION";
  refusal.error_message = "order is not approved";
  refusal.reported_status = "PRICE_CALCULATED";
  order.last_error = refusal;
  Feed(order);

  std::vector<Gap> open = detector_->Query({});
  ASSERT_THAT(open, SizeIs(1));
  EXPECT_EQ(open[0].kind, kStatusDisagreement);
  EXPECT_EQ(open[0].stage, "MANUFACTURING_APPROVED");
  EXPECT_THAT(open[0].expected, ElementsAre("MANUFACTURING_APPROVED"));
  EXPECT_EQ(open[0].service, "mes-api");
  EXPECT_EQ(open[0].since_unix_nano, approved_at);
  EXPECT_EQ(open[0].deadline_unix_nano, kNow - 2 * kSecond);
  EXPECT_EQ(open[0].detected_at_unix_nano, kNow);
  EXPECT_THAT(sink_->opened(), SizeIs(1));

  // It is about this stage: once the order moves on, it is answered.
  clock_.Advance(kMinute);
  OrderRecord moved = Order("ord-1", ChainTo("MANUFACTURING_STARTED", kNow + 30 * kSecond));
  Feed(moved);
  EXPECT_THAT(detector_->Query({}), IsEmpty());
  ASSERT_THAT(sink_->resolved(), SizeIs(1));
  EXPECT_EQ(sink_->resolved()[0].kind, kStatusDisagreement);
}

TEST_F(GapDetectorTest, NoDisagreementFromAnErrorBeforeTheStatusOrWithAnUnknownStatus) {
  const uint64_t approved_at = kNow - 10 * kSecond;
  Operation refusal;
  refusal.span_name = "StartManufacturing";
  refusal.service = "mes-api";
  refusal.reported_status = "PRICE_CALCULATED";

  OrderRecord early = Order("ord-early", ChainTo("MANUFACTURING_APPROVED", approved_at));
  refusal.at_unix_nano = approved_at - kSecond;  // refused before the approval was known
  early.last_error = refusal;
  Feed(early);

  OrderRecord unknown = Order("ord-unknown", ChainTo("MANUFACTURING_APPROVED", approved_at));
  refusal.at_unix_nano = kNow;
  refusal.reported_status = "WHO_KNOWS";
  unknown.last_error = refusal;
  Feed(unknown);

  OrderRecord agreeing = Order("ord-agreeing", ChainTo("MANUFACTURING_APPROVED", approved_at));
  refusal.reported_status = "MANUFACTURING_APPROVED";
  agreeing.last_error = refusal;
  Feed(agreeing);

  EXPECT_THAT(All(), IsEmpty());
}

TEST_F(GapDetectorTest, ConflictsStayOpenUntilTheOrderCloses) {
  // SUBMITTED -> PRICE_CALCULATED skips PRICE_CALCULATION_STARTED.
  auto skipping = [](const std::string& last, uint64_t at) {
    std::vector<StatusReached> statuses = ChainTo(last, at);
    statuses.erase(statuses.begin() + 3);  // PRICE_CALCULATION_STARTED
    statuses[3].prev_status = "SUBMITTED";
    return statuses;
  };
  Feed(Order("ord-1", skipping("PRICE_CALCULATED", kNow)));
  ASSERT_THAT(Ids(detector_->Query({})),
              ElementsAre(GapId("ord-1", kSkippedStatus, "PRICE_CALCULATION_STARTED")));

  clock_.Advance(kHour);
  Feed(Order("ord-1", skipping("PACKAGING", clock_.NowUnixNano())));
  EXPECT_THAT(detector_->Query({}), SizeIs(1));
  EXPECT_THAT(sink_->resolved(), IsEmpty());

  clock_.Advance(kHour);
  Feed(Order("ord-1", skipping("CLOSED", clock_.NowUnixNano())));
  EXPECT_THAT(detector_->Query({}), IsEmpty());
  ASSERT_THAT(sink_->resolved(), SizeIs(1));
  EXPECT_EQ(sink_->resolved()[0].kind, kSkippedStatus);
  EXPECT_EQ(sink_->resolved()[0].resolved_at_unix_nano, clock_.NowUnixNano());
  EXPECT_EQ(OpenCount("skipped_status", "PRICE_CALCULATION_STARTED"), 0u);
  EXPECT_THAT(sink_->opened(), SizeIs(1));
}

TEST_F(GapDetectorTest, ConflictSeenTwiceOpensOneGap) {
  std::vector<StatusReached> statuses = ChainTo("MANUFACTURING_COMPLETED", kNow - kMinute);
  statuses.push_back(Reached("SHIPPED", "MANUFACTURING_COMPLETED", kNow, 20));
  OrderRecord order = Order("ord-1", statuses);
  Feed(order);
  Feed(order);
  clock_.Advance(kMinute);
  Feed(order);
  EXPECT_THAT(All(), SizeIs(1));
  EXPECT_THAT(sink_->opened(), SizeIs(1));
  EXPECT_EQ(Detected("skipped_status", "PACKAGING"), 1u);
  EXPECT_EQ(store_.saves(), 1);
}

// No double fire, restarts

TEST_F(GapDetectorTest, SameRecordFedTwiceOpensOneGap) {
  OrderRecord order = Order("ord-1", ChainTo("SUBMITTED", kNow));
  Feed(order);
  Feed(order);
  EXPECT_EQ(detector_->Stats().tracked_orders, 1u);
  clock_.Set(kNow + kSubmittedSla + kGrace);
  EXPECT_EQ(detector_->FireDue(), 1u);
  EXPECT_EQ(detector_->FireDue(), 0u);

  // Re-armed by the same record after the gap opened: still one gap.
  Feed(order);
  EXPECT_EQ(detector_->Stats().tracked_orders, 0u);
  clock_.Advance(kDay);
  EXPECT_EQ(detector_->FireDue(), 0u);
  EXPECT_THAT(sink_->opened(), SizeIs(1));
  EXPECT_EQ(Detected("missing_transition", "SUBMITTED"), 1u);
  EXPECT_EQ(store_.saves(), 1);
}

TEST_F(GapDetectorTest, RecoverReannouncesOpenGapsWithoutCountingOrSavingThemAgain) {
  const uint64_t t0 = kNow;
  OrderRecord stuck = Order("ord-stuck", ChainTo("SUBMITTED", t0));
  OrderRecord answered = Order("ord-answered", ChainTo("SUBMITTED", t0), "globex");
  std::vector<StatusReached> skip = ChainTo("MANUFACTURING_COMPLETED", t0);
  skip.push_back(Reached("SHIPPED", "MANUFACTURING_COMPLETED", t0, 20));
  OrderRecord conflicting = Order("ord-conflict", skip);
  Feed(stuck);
  Feed(answered);
  Feed(conflicting);
  clock_.Set(t0 + kSubmittedSla + kGrace);
  ASSERT_EQ(detector_->FireDue(), 2u);
  clock_.Advance(kSecond);
  OrderRecord answered_later =
      Order("ord-answered", ChainTo("PRICE_CALCULATION_STARTED", clock_.NowUnixNano()), "globex");
  Feed(answered_later);
  ASSERT_THAT(detector_->Query({}), SizeIs(2));
  const int saves = store_.saves();
  ASSERT_EQ(saves, 4);  // three opened, one resolved
  const std::vector<Gap> before = All();

  clock_.Advance(kMinute);
  Restart();
  ASSERT_TRUE(detector_->Recover().ok());
  EXPECT_THAT(Ids(sink_->opened()),
              UnorderedElementsAre(GapId("ord-stuck", kMissingTransition, "SUBMITTED"),
                                   GapId("ord-conflict", kSkippedStatus, "PACKAGING")));
  EXPECT_THAT(sink_->resolved(), IsEmpty());
  EXPECT_EQ(store_.saves(), saves);
  EXPECT_THAT(detector_->Stats().detected_total, IsEmpty());
  EXPECT_EQ(OpenCount("missing_transition", "SUBMITTED"), 1u);
  EXPECT_EQ(OpenCount("skipped_status", "PACKAGING"), 1u);
  EXPECT_EQ(All(), before);  // the same gaps, the same moments
  EXPECT_THAT(detector_->OpenGapsOf("ord-stuck"), SizeIs(1));
  EXPECT_TRUE(detector_->HasGapInTrace(TraceIdOf("ord-answered")));

  // The store replays every order; nothing opens or resolves again.
  Feed(stuck);
  Feed(answered);  // an old record of an order whose gap was resolved
  Feed(answered_later);
  Feed(conflicting);
  EXPECT_EQ(detector_->FireDue(), 0u);
  clock_.Advance(kMinute);
  EXPECT_EQ(detector_->FireDue(), 0u);
  EXPECT_THAT(sink_->opened(), SizeIs(2));
  EXPECT_THAT(sink_->resolved(), IsEmpty());
  EXPECT_THAT(detector_->Stats().detected_total, IsEmpty());
  EXPECT_EQ(store_.saves(), saves);
  EXPECT_THAT(detector_->Query(Query(GapQuery::State::kResolved)), SizeIs(1));

  // A restored gap still resolves when its answer arrives.
  Feed(Order("ord-stuck", ChainTo("PRICE_CALCULATION_STARTED", clock_.NowUnixNano())));
  ASSERT_THAT(sink_->resolved(), SizeIs(1));
  EXPECT_EQ(sink_->resolved()[0].id, GapId("ord-stuck", kMissingTransition, "SUBMITTED"));
  EXPECT_FALSE(store_.gaps().at(sink_->resolved()[0].id).IsOpen());
}

TEST_F(GapDetectorTest, RecoverDoesNotReopenAResolvedGapWhenTheOldRecordIsReplayedAlone) {
  OrderRecord submitted = Order("ord-1", ChainTo("SUBMITTED", kNow));
  Feed(submitted);
  clock_.Set(kNow + kSubmittedSla + kGrace);
  ASSERT_EQ(detector_->FireDue(), 1u);
  Feed(Order("ord-1", ChainTo("PRICE_CALCULATION_STARTED", clock_.NowUnixNano())));

  Restart();
  ASSERT_TRUE(detector_->Recover().ok());
  EXPECT_THAT(sink_->opened(), IsEmpty());
  // The store's lookup says SUBMITTED (as if the newer record were lost): still no second gap.
  Feed(submitted);
  clock_.Advance(kDay);
  EXPECT_EQ(detector_->FireDue(), 0u);
  EXPECT_THAT(sink_->opened(), IsEmpty());
  EXPECT_THAT(All(), SizeIs(1));
  EXPECT_FALSE(All()[0].IsOpen());
}

TEST_F(GapDetectorTest, DeadlineThatPassedWhileDownFiresRightAfterReplay) {
  OrderRecord order = Order("ord-1", ChainTo("SUBMITTED", kNow));
  Feed(order);
  clock_.Advance(kMinute);
  EXPECT_EQ(detector_->FireDue(), 0u);

  detector_.reset();  // down
  clock_.Set(kNow + kHour);
  Restart();
  ASSERT_TRUE(detector_->Recover().ok());
  detector_->OnOrderRecord(order);  // rebuilt from the store
  EXPECT_EQ(detector_->FireDue(), 1u);
  std::vector<Gap> open = detector_->Query({});
  ASSERT_THAT(open, SizeIs(1));
  EXPECT_EQ(open[0].deadline_unix_nano, kNow + kSubmittedSla + kGrace);
  EXPECT_EQ(open[0].detected_at_unix_nano, kNow + kHour);
  EXPECT_EQ(Detected("missing_transition", "SUBMITTED"), 1u);
}

TEST_F(GapDetectorTest, RecoverWithoutStoreIsANoOp) {
  GapDetector detector(*model_, clock_, orders_.Lookup(), nullptr, nullptr);
  EXPECT_TRUE(detector.Recover().ok());
  OrderRecord order = Order("ord-1", ChainTo("SUBMITTED", kNow - kDay));
  orders_.Put(order);
  detector.OnOrderRecord(order);
  EXPECT_EQ(detector.FireDue(), 1u);  // no sink, no store: still detected
  EXPECT_THAT(detector.Query({}), SizeIs(1));
}

TEST_F(GapDetectorTest, StoreFailureIsCountedAndTheGapStillOpens) {
  store_.SetFailing(true);
  Feed(Order("ord-1", ChainTo("SUBMITTED", kNow - kDay)));
  EXPECT_EQ(detector_->FireDue(), 1u);
  EXPECT_EQ(detector_->Stats().store_errors, 1u);
  EXPECT_THAT(sink_->opened(), SizeIs(1));
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

  std::vector<Gap> stage = detector_->Query(Where().OrderId("ord-1"));
  ASSERT_THAT(stage, SizeIs(1));
  EXPECT_EQ(stage[0].deadline_unix_nano, deadline);
  EXPECT_EQ(stage[0].detected_at_unix_nano, deadline + 3 * kSecond);
  std::vector<Gap> message = detector_->Query(Where().OrderId("ord-2"));
  ASSERT_THAT(message, SizeIs(1));
  EXPECT_EQ(message[0].deadline_unix_nano, kNow + kMessageSla + kGrace);
}

TEST_F(GapDetectorTest, OrderThatMovedOnByFireTimeOpensNothing) {
  Feed(Order("ord-1", ChainTo("SUBMITTED", kNow)));
  Feed(Order("ord-gone", ChainTo("SUBMITTED", kNow)));
  // The store already holds newer records the detector has not been told about.
  orders_.Put(Order("ord-1", ChainTo("PRICE_CALCULATION_STARTED", kNow + kMinute)));
  orders_.Erase("ord-gone");

  clock_.Set(kNow + kSubmittedSla + kGrace);
  EXPECT_EQ(detector_->FireDue(), 0u);
  EXPECT_THAT(All(), IsEmpty());
  EXPECT_THAT(sink_->opened(), IsEmpty());
  EXPECT_EQ(detector_->Stats().lookup_errors, 0u);
}

// Queries

TEST_F(GapDetectorTest, QueryFiltersAndSortsNewestFirst) {
  // ord-b (globex): a skipped status, seen at kNow.
  std::vector<StatusReached> skip = ChainTo("MANUFACTURING_COMPLETED", kNow - kMinute);
  skip.push_back(Reached("SHIPPED", "MANUFACTURING_COMPLETED", kNow, 20));
  Feed(Order("ord-b", skip, "globex"));
  // ord-c (acme): a message never consumed, found at kNow + 1 s.
  clock_.Advance(kSecond);
  OrderRecord c = Order("ord-c", ChainTo("PRICE_CALCULATED", kNow - kHour));
  c.messages = {Hop("msg-c", "q", kNow - kHour)};
  Feed(c);
  ASSERT_EQ(detector_->FireDue(), 1u);
  // ord-a (acme): stuck in SUBMITTED, found at kNow + 2 s.
  clock_.Advance(kSecond);
  Feed(Order("ord-a", ChainTo("SUBMITTED", kNow - kHour)));
  ASSERT_EQ(detector_->FireDue(), 1u);
  // ord-d (globex): stuck in SUBMITTED, found at kNow + 3 s, then answered.
  clock_.Advance(kSecond);
  Feed(Order("ord-d", ChainTo("SUBMITTED", kNow - kHour), "globex"));
  ASSERT_EQ(detector_->FireDue(), 1u);
  Feed(Order("ord-d", ChainTo("PRICE_CALCULATION_STARTED", clock_.NowUnixNano()), "globex"));

  auto orders = [&](GapQuery query) { return OrderIds(detector_->Query(query)); };
  EXPECT_THAT(orders({}), ElementsAre("ord-a", "ord-c", "ord-b"));
  EXPECT_THAT(orders(Where().State(GapQuery::State::kResolved)), ElementsAre("ord-d"));
  EXPECT_THAT(orders(Where().State(GapQuery::State::kAll)),
              ElementsAre("ord-d", "ord-a", "ord-c", "ord-b"));
  EXPECT_THAT(orders(Where().State(GapQuery::State::kAll).Kind("missing_transition")),
              ElementsAre("ord-d", "ord-a"));
  EXPECT_THAT(orders(Where().Kind("missing_transition")), ElementsAre("ord-a"));
  EXPECT_THAT(orders(Where().Kind("message_not_consumed")), ElementsAre("ord-c"));
  EXPECT_THAT(orders(Where().Kind("no_such_kind")), IsEmpty());
  EXPECT_THAT(orders(Where().State(GapQuery::State::kAll).Stage("SUBMITTED")),
              ElementsAre("ord-d", "ord-a"));
  EXPECT_THAT(orders(Where().Stage("PACKAGING")), ElementsAre("ord-b"));
  EXPECT_THAT(orders(Where().State(GapQuery::State::kAll).Partner("globex")),
              ElementsAre("ord-d", "ord-b"));
  EXPECT_THAT(orders(Where().Partner("acme")), ElementsAre("ord-a", "ord-c"));
  EXPECT_THAT(orders(Where().State(GapQuery::State::kAll).OrderId("ord-c")), ElementsAre("ord-c"));
  EXPECT_THAT(
      orders(Where().State(GapQuery::State::kAll).Kind("missing_transition").Partner("globex")),
      ElementsAre("ord-d"));
  EXPECT_THAT(orders(Where().State(GapQuery::State::kAll).Limit(2)), ElementsAre("ord-d", "ord-a"));
  EXPECT_THAT(orders(Where().Limit(0)), IsEmpty());
}

TEST_F(GapDetectorTest, OpenGapsOfAndHasGapInTrace) {
  Feed(Order("ord-a", ChainTo("SUBMITTED", kNow - kHour)));
  OrderRecord b = Order("ord-b", ChainTo("PRICE_CALCULATED", kNow - kHour));
  b.messages = {Hop("msg-b", "q", kNow - kHour)};
  Feed(b);
  Feed(Order("ord-r", ChainTo("SUBMITTED", kNow - kHour)));
  Feed(Order("ord-quiet", ChainTo("SUBMITTED", kNow)));
  ASSERT_EQ(detector_->FireDue(), 3u);
  Feed(Order("ord-r", ChainTo("PRICE_CALCULATION_STARTED", kNow)));

  EXPECT_THAT(Ids(detector_->OpenGapsOf("ord-a")),
              ElementsAre(GapId("ord-a", kMissingTransition, "SUBMITTED")));
  EXPECT_THAT(Ids(detector_->OpenGapsOf("ord-b")),
              ElementsAre(GapId("ord-b", kMessageNotConsumed, "", "msg-b")));
  EXPECT_THAT(detector_->OpenGapsOf("ord-r"), IsEmpty());  // resolved
  EXPECT_THAT(detector_->OpenGapsOf("ord-quiet"), IsEmpty());
  EXPECT_THAT(detector_->OpenGapsOf("ord-unknown"), IsEmpty());

  EXPECT_TRUE(detector_->HasGapInTrace(TraceIdOf("ord-a")));
  EXPECT_TRUE(detector_->HasGapInTrace(TraceIdOf("ord-r")));  // resolved gaps count
  EXPECT_FALSE(detector_->HasGapInTrace(TraceIdOf("ord-quiet")));
  EXPECT_FALSE(detector_->HasGapInTrace(model::TraceId{}));
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
  EXPECT_EQ(detector_->Query({})[0].deadline_unix_nano, last_deadline);
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
  EXPECT_EQ(Detected("missing_transition", "SUBMITTED"), static_cast<uint64_t>(kOrders));
  EXPECT_EQ(OpenCount("missing_transition", "SUBMITTED"), static_cast<uint64_t>(kOrders));
}

// The timer thread

bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds bound) {
  const auto until = std::chrono::steady_clock::now() + bound;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

TEST(GapDetectorThreadTest, StartFiresADeadlineFromItsThreadAndShutdownStopsIt) {
  LifecycleModelOptions options = DefaultLifecycleModelOptions();
  absl::StatusOr<LifecycleModel> model = LifecycleModel::Create(options);
  ASSERT_TRUE(model.ok());
  model::SystemClock clock;
  FakeOrders orders;
  RecordingSink sink;
  GapDetector detector(*model, clock, orders.Lookup(), nullptr, &sink, LongSleep());
  detector.Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let it go to sleep

  const uint64_t deadline = clock.NowUnixNano() + 50'000'000;  // 50 ms ahead
  OrderRecord order = Order("ord-1", ChainTo("SUBMITTED", deadline - kSubmittedSla - kGrace));
  orders.Put(order);
  detector.OnOrderRecord(order);

  ASSERT_TRUE(WaitFor([&] { return !sink.opened().empty(); }, std::chrono::seconds(5)))
      << "the gap did not fire within 5 s of a deadline 50 ms ahead";
  const Gap gap = sink.opened()[0];
  EXPECT_GE(gap.detected_at_unix_nano, deadline);
  EXPECT_LT(gap.detected_at_unix_nano - deadline, kSecond) << "fired late";

  detector.Shutdown();
  detector.Shutdown();  // twice is fine
  // Stopped: a new overdue order is not fired by the thread any more.
  OrderRecord late = Order("ord-2", ChainTo("SUBMITTED", deadline - kDay));
  orders.Put(late);
  detector.OnOrderRecord(late);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_THAT(sink.opened(), SizeIs(1));
}

TEST(GapDetectorThreadTest, DestructorStopsARunningThread) {
  absl::StatusOr<LifecycleModel> model = LifecycleModel::Create(DefaultLifecycleModelOptions());
  ASSERT_TRUE(model.ok());
  model::SystemClock clock;
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
}

TEST(GapCodecTest, RoundTripsAnOpenGapWithoutLastSuccess) {
  Gap gap = FullGap();
  gap.last_success.reset();
  gap.resolved_at_unix_nano = 0;
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
