#include "ingest/ingester.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <future>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "lifecycle/derived_attributes.h"
#include "metrics/registry.h"
#include "metrics/trace_metrics.h"
#include "otlp/proto_codec.h"
#include "sampling/tail_sampler.h"
#include "scrub/operator_id_hasher.h"
#include "scrub/pii_scrubber.h"
#include "store/rocks_store.h"

namespace ordertrace::ingest {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr uint64_t kSecond = base::kNanosPerSecond;
constexpr uint64_t kNow = 1'704'067'200ULL * kSecond + 12 * 3600 * kSecond;

base::TraceId TraceIdOf(uint8_t n) {
  base::TraceId id;
  id.bytes[0] = 0x5e;
  id.bytes[15] = n;
  return id;
}

base::KeyValue Str(std::string key, std::string value) {
  return base::KeyValue{std::move(key), base::AnyValue::String(std::move(value))};
}

base::Resource Service(const std::string& name) {
  base::Resource r;
  r.attributes = {Str("service.name", name)};
  return r;
}

base::Span MakeSpan(uint8_t trace, uint8_t id, std::string name, uint64_t end,
                    base::Attributes attributes = {}) {
  base::Span s;
  s.trace_id = TraceIdOf(trace);
  s.span_id.bytes[0] = 0x99;
  s.span_id.bytes[7] = id;
  s.name = std::move(name);
  s.kind = base::SpanKind::kServer;
  s.start_time_unix_nano = end == 0 ? 0 : end - kSecond;
  s.end_time_unix_nano = end;
  s.attributes = std::move(attributes);
  return s;
}

base::Span Transition(uint8_t trace, uint8_t id, const std::string& order,
                      const std::string& status, int64_t version, uint64_t end) {
  return MakeSpan(trace, id, "Set" + status, end,
                  {Str("order_id", order), Str("new_status", status),
                   base::KeyValue{"event_version", base::AnyValue::Int(version)}});
}

base::ScopeSpans Scope(std::string name, std::vector<base::Span> spans) {
  base::ScopeSpans ss;
  ss.scope.name = std::move(name);
  ss.schema_url = "https://opentelemetry.io/schemas/1.21.0";
  ss.spans = std::move(spans);
  return ss;
}

base::TraceBatch Batch(base::Resource resource, std::vector<base::ScopeSpans> scopes) {
  base::TraceBatch batch;
  batch.resource_spans.push_back(base::ResourceSpans{std::move(resource), "", std::move(scopes)});
  return batch;
}

// A batch of one order's first two steps plus a span of another trace without an order.
base::TraceBatch OrderBatch() {
  return Batch(Service("shop-api"),
               {Scope("shop", {Transition(1, 1, "ord-1", "INITIATED", 1, kNow - 30 * kSecond),
                               Transition(1, 2, "ord-1", "SUBMITTED", 2, kNow - 20 * kSecond),
                               MakeSpan(2, 3, "GET /health", kNow - 10 * kSecond)})});
}

// A later request for ord-1, from crm-api in another trace: its price is calculated.
base::TraceBatch PriceCalculatedBatch() {
  return Batch(
      Service("crm-api"),
      {Scope("crm", {Transition(3, 4, "ord-1", "PRICE_CALCULATED", 3, kNow - 5 * kSecond)})});
}

std::vector<std::string> SpanNames(const base::TraceBatch& batch) {
  std::vector<std::string> names;
  for (const auto& rs : batch.resource_spans) {
    for (const auto& ss : rs.scope_spans) {
      for (const auto& span : ss.spans) names.push_back(span.name);
    }
  }
  return names;
}

std::vector<std::string> StatusNames(const model::OrderRecord& r) {
  std::vector<std::string> out;
  for (const auto& s : r.statuses) out.push_back(s.status);
  return out;
}

class IngesterTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = testing::TempDir() + "ordertrace_ingester_test_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    store::RocksStoreOptions options;
    options.path = dir_;
    options.block_cache_bytes = 8 << 20;
    options.write_buffer_bytes = 4 << 20;
    absl::StatusOr<std::unique_ptr<store::Store>> store = store::OpenRocksStore(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  void TearDown() override {
    store_.reset();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  // The spans stored for a trace, decoded from its blocks.
  std::vector<base::TraceBatch> StoredBlocks(uint8_t trace) {
    std::vector<base::TraceBatch> out;
    absl::StatusOr<std::vector<std::string>> blocks = store_->ReadTrace(TraceIdOf(trace));
    EXPECT_TRUE(blocks.ok()) << blocks.status();
    if (!blocks.ok()) return out;
    for (const std::string& block : *blocks) {
      absl::StatusOr<otlp::DecodedRequest> decoded = otlp::DecodeProtobufRequest(block);
      EXPECT_TRUE(decoded.ok()) << decoded.status();
      if (decoded.ok()) out.push_back(std::move(decoded->batch));
    }
    return out;
  }

  std::optional<model::OrderRecord> Order(const std::string& id) {
    absl::StatusOr<std::optional<model::OrderRecord>> r = store_->GetOrder(id);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : std::nullopt;
  }

  std::string dir_;
  std::unique_ptr<store::Store> store_;
  base::ManualClock clock_{kNow};
};

TEST_F(IngesterTest, StoresSpansByTraceAndUpdatesTheOrder) {
  Ingester ingester(*store_, clock_);
  ASSERT_TRUE(ingester.Ingest(OrderBatch()).ok());

  std::vector<base::TraceBatch> order_trace = StoredBlocks(1);
  ASSERT_THAT(order_trace, SizeIs(1));
  EXPECT_THAT(SpanNames(order_trace[0]), ElementsAre("SetINITIATED", "SetSUBMITTED"));
  ASSERT_THAT(order_trace[0].resource_spans, SizeIs(1));
  EXPECT_EQ(base::ServiceName(order_trace[0].resource_spans[0].resource), "shop-api");
  EXPECT_EQ(order_trace[0].resource_spans[0].scope_spans[0].scope.name, "shop");

  std::vector<base::TraceBatch> other_trace = StoredBlocks(2);
  ASSERT_THAT(other_trace, SizeIs(1));
  EXPECT_THAT(SpanNames(other_trace[0]), ElementsAre("GET /health"));

  std::optional<model::OrderRecord> order = Order("ord-1");
  ASSERT_TRUE(order.has_value());
  EXPECT_EQ(order->trace_id, TraceIdOf(1));
  EXPECT_THAT(StatusNames(*order), ElementsAre("INITIATED", "SUBMITTED"));
  EXPECT_EQ(order->last_seen_unix_nano, kNow - 20 * kSecond);

  IngesterStats stats = ingester.Stats();
  EXPECT_EQ(stats.spans_written, 3u);
  EXPECT_EQ(stats.requests_written, 1u);
  EXPECT_EQ(stats.orders_updated, 1u);
  EXPECT_EQ(stats.queued_spans, 0u);
  EXPECT_EQ(stats.write_errors, 0u);
}

// Records the order ids ingest reports changed, in the order it reports them, whether each
// came with its earlier record, and when the spans were reported.
class RecordingObserver : public OrderObserver {
 public:
  void OnOrderUpdated(const model::OrderRecord* before, const model::OrderRecord& after) override {
    std::lock_guard<std::mutex> lock(mu_);
    ids_.push_back(after.order_id);
    events_.push_back((before != nullptr ? "update " : "new ") + after.order_id);
  }
  void OnSpansArrived(const base::TraceBatch& batch) override {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back("spans " + std::to_string(batch.SpanCount()));
  }
  std::vector<std::string> ids() const {
    std::lock_guard<std::mutex> lock(mu_);
    return ids_;
  }
  std::vector<std::string> events() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> ids_;
  std::vector<std::string> events_;
};

// The orders one request changes are reported in order id order, whatever the order of their
// spans (and of the hash map ingest keeps them in, which differs from run to run).
TEST_F(IngesterTest, ChangedOrdersAreReportedInOrderIdOrder) {
  RecordingObserver observer;
  IngestConsumers consumers;
  consumers.observer = &observer;
  Ingester ingester(*store_, clock_, IngesterOptions{}, consumers);
  std::vector<base::Span> spans;
  const std::vector<std::string> ids = {"ord-q", "ord-c", "ord-x", "ord-a", "ord-m", "ord-k"};
  for (size_t i = 0; i < ids.size(); ++i) {
    spans.push_back(Transition(static_cast<uint8_t>(10 + i), static_cast<uint8_t>(i + 1), ids[i],
                               "INITIATED", 1, kNow - 30 * kSecond));
  }
  ASSERT_TRUE(ingester.Ingest(Batch(Service("shop-api"), {Scope("shop", spans)})).ok());
  EXPECT_THAT(observer.ids(), ElementsAre("ord-a", "ord-c", "ord-k", "ord-m", "ord-q", "ord-x"));
}

// The gap detector needs the earlier record (to tell what changed) and the spans only after the
// records they changed (a watermark must not move past a status not yet folded in).
TEST_F(IngesterTest, ObserverHearsTheEarlierRecordAndThenTheSpans) {
  RecordingObserver observer;
  IngestConsumers consumers;
  consumers.observer = &observer;
  Ingester ingester(*store_, clock_, IngesterOptions{}, consumers);
  ASSERT_TRUE(ingester.Ingest(OrderBatch()).ok());
  ASSERT_TRUE(ingester.Ingest(PriceCalculatedBatch()).ok());
  ASSERT_TRUE(ingester.Ingest(PriceCalculatedBatch()).ok());  // a replay: no record changes
  EXPECT_THAT(observer.events(),
              ElementsAre("new ord-1", "spans " + std::to_string(OrderBatch().SpanCount()),
                          "update ord-1", "spans 1", "spans 1"));
}

TEST_F(IngesterTest, LaterRequestsExtendTheStoredOrder) {
  Ingester ingester(*store_, clock_);
  ASSERT_TRUE(ingester.Ingest(OrderBatch()).ok());
  ASSERT_TRUE(ingester.Ingest(PriceCalculatedBatch()).ok());

  std::optional<model::OrderRecord> order = Order("ord-1");
  ASSERT_TRUE(order.has_value());
  EXPECT_THAT(StatusNames(*order), ElementsAre("INITIATED", "SUBMITTED", "PRICE_CALCULATED"));
  EXPECT_THAT(order->trace_ids, ElementsAre(TraceIdOf(1), TraceIdOf(3)));
  ASSERT_NE(order->CurrentStatus(), nullptr);
  EXPECT_EQ(order->CurrentStatus()->service, "crm-api");

  absl::StatusOr<std::vector<model::OrderRecord>> listed =
      store_->ListOrders(store::OrderFilter{"PRICE_CALCULATED", "", 10});
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_THAT(*listed, SizeIs(1));
  EXPECT_EQ((*listed)[0].order_id, "ord-1");
  listed = store_->ListOrders(store::OrderFilter{"SUBMITTED", "", 10});
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_THAT(*listed, IsEmpty());
}

TEST_F(IngesterTest, ReplayedBatchLeavesTheOrderUnchanged) {
  Ingester ingester(*store_, clock_);
  ASSERT_TRUE(ingester.Ingest(OrderBatch()).ok());
  std::optional<model::OrderRecord> first = Order("ord-1");
  ASSERT_TRUE(first.has_value());

  ASSERT_TRUE(ingester.Ingest(OrderBatch()).ok());
  EXPECT_EQ(Order("ord-1"), first);
  IngesterStats stats = ingester.Stats();
  EXPECT_EQ(stats.requests_written, 2u);
  EXPECT_EQ(stats.orders_updated, 1u) << "a replay has nothing new for the order";
}

// The writer keeps order records in a cache between requests: a replay (no change) must leave
// the cached record whole, so that a later request builds on everything before it.
TEST_F(IngesterTest, ReplayThenLaterRequestBuildsOnTheWholeRecord) {
  Ingester ingester(*store_, clock_);
  ASSERT_TRUE(ingester.Ingest(OrderBatch()).ok());
  ASSERT_TRUE(ingester.Ingest(OrderBatch()).ok());  // unchanged
  ASSERT_TRUE(ingester.Ingest(PriceCalculatedBatch()).ok());
  std::optional<model::OrderRecord> order = Order("ord-1");
  ASSERT_TRUE(order.has_value());
  EXPECT_EQ(order->order_id, "ord-1");
  EXPECT_THAT(StatusNames(*order), ElementsAre("INITIATED", "SUBMITTED", "PRICE_CALCULATED"));
  EXPECT_EQ(order->trace_id, TraceIdOf(1));
  EXPECT_EQ(ingester.Stats().orders_updated, 2u);
}

TEST_F(IngesterTest, ConcurrentRequestsForOneOrderBothLand) {
  Ingester ingester(*store_, clock_);
  constexpr int kPerThread = 10;
  std::latch start(2);
  auto send = [&](int parity, std::vector<absl::Status>& results) {
    start.arrive_and_wait();
    for (int i = parity; i < 2 * kPerThread; i += 2) {
      std::string status = "STEP_" + std::to_string(100 + i);
      results.push_back(ingester.Ingest(
          Batch(Service(parity == 0 ? "shop-api" : "crm-api"),
                {Scope("s", {Transition(1, static_cast<uint8_t>(i + 1), "ord-shared", status, i,
                                        kNow - (100 - i) * kSecond)})})));
    }
  };
  std::vector<absl::Status> even, odd;
  std::thread a(send, 0, std::ref(even));
  std::thread b(send, 1, std::ref(odd));
  a.join();
  b.join();

  for (const absl::Status& s : even) EXPECT_TRUE(s.ok()) << s;
  for (const absl::Status& s : odd) EXPECT_TRUE(s.ok()) << s;
  std::optional<model::OrderRecord> order = Order("ord-shared");
  ASSERT_TRUE(order.has_value());
  std::vector<std::string> expected;
  for (int i = 0; i < 2 * kPerThread; ++i) expected.push_back("STEP_" + std::to_string(100 + i));
  EXPECT_EQ(StatusNames(*order), expected);
  EXPECT_EQ(StoredBlocks(1).size(), 2u * kPerThread);
  EXPECT_EQ(ingester.Stats().spans_written, 2u * kPerThread);
}

TEST_F(IngesterTest, RequestLargerThanTheQueueIsRefused) {
  IngesterOptions options;
  options.max_queued_spans = 2;
  Ingester ingester(*store_, clock_, options);

  absl::Status status = ingester.Ingest(OrderBatch());  // 3 spans
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_FALSE(status.message().empty());
  EXPECT_EQ(ingester.Stats().requests_refused_full, 1u);
  EXPECT_EQ(ingester.Stats().queued_spans, 0u);
  EXPECT_THAT(StoredBlocks(1), IsEmpty());
  EXPECT_EQ(Order("ord-1"), std::nullopt);

  EXPECT_TRUE(ingester
                  .Ingest(Batch(Service("shop-api"),
                                {Scope("s", {Transition(1, 1, "ord-1", "INITIATED", 1, kNow),
                                             MakeSpan(1, 2, "child", kNow)})}))
                  .ok());
  EXPECT_THAT(StoredBlocks(1), SizeIs(1));
}

TEST_F(IngesterTest, AfterShutdownIngestIsUnavailable) {
  Ingester ingester(*store_, clock_);
  ingester.Shutdown();
  ingester.Shutdown();  // idempotent

  absl::Status status = ingester.Ingest(OrderBatch());
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(StoredBlocks(1), IsEmpty());
  EXPECT_EQ(ingester.Stats().queued_spans, 0u);
}

// Holds the writer thread in OnOrderUpdated until released, so that a request stays queued.
class BlockingObserver : public OrderObserver {
 public:
  void OnOrderUpdated(const model::OrderRecord*, const model::OrderRecord&) override {
    std::unique_lock<std::mutex> lock(mu_);
    entered_ = true;
    cv_.notify_all();
    cv_.wait(lock, [this] { return open_; });
  }
  void OnSpansArrived(const base::TraceBatch&) override {}
  void WaitUntilEntered() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return entered_; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false;
  bool open_ = false;
};

TEST_F(IngesterTest, RequestPastTheByteBoundIsRefusedWhileOthersWait) {
  BlockingObserver observer;
  IngesterOptions options;
  options.max_queued_bytes = 1;  // any request alone fits; a second one does not
  Ingester ingester(*store_, clock_, options, IngestConsumers{&observer, nullptr, nullptr});
  std::thread first([&] { EXPECT_TRUE(ingester.Ingest(OrderBatch()).ok()); });
  observer.WaitUntilEntered();
  EXPECT_GT(ingester.Stats().queued_bytes, 0u);

  absl::Status second = ingester.Ingest(PriceCalculatedBatch());
  EXPECT_EQ(second.code(), absl::StatusCode::kResourceExhausted) << second;
  EXPECT_THAT(std::string(second.message()), testing::HasSubstr("max_queued_mb"));
  EXPECT_EQ(ingester.Stats().requests_refused_bytes, 1u);
  EXPECT_EQ(ingester.Stats().requests_refused_full, 0u);

  observer.Open();
  first.join();
  EXPECT_EQ(ingester.Stats().queued_bytes, 0u);
  EXPECT_TRUE(ingester.Ingest(PriceCalculatedBatch()).ok()) << "room again once written";
}

TEST_F(IngesterTest, SpansOutsideTheLimitsAreRefusedAloneAndReported) {
  Ingester ingester(*store_, clock_);
  base::TraceBatch batch = OrderBatch();
  base::ScopeSpans& scope = batch.resource_spans[0].scope_spans[0];
  scope.spans.push_back(Transition(4, 7, "ord-old", "INITIATED", 1, 5 * kSecond));
  scope.spans.push_back(Transition(5, 8, std::string(300, 'x'), "INITIATED", 1, kNow));
  RejectedSpans rejected;
  ASSERT_TRUE(ingester.Ingest(std::move(batch), &rejected).ok());

  EXPECT_EQ(rejected.count, 2);
  EXPECT_THAT(rejected.message, testing::HasSubstr("1970-01-01T00:00:04Z is older than 14d"));
  EXPECT_EQ(Order("ord-old"), std::nullopt);
  ASSERT_TRUE(Order("ord-1").has_value()) << "the valid spans of the request are stored";
  IngesterStats stats = ingester.Stats();
  EXPECT_EQ(stats.spans_written, 3u);
  EXPECT_EQ(stats.spans_refused[static_cast<size_t>(RefusalReason::kTooOld)], 1u);
  EXPECT_EQ(stats.spans_refused[static_cast<size_t>(RefusalReason::kOrderIdTooLong)], 1u);

  // Without a report to fill, they are refused all the same.
  base::TraceBatch old_only = Batch(
      Service("shop-api"), {Scope("shop", {Transition(6, 9, "ord-old", "INITIATED", 1, kSecond)})});
  EXPECT_TRUE(ingester.Ingest(std::move(old_only)).ok());
  EXPECT_EQ(Order("ord-old"), std::nullopt);
  EXPECT_EQ(ingester.Stats().spans_refused[static_cast<size_t>(RefusalReason::kTooOld)], 2u);
}

// A clock that holds its caller until released, after `free_readings` readings: with one, it
// parks an Ingest call once its request is folded (the span checks read the clock first).
class GateClock final : public base::Clock {
 public:
  explicit GateClock(int free_readings = 0) : free_readings_(free_readings) {}
  uint64_t NowUnixNano() const override {
    std::unique_lock<std::mutex> lock(mu_);
    if (free_readings_ > 0) {
      --free_readings_;
      return kNow;
    }
    entered_ = true;
    cv_.notify_all();
    cv_.wait(lock, [this] { return open_; });
    return kNow;
  }
  void WaitUntilEntered() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return entered_; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable bool entered_ = false;
  mutable int free_readings_;
  bool open_ = false;
};

// Shutdown while a request is being encoded: the request must still get an answer (stored,
// or kUnavailable), not wait forever for a writer that has already exited.
TEST_F(IngesterTest, ShutdownDuringIngestStillAnswersTheCaller) {
  auto clock = std::make_shared<GateClock>(/*free_readings=*/1);
  auto ingester = std::make_unique<Ingester>(*store_, *clock);
  auto answer = std::make_shared<std::promise<absl::Status>>();
  std::future<absl::Status> answered = answer->get_future();
  Ingester* raw = ingester.get();
  std::thread caller([raw, answer, clock] { answer->set_value(raw->Ingest(OrderBatch())); });

  clock->WaitUntilEntered();
  ingester->Shutdown();
  clock->Open();

  // A bound on a hang, not a sleep: a correct Ingester answers at once.
  if (answered.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    ADD_FAILURE() << "Ingest never returned after Shutdown()";
    // The caller is stuck for good; leave it and the objects it uses alive.
    caller.detach();
    (void)ingester.release();
    (void)store_.release();
    return;
  }
  caller.join();
  absl::Status status = answered.get();
  EXPECT_TRUE(status.ok() || status.code() == absl::StatusCode::kUnavailable) << status;
  EXPECT_EQ(ingester->Stats().queued_spans, 0u);
}

TEST(BlocksByTraceTest, SplitsAMixedBatchIntoOneBlockPerTrace) {
  base::TraceBatch batch;
  base::ResourceSpans shop{Service("shop-api"), "shop-schema", {}};
  shop.scope_spans.push_back(Scope("shop.http", {MakeSpan(1, 1, "t1-a", kNow - 10 * kSecond),
                                                 MakeSpan(2, 2, "t2-a", kNow - 8 * kSecond)}));
  shop.scope_spans.push_back(Scope("shop.db", {MakeSpan(1, 3, "t1-b", kNow - 5 * kSecond)}));
  batch.resource_spans.push_back(shop);
  base::ResourceSpans crm{Service("crm-api"), "", {}};
  // CRM's clock runs an hour ahead; a span without an end time counts as now.
  crm.scope_spans.push_back(
      Scope("crm", {MakeSpan(2, 4, "t2-b", kNow + 3600 * kSecond), MakeSpan(3, 5, "t3-a", 0)}));
  batch.resource_spans.push_back(crm);

  std::vector<store::SpanBlock> blocks = BlocksByTrace(batch, kNow);

  ASSERT_THAT(blocks, SizeIs(3));
  std::map<base::TraceId, base::TraceBatch> by_trace;
  std::map<base::TraceId, uint64_t> times;
  for (const store::SpanBlock& block : blocks) {
    absl::StatusOr<otlp::DecodedRequest> decoded = otlp::DecodeProtobufRequest(block.encoded);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(decoded->rejected_spans, 0);
    for (const auto& rs : decoded->batch.resource_spans) {
      for (const auto& ss : rs.scope_spans) {
        for (const auto& span : ss.spans) EXPECT_EQ(span.trace_id, block.trace_id);
      }
    }
    by_trace[block.trace_id] = std::move(decoded->batch);
    times[block.trace_id] = block.time_unix_nano;
  }
  ASSERT_EQ(by_trace.size(), 3u) << "one block per trace";

  const base::TraceBatch& t1 = by_trace[TraceIdOf(1)];
  ASSERT_THAT(t1.resource_spans, SizeIs(1));
  EXPECT_EQ(base::ServiceName(t1.resource_spans[0].resource), "shop-api");
  EXPECT_EQ(t1.resource_spans[0].schema_url, "shop-schema");
  ASSERT_THAT(t1.resource_spans[0].scope_spans, SizeIs(2));
  EXPECT_EQ(t1.resource_spans[0].scope_spans[0].scope.name, "shop.http");
  EXPECT_EQ(t1.resource_spans[0].scope_spans[1].scope.name, "shop.db");
  EXPECT_THAT(SpanNames(t1), ElementsAre("t1-a", "t1-b"));
  EXPECT_EQ(times[TraceIdOf(1)], kNow - 5 * kSecond) << "the latest span end";

  const base::TraceBatch& t2 = by_trace[TraceIdOf(2)];
  ASSERT_THAT(t2.resource_spans, SizeIs(2));
  EXPECT_EQ(base::ServiceName(t2.resource_spans[0].resource), "shop-api");
  EXPECT_EQ(base::ServiceName(t2.resource_spans[1].resource), "crm-api");
  EXPECT_EQ(t2.resource_spans[0].scope_spans[0].scope.name, "shop.http");
  EXPECT_EQ(t2.resource_spans[1].scope_spans[0].scope.name, "crm");
  EXPECT_THAT(SpanNames(t2), ElementsAre("t2-a", "t2-b"));
  EXPECT_EQ(times[TraceIdOf(2)], kNow) << "clamped to now";

  const base::TraceBatch& t3 = by_trace[TraceIdOf(3)];
  EXPECT_THAT(SpanNames(t3), ElementsAre("t3-a"));
  EXPECT_EQ(times[TraceIdOf(3)], kNow);
}

TEST(BlocksByTraceTest, EmptyBatchHasNoBlocks) {
  EXPECT_THAT(BlocksByTrace(base::TraceBatch(), kNow), IsEmpty());
}

std::optional<double> DoubleAttr(const base::Span& span, std::string_view key) {
  const base::AnyValue* v = base::FindAttribute(span.attributes, key);
  if (v == nullptr || v->type != base::AnyValue::Type::kDouble) return std::nullopt;
  return v->double_value;
}

// Order ord-1 reaching INITIATED (trace 1) and a short detail span of the same trace.
base::TraceBatch TransitionWithDetail(const std::string& detail_name, base::SpanKind kind) {
  base::Span detail = MakeSpan(1, 7, detail_name, kNow - 19 * kSecond);
  detail.kind = kind;
  detail.parent_span_id.bytes[7] = 1;
  return Batch(
      Service("mes-api"),
      {Scope("mes", {Transition(1, 1, "ord-1", "INITIATED", 1, kNow - 30 * kSecond), detail})});
}

base::Span WithPrev(base::Span span, const std::string& prev) {
  span.attributes.push_back(Str("prev_status", prev));
  return span;
}

TEST_F(IngesterTest, StoredSpansCarryTheDerivedStageDuration) {
  Ingester ingester(*store_, clock_);
  // The stage's two ends arrive in separate requests, the later one first.
  ASSERT_TRUE(ingester
                  .Ingest(Batch(Service("mes-api"),
                                {Scope("mes", {WithPrev(Transition(1, 2, "ord-1", "SUBMITTED", 2,
                                                                   kNow - 10 * kSecond),
                                                        "INITIATED")})}))
                  .ok());
  ASSERT_TRUE(
      ingester
          .Ingest(Batch(Service("shop-api"), {Scope("shop", {Transition(1, 1, "ord-1", "INITIATED",
                                                                        1, kNow - 70 * kSecond)})}))
          .ok());
  ASSERT_TRUE(ingester
                  .Ingest(Batch(Service("mes-api"),
                                {Scope("mes", {WithPrev(Transition(1, 3, "ord-1", "FILE_UPLOADED",
                                                                   3, kNow - 5 * kSecond),
                                                        "SUBMITTED")})}))
                  .ok());
  std::map<std::string, base::Span> stored;
  for (const base::TraceBatch& block : StoredBlocks(1)) {
    for (const auto& rs : block.resource_spans) {
      for (const auto& ss : rs.scope_spans) {
        for (const auto& span : ss.spans) stored[span.name] = span;
      }
    }
  }
  ASSERT_EQ(stored.size(), 3u);
  // SUBMITTED came before INITIATED was known: its stage could not be derived on arrival.
  EXPECT_FALSE(DoubleAttr(stored["SetSUBMITTED"], lifecycle::kStageDurationKey));
  EXPECT_EQ(DoubleAttr(stored["SetFILE_UPLOADED"], lifecycle::kStageDurationKey), 5.0);
  EXPECT_EQ(DoubleAttr(stored["SetSUBMITTED"], lifecycle::kStatusTransitionLatencyKey), 1.0);
}

TEST_F(IngesterTest, MetricsSeeEverySpanTheSamplerDrops) {
  metrics::Registry registry;
  metrics::TraceMetrics trace_metrics(registry, {}, nullptr);
  sampling::SamplingOptions sampling_options;
  sampling_options.ratio = 0;  // no detail kept by ratio
  sampling_options.decision_wait_nanos = 1 * kSecond;
  sampling::TailSampler sampler(sampling_options, clock_);
  Ingester ingester(*store_, clock_, {}, IngestConsumers{nullptr, &trace_metrics, &sampler});

  ASSERT_TRUE(ingester.Ingest(TransitionWithDetail("SELECT orders", base::SpanKind::kClient)).ok());
  // The detail span waits for its decision; after the wait it is dropped, never stored.
  clock_.Advance(2 * kSecond);
  for (int i = 0; i < 100 && sampler.Stats().pending_spans > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(sampler.Stats().pending_spans, 0u);
  EXPECT_EQ(sampler.Stats().dropped_detail_spans, 1u);
  std::vector<std::string> names;
  for (const auto& block : StoredBlocks(1)) {
    for (const std::string& n : SpanNames(block)) names.push_back(n);
  }
  EXPECT_THAT(names, ElementsAre("SetINITIATED"));
  // ...yet the span metrics counted it.
  EXPECT_THAT(registry.Render(metrics::Format::kPrometheusText),
              testing::HasSubstr("traces_span_metrics_calls_total{service_name=\"mes-api\","
                                 "span_name=\"SELECT orders\",span_kind=\"SPAN_KIND_CLIENT\","
                                 "status_code=\"STATUS_CODE_UNSET\"} 1\n"));
}

// The scrubber runs before anything else: neither the stored blocks (of spans decoded with
// their received bytes, the fast path) nor the metric labels hold the address, and the
// operator id gains its hash beside the clear value.
TEST_F(IngesterTest, PiiIsRemovedBeforeStorageAndMetricsAndOperatorIdsGainTheirHash) {
  metrics::Registry registry;
  metrics::TraceMetrics trace_metrics(registry, {}, nullptr);
  absl::StatusOr<std::unique_ptr<scrub::PiiScrubber>> scrubber = scrub::PiiScrubber::Create({});
  ASSERT_TRUE(scrubber.ok());
  scrub::OperatorIdHasher hasher("test-secret-0123456789");
  IngestConsumers consumers;
  consumers.metrics = &trace_metrics;
  consumers.scrubber = scrubber->get();
  consumers.operator_hasher = &hasher;
  Ingester ingester(*store_, clock_, {}, consumers);

  base::Span span = Transition(1, 1, "ord-1", "INITIATED", 1, kNow - 30 * kSecond);
  span.name = "mail jo@example.com";
  span.attributes.push_back(Str("customer.email", "jo@example.com"));
  span.attributes.push_back(Str("operator_id", "op-17"));
  auto body = std::make_shared<const std::string>(
      otlp::EncodeProtobuf(Batch(Service("shop-api"), {Scope("shop", {span})})));
  absl::StatusOr<otlp::DecodedRequest> decoded = otlp::DecodeProtobufRequest(body);
  ASSERT_TRUE(decoded.ok());
  ASSERT_TRUE(ingester.Ingest(std::move(decoded->batch), std::move(decoded->received)).ok());

  absl::StatusOr<std::vector<std::string>> blocks = store_->ReadTrace(TraceIdOf(1));
  ASSERT_TRUE(blocks.ok());
  ASSERT_THAT(*blocks, SizeIs(1));
  EXPECT_THAT((*blocks)[0], testing::Not(testing::HasSubstr("jo@example.com")));
  std::vector<base::TraceBatch> stored = StoredBlocks(1);
  const base::Span& kept = stored[0].resource_spans[0].scope_spans[0].spans[0];
  EXPECT_EQ(kept.name, "mail [email]");
  EXPECT_EQ(base::FindAttribute(kept.attributes, "customer.email"), nullptr);
  ASSERT_NE(base::FindAttribute(kept.attributes, "operator_id"), nullptr);
  EXPECT_EQ(base::FindAttribute(kept.attributes, "operator_id")->string_value, "op-17");
  ASSERT_NE(base::FindAttribute(kept.attributes, "operator_id.hash"), nullptr);
  EXPECT_EQ(base::FindAttribute(kept.attributes, "operator_id.hash")->string_value,
            hasher.Hash("op-17"));
  ASSERT_TRUE(Order("ord-1").has_value());
  const std::string exposition = registry.Render(metrics::Format::kPrometheusText);
  EXPECT_THAT(exposition, testing::HasSubstr("span_name=\"mail [email]\""));
  EXPECT_THAT(exposition, testing::Not(testing::HasSubstr("jo@example.com")));
  EXPECT_EQ((*scrubber)->Stats()[0].removed, 2u);
}

TEST_F(IngesterTest, DetailOfAStuckOrderIsWrittenWhenReleased) {
  sampling::SamplingOptions sampling_options;
  sampling_options.ratio = 0;
  sampling_options.decision_wait_nanos = 60 * kSecond;
  sampling::TailSampler sampler(sampling_options, clock_);
  Ingester ingester(*store_, clock_, {}, IngestConsumers{nullptr, nullptr, &sampler});
  ASSERT_TRUE(ingester.Ingest(TransitionWithDetail("calc.phase", base::SpanKind::kInternal)).ok());
  ASSERT_EQ(sampler.Stats().pending_spans, 1u);
  sampler.ForceKeep(TraceIdOf(1));  // what the gap detector does for a stuck order
  size_t stored = 0;
  for (int i = 0; i < 100 && stored < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    stored = 0;
    for (const auto& block : StoredBlocks(1)) stored += block.SpanCount();
  }
  EXPECT_EQ(stored, 2u);
  EXPECT_EQ(ingester.Stats().released_spans_written, 1u);
}

}  // namespace
}  // namespace ordertrace::ingest
