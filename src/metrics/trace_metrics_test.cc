#include "metrics/trace_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "base/attribute_names.h"
#include "base/clock.h"

namespace ordertrace::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint64_t kBase = 1'700'000'000ULL * base::kNanosPerSecond;
constexpr uint64_t kSecond = base::kNanosPerSecond;

base::TraceId TraceIdOf(uint8_t n) {
  base::TraceId id;
  id.bytes[0] = 0x4f;
  id.bytes[15] = n;
  return id;
}

base::SpanId SpanIdOf(uint8_t n) {
  base::SpanId id;
  id.bytes[0] = 0x01;
  id.bytes[7] = n;
  return id;
}

base::Resource ResourceOf(const std::string& service) {
  base::Resource r;
  r.attributes.push_back({"service.name", base::AnyValue::String(service)});
  return r;
}

base::Span SpanOf(const std::string& name, base::SpanKind kind, uint64_t start, uint64_t end) {
  base::Span s;
  s.trace_id = TraceIdOf(1);
  s.span_id = SpanIdOf(1);
  s.name = name;
  s.kind = kind;
  s.start_time_unix_nano = start;
  s.end_time_unix_nano = end;
  return s;
}

model::StatusReached Reached(const std::string& status, const std::string& prev, uint64_t at,
                             uint8_t span) {
  model::StatusReached r;
  r.status = status;
  r.prev_status = prev;
  r.at_unix_nano = at;
  r.span_id = SpanIdOf(span);
  return r;
}

class TraceMetricsTest : public ::testing::Test {
 protected:
  // One span in a scope of its own.
  void OnSpan(const base::Span& span, const base::Resource& resource) {
    base::ScopeSpans scope;
    scope.spans = {span};
    metrics_.OnSpans(resource, scope);
  }
  std::string Text() { return registry_.Render(Format::kPrometheusText); }
  std::string OpenMetrics() { return registry_.Render(Format::kOpenMetrics); }

  Registry registry_;
  TraceMetrics metrics_{
      registry_, TraceMetricsOptions{},
      [](std::string_view status, std::string_view partner) -> std::optional<uint64_t> {
        if (status != "SUBMITTED") return std::nullopt;
        return (partner == "partner-7" ? 60 : 600) * kSecond;
      }};
};

