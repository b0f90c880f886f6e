#include "metrics/registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace ordertrace::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

base::TraceId TraceIdOf(uint8_t n) {
  base::TraceId id;
  id.bytes[0] = 0xab;
  id.bytes[15] = n;
  return id;
}

TEST(FormatForAccept, OpenMetricsOnlyWhenAsked) {
  EXPECT_EQ(FormatForAccept(""), Format::kPrometheusText);
  EXPECT_EQ(FormatForAccept("text/plain;version=0.0.4"), Format::kPrometheusText);
  // What Prometheus 2.42 sends.
  EXPECT_EQ(FormatForAccept("application/openmetrics-text;version=1.0.0,application/"
                            "openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;"
                            "q=0.5,*/*;q=0.1"),
            Format::kOpenMetrics);
  EXPECT_THAT(std::string(ContentType(Format::kOpenMetrics)),
              HasSubstr("application/openmetrics-text; version=1.0.0"));
  EXPECT_THAT(std::string(ContentType(Format::kPrometheusText)), HasSubstr("version=0.0.4"));
}

TEST(Registry, CounterInBothFormats) {
  Registry registry;
  Counter& calls = registry.AddCounter({"calls_total", "Calls.", {"service"}});
  calls.Add({"shop"});
  calls.Add({"shop"}, 2);
  calls.Add({"crm"});
  std::string text = registry.Render(Format::kPrometheusText);
  EXPECT_THAT(text, HasSubstr("# TYPE calls_total counter\n"));
  EXPECT_THAT(text, HasSubstr("calls_total{service=\"crm\"} 1\ncalls_total{service=\"shop\"} 3\n"));
  EXPECT_THAT(text, Not(HasSubstr("# EOF")));
  std::string om = registry.Render(Format::kOpenMetrics);
  // OpenMetrics names the family without _total, the sample keeps it, and the text ends in EOF.
  EXPECT_THAT(om, HasSubstr("# TYPE calls counter\n"));
  EXPECT_THAT(om, HasSubstr("# HELP calls Calls.\n"));
  EXPECT_THAT(om, HasSubstr("calls_total{service=\"shop\"} 3\n"));
  EXPECT_EQ(om.substr(om.size() - 6), "# EOF\n");
}

