// GET /api/v1/charts: the console's charts, from ordertrace's own figures (the metrics registry
// and its short history), so that the console draws them with no Prometheus running. Each
// histogram series carries its p50/p95 (estimated from the buckets, as histogram_quantile
// does) and the latest exemplar per bucket: the trace a chart's point opens.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "metrics/history.h"
#include "metrics/registry.h"

namespace ordertrace::server {

// The histogram families the console charts: stage durations, price calculation time,
// publish-to-consume latency.
inline constexpr const char* kChartedHistograms[] = {
    "stage_duration_seconds", "price_calc_duration_seconds", "publish_to_consume_latency_seconds"};

// What the charts draw besides the registry's figures.
struct ChartContext {
  const metrics::MetricHistory* history = nullptr;  // null: over_time has no points
  std::vector<std::string> stages;  // the lifecycle's statuses in order, for the stages' order
  uint64_t message_sla_nanos = 0;   // 0: the queue chart has no SLA mark
};

nlohmann::json ChartsJson(const metrics::Registry& registry, const ChartContext& context);

}  // namespace ordertrace::server
