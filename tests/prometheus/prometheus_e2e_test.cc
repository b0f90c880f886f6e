// Integration (docs/metrics.md): a real Prometheus 2.42 (Debian's prometheus, exemplar storage on)
// scrapes an embedded OrdertraceServer that received orders' spans as OTLP/HTTP protobuf.
// PromQL's histogram_quantile over stage_duration_seconds gives the value the spans imply;
// its _count and _sum match them; the exemplars API returns trace ids of those orders, and
// ordertrace serves those traces; the span metrics count every span sent.
//
// Everything listens on free loopback ports; every wait is bounded; Prometheus is always
// stopped, also when the test process dies (PR_SET_PDEATHSIG), and its log printed on failure.
// ORDERTRACE_PROMETHEUS_BIN overrides the binary (default: prometheus on PATH).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "metrics/trace_metrics.h"
#include "server/config.h"
#include "server/ordertrace_server.h"
#include "tests/support/child_process.h"
#include "tests/support/embedded_server.h"
#include "tests/support/otlp_spans.h"
#include "tests/support/prometheus_process.h"
#include "tests/support/temp_dir.h"

namespace ordertrace::server {
namespace {

using json = nlohmann::json;
using test_support::AddRootSpan;
using test_support::AddTransition;
using test_support::Eventually;
using test_support::FreePort;
using test_support::Hex;
using test_support::kNanosPerSecond;
using test_support::LoopbackConfig;
using test_support::MakeOrder;
using test_support::NowUnixNano;
using test_support::PrometheusProcess;
using test_support::ScrapeJob;
using test_support::SpansOf;
using test_support::TempDir;
using test_support::TestOrder;
using test_support::WaitUntilServing;
namespace pb_collector = opentelemetry::proto::collector::trace::v1;

// Prometheus scrapes every second: a minute is only reached when something is broken.
constexpr auto kScrapeTimeout = std::chrono::seconds(60);
constexpr auto kIngestTimeout = std::chrono::seconds(30);
constexpr char kJob[] = "ordertrace";
constexpr char kFrom[] = "SUBMITTED";
constexpr char kTo[] = "PRICE_CALCULATION_STARTED";
// Span numbers (the last byte of the span id) of the two transitions.
constexpr uint8_t kSubmitSpan = 3;
constexpr uint8_t kPriceStartSpan = 4;
// Both tolerances only absorb the decimal printing of floats on the way through Prometheus.
constexpr double kTolerance = 1e-9;
constexpr double kExemplarTimeTolerance = 1e-3;  // ordertrace prints exemplar times in ms

// An order sent to ordertrace, and what its spans imply.
struct SentOrder {
  TestOrder order;
  double stage_seconds = 0;       // SUBMITTED -> PRICE_CALCULATION_STARTED
  uint64_t price_started_at = 0;  // end of the PRICE_CALCULATION_STARTED span
  std::string price_start_span_hex;
};

// 20 orders: 12 whose stage lasts 12.5 s .. 23.5 s and 8 whose stage lasts 31.25 s .. 52.25 s.
// With the default stage buckets (..., 10, 30, 60, ...) that is 12 in (10, 30] and 8 in (30, 60],
// so the 0.9 quantile (rank 18) falls inside (30, 60] and is interpolated, not a bucket bound.
std::vector<double> StageDurations() {
  std::vector<double> seconds;
  for (int i = 0; i < 12; ++i) seconds.push_back(12.5 + i);
  for (int i = 0; i < 8; ++i) seconds.push_back(31.25 + 3 * i);
  return seconds;
}

// What PromQL's histogram_quantile(q, ...) returns for `observations` counted in buckets with
// upper bounds `bounds` (ascending, +Inf implied), as Prometheus 2.42 computes it
// (promql/quantile.go, bucketQuantile):
//   rank = q * (count of all observations, the +Inf bucket);
//   the bucket holding it is the first whose cumulative count is >= rank;
//   if that is the +Inf bucket, the answer is the highest finite bound;
//   otherwise it interpolates linearly inside the bucket, from its lower bound (the previous
//   upper bound, 0 for the first bucket) to its upper bound, by
//   (rank - cumulative count below the bucket) / (count in the bucket).
// An observation equal to a bound counts in that bound's bucket (`le` is "less or equal").
double ExpectedHistogramQuantile(double q, const std::vector<double>& bounds,
                                 const std::vector<double>& observations) {
  std::vector<double> cumulative;  // per finite bound, then +Inf
  for (double bound : bounds) {
    cumulative.push_back(static_cast<double>(std::count_if(observations.begin(), observations.end(),
                                                           [&](double v) { return v <= bound; })));
  }
  cumulative.push_back(static_cast<double>(observations.size()));
  double rank = q * cumulative.back();
  size_t b = 0;
  while (b + 1 < cumulative.size() && cumulative[b] < rank) ++b;
  if (b == bounds.size()) return bounds.back();
  if (b == 0 && bounds[0] <= 0) return bounds[0];
  double lower = b == 0 ? 0 : bounds[b - 1];
  double below = b == 0 ? 0 : cumulative[b - 1];
  return lower + (bounds[b] - lower) * ((rank - below) / (cumulative[b] - below));
}

// The string value of `key` among an OTLP JSON span's attributes; "" when absent.
std::string StringAttribute(const json& span, const std::string& key) {
  for (const json& attribute : span.value("attributes", json::array())) {
    if (attribute.value("key", "") == key) {
      return attribute["value"].value("stringValue", "");
    }
  }
  return "";
}

class PrometheusE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(data_dir_.path().empty());
    ASSERT_FALSE(prometheus_dir_.path().empty());
    ServerConfig config = LoopbackConfig(data_dir_.path());
    stage_buckets_ = config.metrics.stage_buckets;
    server_ = std::make_unique<OrdertraceServer>(std::move(config));
    absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started;
    // Shutting down before a receiver's thread has entered httplib's accept loop hangs (see
    // server_test.cc, ShutdownRightAfterStartReturns): one answered request on each HTTP port
    // proves both loops run.
    for (int port : {server_->ports().http, server_->ports().otlp_http}) {
      ASSERT_EQ(WaitUntilServing(port), "");
    }
  }

