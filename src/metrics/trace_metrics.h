// The trace metrics processor (the design's section 5): span metrics in the shape of the
// OpenTelemetry Collector's spanmetrics connector, and Alexandrite's business metrics, computed
// from every ingested span and every order record change, before sampling. Histograms carry the
// trace id as an exemplar, so a slow bucket links to a trace ordertrace serves.
//
// Span-level figures (calls, durations, price calculations, errors) count each span received,
// as the Collector's connector does: an exporter's retry of an acknowledged batch counts twice.
// Order-level figures (transitions, stages, messages, orders per status) come from the record
// diff, so a replayed span never counts twice.
//
// Called from the ingest writer thread; the registry renders concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "metrics/registry.h"
#include "model/order_record.h"
#include "model/span.h"

namespace ordertrace::metrics {

struct TraceMetricsOptions {
  // The span whose duration is the price calculation.
  std::string price_calc_span = "mes.price.calc";
  // Series per metric family before folding into the overflow series.
  size_t max_series = 2000;
  // Upper bounds (seconds) of traces_span_metrics_duration_seconds: the spanmetrics
  // connector's defaults, so dashboards built for it read the same buckets.
  std::vector<double> span_duration_buckets = {0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2,
                                               0.4,   0.8,   1,     1.4,   2,    5,    10,  15};
  std::vector<double> price_calc_buckets = {0.1, 0.25, 0.5, 1,   2,    5,    10,   30,   60,
                                            120, 300,  600, 900, 1200, 1800, 2700, 3600, 7200};
  std::vector<double> stage_buckets = {0.1,   0.5,   1,     2,      5,     10,   30,
                                       60,    300,   600,   1800,   3600,  7200, 14400,
                                       28800, 43200, 86400, 172800, 604800};
  std::vector<double> publish_to_consume_buckets = {
      0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600, 1800};
};

// The SLA (nanoseconds, already time-scaled) of the stage `status` for `partner_id`, if any.
using SlaLookup =
    std::function<std::optional<uint64_t>(std::string_view status, std::string_view partner_id)>;

class TraceMetrics {
 public:
  // Registers its families in `registry`, which must outlive it.
  TraceMetrics(Registry& registry, TraceMetricsOptions options, SlaLookup sla);

  // Every span, a scope's spans at a time (they share the resource: the service).
  void OnSpans(const model::Resource& resource, const model::ScopeSpans& scope_spans);
  // A changed order record (`before` null for a new order).
  void OnOrderChanged(const model::OrderRecord* before, const model::OrderRecord& after);
  // A stored order at start, so orders_in_status covers orders ingested before a restart.
  void CountStoredOrder(const model::OrderRecord& record);
  // Publishes the lifecycle's SLAs (seconds) for alert rules to compare against.
  void SetSlas(const std::vector<std::pair<std::string, double>>& stage_sla_seconds,
               std::optional<double> price_calc_sla_seconds);

 private:
  // Encoded series keys of the order-level families, whose label values (statuses, queues,
  // partners) repeat endlessly: encoded once. Bounded; past the bound keys are built each time.
  class KeyCache {
   public:
    explicit KeyCache(const Family& family, size_t bound)
        : names_(family.label_names()), bound_(bound) {}
    const SeriesKey& Get(std::initializer_list<std::string_view> values);

   private:
    const std::vector<std::string>& names_;
    const size_t bound_;
    std::string lookup_;
    absl::flat_hash_map<std::string, SeriesKey> keys_;
    std::optional<SeriesKey> spare_;
  };

  const TraceMetricsOptions options_;
  const SlaLookup sla_;
  Counter& calls_;
  Histogram& span_duration_;
  Histogram& price_calc_;
  Histogram& stage_duration_;
  Histogram& publish_to_consume_;
  Counter& transitions_;
  Counter& order_errors_;
  Gauge& orders_in_status_;
  Counter& partner_sla_;
  Gauge& stage_sla_;
  Gauge& price_calc_sla_;
  // OnSpans' scratch: calls and durations per span name, then per (kind, status code). Kept
  // from call to call so that counting a scope allocates nothing in the common case.
  struct SpanGroup {
    uint64_t calls = 0;
    std::vector<Exemplar> durations;
  };
  static constexpr size_t kKinds = 6;        // model::SpanKind's values
  static constexpr size_t kStatusCodes = 3;  // model::StatusCode's values
  // Node map: `touched_` points into it.
  absl::node_hash_map<std::string, std::array<SpanGroup, kKinds * kStatusCodes>> groups_;
  // The groups a call touched, in the order their first span came: series are created in span
  // order, so which ones fit under the series bound does not depend on hashing.
  struct Touched {
    const std::string* name;
    size_t slot;  // kind * kStatusCodes + status code
    SpanGroup* group;
  };
  std::vector<Touched> touched_;

  // Used by the ingest writer thread only (OnOrderChanged, CountStoredOrder before ingest).
  KeyCache transition_keys_{transitions_, 256};
  KeyCache status_keys_{orders_in_status_, 256};
  KeyCache stage_keys_{stage_duration_, 1024};
  KeyCache partner_sla_keys_{partner_sla_, 4096};
};

std::string_view SpanKindName(model::SpanKind kind);
std::string_view StatusCodeName(model::StatusCode code);

}  // namespace ordertrace::metrics
