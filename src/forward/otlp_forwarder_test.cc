#include "forward/otlp_forwarder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <deque>
#include <filesystem>
#include <thread>

#include "otlp/proto_codec.h"
#include "store/rocks_store.h"

namespace ordertrace::forward {
namespace {

using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// A transport that answers from a script (then with `otherwise`) and keeps what it was sent.
class FakeTransport final : public ForwardTransport {
 public:
  SendResult Send(const std::string& request) override {
    std::lock_guard<std::mutex> lock(mu_);
    requests_.push_back(request);
    if (script_.empty()) return otherwise_;
    SendResult next = script_.front();
    script_.pop_front();
    return next;
  }
  void Cancel() override {}

  void Then(SendResult result) {
    std::lock_guard<std::mutex> lock(mu_);
    script_.push_back(std::move(result));
  }
  void Otherwise(SendResult result) {
    std::lock_guard<std::mutex> lock(mu_);
    otherwise_ = std::move(result);
  }
  std::vector<std::string> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  // The span names of every request, one string per request ("a b c").
  std::vector<std::string> SpanNames() const {
    std::vector<std::string> out;
    for (const std::string& request : requests()) {
      absl::StatusOr<otlp::DecodedRequest> decoded =
          otlp::DecodeProtobufRequest(std::string_view(request));
      std::string names;
      if (decoded.ok()) {
        for (const auto& rs : decoded->batch.resource_spans) {
          for (const auto& ss : rs.scope_spans) {
            for (const auto& span : ss.spans) names += (names.empty() ? "" : " ") + span.name;
          }
        }
      } else {
        names = "<undecodable>";
      }
      out.push_back(names);
    }
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::deque<SendResult> script_;
  SendResult otherwise_ = Accepted();
  std::vector<std::string> requests_;

 public:
  static SendResult Accepted() { return {SendResult::Outcome::kAccepted, "200", {}, ""}; }
};

SendResult Retryable(std::optional<milliseconds> retry_after = std::nullopt) {
  return {SendResult::Outcome::kRetryable, "503", retry_after, "unavailable"};
}
SendResult Rejected() { return {SendResult::Outcome::kRejected, "400", {}, "bad request"}; }

// Spans named by `names`, one trace, as a stored block holds them.
store::SpanBlock BlockOf(const std::vector<std::string>& names, uint8_t trace = 1) {
  base::TraceBatch batch;
  batch.resource_spans.emplace_back();
  batch.resource_spans[0].resource.attributes.push_back(
      {"service.name", base::AnyValue::String("shop-api")});
  batch.resource_spans[0].scope_spans.emplace_back();
  uint8_t next_id = 1;
  for (const std::string& name : names) {
    base::Span span;
    span.trace_id.bytes[0] = 0x42;
    span.trace_id.bytes[15] = trace;
    span.span_id.bytes[7] = next_id++;
    span.name = name;
    span.start_time_unix_nano = 1'700'000'000'000'000'000ULL;
    span.end_time_unix_nano = span.start_time_unix_nano + 1000;
    span.attributes.push_back({"operator_id", base::AnyValue::String("OP-" + name)});
    batch.resource_spans[0].scope_spans[0].spans.push_back(std::move(span));
  }
  store::SpanBlock block;
  block.trace_id = batch.resource_spans[0].scope_spans[0].spans[0].trace_id;
  block.time_unix_nano = 1'700'000'000'000'000'000ULL;
  block.encoded = otlp::EncodeProtobuf(batch);
  return block;
}

template <typename Predicate>
bool Eventually(Predicate predicate) {
  for (int i = 0; i < 1000; ++i) {
    if (predicate()) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return predicate();
}

class OtlpForwarderTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = testing::TempDir() + "ordertrace_forward_test_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    OpenStore();
    options_.initial_backoff = milliseconds(100);
    options_.max_backoff = milliseconds(1000);
    options_.poll_interval = milliseconds(5);
  }
  void TearDown() override {
    forwarder_.reset();
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void OpenStore() {
    store::RocksStoreOptions options;
    options.path = dir_ + "/store";
    options.write_buffer_bytes = 4 << 20;
    options.block_cache_bytes = 8 << 20;
    options.min_free_bytes = 0;
    options.forward_queue = true;
    absl::StatusOr<std::unique_ptr<store::Store>> store = store::OpenRocksStore(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  void Write(store::SpanBlock block) {
    store::WriteSet writes;
    writes.blocks.push_back(std::move(block));
    ASSERT_TRUE(store_->Write(writes).ok());
  }

  // Starts a forwarder on `transport_` that records its waits instead of waiting.
  void Start() {
    auto transport = std::make_unique<FakeTransport>();
    transport_ = transport.get();
    StartWith(std::move(transport));
  }
  void StartWith(std::unique_ptr<FakeTransport> transport) {
    transport_ = transport.get();
    forwarder_ = std::make_unique<OtlpForwarder>(*store_, options_, std::move(transport),
                                                 [this](milliseconds wait) {
                                                   {
                                                     std::lock_guard<std::mutex> lock(waits_mu_);
                                                     waits_.push_back(wait);
                                                   }
                                                   if (on_wait_) on_wait_();
                                                   std::this_thread::sleep_for(milliseconds(1));
                                                   return true;
                                                 });
  }
  std::vector<milliseconds> Waits() {
    std::lock_guard<std::mutex> lock(waits_mu_);
    return waits_;
  }

  std::string dir_;
  std::unique_ptr<store::Store> store_;
  OtlpForwarderOptions options_;
  FakeTransport* transport_ = nullptr;
  std::unique_ptr<OtlpForwarder> forwarder_;
  std::mutex waits_mu_;
  std::vector<milliseconds> waits_;
  std::function<void()> on_wait_;
};

TEST(CountSpansTest, CountsTheSpansOfEveryResourceAndScope) {
  const std::string two_blocks = BlockOf({"a", "b"}).encoded + BlockOf({"c"}, 2).encoded;
  EXPECT_EQ(OtlpForwarder::CountSpans(BlockOf({"a", "b"}).encoded), 2u);
  EXPECT_EQ(OtlpForwarder::CountSpans(two_blocks), 3u);
  EXPECT_EQ(OtlpForwarder::CountSpans(""), 0u);
  EXPECT_EQ(OtlpForwarder::CountSpans("\x0a\xff"), 0u);  // a length past the end
}

TEST_F(OtlpForwarderTest, SendsTheStoredSpansInOrderAndDeletesWhatWasAcknowledged) {
  Write(BlockOf({"a"}));
  Write(BlockOf({"b", "c"}, 2));
  Write(BlockOf({"d"}, 3));
  Start();
  forwarder_->Start();
  ASSERT_TRUE(Eventually([&] { return forwarder_->Stats().spans_sent == 4; }));
  Write(BlockOf({"e"}, 4));  // queued while it runs
  ASSERT_TRUE(Eventually([&] { return forwarder_->Stats().spans_sent == 5; }));
  forwarder_->Shutdown();
  std::string all;
  for (const std::string& names : transport_->SpanNames()) all += names + ";";
  EXPECT_EQ(all, "a b c d;e;");
  ForwarderStats stats = forwarder_->Stats();
  EXPECT_EQ(stats.queue_bytes, 0u);
  EXPECT_EQ(stats.requests["200"], 2u);
  EXPECT_EQ(stats.retries, 0u);
  absl::StatusOr<std::vector<store::ForwardEntry>> left = store_->ReadForwardQueue(0, 100, 1 << 20);
  ASSERT_TRUE(left.ok());
  EXPECT_THAT(*left, IsEmpty());
}

TEST_F(OtlpForwarderTest, ABatchHoldsAtMostMaxBatchSpansButAlwaysOneBlock) {
  options_.max_batch_spans = 3;
  Write(BlockOf({"a", "b"}));
  Write(BlockOf({"c", "d"}, 2));
  Write(BlockOf({"e", "f", "g", "h"}, 3));  // larger than a batch alone
  Write(BlockOf({"i"}, 4));
  Start();
  forwarder_->Start();
  ASSERT_TRUE(Eventually([&] { return forwarder_->Stats().spans_sent == 9; }));
  forwarder_->Shutdown();
  EXPECT_THAT(transport_->SpanNames(), ElementsAre("a b", "c d", "e f g h", "i"));
}

TEST_F(OtlpForwarderTest, RetriesWithExponentialBackoffAndJitterUpToTheMaximum) {
  Write(BlockOf({"a"}));
  auto transport = std::make_unique<FakeTransport>();
  for (int i = 0; i < 6; ++i) transport->Then(Retryable());
  StartWith(std::move(transport));
  forwarder_->Start();
  ASSERT_TRUE(Eventually([&] { return forwarder_->Stats().spans_sent == 1; }));
  forwarder_->Shutdown();
  const std::vector<milliseconds> waits = Waits();
  ASSERT_GE(waits.size(), 6u);
  // 100, 200, 400, 800, then 1000 (the maximum), each within +-20%.
  const int64_t expected[] = {100, 200, 400, 800, 1000, 1000};
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_GE(waits[i].count(), expected[i] * 8 / 10) << "wait " << i;
    EXPECT_LE(waits[i].count(), expected[i] * 12 / 10) << "wait " << i;
  }
  ForwarderStats stats = forwarder_->Stats();
  EXPECT_EQ(stats.retries, 6u);
  EXPECT_EQ(stats.requests["503"], 6u);
  EXPECT_EQ(stats.requests["200"], 1u);
  EXPECT_THAT(transport_->SpanNames(), ElementsAre("a", "a", "a", "a", "a", "a", "a"));
}

TEST_F(OtlpForwarderTest, WaitsAsLongAsRetryAfterSays) {
  Write(BlockOf({"a"}));
  auto transport = std::make_unique<FakeTransport>();
  transport->Then(Retryable(milliseconds(7000)));
  transport->Then(Retryable(milliseconds(0)));
  StartWith(std::move(transport));
  forwarder_->Start();
  ASSERT_TRUE(Eventually([&] { return forwarder_->Stats().spans_sent == 1; }));
  forwarder_->Shutdown();
  const std::vector<milliseconds> waits = Waits();
  ASSERT_GE(waits.size(), 2u);
  EXPECT_EQ(waits[0], milliseconds(7000));  // instead of the 100 ms backoff
  EXPECT_EQ(waits[1], milliseconds(0));
  // Later waits are the idle polls of an empty queue.
  for (size_t i = 2; i < waits.size(); ++i) EXPECT_EQ(waits[i], options_.poll_interval);
}

TEST_F(OtlpForwarderTest, AFinalRefusalDropsTheBatchCountsItAndTheRestGoesOn) {
  options_.max_batch_spans = 2;
  Write(BlockOf({"a", "b"}));
  Write(BlockOf({"c"}, 2));
  auto transport = std::make_unique<FakeTransport>();
  transport->Then(Rejected());
  StartWith(std::move(transport));
  forwarder_->Start();
  ASSERT_TRUE(Eventually([&] { return forwarder_->Stats().spans_sent == 1; }));
  forwarder_->Shutdown();
  ForwarderStats stats = forwarder_->Stats();
  EXPECT_EQ(stats.spans_dropped_rejected, 2u);
  EXPECT_EQ(stats.retries, 0u);  // not retried
  EXPECT_EQ(stats.requests["400"], 1u);
  EXPECT_THAT(transport_->SpanNames(), ElementsAre("a b", "c"));
  EXPECT_EQ(stats.queue_bytes, 0u);
}

TEST_F(OtlpForwarderTest, PastTheBoundTheOldestAreDroppedAndCounted) {
  std::vector<store::SpanBlock> blocks;
  for (int i = 0; i < 10; ++i) blocks.push_back(BlockOf({"s" + std::to_string(i)}, i + 1));
  const size_t block_bytes = blocks[0].encoded.size();
  options_.max_queue_bytes = 3 * block_bytes + block_bytes / 2;  // room for three
  for (store::SpanBlock& block : blocks) Write(std::move(block));
  Start();
  forwarder_->Start();
  ASSERT_TRUE(Eventually([&] {
    ForwarderStats s = forwarder_->Stats();
    return s.spans_sent + s.spans_dropped_full == 10;
  }));
  forwarder_->Shutdown();
  ForwarderStats stats = forwarder_->Stats();
  EXPECT_EQ(stats.spans_dropped_full, 7u);
  EXPECT_EQ(stats.spans_sent, 3u);
  EXPECT_THAT(transport_->SpanNames(), ElementsAre("s7 s8 s9"));  // the newest
}

TEST_F(OtlpForwarderTest, TheBoundHoldsWhileTheEndpointIsDownAndTheRestArrivesAfter) {
  const size_t block_bytes = BlockOf({"x00"}).encoded.size();
  options_.max_queue_bytes = 5 * block_bytes;
  options_.max_batch_spans = 1;
  auto transport = std::make_unique<FakeTransport>();
  transport->Otherwise(Retryable());
  FakeTransport* fake = transport.get();
  int written = 0;
  uint64_t most_queued = 0;
  // Ingest goes on during the outage: a block per retry.
  on_wait_ = [&] {
    if (written < 30) {
      Write(BlockOf({"x" + std::to_string(10 + written)}, static_cast<uint8_t>(written + 1)));
      ++written;
    } else {
      fake->Otherwise(FakeTransport::Accepted());  // the endpoint is back
    }
    most_queued = std::max(most_queued, store_->ForwardQueueBytes());
  };
  Write(BlockOf({"x00"}));
  StartWith(std::move(transport));
  forwarder_->Start();
  ASSERT_TRUE(Eventually([&] {
    ForwarderStats s = forwarder_->Stats();
    return s.spans_sent + s.spans_dropped_full == 31 && s.queue_bytes == 0;
  }));
  forwarder_->Shutdown();
  ForwarderStats stats = forwarder_->Stats();
  EXPECT_GT(stats.spans_dropped_full, 0u);
  EXPECT_GE(stats.spans_sent, 5u);
  // At most one block past the bound between two trims.
  EXPECT_LE(most_queued, options_.max_queue_bytes + block_bytes);
  // The last ones written are among those sent.
  std::vector<std::string> sent = transport_->SpanNames();
  EXPECT_EQ(sent.back(), "x39");
}

TEST_F(OtlpForwarderTest, BeforeSendRewritesEachBatchAndOnlyTheRewrittenSpansGo) {
  options_.before_send = [](base::TraceBatch& batch) {
    for (auto& rs : batch.resource_spans) {
      for (auto& ss : rs.scope_spans) {
        for (auto& span : ss.spans) {
          for (auto& kv : span.attributes) {
            if (kv.key == "operator_id") kv.value = base::AnyValue::String("hmac:0000");
          }
        }
      }
    }
  };
  Write(BlockOf({"a", "b"}));
  Start();
  forwarder_->Start();
  ASSERT_TRUE(Eventually([&] { return forwarder_->Stats().spans_sent == 2; }));
  forwarder_->Shutdown();
  ASSERT_EQ(transport_->requests().size(), 1u);
  const std::string body = transport_->requests()[0];
  EXPECT_EQ(body.find("OP-a"), std::string::npos);
  EXPECT_NE(body.find("hmac:0000"), std::string::npos);
  EXPECT_THAT(transport_->SpanNames(), ElementsAre("a b"));
}

TEST_F(OtlpForwarderTest, WhatWasNotAcknowledgedBeforeAStopIsSentAfterTheRestart) {
  Write(BlockOf({"a"}));
  Write(BlockOf({"b"}, 2));
  auto down = std::make_unique<FakeTransport>();
  down->Otherwise(Retryable());
  StartWith(std::move(down));
  forwarder_->Start();
  ASSERT_TRUE(Eventually([&] { return forwarder_->Stats().retries >= 2; }));
  forwarder_.reset();
  store_.reset();
  OpenStore();
  Write(BlockOf({"c"}, 3));
  Start();
  forwarder_->Start();
  ASSERT_TRUE(Eventually([&] { return forwarder_->Stats().spans_sent == 3; }));
  forwarder_->Shutdown();
  EXPECT_THAT(transport_->SpanNames(), ElementsAre("a b c"));
}

TEST_F(OtlpForwarderTest, ShutdownEndsALongWaitAtOnceAndTheQueueStays) {
  options_.initial_backoff = milliseconds(60'000);
  Write(BlockOf({"a"}));
  auto transport = std::make_unique<FakeTransport>();
  transport->Otherwise(Retryable());
  FakeTransport* fake = transport.get();
  // The real waiting, not the recorded one.
  forwarder_ = std::make_unique<OtlpForwarder>(*store_, options_, std::move(transport));
  forwarder_->Start();
  ASSERT_TRUE(Eventually([&] { return !fake->requests().empty(); }));
  const auto begin = std::chrono::steady_clock::now();
  forwarder_->Shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(5));
  EXPECT_GT(store_->ForwardQueueBytes(), 0u);
  EXPECT_EQ(forwarder_->Stats().spans_sent, 0u);
}

}  // namespace
}  // namespace ordertrace::forward
