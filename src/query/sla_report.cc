#include "query/sla_report.h"

#include <algorithm>
#include <map>

#include "lifecycle/order_timeline.h"

namespace ordertrace::query {
namespace {

// The nearest-rank percentile of sorted durations.
uint64_t Percentile(const std::vector<uint64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(p * static_cast<double>(sorted.size()) + 0.999999);
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

}  // namespace

absl::StatusOr<SlaReport> BuildSlaReport(store::Store& store, const std::string& partner_id,
                                         uint64_t now_unix_nano, const SlaReportOptions& options) {
  store::OrderFilter filter;
  filter.partner_id = partner_id;
  filter.limit = options.max_orders + 1;
  absl::StatusOr<std::vector<model::OrderRecord>> records = store.ListOrders(filter);
  if (!records.ok()) return records.status();

  SlaReport report;
  report.partner_id = partner_id;
  report.as_of_unix_nano = now_unix_nano;
  report.truncated = records->size() > options.max_orders;
  if (report.truncated) records->resize(options.max_orders);
  report.orders = records->size();

  std::map<std::string, size_t> index;
  for (const std::string& status : options.statuses) {
    index.emplace(status, report.stages.size());
    report.stages.push_back(StageSla{status});
  }
  std::vector<std::vector<uint64_t>> durations(report.stages.size());
  for (const model::OrderRecord& record : *records) {
    for (const lifecycle::Stage& stage : lifecycle::Timeline(record, now_unix_nano)) {
      auto at = index.find(stage.status);
      if (at == index.end()) continue;  // a status the lifecycle does not know
      StageSla& out = report.stages[at->second];
      const std::optional<uint64_t> sla =
          options.sla ? options.sla(stage.status, record.partner_id) : std::nullopt;
      if (stage.current) {
        ++out.current;
        if (sla && stage.duration_nanos > *sla) ++out.current_over_sla;
        continue;
      }
      ++out.completed;
      if (sla && stage.duration_nanos <= *sla) ++out.completed_within_sla;
      durations[at->second].push_back(stage.duration_nanos);
    }
  }
  for (size_t i = 0; i < report.stages.size(); ++i) {
    StageSla& out = report.stages[i];
    out.sla_nanos = options.sla ? options.sla(out.stage, partner_id) : std::nullopt;
    std::vector<uint64_t>& d = durations[i];
    std::sort(d.begin(), d.end());
    out.p50_nanos = Percentile(d, 0.50);
    out.p95_nanos = Percentile(d, 0.95);
    out.max_nanos = d.empty() ? 0 : d.back();
  }
  return report;
}

}  // namespace ordertrace::query