TEST_F(TraceMetricsTest, SpanMetricsInTheConnectorsShape) {
  base::Span span = SpanOf("shop.submit", base::SpanKind::kServer, kBase, kBase + 30'000'000);
  span.status.code = base::StatusCode::kOk;
  OnSpan(span, ResourceOf("shop-api"));
  OnSpan(span, ResourceOf("shop-api"));
  std::string text = Text();
  const std::string labels =
      "service_name=\"shop-api\",span_name=\"shop.submit\",span_kind=\"SPAN_KIND_SERVER\","
      "status_code=\"STATUS_CODE_OK\"";
  EXPECT_THAT(text, HasSubstr("traces_span_metrics_calls_total{" + labels + "} 2\n"));
  // 30 ms: above the 10 ms bucket, within 50 ms.
  EXPECT_THAT(text, HasSubstr("traces_span_metrics_duration_seconds_bucket{" + labels +
                              ",le=\"0.01\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("traces_span_metrics_duration_seconds_bucket{" + labels +
                              ",le=\"0.05\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("traces_span_metrics_duration_seconds_count{" + labels + "} 2\n"));
  EXPECT_THAT(OpenMetrics(), HasSubstr("# {trace_id=\"" + TraceIdOf(1).ToHex() + "\",span_id=\"" +
                                       SpanIdOf(1).ToHex() + "\"} 0.03 "));
}

TEST_F(TraceMetricsTest, AScopesSpansCountPerSeriesWithAnExemplarPerBucket) {
  base::ScopeSpans scope;
  for (int i = 0; i < 5; ++i) {
    base::Span span = SpanOf("mq.publish.price", base::SpanKind::kProducer, kBase,
                             kBase + (i < 3 ? 1'000'000 : 3'000'000'000ULL));
    span.span_id = SpanIdOf(static_cast<uint8_t>(10 + i));
    scope.spans.push_back(span);
  }
  scope.spans.push_back(SpanOf("mq.consume.price", base::SpanKind::kConsumer, kBase, kBase + 1));
  metrics_.OnSpans(ResourceOf("shop-api"), scope);
  const std::string labels =
      "service_name=\"shop-api\",span_name=\"mq.publish.price\",span_kind=\"SPAN_KIND_PRODUCER\","
      "status_code=\"STATUS_CODE_UNSET\"";
  std::string text = Text();
  EXPECT_THAT(text, HasSubstr("traces_span_metrics_calls_total{" + labels + "} 5\n"));
  EXPECT_THAT(text, HasSubstr("traces_span_metrics_duration_seconds_bucket{" + labels +
                              ",le=\"0.002\"} 3\n"));
  EXPECT_THAT(
      text, HasSubstr("traces_span_metrics_duration_seconds_bucket{" + labels + ",le=\"5\"} 5\n"));
  EXPECT_THAT(text, HasSubstr("span_name=\"mq.consume.price\",span_kind=\"SPAN_KIND_CONSUMER\","
                              "status_code=\"STATUS_CODE_UNSET\"} 1\n"));
  // The latest span of each bucket is its exemplar.
  std::string om = OpenMetrics();
  EXPECT_THAT(om, HasSubstr(",le=\"0.002\"} 3 # {trace_id=\"" + TraceIdOf(1).ToHex() +
                            "\",span_id=\"" + SpanIdOf(12).ToHex() + "\"} 0.001 "));
  EXPECT_THAT(om, HasSubstr(",le=\"5\"} 5 # {trace_id=\"" + TraceIdOf(1).ToHex() + "\",span_id=\"" +
                            SpanIdOf(14).ToHex() + "\"} 3 "));
}

// A span name sent by two services, call after call, counts under each service (the series key
// a name's group keeps is for one service at a time).
TEST_F(TraceMetricsTest, OneSpanNameFromTwoServicesCountsUnderEach) {
  const base::Span span = SpanOf("health.check", base::SpanKind::kServer, kBase, kBase + 1);
  for (int i = 0; i < 3; ++i) {
    OnSpan(span, ResourceOf("shop-api"));
    OnSpan(span, ResourceOf("crm-api"));
  }
  OnSpan(span, ResourceOf("shop-api"));
  const std::string text = Text();
  EXPECT_THAT(text, HasSubstr("traces_span_metrics_calls_total{service_name=\"shop-api\","
                              "span_name=\"health.check\",span_kind=\"SPAN_KIND_SERVER\","
                              "status_code=\"STATUS_CODE_UNSET\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("traces_span_metrics_calls_total{service_name=\"crm-api\","
                              "span_name=\"health.check\",span_kind=\"SPAN_KIND_SERVER\","
                              "status_code=\"STATUS_CODE_UNSET\"} 3\n"));
}

TEST_F(TraceMetricsTest, UnknownEnumValuesCountAsUnspecified) {
  base::Span span = SpanOf("odd", static_cast<base::SpanKind>(9), kBase, kBase + 1);
  span.status.code = static_cast<base::StatusCode>(7);
  OnSpan(span, ResourceOf("shop-api"));
  EXPECT_THAT(Text(), HasSubstr("span_name=\"odd\",span_kind=\"SPAN_KIND_UNSPECIFIED\","
                                "status_code=\"STATUS_CODE_UNSET\"} 1\n"));
}

TEST_F(TraceMetricsTest, UnknownServiceAndUnsetStatus) {
  OnSpan(SpanOf("x", base::SpanKind::kInternal, kBase, kBase + 1), base::Resource{});
  EXPECT_THAT(Text(), HasSubstr("traces_span_metrics_calls_total{service_name=\"unknown_service\","
                                "span_name=\"x\",span_kind=\"SPAN_KIND_INTERNAL\","
                                "status_code=\"STATUS_CODE_UNSET\"} 1\n"));
}

TEST_F(TraceMetricsTest, PriceCalculationByComplexityClass) {
  base::Span calc =
      SpanOf("mes.price.calc", base::SpanKind::kInternal, kBase, kBase + 90 * kSecond);
  calc.attributes.push_back({"complexity_class", base::AnyValue::String("high")});
  OnSpan(calc, ResourceOf("mes-api"));
  base::Span plain = SpanOf("mes.price.calc", base::SpanKind::kInternal, kBase, kBase + kSecond);
  OnSpan(plain, ResourceOf("mes-api"));
  base::Span failed = plain;
  failed.status.code = base::StatusCode::kError;
  OnSpan(failed, ResourceOf("mes-api"));  // a failed calculation is no duration
  std::string text = Text();
  EXPECT_THAT(
      text,
      HasSubstr("price_calc_duration_seconds_bucket{complexity_class=\"high\",le=\"60\"} 0\n"));
  EXPECT_THAT(
      text,
      HasSubstr("price_calc_duration_seconds_bucket{complexity_class=\"high\",le=\"120\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("price_calc_duration_seconds_count{complexity_class=\"unknown\"} 1\n"));
}

TEST_F(TraceMetricsTest, OrderErrorsByServiceAndCode) {
  base::Span refused =
      SpanOf("crm.approve.manufacturing", base::SpanKind::kServer, kBase, kBase + 1);
  refused.status.code = base::StatusCode::kError;
  refused.attributes.push_back({base::kErrorCodeKey, base::AnyValue::String("ILLEGAL_TRANSITION")});
  refused.attributes.push_back({base::kOrderIdKey, base::AnyValue::String("ord-1")});
  OnSpan(refused, ResourceOf("crm-api"));
  base::Span bare = SpanOf("x", base::SpanKind::kServer, kBase, kBase + 1);
  bare.status.code = base::StatusCode::kError;
  OnSpan(bare, ResourceOf("shop-api"));  // not an order's span: not an order error
  bare.attributes.push_back({base::kOrderIdKey, base::AnyValue::String("ord-2")});
  OnSpan(bare, ResourceOf("shop-api"));
  std::string text = Text();
  EXPECT_THAT(
      text,
      HasSubstr("order_errors_total{service=\"crm-api\",error_code=\"ILLEGAL_TRANSITION\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("order_errors_total{service=\"shop-api\",error_code=\"unspecified\"} 1\n"));
}

TEST_F(TraceMetricsTest, StagesTransitionsAndStatusGaugeFromTheRecordDiff) {
  model::OrderRecord before;
  before.order_id = "ord-1";
  before.trace_id = TraceIdOf(1);
  before.statuses = {Reached("SUBMITTED", "FILE_UPLOADED", kBase, 3)};
  metrics_.OnOrderChanged(nullptr, before);
  model::OrderRecord after = before;
  after.statuses.push_back(
      Reached("PRICE_CALCULATION_STARTED", "SUBMITTED", kBase + 120 * kSecond, 4));
  metrics_.OnOrderChanged(&before, after);
  // The same record again (a replay): nothing counts twice.
  metrics_.OnOrderChanged(&after, after);
  std::string text = Text();
  EXPECT_THAT(text, HasSubstr("status_transitions_total{new_status=\"SUBMITTED\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("status_transitions_total{new_status=\"PRICE_CALCULATION_STARTED\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("stage_duration_seconds_count{from_status=\"SUBMITTED\","
                              "to_status=\"PRICE_CALCULATION_STARTED\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("stage_duration_seconds_sum{from_status=\"SUBMITTED\","
                              "to_status=\"PRICE_CALCULATION_STARTED\"} 120\n"));
  // FILE_UPLOADED was never seen: no stage for it.
  EXPECT_THAT(text, Not(HasSubstr("from_status=\"FILE_UPLOADED\"")));
  EXPECT_THAT(text, HasSubstr("orders_in_status{status=\"PRICE_CALCULATION_STARTED\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("orders_in_status{status=\"SUBMITTED\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("partner_stage_sla_total{partner_id=\"direct\",stage=\"SUBMITTED\","
                              "result=\"met\"} 1\n"));
  EXPECT_THAT(OpenMetrics(), HasSubstr("# {trace_id=\"" + TraceIdOf(1).ToHex() + "\",span_id=\"" +
                                       SpanIdOf(4).ToHex() + "\"} 120 "));
}

TEST_F(TraceMetricsTest, AStageCountsOnceWhicheverEndArrivesFirst) {
  model::OrderRecord first;
  first.order_id = "ord-2";
  first.partner_id = "partner-7";
  // The later status arrived first: its stage cannot be measured yet.
  first.statuses = {Reached("PRICE_CALCULATION_STARTED", "SUBMITTED", kBase + 120 * kSecond, 4)};
  metrics_.OnOrderChanged(nullptr, first);
  EXPECT_THAT(Text(), Not(HasSubstr("stage_duration_seconds_count")));
  model::OrderRecord second = first;
  second.statuses.insert(second.statuses.begin(), Reached("SUBMITTED", "FILE_UPLOADED", kBase, 3));
  metrics_.OnOrderChanged(&first, second);
  std::string text = Text();
  EXPECT_THAT(text, HasSubstr("stage_duration_seconds_count{from_status=\"SUBMITTED\","
                              "to_status=\"PRICE_CALCULATION_STARTED\"} 1\n"));
  // partner-7's SLA for SUBMITTED is 60 s: 120 s breaches it.
  EXPECT_THAT(text,
              HasSubstr("partner_stage_sla_total{partner_id=\"partner-7\",stage=\"SUBMITTED\","
                        "result=\"breached\"} 1\n"));
}

TEST_F(TraceMetricsTest, PublishToConsumeOncePerMessage) {
  model::OrderRecord before;
  before.order_id = "ord-3";
  model::MessageHop hop;
  hop.message_id = "m-1";
  hop.queue = "mes.price.requests";
  hop.published_at_unix_nano = kBase;
  before.messages = {hop};
  metrics_.OnOrderChanged(nullptr, before);
  model::OrderRecord after = before;
  after.messages[0].consumed_at_unix_nano = kBase + 250'000'000;
  metrics_.OnOrderChanged(&before, after);
  metrics_.OnOrderChanged(&after, after);
  std::string text = Text();
  EXPECT_THAT(
      text,
      HasSubstr("publish_to_consume_latency_seconds_count{queue=\"mes.price.requests\"} 1\n"));
  EXPECT_THAT(
      text,
      HasSubstr("publish_to_consume_latency_seconds_sum{queue=\"mes.price.requests\"} 0.25\n"));
}

// Three orders of one ingest group, told in one call and told one at a time, give the same
// figures (exemplar times aside: the registry's clock stamps them when observed).
TEST(TraceMetricsBatchTest, AGroupOfChangesCountsAsTheChangesOneByOne) {
  auto sla = [](std::string_view status, std::string_view) -> std::optional<uint64_t> {
    if (status != "SUBMITTED") return std::nullopt;
    return 60 * kSecond;
  };
  std::vector<model::OrderRecord> befores(3), afters(3);
  for (int i = 0; i < 3; ++i) {
    model::OrderRecord& before = befores[i];
    before.order_id = "ord-" + std::to_string(i);
    before.trace_id = TraceIdOf(static_cast<uint8_t>(i));
    before.partner_id = i == 1 ? "partner-1" : "";
    before.statuses = {Reached("SUBMITTED", "FILE_UPLOADED", kBase, 1)};
    model::MessageHop hop;
    hop.message_id = "m-" + std::to_string(i);
    hop.queue = "mes.price.requests";
    hop.published_at_unix_nano = kBase;
    before.messages = {hop};
    model::OrderRecord& after = afters[i];
    after = before;
    after.statuses.push_back(
        Reached("PRICE_CALCULATION_STARTED", "SUBMITTED", kBase + (30 + 60 * i) * kSecond, 2));
    after.messages[0].consumed_at_unix_nano = kBase + (i + 1) * 100'000'000;
  }
  base::ManualClock clock(kBase);
  Registry one_by_one_registry(clock), batched_registry(clock);
  TraceMetrics one_by_one(one_by_one_registry, TraceMetricsOptions{}, sla);
  TraceMetrics batched(batched_registry, TraceMetricsOptions{}, sla);
  std::vector<TraceMetrics::OrderChange> changes;
  for (int i = 0; i < 3; ++i) {
    one_by_one.OnOrderChanged(&befores[i], afters[i]);
    changes.push_back({&befores[i], &afters[i]});
  }
  // A new order in the same group as well.
  one_by_one.OnOrderChanged(nullptr, befores[0]);
  changes.push_back({nullptr, &befores[0]});
  batched.OnOrdersChanged(changes);

  const std::string text = batched_registry.Render(Format::kOpenMetrics);
  EXPECT_EQ(text, one_by_one_registry.Render(Format::kOpenMetrics));
  EXPECT_THAT(text, HasSubstr("status_transitions_total{new_status=\"SUBMITTED\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("status_transitions_total{new_status=\"PRICE_CALCULATION_STARTED\"}"
                              " 3\n"));
  EXPECT_THAT(text, HasSubstr("orders_in_status{status=\"PRICE_CALCULATION_STARTED\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("orders_in_status{status=\"SUBMITTED\"} -2\n"));
  EXPECT_THAT(text, HasSubstr("stage_duration_seconds_count{from_status=\"SUBMITTED\","
                              "to_status=\"PRICE_CALCULATION_STARTED\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("partner_stage_sla_total{partner_id=\"direct\",stage=\"SUBMITTED\","
                              "result=\"met\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("partner_stage_sla_total{partner_id=\"direct\",stage=\"SUBMITTED\","
                              "result=\"breached\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("publish_to_consume_latency_seconds_count{queue="
                              "\"mes.price.requests\"} 3\n"));
}

// New orders, one per status given, each having reached just that status, told as one group.
struct NewOrders {
  explicit NewOrders(const std::vector<std::string>& statuses) : records(statuses.size()) {
    for (size_t i = 0; i < records.size(); ++i) {
      records[i].order_id = "ord-" + std::to_string(i);
      records[i].statuses = {Reached(statuses[i], "", kBase, 1)};
      changes.push_back({nullptr, &records[i]});
    }
  }
  NewOrders(const NewOrders&) = delete;  // `changes` points into `records`

  std::vector<model::OrderRecord> records;
  std::vector<TraceMetrics::OrderChange> changes;
};

// Past its key cache's bound a group still counts every status as itself (the keys built past
// the bound must live until the group's figures are applied).
TEST(TraceMetricsBatchTest, StatusesPastTheKeyCacheCountAsThemselves) {
  Registry registry;
  TraceMetricsOptions options;
  options.max_series = 1000;
  TraceMetrics metrics(registry, options, nullptr);
  std::vector<std::string> statuses;
  for (int i = 0; i < 400; ++i) statuses.push_back("S" + std::to_string(i));
  const NewOrders orders(statuses);
  // Twice: keys built past the bound for the first group must not be used by the second.
  metrics.OnOrdersChanged(orders.changes);
  metrics.OnOrdersChanged(orders.changes);
  const std::string text = registry.Render(Format::kPrometheusText);
  for (size_t i = 0; i < statuses.size(); ++i) {
    const std::string status = "S" + std::to_string(i);
    EXPECT_THAT(text, HasSubstr("status_transitions_total{new_status=\"" + status + "\"} 2\n"));
    EXPECT_THAT(text, HasSubstr("orders_in_status{status=\"" + status + "\"} 2\n"));
  }
}

// Changes summed per series within a group still count one by one in the overflow counter.
TEST(TraceMetricsBatchTest, EveryChangeFoldedIntoOverflowIsCounted) {
  Registry registry;
  TraceMetricsOptions options;
  options.max_series = 1;
  TraceMetrics metrics(registry, options, nullptr);
  // The first takes the one series there is room for; the other three fold.
  const NewOrders orders({"A", "B", "B", "B"});
  metrics.OnOrdersChanged(orders.changes);
  EXPECT_EQ(registry.OverflowCount("status_transitions_total"), 3u);
  EXPECT_EQ(registry.OverflowCount("orders_in_status"), 3u);
  EXPECT_THAT(registry.Render(Format::kPrometheusText),
              HasSubstr("status_transitions_total{otel_metric_overflow=\"true\"} 3\n"));
}

// Stage keys of label values that read the same when simply joined stay two series.
TEST_F(TraceMetricsTest, StageLabelsThatJoinAlikeAreTwoSeries) {
  model::OrderRecord one;
  one.statuses = {Reached(std::string("A\0", 2), "", kBase, 1),
                  Reached("B", std::string("A\0", 2), kBase + kSecond, 2)};
  model::OrderRecord two;
  two.statuses = {Reached("A", "", kBase, 3),
                  Reached(std::string("\0B", 2), "A", kBase + 3 * kSecond, 4)};
  metrics_.OnOrderChanged(nullptr, one);
  metrics_.OnOrderChanged(nullptr, two);
  const std::string text = Text();
  size_t series = 0;
  for (size_t at = text.find("stage_duration_seconds_count{"); at != std::string::npos;
       at = text.find("stage_duration_seconds_count{", at + 1)) {
    ++series;
  }
  EXPECT_EQ(series, 2u) << text;
  EXPECT_THAT(text,
              HasSubstr("_sum{from_status=\"" + std::string("A\0", 2) + "\",to_status=\"B\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("_sum{from_status=\"A\",to_status=\"" + std::string("\0B", 2) + "\"} 3\n"));
}

TEST_F(TraceMetricsTest, StoredOrdersSeedTheStatusGauge) {
  model::OrderRecord r;
  r.statuses = {Reached("CLOSED", "SHIPPED", kBase, 1)};
  metrics_.CountStoredOrder(r);
  metrics_.CountStoredOrder(r);
  EXPECT_THAT(Text(), HasSubstr("orders_in_status{status=\"CLOSED\"} 2\n"));
}

TEST_F(TraceMetricsTest, SlaGauges) {
  metrics_.SetSlas({{"SUBMITTED", 600}, {"PRICE_CALCULATION_STARTED", 1800}}, 1800);
  std::string text = Text();
  EXPECT_THAT(text, HasSubstr("stage_sla_seconds{stage=\"SUBMITTED\"} 600\n"));
  EXPECT_THAT(text, HasSubstr("price_calc_sla_seconds 1800\n"));
}

// The SLA gauge holds every stage of the lifecycle, however low the span-fed families' bound.
TEST(TraceMetricsSeriesBoundTest, SlaGaugesKeepEveryStagePastMaxSeries) {
  Registry registry;
  TraceMetricsOptions options;
  options.max_series = 2;
  TraceMetrics metrics(registry, options, nullptr);
  metrics.SetSlas({{"SUBMITTED", 600}, {"PRICE_CALCULATION_STARTED", 1800}, {"PACKAGING", 14400}},
                  1800);
  std::string text = registry.Render(Format::kPrometheusText);
  EXPECT_THAT(text, HasSubstr("stage_sla_seconds{stage=\"SUBMITTED\"} 600\n"));
  EXPECT_THAT(text, HasSubstr("stage_sla_seconds{stage=\"PRICE_CALCULATION_STARTED\"} 1800\n"));
  EXPECT_THAT(text, HasSubstr("stage_sla_seconds{stage=\"PACKAGING\"} 14400\n"));
  EXPECT_THAT(text, Not(HasSubstr("stage_sla_seconds{otel_metric_overflow")));
}

TEST_F(TraceMetricsTest, OrderIdsNeverBecomeLabels) {
  base::Span span = SpanOf("shop.submit", base::SpanKind::kServer, kBase, kBase + 1);
  span.attributes.push_back({base::kOrderIdKey, base::AnyValue::String("ord-secret-77")});
  OnSpan(span, ResourceOf("shop-api"));
  EXPECT_THAT(Text(), Not(HasSubstr("ord-secret-77")));
}

}  // namespace
}  // namespace ordertrace::metrics