  void TearDown() override {
    if (prometheus_) {
      if (HasFailure()) {
        std::cerr << "Prometheus config:\n"
                  << prometheus_->Config() << "Prometheus log:\n"
                  << prometheus_->Log();
      }
      prometheus_->Stop();
    }
    if (server_) server_->Shutdown();
    server_.reset();
  }

  // Prometheus on a free port scraping ordertrace's /metrics every second.
  void StartPrometheus() {
    ScrapeJob job;
    job.job_name = kJob;
    job.target = "127.0.0.1:" + std::to_string(server_->ports().http);
    // A port taken between FreePort() and the bind shows as an exit at start: try another.
    std::string error;
    for (int attempt = 0; attempt < 3; ++attempt) {
      int port = FreePort();
      ASSERT_GT(port, 0);
      prometheus_ = std::make_unique<PrometheusProcess>(port, prometheus_dir_.path(),
                                                        std::vector<ScrapeJob>{job});
      error = prometheus_->Start();
      if (error.empty()) break;
    }
    ASSERT_EQ(error, "") << "is prometheus installed (scripts/install-deps.sh)?";
  }

  void Ingest(const pb_collector::ExportTraceServiceRequest& request) {
    httplib::Client client("127.0.0.1", server_->ports().otlp_http);
    client.set_connection_timeout(5, 0);
    client.set_read_timeout(15, 0);
    httplib::Result res =
        client.Post("/v1/traces", request.SerializeAsString(), "application/x-protobuf");
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    ASSERT_EQ(res->status, 200) << res->body;
  }

  // Each order: its root span, SUBMITTED at `submitted_at` and PRICE_CALCULATION_STARTED its
  // stage duration later, in one OTLP/HTTP protobuf request.
  void SendOrders(const std::vector<double>& durations, uint64_t first_submitted_at) {
    for (size_t i = 0; i < durations.size(); ++i) {
      SentOrder sent;
      sent.order = MakeOrder(static_cast<uint8_t>(i + 1));
      sent.stage_seconds = durations[i];
      const uint64_t submitted_at = first_submitted_at + i * kNanosPerSecond;
      sent.price_started_at =
          submitted_at + static_cast<uint64_t>(std::llround(durations[i] * 1e9));
      std::string span_id = sent.order.root_span_id;
      span_id[7] = static_cast<char>(kPriceStartSpan);
      sent.price_start_span_hex = Hex(span_id);

      pb_collector::ExportTraceServiceRequest request;
      AddRootSpan(request, sent.order, submitted_at);
      AddTransition(
          request, sent.order,
          {"shop-api", "shop.submit", kFrom, "FILE_UPLOADED", 3, submitted_at, kSubmitSpan});
      AddTransition(
          request, sent.order,
          {"mes-api", "mes.price.start", kTo, kFrom, 4, sent.price_started_at, kPriceStartSpan});
      ASSERT_NO_FATAL_FAILURE(Ingest(request));
      sent_.push_back(std::move(sent));
    }
  }

