// End to end: an embedded OrdertraceServer receives orders' spans as OTLP/HTTP
// protobuf; what /metrics serves over HTTP (Prometheus text or OpenMetrics with exemplars, by
// the Accept header; series bound and overflow; metrics switched off), which spans the tail
// sampler lets the store keep as GET /api/traces/{id} shows them (lifecycle always, detail by
// trace-id ratio, slow or failed span, stuck order), and the config keys of both.
//
// Every server binds loopback port 0 in a fresh data dir; every wait is bounded.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/ids.h"
#include "sampling/tail_sampler.h"
#include "server/config.h"
#include "server/ordertrace_server.h"
#include "tests/support/child_process.h"
#include "tests/support/config_refusals.h"
#include "tests/support/embedded_server.h"
#include "tests/support/otlp_spans.h"
#include "tests/support/temp_dir.h"

namespace ordertrace::server {
namespace {

using json = nlohmann::json;
using test_support::AddDetailSpan;
using test_support::AddRootSpan;
using test_support::AddServiceScope;
using test_support::AddTransition;
using test_support::DetailSpan;
using test_support::Eventually;
using test_support::Hex;
using test_support::LoopbackClient;
using test_support::LoopbackConfig;
using test_support::MakeOrder;
using test_support::MetricValue;
using test_support::NowUnixNano;
using test_support::SpanIdOf;
using test_support::SpansOf;
using test_support::TempDir;
using test_support::TestOrder;
using test_support::WaitUntilServing;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
namespace pb_collector = opentelemetry::proto::collector::trace::v1;
namespace pb_trace = opentelemetry::proto::trace::v1;

constexpr uint64_t kSecond = test_support::kNanosPerSecond;
constexpr uint64_t kMilli = kSecond / 1000;
// Decisions are taken within a writer tick (200 ms) of their time and gaps open within a
// second of their deadline: these are only ever reached when something is broken.
constexpr auto kWaitTimeout = std::chrono::seconds(20);
constexpr char kOpenMetricsAccept[] = "application/openmetrics-text;version=1.0.0";

// Span numbers (the last byte of the span id) within a test order's trace.
constexpr uint8_t kTransitionSpan = 3;
constexpr uint8_t kPriceStartSpan = 4;
constexpr uint8_t kFastDetailSpan = 5;
constexpr uint8_t kDecisiveDetailSpan = 6;
constexpr uint8_t kLateDetailSpan = 7;

// Order `n` whose trace id the tail sampler's ratio rule keeps (`kept`) at `ratio` or not: the
// first byte of the trace id's random part is the first value for which sampling::RatioKeeps
// agrees.
TestOrder OrderWithRatioDecision(uint8_t n, bool kept, double ratio) {
  TestOrder order = MakeOrder(n);
  for (int lead = 0; lead < 256; ++lead) {
    order.trace_id[base::TraceId::kSize - 7] = static_cast<char>(lead);
    if (sampling::RatioKeeps(*base::TraceId::FromBytes(order.trace_id), ratio) == kept) {
      return order;
    }
  }
  ADD_FAILURE() << "no trace id that ratio " << ratio << (kept ? " keeps" : " drops");
  return order;
}

// `order` reaching SUBMITTED at `at` (shop-api's shop.submit, span kTransitionSpan, a child of
// the order's root span, which is not sent: the transition alone is lifecycle).
void AddSubmitted(pb_collector::ExportTraceServiceRequest& request, const TestOrder& order,
                  uint64_t at) {
  AddTransition(request, order,
                {"shop-api", "shop.submit", "SUBMITTED", "FILE_UPLOADED", 3, at, kTransitionSpan});
}

// crm-api's detail span `span_number` under the order's SUBMITTED transition: 20 ms ending at
// `end`, or `duration` long, or failed.
DetailSpan Detail(uint8_t span_number, uint64_t end, uint64_t duration = 20 * kMilli,
                  bool failed = false) {
  return DetailSpan{"crm-api", "crm.lookup", span_number, kTransitionSpan, end, duration, failed};
}

constexpr int kRootSpan = -1;
constexpr int kForeignSpan = -2;

// The spans of a stored trace of `order` by number: kRootSpan for its root span, kForeignSpan
// for a span id not of the order's numbering (SpanIdOf).
std::multiset<int> SpanNumbers(const TestOrder& order, const std::vector<json>& spans) {
  const std::string root = Hex(order.root_span_id);
  std::multiset<int> numbers;
  for (const json& span : spans) {
    const std::string id = span.value("spanId", "");
    if (id == root) {
      numbers.insert(kRootSpan);
    } else if (id.size() == root.size() && id.compare(0, 14, root, 0, 14) == 0) {
      numbers.insert(std::stoi(id.substr(14), nullptr, 16));
    } else {
      numbers.insert(kForeignSpan);
    }
  }
  return numbers;
}

std::string SamplingDecisions(const char* decision) {
  return std::string(R"(ordertrace_sampling_decisions_total{decision=")") + decision + "\"}";
}
std::string SamplingSpans(const char* outcome) {
  return std::string(R"(ordertrace_sampling_spans_total{outcome=")") + outcome + "\"}";
}

class SamplingMetricsTest : public ::testing::Test {
 protected:
  void StartServer(const std::function<void(ServerConfig&)>& adjust = {}) {
    ASSERT_FALSE(data_dir_.path().empty()) << "mkdtemp failed";
    ServerConfig config = LoopbackConfig(data_dir_.path());
    if (adjust) adjust(config);
    StartServerWith(std::move(config));
  }

