#include "query/trace_query.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "ingest/ingester.h"
#include "model/clock.h"
#include "store/rocks_store.h"

namespace ordertrace::query {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr uint64_t kSecond = model::kNanosPerSecond;
constexpr uint64_t kNow = 1'790'000'000ULL * kSecond;

model::KeyValue Str(std::string key, std::string value) {
  return model::KeyValue{std::move(key), model::AnyValue::String(std::move(value))};
}

model::TraceId TraceIdOf(uint8_t n) {
  model::TraceId id;
  id.bytes[0] = 0x7a;
  id.bytes[15] = n;
  return id;
}

// One order's trace: a root and a child, `seconds` long, ending a minute before kNow.
model::TraceBatch OrderTrace(uint8_t trace, const std::string& order_id, uint64_t seconds) {
  model::ResourceSpans rs;
  rs.resource.attributes = {Str("service.name", "shop-api")};
  model::ScopeSpans ss;
  for (uint8_t i = 1; i <= 2; ++i) {
    model::Span s;
    s.trace_id = TraceIdOf(trace);
    s.span_id.bytes[0] = trace;
    s.span_id.bytes[7] = i;
    if (i == 2)
      s.parent_span_id = [&] {
        model::SpanId p;
        p.bytes[0] = trace;
        p.bytes[7] = 1;
        return p;
      }();
    s.name = i == 1 ? "order.root" : "shop.submit";
    s.start_time_unix_nano = kNow - 60 * kSecond - seconds * kSecond;
    s.end_time_unix_nano = kNow - 60 * kSecond;
    s.attributes = {Str("order_id", order_id)};
    ss.spans.push_back(std::move(s));
  }
  rs.scope_spans.push_back(std::move(ss));
  model::TraceBatch batch;
  batch.resource_spans.push_back(std::move(rs));
  return batch;
}

class TraceQueryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/trace_query_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    store::RocksStoreOptions options;
    options.path = dir_ + "/store";
    auto opened = store::OpenRocksStore(options);
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = std::move(*opened);
    ingester_ = std::make_unique<ingest::Ingester>(*store_, clock_);
  }
  void TearDown() override {
    ingester_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::vector<std::string> Found(TraceQuery& query, const TraceSearch& search) {
    auto found = query.Search(search);
    EXPECT_TRUE(found.ok()) << found.status();
    std::vector<std::string> ids;
    if (found.ok()) {
      for (const TraceSummary& s : *found) ids.push_back(s.trace_id.ToHex());
    }
    return ids;
  }

  model::ManualClock clock_{kNow};
  std::string dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<ingest::Ingester> ingester_;
};

TEST_F(TraceQueryTest, GetTraceMergesBlocksAndShowsAReplayedSpanOnce) {
  ASSERT_TRUE(ingester_->Ingest(OrderTrace(1, "A-1", 3)).ok());
  ASSERT_TRUE(ingester_->Ingest(OrderTrace(1, "A-1", 3)).ok());
  TraceQuery query(*store_, clock_);
  auto trace = query.GetTrace(TraceIdOf(1));
  ASSERT_TRUE(trace.ok()) << trace.status();
  ASSERT_TRUE(trace->has_value());
  EXPECT_EQ((*trace)->SpanCount(), 2u);
  TraceSummary summary = SummarizeTrace(TraceIdOf(1), **trace);
  EXPECT_EQ(summary.root_span_name, "order.root");
  EXPECT_EQ(summary.root_service_name, "shop-api");
  EXPECT_EQ(summary.duration_nanos, 3 * kSecond);

  auto unknown = query.GetTrace(TraceIdOf(9));
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(unknown->has_value());
}

// With no scan budget at all, an order_id tag still finds the order's trace through the order
// index, while a tag that needs the scan finds nothing.
TEST_F(TraceQueryTest, OrderIdTagUsesTheOrderIndexNotTheScan) {
  ASSERT_TRUE(ingester_->Ingest(OrderTrace(1, "A-1", 3)).ok());
  ASSERT_TRUE(ingester_->Ingest(OrderTrace(2, "A-2", 3)).ok());
  TraceQueryOptions no_scan;
  no_scan.max_scanned_blocks = 0;
  TraceQuery query(*store_, clock_, no_scan);

  TraceSearch by_order;
  by_order.tags = {{"order_id", "A-2"}};
  EXPECT_THAT(Found(query, by_order), ElementsAre(TraceIdOf(2).ToHex()));

  TraceSearch by_service;
  by_service.tags = {{"service.name", "shop-api"}};
  EXPECT_THAT(Found(query, by_service), IsEmpty());

  TraceSearch unknown_order;
  unknown_order.tags = {{"order_id", "nope"}};
  EXPECT_THAT(Found(query, unknown_order), IsEmpty());

  // Every tag must still hold: the order's trace has no span named "crm.close".
  TraceSearch order_and_name;
  order_and_name.tags = {{"order_id", "A-2"}, {"name", "crm.close"}};
  EXPECT_THAT(Found(query, order_and_name), IsEmpty());
}

TEST_F(TraceQueryTest, ScanSearchFiltersByTagsAndDuration) {
  ASSERT_TRUE(ingester_->Ingest(OrderTrace(1, "A-1", 2)).ok());
  ASSERT_TRUE(ingester_->Ingest(OrderTrace(2, "A-2", 10)).ok());
  TraceQuery query(*store_, clock_);

  TraceSearch by_name;
  by_name.tags = {{"name", "shop.submit"}};
  EXPECT_THAT(Found(query, by_name), SizeIs(2));

  TraceSearch slow = by_name;
  slow.min_duration_nanos = 5 * kSecond;
  EXPECT_THAT(Found(query, slow), ElementsAre(TraceIdOf(2).ToHex()));

  TraceSearch fast = by_name;
  fast.max_duration_nanos = 5 * kSecond;
  EXPECT_THAT(Found(query, fast), ElementsAre(TraceIdOf(1).ToHex()));

  // A window that ends before the traces started finds none of them.
  TraceSearch old_window = by_name;
  old_window.start_unix_nano = kNow - 3600 * kSecond;
  old_window.end_unix_nano = kNow - 1800 * kSecond;
  EXPECT_THAT(Found(query, old_window), IsEmpty());
}

}  // namespace
}  // namespace ordertrace::query
