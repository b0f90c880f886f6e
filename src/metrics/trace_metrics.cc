#include "metrics/trace_metrics.h"

#include <algorithm>
#include <limits>

#include "absl/container/flat_hash_map.h"
#include "base/attribute_names.h"
#include "lifecycle/derived_attributes.h"
#include "lifecycle/order_record_builder.h"

namespace ordertrace::metrics {
namespace {

constexpr char kComplexityClassKey[] = "complexity_class";
// Partner label of orders placed directly, without a partner.
constexpr std::string_view kDirect = "direct";

std::string_view StringAttr(const base::Attributes& attributes, std::string_view key) {
  const base::AnyValue* value = base::FindAttribute(attributes, key);
  return value != nullptr && value->type == base::AnyValue::Type::kString
             ? std::string_view(value->string_value)
             : std::string_view();
}

const model::StatusReached* Reached(const model::OrderRecord& record, std::string_view status) {
  for (const model::StatusReached& s : record.statuses) {
    if (s.status == status) return &s;
  }
  return nullptr;
}

const model::MessageHop* Hop(const model::OrderRecord& record, std::string_view message_id) {
  for (const model::MessageHop& m : record.messages) {
    if (m.message_id == message_id) return &m;
  }
  return nullptr;
}

// Whether the change reached `status` (a new order reached every status it has).
bool IsNewStatus(const model::OrderRecord* before, std::string_view status) {
  return before == nullptr || Reached(*before, status) == nullptr;
}

double Seconds(uint64_t nanos) { return static_cast<double>(nanos) / 1e9; }

}  // namespace

const SeriesKey& TraceMetrics::KeyCache::Get(std::initializer_list<std::string_view> values) {
  // A family's keys all have as many values as it has labels: one value is its own lookup
  // text; several are length-prefixed, so that no two lists of values read the same.
  absl::string_view lookup;
  if (values.size() == 1) {
    lookup = absl::string_view(values.begin()->data(), values.begin()->size());
  } else {
    lookup_.clear();
    for (std::string_view v : values) {
      const uint32_t size = static_cast<uint32_t>(v.size());
      lookup_.append(reinterpret_cast<const char*>(&size), sizeof(size));
      lookup_.append(v);
    }
    lookup = absl::string_view(lookup_.data(), lookup_.size());
  }
  auto it = keys_.find(lookup);
  if (it != keys_.end()) return it->second;
  SeriesKey key(names_, std::span<const std::string_view>(values.begin(), values.size()));
  if (keys_.size() >= bound_) return uncached_.emplace_back(std::move(key));
  return keys_.emplace(std::string(lookup), std::move(key)).first->second;
}

const SeriesKey& TraceMetrics::KeyCache::Get(uint64_t ids,
                                             std::initializer_list<std::string_view> values) {
  if (auto it = by_ids_.find(ids); it != by_ids_.end()) return *it->second;
  const size_t cached_before = keys_.size();
  const SeriesKey& key = Get(values);
  // Only keys the cache keeps: one built past its bound lives until EndBatch.
  if (keys_.size() > cached_before || &key != (uncached_.empty() ? nullptr : &uncached_.back())) {
    by_ids_.emplace(ids, &key);
  }
  return key;
}

const SeriesKey& TraceMetrics::KeyCache::GetPacked(std::optional<uint64_t> ids,
                                                   std::initializer_list<std::string_view> values) {
  return ids ? Get(*ids, values) : Get(values);
}

std::optional<uint64_t> TraceMetrics::PackLabelIds(std::initializer_list<uint32_t> ids) {
  static_assert(kMaxStatusIds < (uint64_t{1} << kLabelIdBits) &&
                    kMaxPartnerIds < (uint64_t{1} << kLabelIdBits) && 3 * kLabelIdBits <= 64,
                "three label ids must fit in one packed number, each in its own bits");
  uint64_t packed = 0;
  for (uint32_t id : ids) {
    if (id == LabelIds::kNone) return std::nullopt;
    packed = packed << kLabelIdBits | id;
  }
  return packed;
}

uint32_t TraceMetrics::LabelIds::Of(std::string_view value) {
  auto it = ids_.find(absl::string_view(value.data(), value.size()));
  if (it != ids_.end()) return it->second;
  if (ids_.size() >= bound_) return kNone;
  const uint32_t id = static_cast<uint32_t>(ids_.size()) + 1;
  ids_.emplace(std::string(value), id);
  return id;
}

void TraceMetrics::DeltaTally::Add(const SeriesKey& key, double delta) {
  auto [it, inserted] = index_.try_emplace(&key, deltas_.size());
  if (inserted) {
    deltas_.push_back(KeyedDelta{&key, delta, 1});
  } else {
    deltas_[it->second].delta += delta;
    ++deltas_[it->second].observations;
  }
}

std::string_view SpanKindName(base::SpanKind kind) {
  switch (kind) {
    case base::SpanKind::kInternal:
      return "SPAN_KIND_INTERNAL";
    case base::SpanKind::kServer:
      return "SPAN_KIND_SERVER";
    case base::SpanKind::kClient:
      return "SPAN_KIND_CLIENT";
    case base::SpanKind::kProducer:
      return "SPAN_KIND_PRODUCER";
    case base::SpanKind::kConsumer:
      return "SPAN_KIND_CONSUMER";
    default:
      return "SPAN_KIND_UNSPECIFIED";
  }
}

std::string_view StatusCodeName(base::StatusCode code) {
  switch (code) {
    case base::StatusCode::kOk:
      return "STATUS_CODE_OK";
    case base::StatusCode::kError:
      return "STATUS_CODE_ERROR";
    default:
      return "STATUS_CODE_UNSET";
  }
}

TraceMetrics::TraceMetrics(Registry& registry, TraceMetricsOptions options, SlaLookup sla)
    : options_(std::move(options)),
      sla_(std::move(sla)),
      calls_(registry.AddCounter({"traces_span_metrics_calls_total",
                                  "Spans received, as the OpenTelemetry spanmetrics connector "
                                  "counts them.",
                                  {"service_name", "span_name", "span_kind", "status_code"},
                                  options_.max_series})),
      span_duration_(registry.AddHistogram(
          {"traces_span_metrics_duration_seconds",
           "Span durations, as the OpenTelemetry spanmetrics connector measures them.",
           {"service_name", "span_name", "span_kind", "status_code"},
           options_.max_series},
          options_.span_duration_buckets)),
      price_calc_(registry.AddHistogram(
          {"price_calc_duration_seconds",
           "Duration of the MES price calculation, by the model's complexity class.",
           {"complexity_class"},
           options_.max_series},
          options_.price_calc_buckets)),
      stage_duration_(registry.AddHistogram(
          {"stage_duration_seconds",
           "Time an order spent in from_status before reaching to_status (span timestamps).",
           {"from_status", "to_status"},
           options_.max_series},
          options_.stage_buckets)),
      publish_to_consume_(registry.AddHistogram(
          {"publish_to_consume_latency_seconds",
           "From a RabbitMQ message's publish span to its consume span, by queue.",
           {"queue"},
           options_.max_series},
          options_.publish_to_consume_buckets)),
      transitions_(registry.AddCounter({"status_transitions_total",
                                        "Orders that reached a status (each order once).",
                                        {"new_status"},
                                        options_.max_series})),
      order_errors_(
          registry.AddCounter({"order_errors_total",
                               "Failed spans of orders, by service and the span's error_code.",
                               {"service", "error_code"},
                               options_.max_series})),
      orders_in_status_(registry.AddGauge({"orders_in_status",
                                           "Stored orders by their current status.",
                                           {"status"},
                                           options_.max_series})),
      partner_sla_(registry.AddCounter(
          {"partner_stage_sla_total",
           "Finished stages by partner (\"direct\": no partner) and whether they met the "
           "stage's SLA for that partner.",
           {"partner_id", "stage", "result"},
           options_.max_series})),
      // Not bounded by max_series: its stages come from the validated config, never from
      // spans, and folding some into an overflow series would sum SLAs and leave the alert
      // rules without the SLA of those stages.
      stage_sla_(registry.AddGauge({"stage_sla_seconds",
                                    "The lifecycle's SLA for leaving each stage (time-scaled), "
                                    "for alert rules.",
                                    {"stage"},
                                    std::numeric_limits<size_t>::max()})),
      price_calc_sla_(registry.AddGauge({"price_calc_sla_seconds",
                                         "The price calculation's SLA (time-scaled), for alert "
                                         "rules.",
                                         {},
                                         1})) {}

void TraceMetrics::OnSpans(const base::Resource& resource, const base::ScopeSpans& scope_spans) {
  std::string_view service = base::ServiceNameView(resource);
  // Spans of one scope mostly repeat a few (name, kind, status) triples: count them here and
  // touch each series once, instead of encoding labels and locking per span. The scratch map
  // and its vectors keep their memory from call to call.
  for (const Touched& touched : touched_) {
    touched.group->calls = 0;
    touched.group->durations.clear();
  }
  touched_.clear();
  if (groups_.size() > 256) groups_.clear();  // a burst of names must not stay resident
  for (const base::Span& span : scope_spans.spans) {
    auto named = groups_.find(absl::string_view(span.name.data(), span.name.size()));
    if (named == groups_.end()) named = groups_.try_emplace(span.name).first;
    // OTLP enums are open: a value past the known ones counts as UNSPECIFIED / UNSET, as
    // SpanKindName and StatusCodeName name it.
    size_t kind = static_cast<size_t>(span.kind);
    size_t code = static_cast<size_t>(span.status.code);
    if (kind >= kKinds) kind = 0;
    if (code >= kStatusCodes) code = 0;
    const size_t slot = kind * kStatusCodes + code;
    SpanGroup& group = named->second[slot];
    if (group.calls == 0) touched_.push_back(Touched{&named->first, slot, &group});
    ++group.calls;
    if (span.end_time_unix_nano < span.start_time_unix_nano) continue;
    double seconds = Seconds(span.end_time_unix_nano - span.start_time_unix_nano);
    Exemplar exemplar{span.trace_id, span.span_id, seconds, 0};
    group.durations.push_back(exemplar);

    if (span.name == options_.price_calc_span && span.status.code != base::StatusCode::kError) {
      std::string_view complexity = StringAttr(span.attributes, kComplexityClassKey);
      const std::string_view calc_labels[] = {complexity.empty() ? "unknown" : complexity};
      price_calc_.Observe(calc_labels, seconds, &exemplar);
    }
    std::string_view error_code = StringAttr(span.attributes, base::kErrorCodeKey);
    if ((span.status.code == base::StatusCode::kError || !error_code.empty()) &&
        lifecycle::OrderIdOf(span, resource).has_value()) {
      const std::string_view error_labels[] = {service,
                                               error_code.empty() ? "unspecified" : error_code};
      order_errors_.Add(error_labels);
    }
  }
  for (const Touched& touched : touched_) {
    SpanGroup& group = *touched.group;
    if (!group.key || group.key_service != service) {
      const std::string_view labels[] = {
          service, *touched.name,
          SpanKindName(static_cast<base::SpanKind>(touched.slot / kStatusCodes)),
          StatusCodeName(static_cast<base::StatusCode>(touched.slot % kStatusCodes))};
      // One encoding of the labels for both families (they have the same label names).
      group.key.emplace(calls_.label_names(), labels);
      group.key_service.assign(service);
    }
    // As one delta of group.calls observations, so that the overflow counter counts each span.
    const KeyedDelta calls[] = {{&*group.key, static_cast<double>(group.calls), group.calls}};
    calls_.AddEach(calls);
    span_duration_.ObserveMany(*group.key, group.durations);
  }
}

void TraceMetrics::OnOrderChanged(const model::OrderRecord* before,
                                  const model::OrderRecord& after) {
  const OrderChange change{before, &after};
  OnOrdersChanged(std::span<const OrderChange>(&change, 1));
}

void TraceMetrics::OnOrdersChanged(std::span<const OrderChange> changes) {
  for (const OrderChange& change : changes) TallyOrderChange(change.before, *change.after);
  transitions_.AddEach(transitions_tally_.deltas());
  stage_duration_.ObserveEach(stage_observations_);
  partner_sla_.AddEach(partner_sla_tally_.deltas());
  publish_to_consume_.ObserveEach(hop_observations_);
  orders_in_status_.AddEach(in_status_tally_.deltas());
  transitions_tally_.Clear();
  partner_sla_tally_.Clear();
  in_status_tally_.Clear();
  stage_observations_.clear();
  hop_observations_.clear();
  for (KeyCache* keys :
       {&transition_keys_, &status_keys_, &stage_keys_, &partner_sla_keys_, &queue_keys_}) {
    keys->EndBatch();
  }
}

void TraceMetrics::TallyOrderChange(const model::OrderRecord* before,
                                    const model::OrderRecord& after) {
  // A record's statuses are only ever added (or replaced by an earlier report of the same
  // status), so as many statuses as before means no new one: no transition or stage to count.
  if (before == nullptr || before->statuses.size() != after.statuses.size()) {
    TallyReachedStatuses(before, after);
  }
  TallyMessageHops(before, after);
  TallyCurrentStatus(before, after);
}

void TraceMetrics::TallyReachedStatuses(const model::OrderRecord* before,
                                        const model::OrderRecord& after) {
  uint32_t partner_id = LabelIds::kNone;  // looked up once, for the first stage with an SLA
  // Consecutive statuses usually chain (one's prev_status is the status before it): the
  // previous status's id is then known without a lookup.
  std::string_view last_status;
  uint32_t last_status_id = LabelIds::kNone;
  for (const model::StatusReached& reached : after.statuses) {
    const uint32_t status_id = status_ids_.Of(reached.status);
    const bool new_status = IsNewStatus(before, reached.status);
    if (new_status) TallyTransition(reached.status, status_id);
    const std::string_view prev = reached.prev_status;
    const bool chained = !last_status.empty() && prev == last_status;
    const uint32_t prev_id = prev.empty() || chained ? last_status_id : status_ids_.Of(prev);
    last_status = reached.status;
    last_status_id = status_id;
    if (prev.empty()) continue;
    // A stage counts once: when both of its ends are first known, in whichever order the
    // spans arrived. Both known before: counted then (or never, if out of order).
    if (!new_status && !IsNewStatus(before, prev)) continue;
    TallyStage(after, reached, prev_id, status_id, partner_id);
  }
}

void TraceMetrics::TallyTransition(std::string_view status, uint32_t status_id) {
  transitions_tally_.Add(transition_keys_.GetPacked(PackLabelIds({status_id}), {status}), 1);
}

void TraceMetrics::TallyStage(const model::OrderRecord& after, const model::StatusReached& reached,
                              uint32_t prev_id, uint32_t status_id, uint32_t& partner_id) {
  const std::string_view prev = reached.prev_status;
  const std::optional<double> seconds = lifecycle::StageSeconds(after, prev, reached);
  if (!seconds) return;
  stage_observations_.push_back(KeyedObservation{
      &stage_keys_.GetPacked(PackLabelIds({prev_id, status_id}), {prev, reached.status}),
      Exemplar{after.trace_id, reached.span_id, *seconds, 0}});
  if (!sla_) return;
  const std::optional<uint64_t> sla = sla_(prev, after.partner_id);
  if (!sla) return;
  const bool met = *seconds <= Seconds(*sla);
  const std::string_view partner = after.partner_id.empty() ? kDirect : after.partner_id;
  if (partner_id == LabelIds::kNone) partner_id = partner_ids_.Of(partner);
  partner_sla_tally_.Add(
      partner_sla_keys_.GetPacked(PackLabelIds({partner_id, prev_id, met ? 1u : 2u}),
                                  {partner, prev, met ? "met" : "breached"}),
      1);
}

void TraceMetrics::TallyMessageHops(const model::OrderRecord* before,
                                    const model::OrderRecord& after) {
  for (const model::MessageHop& hop : after.messages) {
    if (hop.published_at_unix_nano == 0 || hop.consumed_at_unix_nano == 0 ||
        hop.consumed_at_unix_nano < hop.published_at_unix_nano) {
      continue;
    }
    // Counted once: when the change completes the hop.
    const model::MessageHop* was = before == nullptr ? nullptr : Hop(*before, hop.message_id);
    if (was != nullptr && was->published_at_unix_nano != 0 && was->consumed_at_unix_nano != 0) {
      continue;
    }
    double seconds = Seconds(hop.consumed_at_unix_nano - hop.published_at_unix_nano);
    hop_observations_.push_back(KeyedObservation{
        &queue_keys_.Get({hop.queue.empty() ? std::string_view("unknown") : hop.queue}),
        Exemplar{after.trace_id, base::SpanId{}, seconds, 0}});
  }
}

void TraceMetrics::TallyCurrentStatus(const model::OrderRecord* before,
                                      const model::OrderRecord& after) {
  const model::StatusReached* old_status = before == nullptr ? nullptr : before->CurrentStatus();
  const model::StatusReached* new_status = after.CurrentStatus();
  std::string_view old_name = old_status == nullptr ? "" : std::string_view(old_status->status);
  std::string_view new_name = new_status == nullptr ? "" : std::string_view(new_status->status);
  if (old_name == new_name) return;
  if (!old_name.empty()) {
    in_status_tally_.Add(
        status_keys_.GetPacked(PackLabelIds({status_ids_.Of(old_name)}), {old_name}), -1);
  }
  if (!new_name.empty()) {
    in_status_tally_.Add(
        status_keys_.GetPacked(PackLabelIds({status_ids_.Of(new_name)}), {new_name}), 1);
  }
}

void TraceMetrics::CountStoredOrder(const model::OrderRecord& record) {
  if (const model::StatusReached* current = record.CurrentStatus()) {
    orders_in_status_.Add(status_keys_.Get({current->status}), 1);
    status_keys_.EndBatch();
  }
}

void TraceMetrics::SetSlas(const std::vector<std::pair<std::string, double>>& stage_sla_seconds,
                           std::optional<double> price_calc_sla_seconds) {
  std::vector<std::pair<std::vector<std::string>, double>> stages;
  for (const auto& [stage, seconds] : stage_sla_seconds) stages.push_back({{stage}, seconds});
  stage_sla_.ReplaceAll(stages);
  if (price_calc_sla_seconds) {
    price_calc_sla_.ReplaceAll({{{}, *price_calc_sla_seconds}});
  } else {
    price_calc_sla_.ReplaceAll({});
  }
}

}  // namespace ordertrace::metrics