  void StartServerWith(ServerConfig config) {
    server_ = std::make_unique<OrdertraceServer>(std::move(config));
    absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started;
    ASSERT_EQ(WaitUntilServing(server_->ports().http), "");
    ASSERT_EQ(WaitUntilServing(server_->ports().otlp_http), "");
  }

  void TearDown() override {
    if (server_) server_->Shutdown();
    server_.reset();
  }

  void Ingest(const pb_collector::ExportTraceServiceRequest& request) {
    httplib::Result res =
        LoopbackClient(server_->ports().otlp_http)
            ->Post("/v1/traces", request.SerializeAsString(), "application/x-protobuf");
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    ASSERT_EQ(res->status, 200) << res->body;
  }

  httplib::Result ApiGet(const std::string& path, const httplib::Headers& headers = {}) {
    httplib::Result res = LoopbackClient(server_->ports().http)->Get(path, headers);
    EXPECT_TRUE(res) << "GET " << path << ": " << httplib::to_string(res.error());
    return res;
  }

  // The /metrics page (Prometheus text unless `accept` asks otherwise); "" on failure.
  std::string Metrics(const std::string& accept = "") {
    httplib::Headers headers;
    if (!accept.empty()) headers.emplace("Accept", accept);
    httplib::Result res = ApiGet("/metrics", headers);
    if (!res) return "";
    EXPECT_EQ(res->status, 200);
    return res->body;
  }

  std::optional<double> Metric(const std::string& series) { return MetricValue(Metrics(), series); }

  // The span numbers of `order`'s trace in the store, as GET /api/traces/{id} serves them;
  // empty when the trace is unknown.
  std::multiset<int> StoredSpans(const TestOrder& order) {
    httplib::Result res = ApiGet("/api/traces/" + order.TraceHex());
    if (!res || res->status == 404) return {};
    EXPECT_EQ(res->status, 200) << res->body;
    return SpanNumbers(order, SpansOf(json::parse(res->body, nullptr, false)));
  }

  // The open gaps of `order`.
  json OpenGaps(const TestOrder& order) {
    httplib::Result res = ApiGet("/api/v1/gaps?state=open&order_id=" + order.order_id);
    if (!res || res->status != 200) return json::array();
    json reply = json::parse(res->body, nullptr, false);
    return reply.is_object() ? reply["gaps"] : json::array();
  }