TEST(Registry, EscapesLabelValuesAndHelp) {
  Registry registry;
  Counter& c = registry.AddCounter({"odd_total", "A \\ \"help\"\nline.", {"v"}});
  c.Add({"a\"b\\c\nd"});
  std::string text = registry.Render(Format::kPrometheusText);
  EXPECT_THAT(text, HasSubstr("odd_total{v=\"a\\\"b\\\\c\\nd\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("# HELP odd_total A \\\\ \"help\"\\nline.\n"));
  // OpenMetrics escapes the quotes in HELP too.
  EXPECT_THAT(registry.Render(Format::kOpenMetrics),
              HasSubstr("# HELP odd A \\\\ \\\"help\\\"\\nline.\n"));
}

TEST(Registry, HistogramBucketsAreCumulativeWithSumAndCount) {
  Registry registry;
  Histogram& h = registry.AddHistogram({"lat_seconds", "Latency.", {"queue"}}, {0.5, 1, 5});
  h.Observe({"q"}, 0.2);
  h.Observe({"q"}, 0.5);  // on a bound: belongs to le=0.5
  h.Observe({"q"}, 3);
  h.Observe({"q"}, 60);
  std::string text = registry.Render(Format::kPrometheusText);
  EXPECT_THAT(text, HasSubstr("lat_seconds_bucket{queue=\"q\",le=\"0.5\"} 2\n"
                              "lat_seconds_bucket{queue=\"q\",le=\"1\"} 2\n"
                              "lat_seconds_bucket{queue=\"q\",le=\"5\"} 3\n"
                              "lat_seconds_bucket{queue=\"q\",le=\"+Inf\"} 4\n"
                              "lat_seconds_sum{queue=\"q\"} 63.7\n"
                              "lat_seconds_count{queue=\"q\"} 4\n"));
}

TEST(Registry, ExemplarsOnlyInOpenMetricsAndLatestPerBucket) {
  base::ManualClock clock(1'700'000'000'000'000'000ULL);
  Registry registry(clock);
  Histogram& h = registry.AddHistogram({"stage_seconds", "Stage.", {}}, {1, 10});
  base::SpanId span;
  span.bytes[7] = 9;
  // The spans' own times play no part: exemplars are stamped when observed.
  Exemplar first{TraceIdOf(1), span, 0.5, 5};
  Exemplar second{TraceIdOf(2), span, 0.75, 1};
  h.Observe({}, 0.5, &first);
  clock.Advance(1'500'000'000);
  h.Observe({}, 0.75, &second);
  h.Observe({}, 7);  // no exemplar for this bucket
  std::string om = registry.Render(Format::kOpenMetrics);
  EXPECT_THAT(om,
              HasSubstr("stage_seconds_bucket{le=\"1\"} 2 # {trace_id=\"" + TraceIdOf(2).ToHex() +
                        "\",span_id=\"" + span.ToHex() + "\"} 0.75 1700000001.500\n"));
  EXPECT_THAT(om, HasSubstr("stage_seconds_bucket{le=\"10\"} 3\n"));
  std::string text = registry.Render(Format::kPrometheusText);
  EXPECT_THAT(text, Not(HasSubstr("trace_id")));
  EXPECT_THAT(text, HasSubstr("stage_seconds_bucket{le=\"1\"} 2\n"));
}

TEST(Registry, ExemplarWithoutSpanIdHasOnlyTheTrace) {
  base::ManualClock clock(2'000'000'000ULL);
  Registry registry(clock);
  Histogram& h = registry.AddHistogram({"hop_seconds", "Hop.", {}}, {1});
  Exemplar e{TraceIdOf(3), base::SpanId{}, 0.1, 2'000'000'000ULL};
  h.Observe({}, 0.1, &e);
  EXPECT_THAT(registry.Render(Format::kOpenMetrics),
              HasSubstr("# {trace_id=\"" + TraceIdOf(3).ToHex() + "\"} 0.1 2.000\n"));
}

TEST(Registry, SeriesPastTheBoundFoldIntoOverflowAndAreCounted) {
  Registry registry;
  Counter& c = registry.AddCounter({"by_partner_total", "By partner.", {"partner_id"}, 3});
  for (int i = 0; i < 10; ++i) c.Add({"p" + std::to_string(i)});
  c.Add({"p0"});  // an existing series still counts as itself
  std::string text = registry.Render(Format::kPrometheusText);
  EXPECT_THAT(text, HasSubstr("by_partner_total{partner_id=\"p0\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("by_partner_total{partner_id=\"p2\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("partner_id=\"p3\"")));
  EXPECT_THAT(text, HasSubstr("by_partner_total{otel_metric_overflow=\"true\"} 7\n"));
  EXPECT_EQ(registry.OverflowCount("by_partner_total"), 7u);
  EXPECT_THAT(
      text, HasSubstr("ordertrace_metric_series_overflow_total{metric=\"by_partner_total\"} 7\n"));
}

TEST(Registry, HistogramOverflowKeepsItsBuckets) {
  Registry registry;
  Histogram& h = registry.AddHistogram({"h_seconds", "H.", {"k"}, 1}, {1});
  h.Observe({"a"}, 0.5);
  h.Observe({"b"}, 2);
  h.Observe({"c"}, 0.5);
  std::string text = registry.Render(Format::kPrometheusText);
  EXPECT_THAT(text, HasSubstr("h_seconds_bucket{otel_metric_overflow=\"true\",le=\"1\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("h_seconds_count{otel_metric_overflow=\"true\"} 2\n"));
}

TEST(Registry, AddEachAndObserveEachApplyInOrderAndCountEveryFoldedObservation) {
  Registry registry;
  Counter& c = registry.AddCounter({"by_stage_total", "By stage.", {"stage"}, 2});
  const std::vector<std::string> names = {"stage"};
  const std::string_view a[] = {"a"}, b[] = {"b"}, x[] = {"x"}, y[] = {"y"};
  const SeriesKey ka(names, a), kb(names, b), kx(names, x), ky(names, y);
  // "b" comes first, so "a" and "b" are the two series under the bound, not "a" and "x".
  const KeyedDelta increments[] = {{&kb, 1}, {&ka, 2}, {&kx, 1}, {&ka, 1}, {&ky, 4}};
  c.AddEach(increments);
  std::string text = registry.Render(Format::kPrometheusText);
  EXPECT_THAT(text, HasSubstr("by_stage_total{stage=\"a\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("by_stage_total{stage=\"b\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("by_stage_total{otel_metric_overflow=\"true\"} 5\n"));
  EXPECT_EQ(registry.OverflowCount("by_stage_total"), 2u);  // two folded increments

  Histogram& h = registry.AddHistogram({"h_seconds", "H.", {"stage"}, 1}, {1});
  const KeyedObservation observations[] = {
      {&ka, Exemplar{TraceIdOf(1), {}, 0.5, 0}},
      {&kb, Exemplar{TraceIdOf(2), {}, 2, 0}},
      {&ka, Exemplar{TraceIdOf(3), {}, 0.25, 0}},
      {&kb, Exemplar{TraceIdOf(4), {}, 0.5, 0}},
  };
  h.ObserveEach(observations);
  text = registry.Render(Format::kOpenMetrics);
  EXPECT_THAT(text, HasSubstr("h_seconds_count{stage=\"a\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("h_seconds_sum{stage=\"a\"} 0.75\n"));
  EXPECT_THAT(text, HasSubstr("h_seconds_count{otel_metric_overflow=\"true\"} 2\n"));
  // The latest observation of a bucket leaves its exemplar.
  EXPECT_THAT(text, HasSubstr("h_seconds_bucket{stage=\"a\",le=\"1\"} 2 # {trace_id=\"" +
                              TraceIdOf(3).ToHex() + "\"} 0.25"));
  EXPECT_EQ(registry.OverflowCount("h_seconds"), 2u);
}

// New series created in the middle of one call (the series map grows and moves its entries)
// do not lose the observations of series found earlier in that call.
TEST(Registry, ObserveEachKeepsEverySeriesWhileTheMapGrows) {
  Registry registry;
  Histogram& h = registry.AddHistogram({"grow_seconds", "G.", {"k"}, 1000}, {1});
  const std::vector<std::string> names = {"k"};
  std::vector<std::string> values;
  for (int i = 0; i < 300; ++i) values.push_back("v" + std::to_string(i));
  std::vector<SeriesKey> keys;
  for (const std::string& v : values) {
    const std::string_view labels[] = {v};
    keys.emplace_back(names, labels);
  }
  std::vector<KeyedObservation> observations;
  for (int round = 0; round < 2; ++round) {
    for (const SeriesKey& key : keys) {
      observations.push_back({&key, Exemplar{TraceIdOf(1), {}, 0.5, 0}});
    }
  }
  // Each key again right after it first appears, before and after the map grows.
  for (const SeriesKey& key : keys)
    observations.push_back({&key, Exemplar{TraceIdOf(2), {}, 2, 0}});
  h.ObserveEach(observations);
  const std::string text = registry.Render(Format::kPrometheusText);
  for (const std::string& v : values) {
    EXPECT_THAT(text, HasSubstr("grow_seconds_count{k=\"" + v + "\"} 3\n"));
    EXPECT_THAT(text, HasSubstr("grow_seconds_sum{k=\"" + v + "\"} 3\n"));
  }
}

TEST(Registry, GaugeSetAddAndReplaceAll) {
  Registry registry;
  Gauge& g = registry.AddGauge({"orders_in_status", "Orders.", {"status"}});
  g.Add({"SUBMITTED"}, 1);
  g.Add({"SUBMITTED"}, 1);
  g.Add({"SUBMITTED"}, -1);
  g.Set({"CLOSED"}, 5);
  std::string text = registry.Render(Format::kPrometheusText);
  EXPECT_THAT(text, HasSubstr("orders_in_status{status=\"CLOSED\"} 5\n"));
  EXPECT_THAT(text, HasSubstr("orders_in_status{status=\"SUBMITTED\"} 1\n"));
  g.ReplaceAll({{{"SHIPPED"}, 2}});
  text = registry.Render(Format::kPrometheusText);
  EXPECT_THAT(text, HasSubstr("orders_in_status{status=\"SHIPPED\"} 2\n"));
  EXPECT_THAT(text, Not(HasSubstr("CLOSED")));
}

TEST(Registry, ScrapeHooksRunBeforeRender) {
  Registry registry;
  Gauge& g = registry.AddGauge({"queued", "Queued.", {}});
  int calls = 0;
  registry.AddScrapeHook([&] { g.Set({}, ++calls); });
  EXPECT_THAT(registry.Render(Format::kPrometheusText), HasSubstr("queued 1\n"));
  EXPECT_THAT(registry.Render(Format::kPrometheusText), HasSubstr("queued 2\n"));
}

TEST(Registry, ObserveWhileRendering) {
  Registry registry;
  Histogram& h = registry.AddHistogram({"x_seconds", "X.", {"k"}}, {1, 2});
  std::thread writer([&] {
    for (int i = 0; i < 20000; ++i) h.Observe({i % 2 == 0 ? "a" : "b"}, 0.5);
  });
  for (int i = 0; i < 50; ++i) registry.Render(Format::kOpenMetrics);
  writer.join();
  EXPECT_THAT(registry.Render(Format::kPrometheusText),
              HasSubstr("x_seconds_count{k=\"a\"} 10000\n"));
}

TEST(FormatValue, ShortestRoundTrip) {
  EXPECT_EQ(FormatValue(0.005), "0.005");
  EXPECT_EQ(FormatValue(3), "3");
  EXPECT_EQ(FormatValue(1.4), "1.4");
  EXPECT_EQ(FormatValue(1.0 / 0.0), "+Inf");
}

}  // namespace
}  // namespace ordertrace::metrics
