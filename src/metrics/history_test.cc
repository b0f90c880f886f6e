#include "metrics/history.h"

#include <gtest/gtest.h>

#include "base/clock.h"

namespace ordertrace::metrics {
namespace {

TEST(EstimateQuantileTest, InterpolatesInsideTheBucketAsHistogramQuantileDoes) {
  const std::vector<double> bounds = {1, 10, 100};
  // 10 observations: 4 up to 1, 4 in (1, 10], 2 in (10, 100], none above.
  const std::vector<uint64_t> cumulative = {4, 8, 10, 10};
  EXPECT_DOUBLE_EQ(*EstimateQuantile(bounds, cumulative, 0.2), 0.5);    // rank 2 of 4 in [0, 1]
  EXPECT_DOUBLE_EQ(*EstimateQuantile(bounds, cumulative, 0.5), 3.25);   // rank 5: 1 of 4 in (1, 10]
  EXPECT_DOUBLE_EQ(*EstimateQuantile(bounds, cumulative, 0.95), 77.5);  // rank 9.5: 1.5 of 2
  EXPECT_FALSE(EstimateQuantile(bounds, {0, 0, 0, 0}, 0.5).has_value());
  // In the +Inf bucket: the highest finite bound, as Prometheus answers.
  EXPECT_DOUBLE_EQ(*EstimateQuantile(bounds, {0, 0, 0, 5}, 0.5), 100);
}

TEST(RegistrySnapshotTest, CopiesSeriesWithTheirLabelsDecoded) {
  base::ManualClock clock(1'000);
  Registry registry(clock);
  Gauge& gauge = registry.AddGauge({"open_gaps", "open", {"kind", "stage"}});
  gauge.Set({"missing \"x\"", "A\\B"}, 2);
  std::optional<std::vector<ScalarSample>> samples = registry.ScalarSnapshot("open_gaps");
  ASSERT_TRUE(samples.has_value());
  ASSERT_EQ(samples->size(), 1u);
  EXPECT_EQ((*samples)[0].labels, (LabelPairs{{"kind", "missing \"x\""}, {"stage", "A\\B"}}));
  EXPECT_EQ((*samples)[0].value, 2);
  EXPECT_FALSE(registry.ScalarSnapshot("nope").has_value());
  EXPECT_FALSE(registry.HistogramSnapshot("open_gaps").has_value());  // not a histogram
}

TEST(MetricHistoryTest, CountersGiveTheirIncreasePerStepAndGaugesTheirValue) {
  base::ManualClock clock(1'000);
  Registry registry(clock);
  Counter& errors = registry.AddCounter({"order_errors_total", "e", {"service"}});
  Gauge& open = registry.AddGauge({"open_gaps", "o", {"stage"}});
  MetricHistoryOptions options;
  options.points = 3;
  options.figures = {{"errors", "order_errors_total", true}, {"open", "open_gaps", false}};
  MetricHistory history(registry, options);

  errors.Add({"a"}, 5);  // before the first sample: no increase to tell
  history.Sample();
  errors.Add({"a"}, 2);
  errors.Add({"b"}, 1);
  open.Set({"S"}, 4);
  open.Set({"T"}, 1);
  clock.Advance(10);
  history.Sample();
  clock.Advance(10);
  history.Sample();
  clock.Advance(10);
  history.Sample();

  std::vector<HistoryPoint> points = history.Points();
  ASSERT_EQ(points.size(), 3u);  // the oldest forgotten
  EXPECT_EQ(points[0].at_unix_nano, 1'010u);
  EXPECT_EQ(points[0].values["errors"], 3);
  EXPECT_EQ(points[0].values["open"], 5);
  EXPECT_EQ(points[1].values["errors"], 0);
  EXPECT_EQ(points[2].values["open"], 5);
}

TEST(MetricHistoryTest, AFamilyTheRegistryLacksReadsAsZero) {
  Registry registry;
  MetricHistory history(registry, ConsoleHistoryOptions());
  history.Sample();
  ASSERT_EQ(history.Points().size(), 1u);
  EXPECT_EQ(history.Points()[0].values.at("gaps_detected"), 0);
}

TEST(MetricHistoryTest, StartsAndStopsItsThread) {
  Registry registry;
  MetricHistory history(registry, ConsoleHistoryOptions());
  history.Start();
  history.Stop();                          // returns without waiting a step
  EXPECT_GE(history.Points().size(), 1u);  // the thread samples once at start
}

}  // namespace
}  // namespace ordertrace::metrics