  TempDir data_dir_{"ordertrace_sampling_metrics_test"};
  std::unique_ptr<OrdertraceServer> server_;
};

// /metrics

// Root span, SUBMITTED at `submitted_at` and PRICE_CALCULATION_STARTED 12.5 s later.
pb_collector::ExportTraceServiceRequest PricedOrderRequest(const TestOrder& order,
                                                           uint64_t submitted_at) {
  pb_collector::ExportTraceServiceRequest request;
  AddRootSpan(request, order, submitted_at - kSecond);
  AddSubmitted(request, order, submitted_at);
  AddTransition(request, order,
                {"mes-api", "mes.price.start", "PRICE_CALCULATION_STARTED", "SUBMITTED", 4,
                 submitted_at + 12'500 * kMilli, kPriceStartSpan});
  return request;
}

constexpr char kSubmitCalls[] =
    R"(traces_span_metrics_calls_total{service_name="shop-api",span_name="shop.submit",)"
    R"(span_kind="SPAN_KIND_INTERNAL",status_code="STATUS_CODE_UNSET"})";
constexpr char kRootCalls[] =
    R"(traces_span_metrics_calls_total{service_name="shop-api",span_name="order.root",)"
    R"(span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET"})";
constexpr char kStageLabels[] = R"(from_status="SUBMITTED",to_status="PRICE_CALCULATION_STARTED")";

TEST_F(SamplingMetricsTest, MetricsWithoutOpenMetricsAcceptArePrometheusTextWithoutExemplars) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const TestOrder order = MakeOrder(1);
  ASSERT_NO_FATAL_FAILURE(Ingest(PricedOrderRequest(order, NowUnixNano() - 60 * kSecond)));

  for (const httplib::Headers& headers :
       {httplib::Headers{}, httplib::Headers{{"Accept", "text/plain;version=0.0.4"}}}) {
    httplib::Result res = ApiGet("/metrics", headers);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_THAT(res->get_header_value("Content-Type"), StartsWith("text/plain; version=0.0.4"));
    const std::string& page = res->body;
    EXPECT_THAT(page, Not(HasSubstr("# EOF")));
    EXPECT_THAT(page, Not(HasSubstr(" # {")));
    EXPECT_THAT(page, Not(HasSubstr(order.TraceHex())));
    // The counter family is named with its _total here.
    EXPECT_THAT(page, HasSubstr("\n# TYPE traces_span_metrics_calls_total counter\n"));
    EXPECT_THAT(page, HasSubstr("\n# TYPE stage_duration_seconds histogram\n"));
    EXPECT_EQ(MetricValue(page, kSubmitCalls), 1.0);
    EXPECT_EQ(MetricValue(page, kRootCalls), 1.0);
    EXPECT_EQ(MetricValue(page, std::string("stage_duration_seconds_count{") + kStageLabels + "}"),
              1.0);
    EXPECT_EQ(MetricValue(page, std::string("stage_duration_seconds_sum{") + kStageLabels + "}"),
              12.5);
    EXPECT_EQ(MetricValue(page, R"(status_transitions_total{new_status="SUBMITTED"})"), 1.0);
    EXPECT_EQ(MetricValue(page, R"(orders_in_status{status="PRICE_CALCULATION_STARTED"})"), 1.0);
  }
}

TEST_F(SamplingMetricsTest, MetricsForOpenMetricsAcceptEndInEofAndCarryExemplarsOfSentTrace) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const TestOrder order = MakeOrder(2);
  ASSERT_NO_FATAL_FAILURE(Ingest(PricedOrderRequest(order, NowUnixNano() - 60 * kSecond)));

