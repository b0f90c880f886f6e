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
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "base/span.h"
#include "metrics/registry.h"
#include "model/order_record.h"

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
  void OnSpans(const base::Resource& resource, const base::ScopeSpans& scope_spans);
  // A changed order record; `before` is null for a new order.
  struct OrderChange {
    const model::OrderRecord* before;
    const model::OrderRecord* after;
  };
  // The order records one ingest commit changed, in the order it changed them. The order-level
  // figures of the whole group are tallied first and each family is then locked once, instead
  // of once per transition (a visible share of ingest CPU when orders move fast).
  void OnOrdersChanged(std::span<const OrderChange> changes);
  // One changed record: OnOrdersChanged with one change.
  void OnOrderChanged(const model::OrderRecord* before, const model::OrderRecord& after);
  // A stored order at start, so orders_in_status covers orders ingested before a restart.
  void CountStoredOrder(const model::OrderRecord& record);
  // Publishes the lifecycle's SLAs (seconds) for alert rules to compare against.
  void SetSlas(const std::vector<std::pair<std::string, double>>& stage_sla_seconds,
               std::optional<double> price_calc_sla_seconds);

 private:
  // Encoded series keys of the order-level families, whose label values (statuses, queues,
  // partners) repeat endlessly: encoded once. Bounded; past the bound keys are built each time
  // and kept until EndBatch, so that a batch can hold on to every key it got.
  class KeyCache {
   public:
    explicit KeyCache(const Family& family, size_t bound)
        : names_(family.label_names()), bound_(bound) {}
    // The key of `values`, one per label name. Valid until EndBatch, or longer.
    const SeriesKey& Get(std::initializer_list<std::string_view> values);
    // The same, found first by `ids`: the values' LabelIds packed into one number, which
    // stands for those values only (callers pack each family's ids one way).
    const SeriesKey& Get(uint64_t ids, std::initializer_list<std::string_view> values);
    // By `ids` when every value has one (PackLabelIds), else by the values' text.
    const SeriesKey& GetPacked(std::optional<uint64_t> ids,
                               std::initializer_list<std::string_view> values);
    void EndBatch() { uncached_.clear(); }

   private:
    const std::vector<std::string>& names_;
    const size_t bound_;
    std::string lookup_;
    // Node map and deque: references handed out stay valid while others are added.
    absl::node_hash_map<std::string, SeriesKey> keys_;
    std::deque<SeriesKey> uncached_;
    absl::flat_hash_map<uint64_t, const SeriesKey*> by_ids_;  // into keys_
  };

  // Small numbers for label values that repeat endlessly (statuses, partners), so that a value
  // is hashed once per order change and its keys in several families are then found by number.
  // Bounded: past the bound a value has no id and its keys are found by text.
  class LabelIds {
   public:
    static constexpr uint32_t kNone = 0;
    explicit LabelIds(size_t bound) : bound_(bound) {}
    // 1 and up; kNone past the bound.
    uint32_t Of(std::string_view value);

   private:
    const size_t bound_;
    absl::flat_hash_map<std::string, uint32_t> ids_;
  };

  // One group's order-level figures, before they go to the families. Counts are summed per
  // series in the order each series first came, so that which series fit under the series
  // bound does not depend on hashing.
  class DeltaTally {
   public:
    void Add(const SeriesKey& key, double delta);
    std::span<const KeyedDelta> deltas() const { return deltas_; }
    void Clear() {
      deltas_.clear();
      index_.clear();
    }

   private:
    std::vector<KeyedDelta> deltas_;
    absl::flat_hash_map<const SeriesKey*, size_t> index_;
  };

  // A LabelIds id takes this many bits of a packed number, so that the three ids of the
  // widest family (partner_stage_sla_total) fit in one uint64_t; the bounds keep ids below it.
  static constexpr uint64_t kLabelIdBits = 20;
  static constexpr size_t kMaxStatusIds = 1024;
  static constexpr size_t kMaxPartnerIds = 4096;
  // The ids of a family's label values as one number, KeyCache's key by ids: a family's series
  // is then found by one integer hash instead of hashing its label texts (order changes are on
  // the ingest path). nullopt when a value has no id (LabelIds past its bound): found by text.
  static std::optional<uint64_t> PackLabelIds(std::initializer_list<uint32_t> ids);

  // Tallies one changed record into the group's figures below, one family at a time.
  void TallyOrderChange(const model::OrderRecord* before, const model::OrderRecord& after);
  // The statuses the change reached: status_transitions_total, and each stage whose two ends
  // it completed: stage_duration_seconds and partner_stage_sla_total.
  void TallyReachedStatuses(const model::OrderRecord* before, const model::OrderRecord& after);
  void TallyTransition(std::string_view status, uint32_t status_id);
  // The stage from `reached.prev_status` to `reached`; `partner_id` is looked up on first use.
  void TallyStage(const model::OrderRecord& after, const model::StatusReached& reached,
                  uint32_t prev_id, uint32_t status_id, uint32_t& partner_id);
  // publish_to_consume_latency_seconds: each message hop the change completed.
  void TallyMessageHops(const model::OrderRecord* before, const model::OrderRecord& after);
  // orders_in_status: the order leaves its old current status for its new one.
  void TallyCurrentStatus(const model::OrderRecord* before, const model::OrderRecord& after);

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
    // The group's series key, encoded for `key_service` (a span name mostly comes from one
    // service): kept, not encoded again per call.
    std::optional<SeriesKey> key;
    std::string key_service;
  };
  static constexpr size_t kKinds = 6;        // base::SpanKind's values
  static constexpr size_t kStatusCodes = 3;  // base::StatusCode's values
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

  // Used by the ingest writer thread only (OnOrdersChanged, CountStoredOrder before ingest).
  KeyCache transition_keys_{transitions_, 256};
  KeyCache status_keys_{orders_in_status_, 256};
  KeyCache stage_keys_{stage_duration_, 1024};
  KeyCache partner_sla_keys_{partner_sla_, 4096};
  KeyCache queue_keys_{publish_to_consume_, 256};
  // Ids below 2^kLabelIdBits, so that three fit in one packed number.
  LabelIds status_ids_{kMaxStatusIds};
  LabelIds partner_ids_{kMaxPartnerIds};
  DeltaTally transitions_tally_;
  DeltaTally in_status_tally_;
  DeltaTally partner_sla_tally_;
  std::vector<KeyedObservation> stage_observations_;
  std::vector<KeyedObservation> hop_observations_;
};

std::string_view SpanKindName(base::SpanKind kind);
std::string_view StatusCodeName(base::StatusCode code);

}  // namespace ordertrace::metrics