  // GET on ordertrace's API; nullopt when the request fails.
  httplib::Result ApiGet(const std::string& path) {
    httplib::Client client("127.0.0.1", server_->ports().http);
    client.set_connection_timeout(5, 0);
    client.set_read_timeout(15, 0);
    return client.Get(path);
  }

  // The first sample of an instant PromQL query's vector; nullopt when the vector is empty or
  // the query fails (the reason then in `last_error_`).
  std::optional<double> QueryScalar(const std::string& promql) {
    std::optional<json> data = prometheus_->Api("query", {{"query", promql}}, &last_error_);
    if (!data) return std::nullopt;
    const json& result = (*data)["result"];
    if (!result.is_array() || result.empty()) {
      last_error_ = promql + ": empty result " + data->dump();
      return std::nullopt;
    }
    return std::stod(result[0]["value"][1].get<std::string>());
  }

  const SentOrder* SentWithTrace(const std::string& trace_hex) const {
    for (const SentOrder& sent : sent_) {
      if (sent.order.TraceHex() == trace_hex) return &sent;
    }
    return nullptr;
  }

  TempDir data_dir_{"ordertrace_prometheus_e2e"};
  TempDir prometheus_dir_{"ordertrace_prometheus_e2e_prom"};
  std::vector<double> stage_buckets_;
  std::unique_ptr<OrdertraceServer> server_;
  std::unique_ptr<PrometheusProcess> prometheus_;
  std::vector<SentOrder> sent_;
  std::string last_error_;
};