  httplib::Result res = ApiGet("/metrics", {{"Accept", kOpenMetricsAccept}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_THAT(res->get_header_value("Content-Type"),
              StartsWith("application/openmetrics-text; version=1.0.0"));
  const std::string& page = res->body;
  EXPECT_THAT(page, EndsWith("\n# EOF\n"));
  EXPECT_EQ(page.find("# EOF"), page.size() - 6) << "# EOF before the end";
  // OpenMetrics names a counter family without _total; its samples keep it.
  EXPECT_THAT(page, HasSubstr("\n# TYPE traces_span_metrics_calls counter\n"));
  EXPECT_THAT(page, Not(HasSubstr("# TYPE traces_span_metrics_calls_total")));
  EXPECT_EQ(MetricValue(page, kSubmitCalls), 1.0);
  EXPECT_EQ(MetricValue(page, std::string("stage_duration_seconds_count{") + kStageLabels + "}"),
            1.0);

  // 12.5 s falls in the stage bucket (10, 30]: that bucket's line carries the trace and the
  // span that reached PRICE_CALCULATION_STARTED, the bucket below has no observation.
  const std::string stage_bucket =
      std::string("stage_duration_seconds_bucket{") + kStageLabels + ",le=";
  EXPECT_THAT(page, HasSubstr(stage_bucket + "\"10\"} 0\n"));
  EXPECT_THAT(page,
              HasSubstr(stage_bucket + "\"30\"} 1 # {trace_id=\"" + order.TraceHex() +
                        "\",span_id=\"" + Hex(SpanIdOf(order, kPriceStartSpan)) + "\"} 12.5 "));
  // The 40 ms submit span in (0.01, 0.05] of the span durations, with its own exemplar.
  EXPECT_THAT(page,
              HasSubstr(R"(traces_span_metrics_duration_seconds_bucket{service_name="shop-api",)"
                        R"(span_name="shop.submit",span_kind="SPAN_KIND_INTERNAL",)"
                        R"(status_code="STATUS_CODE_UNSET",le="0.05"} 1 # {trace_id=")" +
                        order.TraceHex() + "\",span_id=\"" + Hex(SpanIdOf(order, kTransitionSpan)) +
                        "\"} 0.04 "));
}

// Tail sampling

TEST_F(SamplingMetricsTest, TailSamplerKeepsRatioSlowAndFailedTracesAndDropsTheRestAfterWait) {
  const double ratio = ServerConfig{}.sampling.ratio;
  ASSERT_EQ(ratio, 0.10);
  ASSERT_EQ(ServerConfig{}.sampling.slow_threshold_nanos, 5 * kSecond);
  ASSERT_NO_FATAL_FAILURE(
      StartServer([](ServerConfig& c) { c.sampling.decision_wait_nanos = 300 * kMilli; }));
  const TestOrder by_ratio = OrderWithRatioDecision(10, true, ratio);
  const TestOrder unsampled = OrderWithRatioDecision(11, false, ratio);
  const TestOrder slow = OrderWithRatioDecision(12, false, ratio);
  const TestOrder failed = OrderWithRatioDecision(13, false, ratio);
  const uint64_t now = NowUnixNano();

  for (const TestOrder* order : {&by_ratio, &unsampled}) {
    pb_collector::ExportTraceServiceRequest request;
    AddSubmitted(request, *order, now);
    AddDetailSpan(request, *order, Detail(kFastDetailSpan, now - 10 * kMilli));
    ASSERT_NO_FATAL_FAILURE(Ingest(request));
  }
  // A fast detail span, then one of 6 s (past the 5 s threshold) or a failed one.
  pb_collector::ExportTraceServiceRequest slow_request;
  AddSubmitted(slow_request, slow, now);
  AddDetailSpan(slow_request, slow, Detail(kFastDetailSpan, now - 10 * kMilli));
  AddDetailSpan(slow_request, slow, Detail(kDecisiveDetailSpan, now, 6 * kSecond));
  ASSERT_NO_FATAL_FAILURE(Ingest(slow_request));
  pb_collector::ExportTraceServiceRequest failed_request;
  AddSubmitted(failed_request, failed, now);
  AddDetailSpan(failed_request, failed, Detail(kFastDetailSpan, now - 10 * kMilli));
  AddDetailSpan(failed_request, failed, Detail(kDecisiveDetailSpan, now, 30 * kMilli, true));
  ASSERT_NO_FATAL_FAILURE(Ingest(failed_request));

  // Stored once ingest acknowledged them, but the unsampled trace's detail, which waits.
  const std::multiset<int> with_detail = {kTransitionSpan, kFastDetailSpan};
  EXPECT_EQ(StoredSpans(by_ratio), with_detail);
  EXPECT_EQ(StoredSpans(unsampled), std::multiset<int>{kTransitionSpan});
  const std::multiset<int> with_all_detail = {kTransitionSpan, kFastDetailSpan,
                                              kDecisiveDetailSpan};
  EXPECT_EQ(StoredSpans(slow), with_all_detail);
  EXPECT_EQ(StoredSpans(failed), with_all_detail);

  // Its decision wait passes: dropped, while its lifecycle span stays.
  EXPECT_TRUE(Eventually(kWaitTimeout, [&] {
    return Metric(SamplingDecisions("dropped")).value_or(0) == 1;
  })) << Metrics();
  EXPECT_EQ(StoredSpans(unsampled), std::multiset<int>{kTransitionSpan});
  // A late detail span follows the decisions taken.
  for (const TestOrder* order : {&by_ratio, &unsampled}) {
    pb_collector::ExportTraceServiceRequest late;
    AddDetailSpan(late, *order, Detail(kLateDetailSpan, NowUnixNano()));
    ASSERT_NO_FATAL_FAILURE(Ingest(late));
  }
  EXPECT_EQ(StoredSpans(by_ratio),
            (std::multiset<int>{kTransitionSpan, kFastDetailSpan, kLateDetailSpan}));
  EXPECT_EQ(StoredSpans(unsampled), std::multiset<int>{kTransitionSpan});

  const std::string page = Metrics();
  EXPECT_EQ(MetricValue(page, SamplingDecisions("kept")), 3.0) << page;
  EXPECT_EQ(MetricValue(page, SamplingDecisions("dropped")), 1.0);
  EXPECT_EQ(MetricValue(page, SamplingDecisions("forced")), 0.0);
  // Lifecycle: 4 transitions and the failed span. Kept detail: 1 + 1 late of the ratio trace,
  // 2 of the slow one, 1 fast of the failed one. Dropped: the unsampled one's 2.
  EXPECT_EQ(MetricValue(page, SamplingSpans("lifecycle")), 5.0);
  EXPECT_EQ(MetricValue(page, SamplingSpans("kept_detail")), 5.0);
  EXPECT_EQ(MetricValue(page, SamplingSpans("dropped_detail")), 2.0);
  EXPECT_EQ(MetricValue(page, SamplingSpans("dropped_pending_full")), 0.0);
  EXPECT_EQ(MetricValue(page, "ordertrace_sampling_pending_spans"), 0.0);
  // The span metrics count every span, before sampling: of the unfailed crm.lookup spans, the
  // 4 fast ones, the slow one and the 2 late ones.
  EXPECT_EQ(MetricValue(page, R"(traces_span_metrics_calls_total{service_name="crm-api",)"
                              R"(span_name="crm.lookup",span_kind="SPAN_KIND_INTERNAL",)"
                              R"(status_code="STATUS_CODE_UNSET"})"),
            7.0);
}

TEST_F(SamplingMetricsTest, SlowOrFailedSpanReleasesTheDetailBufferedBeforeIt) {
  ASSERT_NO_FATAL_FAILURE(
      StartServer([](ServerConfig& c) { c.sampling.decision_wait_nanos = 60 * kSecond; }));
  const double ratio = ServerConfig{}.sampling.ratio;
  const TestOrder slow = OrderWithRatioDecision(20, false, ratio);
  const TestOrder failed = OrderWithRatioDecision(21, false, ratio);
  const uint64_t now = NowUnixNano();
  for (const TestOrder* order : {&slow, &failed}) {
    pb_collector::ExportTraceServiceRequest request;
    AddSubmitted(request, *order, now);
    AddDetailSpan(request, *order, Detail(kFastDetailSpan, now - 10 * kMilli));
    ASSERT_NO_FATAL_FAILURE(Ingest(request));
    EXPECT_EQ(StoredSpans(*order), std::multiset<int>{kTransitionSpan});
  }
  EXPECT_EQ(Metric("ordertrace_sampling_pending_spans"), 2.0);

  pb_collector::ExportTraceServiceRequest slow_request;
  AddDetailSpan(slow_request, slow, Detail(kDecisiveDetailSpan, NowUnixNano(), 6 * kSecond));
  ASSERT_NO_FATAL_FAILURE(Ingest(slow_request));
  pb_collector::ExportTraceServiceRequest failed_request;
  AddDetailSpan(failed_request, failed,
                Detail(kDecisiveDetailSpan, NowUnixNano(), 30 * kMilli, true));
  ASSERT_NO_FATAL_FAILURE(Ingest(failed_request));

  // Released with the request that decided them: stored by the time it is acknowledged.
  const std::multiset<int> all = {kTransitionSpan, kFastDetailSpan, kDecisiveDetailSpan};
  EXPECT_EQ(StoredSpans(slow), all);
  EXPECT_EQ(StoredSpans(failed), all);
  const std::string page = Metrics();
  EXPECT_EQ(MetricValue(page, SamplingDecisions("kept")), 2.0) << page;
  EXPECT_EQ(MetricValue(page, SamplingDecisions("dropped")), 0.0);
  EXPECT_EQ(MetricValue(page, SamplingSpans("kept_detail")), 3.0);
  EXPECT_EQ(MetricValue(page, "ordertrace_sampling_pending_spans"), 0.0);
}

TEST_F(SamplingMetricsTest, StuckOrderKeepsItsBufferedDetailWhenItsGapOpens) {
  constexpr uint64_t kSubmittedSla = 3 * kSecond;
  ASSERT_NO_FATAL_FAILURE(StartServer([&](ServerConfig& c) {
    c.sampling.decision_wait_nanos = 60 * kSecond;
    c.lifecycle.grace_nanos = 500 * kMilli;
    for (gaps::StageRule& rule : c.lifecycle.stages) {
      if (rule.status == "SUBMITTED") rule.sla_nanos = kSubmittedSla;
    }
  }));
  const TestOrder stuck = OrderWithRatioDecision(30, false, ServerConfig{}.sampling.ratio);
  const uint64_t submitted_at = NowUnixNano();
  pb_collector::ExportTraceServiceRequest request;
  AddSubmitted(request, stuck, submitted_at);
  AddDetailSpan(request, stuck, Detail(kFastDetailSpan, submitted_at - 10 * kMilli));
  ASSERT_NO_FATAL_FAILURE(Ingest(request));

  // Buffered while the order is on time (unless this machine is so slow that the 3.5 s
  // deadline has passed already).
  const std::multiset<int> before = StoredSpans(stuck);
  if (OpenGaps(stuck).empty()) {
    EXPECT_EQ(before, std::multiset<int>{kTransitionSpan});
  }

  // PRICE_CALCULATION_STARTED never comes: the gap opens, the detail is kept.
  ASSERT_TRUE(Eventually(kWaitTimeout, [&] { return OpenGaps(stuck).size() == 1; }))
      << "no gap opened for " << stuck.order_id;
  EXPECT_EQ(OpenGaps(stuck)[0]["trace_id"], stuck.TraceHex());
  EXPECT_TRUE(Eventually(kWaitTimeout, [&] {
    return StoredSpans(stuck) == std::multiset<int>{kTransitionSpan, kFastDetailSpan};
  })) << "the stuck order's detail was not stored";

  const std::string page = Metrics();
  EXPECT_EQ(MetricValue(page, SamplingDecisions("forced")), 1.0) << page;
  EXPECT_EQ(MetricValue(page, SamplingDecisions("kept")), 0.0);
  EXPECT_EQ(MetricValue(page, SamplingDecisions("dropped")), 0.0);
  EXPECT_EQ(MetricValue(page, SamplingSpans("kept_detail")), 1.0);
  EXPECT_EQ(MetricValue(page, "ordertrace_sampling_pending_spans"), 0.0);
  EXPECT_EQ(MetricValue(page, R"(gap_detected_total{kind="missing_transition",stage="SUBMITTED"})"),
            1.0);
}

// Label cardinality

TEST_F(SamplingMetricsTest, SpanNamesPastMaxSeriesFoldIntoOverflowSeriesAndOrderIdsAreNoLabel) {
  constexpr int kSpanNames = 20;
  constexpr int kMaxSeries = 5;
  ASSERT_NO_FATAL_FAILURE(StartServer([](ServerConfig& c) { c.metrics.max_series = kMaxSeries; }));
  // One root span per order, each with its own name, in one request (counted in this order).
  pb_collector::ExportTraceServiceRequest request;
  pb_trace::ScopeSpans* scope = AddServiceScope(request, "catalog-api");
  std::vector<TestOrder> orders;
  const uint64_t now = NowUnixNano();
  for (int i = 0; i < kSpanNames; ++i) {
    orders.push_back(MakeOrder(static_cast<uint8_t>(100 + i)));
    char name[16];
    std::snprintf(name, sizeof name, "op-%02d", i);
    pb_trace::Span* span = scope->add_spans();
    span->set_trace_id(orders.back().trace_id);
    span->set_span_id(orders.back().root_span_id);
    span->set_name(name);
    span->set_kind(pb_trace::Span::SPAN_KIND_SERVER);
    span->set_start_time_unix_nano(now - 30 * kMilli);
    span->set_end_time_unix_nano(now);
    test_support::AddAttribute(span->mutable_attributes(), "order_id", orders.back().order_id);
  }
  ASSERT_NO_FATAL_FAILURE(Ingest(request));

  auto calls = [](int i) {
    char series[160];
    std::snprintf(series, sizeof series,
                  R"(traces_span_metrics_calls_total{service_name="catalog-api",)"
                  R"(span_name="op-%02d",span_kind="SPAN_KIND_SERVER",)"
                  R"(status_code="STATUS_CODE_UNSET"})",
                  i);
    return std::string(series);
  };
  constexpr double kFolded = kSpanNames - kMaxSeries;
  for (const char* accept : {"", kOpenMetricsAccept}) {
    SCOPED_TRACE(std::string("Accept: ") + accept);
    const std::string page = Metrics(accept);
    for (int i = 0; i < kSpanNames; ++i) {
      if (i < kMaxSeries) {
        EXPECT_EQ(MetricValue(page, calls(i)), 1.0) << calls(i);
      } else {
        EXPECT_EQ(MetricValue(page, calls(i)), std::nullopt) << calls(i);
      }
    }
    EXPECT_EQ(MetricValue(page, R"(traces_span_metrics_calls_total{otel_metric_overflow="true"})"),
              kFolded)
        << page;
    EXPECT_EQ(MetricValue(page, R"(traces_span_metrics_duration_seconds_count{)"
                                R"(otel_metric_overflow="true"})"),
              kFolded);
    EXPECT_EQ(MetricValue(page, R"(ordertrace_metric_series_overflow_total{)"
                                R"(metric="traces_span_metrics_calls_total"})"),
              kFolded);
    EXPECT_EQ(MetricValue(page, R"(ordertrace_metric_series_overflow_total{)"
                                R"(metric="traces_span_metrics_duration_seconds"})"),
              kFolded);
    // The configured lifecycle is no span's input: all 10 stage SLAs stay published.
    for (const gaps::StageRule& rule : ServerConfig{}.lifecycle.stages) {
      EXPECT_EQ(MetricValue(page, "stage_sla_seconds{stage=\"" + rule.status + "\"}"),
                static_cast<double>(rule.sla_nanos) / 1e9)
          << rule.status;
    }
    for (const TestOrder& order : orders) {
      EXPECT_THAT(page, Not(HasSubstr(order.order_id)));
    }
  }
}

// Configuration

class SamplingMetricsConfigTest : public ::testing::Test {
 protected:
  absl::StatusOr<ServerConfig> Load(const std::string& yaml) {
    std::string path = (std::filesystem::path(dir_.path()) / "ordertrace.yaml").string();
    std::ofstream(path) << yaml;
    return LoadConfigFile(path, LoopbackConfig(dir_.path()));
  }

