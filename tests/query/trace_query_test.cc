#include "query/trace_query.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>

#include "base/clock.h"
#include "ingest/ingester.h"
#include "store/rocks_store.h"

namespace ordertrace::query {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr uint64_t kSecond = base::kNanosPerSecond;
constexpr uint64_t kNow = 1'790'000'000ULL * kSecond;

base::KeyValue Str(std::string key, std::string value) {
  return base::KeyValue{std::move(key), base::AnyValue::String(std::move(value))};
}

base::TraceId TraceIdOf(uint8_t n) {
  base::TraceId id;
  id.bytes[0] = 0x7a;
  id.bytes[15] = n;
  return id;
}

// One order's trace: a root and a child, `seconds` long, ending a minute before kNow.
base::TraceBatch OrderTrace(uint8_t trace, const std::string& order_id, uint64_t seconds) {
  base::ResourceSpans rs;
  rs.resource.attributes = {Str("service.name", "shop-api")};
  base::ScopeSpans ss;
  for (uint8_t i = 1; i <= 2; ++i) {
    base::Span s;
    s.trace_id = TraceIdOf(trace);
    s.span_id.bytes[0] = trace;
    s.span_id.bytes[7] = i;
    if (i == 2)
      s.parent_span_id = [&] {
        base::SpanId p;
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
  base::TraceBatch batch;
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

  base::ManualClock clock_{kNow};
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

traceql::Filter TraceQl(const std::string& query) {
  absl::StatusOr<traceql::Filter> filter = traceql::Filter::Parse(query);
  EXPECT_TRUE(filter.ok()) << query << ": " << filter.status();
  return filter.ok() ? *filter : *traceql::Filter::Parse("{ false }");
}

// The trace of OrderTrace moved `age` back in time.
base::TraceBatch AgedOrderTrace(uint8_t trace, const std::string& order_id, uint64_t age) {
  base::TraceBatch batch = OrderTrace(trace, order_id, 3);
  for (base::ResourceSpans& rs : batch.resource_spans) {
    for (base::ScopeSpans& ss : rs.scope_spans) {
      for (base::Span& span : ss.spans) {
        span.start_time_unix_nano -= age;
        span.end_time_unix_nano -= age;
      }
    }
  }
  return batch;
}

TEST_F(TraceQueryTest, TraceQlSearchScansAndEverySpanIsJudgedAlone) {
  ASSERT_TRUE(ingester_->Ingest(OrderTrace(1, "A-1", 2)).ok());
  ASSERT_TRUE(ingester_->Ingest(OrderTrace(2, "A-2", 10)).ok());
  TraceQuery query(*store_, clock_);

  TraceSearch search;
  search.traceql = TraceQl(R"({ name = "shop.submit" && resource.service.name = "shop-api" })");
  EXPECT_THAT(Found(query, search), SizeIs(2));
  search.traceql = TraceQl(R"({ name = "shop.submit" && .order_id =~ "A-[2-9]" })");
  EXPECT_THAT(Found(query, search), ElementsAre(TraceIdOf(2).ToHex()));
  // No one span is both the root and the child.
  search.traceql = TraceQl(R"({ name = "order.root" && name = "shop.submit" })");
  EXPECT_THAT(Found(query, search), IsEmpty());
  search.traceql = TraceQl("{ duration > 5s }");
  EXPECT_THAT(Found(query, search), ElementsAre(TraceIdOf(2).ToHex()));
  search.traceql = TraceQl("{}");
  EXPECT_THAT(Found(query, search), SizeIs(2));
  // Tags and TraceQL together: the same span must satisfy both.
  search.traceql = TraceQl(R"({ .order_id = "A-1" || .order_id = "A-2" })");
  search.tags = {{"name", "order.root"}};
  EXPECT_THAT(Found(query, search), SizeIs(2));
  search.tags = {{"name", "crm.close"}};
  EXPECT_THAT(Found(query, search), IsEmpty());
}

// As with tags=, a TraceQL filter pinning order_id reads the order index, not the scan; an
// order_id under || still needs the scan.
TEST_F(TraceQueryTest, TraceQlOrderIdUsesTheOrderIndex) {
  ASSERT_TRUE(ingester_->Ingest(OrderTrace(1, "A-1", 3)).ok());
  ASSERT_TRUE(ingester_->Ingest(OrderTrace(2, "A-2", 3)).ok());
  TraceQueryOptions no_scan;
  no_scan.max_scanned_blocks = 0;
  TraceQuery query(*store_, clock_, no_scan);

  for (const char* q :
       {R"({ .order_id = "A-2" })", R"({ span.order_id = "A-2" && kind = unspecified })",
        R"({ name = "shop.submit" && (span.order_id = "A-2") })"}) {
    TraceSearch search;
    search.traceql = TraceQl(q);
    SearchStats stats;
    auto found = query.Search(search, &stats);
    ASSERT_TRUE(found.ok()) << found.status();
    ASSERT_THAT(*found, SizeIs(1)) << q;
    EXPECT_EQ((*found)[0].trace_id, TraceIdOf(2)) << q;
    EXPECT_EQ(stats.scanned_blocks, 0u);
    EXPECT_EQ(stats.inspected_traces, 1u);
  }
  TraceSearch pinned_but_false;
  pinned_but_false.traceql = TraceQl(R"({ .order_id = "A-2" && name = "crm.close" })");
  EXPECT_THAT(Found(query, pinned_but_false), IsEmpty());
  TraceSearch resource_scope;  // the index names the trace; the condition still decides
  resource_scope.traceql = TraceQl(R"({ resource.order_id = "A-2" })");
  EXPECT_THAT(Found(query, resource_scope), IsEmpty());
  TraceSearch either;
  either.traceql = TraceQl(R"({ .order_id = "A-1" || .order_id = "A-2" })");
  SearchStats stats;
  auto found = query.Search(either, &stats);
  ASSERT_TRUE(found.ok());
  EXPECT_THAT(*found, IsEmpty());
  EXPECT_TRUE(stats.scan_limit_reached);
}

// A store with more blocks than max_scanned_blocks: a search visits exactly the limit, whatever
// it asks and however many it would find.
TEST_F(TraceQueryTest, ScanNeverPassesMaxScannedBlocks) {
  constexpr size_t kTraces = 12;
  for (uint8_t i = 1; i <= kTraces; ++i) {
    ASSERT_TRUE(ingester_->Ingest(OrderTrace(i, "B-" + std::to_string(i), 3)).ok());
  }
  TraceQueryOptions options;
  options.max_scanned_blocks = 5;
  TraceQuery query(*store_, clock_, options);

  TraceQueryOptions unlimited;
  TraceQuery whole(*store_, clock_, unlimited);
  TraceSearch all;
  all.limit = 100;
  SearchStats whole_stats;
  ASSERT_TRUE(whole.Search(all, &whole_stats).ok());
  ASSERT_GT(whole_stats.scanned_blocks, options.max_scanned_blocks);

  for (const char* q : {"{}", R"({ name = "nothing" })", R"({ .order_id =~ "B-.*" })",
                        R"({ .order_id = "B-1" || .order_id = "B-12" })"}) {
    TraceSearch search;
    search.limit = 100;
    search.traceql = TraceQl(q);
    SearchStats stats;
    auto found = query.Search(search, &stats);
    ASSERT_TRUE(found.ok()) << found.status();
    EXPECT_EQ(stats.scanned_blocks, options.max_scanned_blocks) << q;
    EXPECT_TRUE(stats.scan_limit_reached) << q;
    EXPECT_LE(found->size(), options.max_scanned_blocks) << q;
  }
  TraceSearch everything;
  everything.limit = 100;
  everything.traceql = TraceQl("{}");
  EXPECT_THAT(Found(query, everything), SizeIs(options.max_scanned_blocks));
}

// An order is found by its id whatever its age when the search gives no window; with one, the
// window holds. A scan keeps to the default window.
TEST_F(TraceQueryTest, OldOrderIsFoundByOrderIdWithoutAWindow) {
  constexpr uint64_t kThreeDays = 3 * 24 * 3600 * kSecond;
  ASSERT_TRUE(ingester_->Ingest(AgedOrderTrace(1, "OLD-1", kThreeDays)).ok());
  ASSERT_TRUE(ingester_->Ingest(OrderTrace(2, "NEW-1", 3)).ok());
  TraceQuery query(*store_, clock_);

  TraceSearch by_tag;
  by_tag.tags = {{"order_id", "OLD-1"}};
  EXPECT_THAT(Found(query, by_tag), ElementsAre(TraceIdOf(1).ToHex()));
  TraceSearch by_traceql;
  by_traceql.traceql = TraceQl(R"({ .order_id = "OLD-1" })");
  EXPECT_THAT(Found(query, by_traceql), ElementsAre(TraceIdOf(1).ToHex()));

  // An explicit window that does not hold the order's start: not found.
  for (TraceSearch* search : {&by_tag, &by_traceql}) {
    TraceSearch last_hour = *search;
    last_hour.start_unix_nano = kNow - 3600 * kSecond;
    last_hour.end_unix_nano = kNow;
    EXPECT_THAT(Found(query, last_hour), IsEmpty());
    TraceSearch start_only = *search;
    start_only.start_unix_nano = kNow - 3600 * kSecond;
    EXPECT_THAT(Found(query, start_only), IsEmpty());
    TraceSearch around_it = *search;
    around_it.start_unix_nano = kNow - kThreeDays - 3600 * kSecond;
    around_it.end_unix_nano = kNow - kThreeDays + 3600 * kSecond;
    EXPECT_THAT(Found(query, around_it), ElementsAre(TraceIdOf(1).ToHex()));
  }

  // Without the order id the scan keeps to the default 24 h.
  TraceSearch by_name;
  by_name.traceql = TraceQl(R"({ name = "order.root" })");
  EXPECT_THAT(Found(query, by_name), ElementsAre(TraceIdOf(2).ToHex()));
}

TEST_F(TraceQueryTest, TagNamesByScopeAndTypedValues) {
  base::TraceBatch batch = OrderTrace(1, "A-1", 3);
  base::Span& child = batch.resource_spans[0].scope_spans[0].spans[1];
  child.attributes.push_back({"http.status_code", base::AnyValue::Int(503)});
  child.attributes.push_back({"ratio", base::AnyValue::Double(0.5)});
  child.attributes.push_back({"retried", base::AnyValue::Bool(true)});
  child.status.code = base::StatusCode::kError;
  child.kind = base::SpanKind::kServer;
  ASSERT_TRUE(ingester_->Ingest(batch).ok());
  TraceQuery query(*store_, clock_);

  auto names = query.TagNamesByScope();
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_THAT(names->resource, ElementsAre("service.name"));
  EXPECT_THAT(names->span, ::testing::IsSupersetOf({"order_id", "http.status_code", "ratio"}));

  auto values = [&](const char* tag) {
    std::vector<std::string> out;
    auto typed = query.TypedTagValues(*traceql::ParseField(tag));
    EXPECT_TRUE(typed.ok()) << typed.status();
    if (typed.ok()) {
      for (const TypedTagValue& v : *typed) out.push_back(v.type + ":" + v.value);
    }
    return out;
  };
  EXPECT_THAT(values("resource.service.name"), ElementsAre("string:shop-api"));
  EXPECT_THAT(values("span.service.name"), IsEmpty());
  EXPECT_THAT(values(".service.name"), ElementsAre("string:shop-api"));
  EXPECT_THAT(values(".order_id"), ElementsAre("string:A-1"));
  EXPECT_THAT(values("span.http.status_code"), ElementsAre("int:503"));
  EXPECT_THAT(values("span.ratio"), ElementsAre("float:0.5"));
  EXPECT_THAT(values("span.retried"), ElementsAre("bool:true"));
  EXPECT_THAT(values("name"), ElementsAre("string:order.root", "string:shop.submit"));
  EXPECT_THAT(values("status"), ElementsAre("keyword:error", "keyword:unset"));
  EXPECT_THAT(values("kind"), ElementsAre("keyword:server", "keyword:unspecified"));
  EXPECT_THAT(values("duration"), IsEmpty());
  EXPECT_THAT(values("rootName"), ElementsAre("string:order.root"));
  EXPECT_THAT(values("trace:rootService"), ElementsAre("string:shop-api"));
  EXPECT_THAT(values("traceDuration"), IsEmpty());
}

// Trace `trace` of order `order_id` stored as two blocks: shop-api's root "order.root", 1 s
// long, then pricing's child "price.lookup", 1 s long, starting 9 s after the root. No block
// alone holds both services or spans more than 1 s; the trace lasts 10 s.
void IngestSplitTrace(ingest::Ingester& ingester, uint8_t trace, const std::string& order_id) {
  const uint64_t start = kNow - 70 * kSecond;
  base::Span root;
  root.trace_id = TraceIdOf(trace);
  root.span_id.bytes[0] = trace;
  root.span_id.bytes[7] = 1;
  root.name = "order.root";
  root.start_time_unix_nano = start;
  root.end_time_unix_nano = start + kSecond;
  root.attributes = {Str("order_id", order_id)};
  base::Span child = root;
  child.span_id.bytes[7] = 2;
  child.parent_span_id = root.span_id;
  child.name = "price.lookup";
  child.start_time_unix_nano = start + 9 * kSecond;
  child.end_time_unix_nano = start + 10 * kSecond;
  for (const auto& [service, span] : {std::pair{"shop-api", root}, std::pair{"pricing", child}}) {
    base::ResourceSpans rs;
    rs.resource.attributes = {Str("service.name", service)};
    rs.scope_spans.push_back(base::ScopeSpans{{}, "", {span}});
    base::TraceBatch batch;
    batch.resource_spans.push_back(std::move(rs));
    ASSERT_TRUE(ingester.Ingest(batch).ok());
  }
}

// OrderTrace with its spans in `service`.
base::TraceBatch OrderTraceOf(const std::string& service, uint8_t trace,
                              const std::string& order_id, uint64_t seconds) {
  base::TraceBatch batch = OrderTrace(trace, order_id, seconds);
  batch.resource_spans[0].resource.attributes = {Str("service.name", service)};
  return batch;
}

// traceDuration, rootName and rootServiceName describe the whole trace: the scan reads each
// candidate trace whole (once, however many blocks it has) and judges it with its summary.
TEST_F(TraceQueryTest, TraceIntrinsicsAreJudgedOnTheWholeTraceByTheScan) {
  IngestSplitTrace(*ingester_, 1, "C-1");
  ASSERT_TRUE(ingester_->Ingest(OrderTraceOf("back-office", 2, "C-2", 2)).ok());
  TraceQuery query(*store_, clock_);

  struct Case {
    const char* query;
    std::vector<std::string> found;
  };
  const std::string split = TraceIdOf(1).ToHex();
  const std::string office = TraceIdOf(2).ToHex();
  const Case cases[] = {
      {"{ traceDuration > 5s }", {split}},
      {"{ trace:duration > 5s }", {split}},
      {"{ traceDuration < 5s }", {office}},
      {"{ duration > 5s }", {}},  // no span is that long
      {R"({ rootServiceName = "shop-api" })", {split}},
      {R"({ trace:rootService = "back-office" })", {office}},
      {R"({ rootServiceName =~ ".*-.*" })", {office, split}},
      {R"({ rootServiceName != "shop-api" })", {office}},
      // A pricing span in a trace shop-api began: no block holds both.
      {R"({ rootServiceName = "shop-api" && resource.service.name = "pricing" })", {split}},
      {R"({ trace:rootName = "order.root" && name = "price.lookup" })", {split}},
      {R"({ rootName = "price.lookup" })", {}},
      {R"({ traceDuration > 5s && name = "shop.submit" })", {}},
      {R"({ traceDuration > 5s || name = "shop.submit" })", {office, split}},
  };
  for (const Case& c : cases) {
    TraceSearch search;
    search.traceql = TraceQl(c.query);
    SearchStats stats;
    auto found = query.Search(search, &stats);
    ASSERT_TRUE(found.ok()) << c.query << ": " << found.status();
    std::vector<std::string> ids;
    for (const TraceSummary& s : *found) ids.push_back(s.trace_id.ToHex());
    std::sort(ids.begin(), ids.end());
    std::vector<std::string> expected = c.found;
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(ids, expected) << c.query;
    // Three blocks, two traces, each read once; a span filter still judges block by block.
    EXPECT_EQ(stats.scanned_blocks, 3u) << c.query;
    EXPECT_EQ(stats.inspected_traces, search.traceql->NeedsTraceFacts() ? 2u : 0u) << c.query;
  }

  // Tags and the trace intrinsics: the same span satisfies both.
  TraceSearch tagged;
  tagged.traceql = TraceQl(R"({ rootServiceName = "shop-api" })");
  tagged.tags = {{"name", "price.lookup"}};
  EXPECT_THAT(Found(query, tagged), ElementsAre(split));
  tagged.tags = {{"name", "shop.submit"}};
  EXPECT_THAT(Found(query, tagged), IsEmpty());
}

TEST_F(TraceQueryTest, TraceIntrinsicsKeepToMaxScannedBlocks) {
  IngestSplitTrace(*ingester_, 1, "C-1");
  for (uint8_t i = 2; i <= 6; ++i) {
    ASSERT_TRUE(ingester_->Ingest(OrderTraceOf("shop-api", i, "C-" + std::to_string(i), 2)).ok());
  }
  TraceQueryOptions options;
  options.max_scanned_blocks = 3;
  TraceQuery query(*store_, clock_, options);
  TraceSearch search;
  search.limit = 100;
  search.traceql = TraceQl(R"({ rootServiceName = "shop-api" })");
  SearchStats stats;
  auto found = query.Search(search, &stats);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(stats.scanned_blocks, 3u);
  EXPECT_TRUE(stats.scan_limit_reached);
  EXPECT_LE(stats.inspected_traces, 3u);
  EXPECT_THAT(*found, SizeIs(stats.inspected_traces));
}

// A filter pinning order_id reads the order index; the trace intrinsics are then judged on the
// order's whole traces, still without a scan.
TEST_F(TraceQueryTest, TraceIntrinsicsWithAPinnedOrderUseTheOrderIndex) {
  IngestSplitTrace(*ingester_, 1, "C-1");
  ASSERT_TRUE(ingester_->Ingest(OrderTraceOf("back-office", 2, "C-2", 2)).ok());
  TraceQueryOptions no_scan;
  no_scan.max_scanned_blocks = 0;
  TraceQuery query(*store_, clock_, no_scan);

  for (const char* q : {R"({ .order_id = "C-1" && traceDuration > 5s })",
                        R"({ .order_id = "C-1" && rootServiceName = "shop-api" &&
                             resource.service.name = "pricing" })",
                        R"({ span.order_id = "C-1" && trace:rootName = "order.root" })"}) {
    TraceSearch search;
    search.traceql = TraceQl(q);
    SearchStats stats;
    auto found = query.Search(search, &stats);
    ASSERT_TRUE(found.ok()) << found.status();
    ASSERT_THAT(*found, SizeIs(1)) << q;
    EXPECT_EQ((*found)[0].trace_id, TraceIdOf(1)) << q;
    EXPECT_EQ((*found)[0].duration_nanos, 10 * kSecond) << q;
    EXPECT_EQ(stats.scanned_blocks, 0u) << q;
    EXPECT_EQ(stats.inspected_traces, 1u) << q;
  }
  for (const char* q : {R"({ .order_id = "C-1" && traceDuration < 5s })",
                        R"({ .order_id = "C-1" && rootServiceName = "pricing" })",
                        R"({ .order_id = "C-2" && rootServiceName = "shop-api" })"}) {
    TraceSearch search;
    search.traceql = TraceQl(q);
    EXPECT_THAT(Found(query, search), IsEmpty()) << q;
  }
}

}  // namespace
}  // namespace ordertrace::query
