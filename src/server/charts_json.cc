#include "server/charts_json.h"

#include <cmath>

#include "server/api_json.h"

namespace ordertrace::server {
namespace {

using nlohmann::json;

json NumberOrNull(std::optional<double> value) {
  return value && std::isfinite(*value) ? json(*value) : json();
}

json LabelsJson(const metrics::LabelPairs& labels) {
  json object = json::object();
  for (const auto& [name, value] : labels) object[name] = value;
  return object;
}

json ExemplarsJson(const metrics::HistogramSample& series) {
  json exemplars = json::array();
  for (const std::optional<metrics::Exemplar>& e : series.exemplars) {
    if (!e || !e->trace_id.IsValid()) continue;
    exemplars.push_back({{"trace_id", e->trace_id.ToHex()},
                         {"span_id", e->span_id.IsValid() ? json(e->span_id.ToHex()) : json()},
                         {"value", e->value},
                         {"at", TimeJson(e->time_unix_nano)}});
  }
  return exemplars;
}

json BucketsJson(const metrics::HistogramFigures& figures, const metrics::HistogramSample& series) {
  json buckets = json::array();
  for (size_t b = 0; b < series.cumulative.size(); ++b) {
    json le = b < figures.bounds.size() ? json(figures.bounds[b]) : json("+Inf");
    buckets.push_back({{"le", le}, {"count", series.cumulative[b]}});
  }
  return buckets;
}

json HistogramJson(const std::string& name, const metrics::HistogramFigures& figures) {
  json series_list = json::array();
  for (const metrics::HistogramSample& series : figures.series) {
    series_list.push_back(
        {{"labels", LabelsJson(series.labels)},
         {"count", series.count},
         {"sum", series.sum},
         {"p50", NumberOrNull(metrics::EstimateQuantile(figures.bounds, series.cumulative, 0.5))},
         {"p95", NumberOrNull(metrics::EstimateQuantile(figures.bounds, series.cumulative, 0.95))},
         {"buckets", BucketsJson(figures, series)},
         {"exemplars", ExemplarsJson(series)}});
  }
  return {{"name", name}, {"label_names", figures.label_names}, {"series", series_list}};
}

json SlaJson(const metrics::Registry& registry, uint64_t message_sla_nanos) {
  json stages = json::object();
  if (auto samples = registry.ScalarSnapshot("stage_sla_seconds")) {
    for (const metrics::ScalarSample& s : *samples) {
      if (!s.labels.empty()) stages[s.labels.front().second] = s.value;
    }
  }
  json price_calc;
  if (auto samples = registry.ScalarSnapshot("price_calc_sla_seconds")) {
    if (!samples->empty()) price_calc = samples->front().value;
  }
  json message =
      message_sla_nanos != 0 ? json(static_cast<double>(message_sla_nanos) / 1e9) : json();
  return {{"stages", stages}, {"price_calc", price_calc}, {"message", message}};
}

json OverTimeJson(const metrics::MetricHistory* history) {
  json points = json::array();
  if (history == nullptr) return {{"step_seconds", nullptr}, {"points", points}};
  for (const metrics::HistoryPoint& point : history->Points()) {
    json p = {{"at", TimeJson(point.at_unix_nano)}};
    for (const auto& [name, value] : point.values) p[name] = value;
    points.push_back(std::move(p));
  }
  return {{"step_seconds", history->step_seconds()}, {"points", points}};
}

}  // namespace

json ChartsJson(const metrics::Registry& registry, const ChartContext& context) {
  registry.RunScrapeHooks();
  json histograms = json::array();
  for (const char* name : kChartedHistograms) {
    std::optional<metrics::HistogramFigures> figures = registry.HistogramSnapshot(name);
    if (figures) histograms.push_back(HistogramJson(name, *figures));
  }
  return {{"as_of", TimeJson(registry.NowUnixNano())},
          {"stages", context.stages},
          {"histograms", histograms},
          {"sla_seconds", SlaJson(registry, context.message_sla_nanos)},
          {"over_time", OverTimeJson(context.history)}};
}

}  // namespace ordertrace::server