  // The message of the refusal to load `yaml`; fails the test when it loads.
  std::string LoadError(const std::string& yaml) {
    return test_support::LoadRefusal(Load(yaml), yaml);
  }

  // The message of Validate's refusal of `yaml`, which loads; fails the test otherwise. The
  // server refuses to start with it, with the same message.
  std::string ValidateError(const std::string& yaml) {
    absl::StatusOr<ServerConfig> config = Load(yaml);
    absl::Status status = test_support::ValidateRefusal(config, yaml);
    if (status.ok()) return "";
    OrdertraceServer server(*std::move(config));
    EXPECT_EQ(server.Start(), status);
    EXPECT_EQ(server.ports().http, 0);
    return std::string(status.message());
  }

  TempDir dir_{"ordertrace_sampling_metrics_config"};
};

TEST_F(SamplingMetricsConfigTest, MetricsAndSamplingKeysLoadIntoTheirOptions) {
  absl::StatusOr<ServerConfig> config = Load(R"(metrics:
  enabled: false
  price_calc_span: mes.quote
  max_series: 50
sampling:
  enabled: false
  ratio: 0.25
  slow_threshold: 2s
  decision_wait: 750ms
  max_pending_spans: 1000
  max_remembered_traces: 3000
)");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->metrics_enabled);
  EXPECT_EQ(config->metrics.price_calc_span, "mes.quote");
  EXPECT_EQ(config->metrics.max_series, 50u);
  EXPECT_FALSE(config->sampling.enabled);
  EXPECT_EQ(config->sampling.ratio, 0.25);
  EXPECT_EQ(config->sampling.slow_threshold_nanos, 2 * kSecond);
  EXPECT_EQ(config->sampling.decision_wait_nanos, 750 * kMilli);
  EXPECT_EQ(config->sampling.max_pending_spans, 1000u);
  EXPECT_EQ(config->sampling.max_remembered_traces, 3000u);
  EXPECT_TRUE(Validate(*config).ok());
}

TEST_F(SamplingMetricsConfigTest, BadMetricsAndSamplingSettingsAreRefusedByKey) {
  EXPECT_THAT(ValidateError("metrics:\n  max_series: 0\n"), HasSubstr("metrics.max_series"));
  EXPECT_THAT(ValidateError("sampling:\n  ratio: 1.5\n"), HasSubstr("sampling.ratio"));
  EXPECT_THAT(ValidateError("sampling:\n  ratio: -0.1\n"), HasSubstr("sampling.ratio"));
  EXPECT_THAT(ValidateError("sampling:\n  slow_threshold: 0s\n"),
              HasSubstr("sampling.slow_threshold"));
  EXPECT_THAT(ValidateError("sampling:\n  max_pending_spans: 0\n"),
              HasSubstr("sampling.max_pending_spans"));
  EXPECT_THAT(LoadError("sampling:\n  rate: 0.5\n"), HasSubstr("sampling.rate"));
  EXPECT_THAT(LoadError("metrics:\n  max_serie: 10\n"), HasSubstr("metrics.max_serie"));
  EXPECT_THAT(LoadError("sampling:\n  ratio: ten percent\n"), HasSubstr("sampling.ratio"));
  EXPECT_THAT(LoadError("sampling:\n  slow_threshold: 5 seconds\n"),
              HasSubstr("sampling.slow_threshold"));
  EXPECT_THAT(LoadError("metrics:\n  enabled: maybe\n"), HasSubstr("metrics.enabled"));
}

TEST_F(SamplingMetricsTest, MetricsDisabledServesOrdertracesOwnFamiliesButNoSpanMetrics) {
  const std::string path = (std::filesystem::path(data_dir_.path()) / "ordertrace.yaml").string();
  std::ofstream(path) << "metrics:\n  enabled: false\n";
  absl::StatusOr<ServerConfig> config = LoadConfigFile(path, LoopbackConfig(data_dir_.path()));
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_NO_FATAL_FAILURE(StartServerWith(*std::move(config)));
  const TestOrder order = MakeOrder(3);
  ASSERT_NO_FATAL_FAILURE(Ingest(PricedOrderRequest(order, NowUnixNano() - 60 * kSecond)));

  const std::string text = Metrics();
  EXPECT_THAT(text, HasSubstr("# TYPE gap_detected_total counter\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE open_gaps gauge\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE ordertrace_sampling_decisions_total counter\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE ordertrace_metric_series_overflow_total counter\n"));
  EXPECT_EQ(MetricValue(text, "ordertrace_ingested_spans_total"), 3.0);
  EXPECT_EQ(MetricValue(text, SamplingSpans("lifecycle")), 3.0);
  const std::string open_metrics = Metrics(kOpenMetricsAccept);
  EXPECT_THAT(open_metrics, HasSubstr("# TYPE gap_detected counter\n"));
  EXPECT_THAT(open_metrics, EndsWith("\n# EOF\n"));
  for (const std::string* page : {&text, &open_metrics}) {
    for (const char* family :
         {"traces_span_metrics_", "stage_duration_seconds", "status_transitions_total",
          "orders_in_status", "price_calc_duration_seconds", "stage_sla_seconds"}) {
      EXPECT_THAT(*page, Not(HasSubstr(family)));
    }
  }
  // The spans are stored and the order known all the same.
  EXPECT_EQ(StoredSpans(order), (std::multiset<int>{kRootSpan, kTransitionSpan, kPriceStartSpan}));
}

}  // namespace
}  // namespace ordertrace::server