TEST_F(PrometheusE2eTest, StageQuantileSumCountExemplarsAndSpanMetricsReachPrometheus) {
  const std::vector<double> durations = StageDurations();
  const size_t orders = durations.size();
  // Spans in the recent past, within every stage's SLA: no gap opens, nothing is late.
  // Exemplars are stamped when ordertrace observes them (not with the spans' times, which may
  // arrive out of order and would make Prometheus refuse them).
  const double sent_at_seconds = static_cast<double>(NowUnixNano()) / 1e9;
  ASSERT_NO_FATAL_FAILURE(SendOrders(durations, NowUnixNano() - 5 * 60 * kNanosPerSecond));

  // Ordertrace has observed every stage before Prometheus comes: what Prometheus sees from
  // then on is final.
  const std::string count_series = std::string("stage_duration_seconds_count{from_status=\"") +
                                   kFrom + "\",to_status=\"" + kTo + "\"} " +
                                   std::to_string(orders);
  std::string page;
  bool observed = Eventually(kIngestTimeout, [&] {
    httplib::Result res = ApiGet("/metrics");
    page = res ? res->body : "";
    return page.find(count_series) != std::string::npos;
  });
  ASSERT_TRUE(observed) << "ordertrace never counted " << orders << " stages:\n" << page;

  ASSERT_NO_FATAL_FAILURE(StartPrometheus());
  const std::string selector =
      std::string("{from_status=\"") + kFrom + "\",to_status=\"" + kTo + "\"}";
  bool scraped = Eventually(kScrapeTimeout, [&] {
    return QueryScalar(std::string("up{job=\"") + kJob + "\"}") == 1.0 &&
           QueryScalar("stage_duration_seconds_count" + selector).has_value();
  });
  ASSERT_TRUE(scraped) << "Prometheus never scraped ordertrace: " << last_error_;

  // The quantile, count and sum the spans imply.
  const double expected_p90 = ExpectedHistogramQuantile(0.9, stage_buckets_, durations);
  std::optional<double> p90 = QueryScalar(
      "histogram_quantile(0.9, sum by (le) (stage_duration_seconds_bucket" + selector + "))");
  ASSERT_TRUE(p90.has_value()) << last_error_;
  EXPECT_NEAR(*p90, expected_p90, kTolerance);
  EXPECT_EQ(QueryScalar("stage_duration_seconds_count" + selector), static_cast<double>(orders));
  double expected_sum = 0;
  for (double seconds : durations) expected_sum += seconds;
  std::optional<double> sum = QueryScalar("stage_duration_seconds_sum" + selector);
  ASSERT_TRUE(sum.has_value()) << last_error_;
  EXPECT_NEAR(*sum, expected_sum, kTolerance);

  // Span metrics: every span sent, counted once (root and SUBMITTED from shop-api,
  // PRICE_CALCULATION_STARTED from mes-api).
  EXPECT_EQ(QueryScalar("sum(traces_span_metrics_calls_total{service_name=\"shop-api\"})"),
            static_cast<double>(2 * orders))
      << last_error_;
  EXPECT_EQ(QueryScalar("sum(traces_span_metrics_calls_total{service_name=\"mes-api\"})"),
            static_cast<double>(orders))
      << last_error_;

  // Exemplars: each names one of the orders' traces, the span that ended the stage, when it
  // was observed, and that order's stage duration, on a bucket that holds it.
  const double now_seconds = static_cast<double>(NowUnixNano()) / 1e9;
  json exemplar_series;
  bool has_exemplars = Eventually(kScrapeTimeout, [&] {
    std::optional<json> data =
        prometheus_->Api("query_exemplars",
                         {{"query", "stage_duration_seconds_bucket" + selector},
                          {"start", std::to_string(now_seconds - 3600)},
                          {"end", std::to_string(now_seconds + 3600)}},
                         &last_error_);
    if (!data || !data->is_array() || data->empty()) return false;
    exemplar_series = *data;
    return true;
  });
  ASSERT_TRUE(has_exemplars) << "no exemplar in Prometheus: " << last_error_;
  std::set<std::string> trace_ids;
  for (const json& series : exemplar_series) {
    const std::string le = series["seriesLabels"].value("le", "");
    for (const json& exemplar : series["exemplars"]) {
      const std::string trace_id = exemplar["labels"].value("trace_id", "");
      const SentOrder* sent = SentWithTrace(trace_id);
      ASSERT_NE(sent, nullptr) << "exemplar of an unknown trace: " << exemplar.dump();
      trace_ids.insert(trace_id);
      EXPECT_EQ(exemplar["labels"].value("span_id", ""), sent->price_start_span_hex);
      const double value = std::stod(exemplar["value"].get<std::string>());
      EXPECT_NEAR(value, sent->stage_seconds, kTolerance) << exemplar.dump();
      EXPECT_LE(value, le == "+Inf" ? INFINITY : std::stod(le)) << series.dump();
      EXPECT_GE(exemplar["timestamp"].get<double>(), sent_at_seconds - kExemplarTimeTolerance);
      EXPECT_LE(exemplar["timestamp"].get<double>(), now_seconds + kExemplarTimeTolerance);
    }
  }
  EXPECT_FALSE(trace_ids.empty());

  // ...and ordertrace serves each of those traces, with the order's transitions.
  for (const std::string& trace_id : trace_ids) {
    const SentOrder* sent = SentWithTrace(trace_id);
    httplib::Result res = ApiGet("/api/traces/" + trace_id);
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    ASSERT_EQ(res->status, 200) << res->body;
    std::multiset<std::string> of_order;
    for (const json& span : SpansOf(json::parse(res->body, nullptr, false))) {
      if (StringAttribute(span, "order_id") == sent->order.order_id) {
        of_order.insert(span.value("name", ""));
      }
    }
    EXPECT_TRUE(of_order.count("shop.submit") == 1 && of_order.count("mes.price.start") == 1)
        << "trace " << trace_id << " of order " << sent->order.order_id << ": " << res->body;
  }

  // Prometheus took every sample and exemplar it scraped.
  const std::string log = prometheus_->Log();
  EXPECT_THAT(log, ::testing::Not(::testing::HasSubstr("Error on ingesting")));
  EXPECT_THAT(log, ::testing::Not(::testing::HasSubstr("Unexpected error")));
}

}  // namespace
}  // namespace ordertrace::server
