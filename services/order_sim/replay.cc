#include "services/order_sim/replay.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <random>
#include <tuple>
#include <utility>

#include "base/attribute_names.h"
#include "services/common/fault_switch.h"
#include "services/common/order_transitions.h"
#include "services/order_sim/sim_faults.h"

namespace ordertrace::services::sim {
namespace {

constexpr uint64_t kMillisecond = 1'000'000;
constexpr uint64_t kSecond = 1000 * kMillisecond;
constexpr uint64_t kMinute = 60 * kSecond;
constexpr uint64_t kHour = 60 * kMinute;
constexpr uint64_t kDay = 24 * kHour;

// ordertrace.yaml's default lifecycle: the grace added to every deadline, and the message SLA.
constexpr uint64_t kGrace = 5 * kSecond;
constexpr uint64_t kMessageSla = 5 * kMinute;
// Every order is settled (last span, every deadline it must pass) this long before the day ends.
constexpr uint64_t kSettledBeforeEnd = 30 * kMinute;
// A status_backwards order goes back within this last part of the day (see replay.h).
constexpr uint64_t kBackwardsWithin = 3 * kHour;

// The stage SLA of `status` in the default lifecycle (base/default_lifecycle.h, the server's
// default), for the deadlines a stuck order passes; 0 for CLOSED and unknown statuses.
uint64_t StageSla(std::string_view status) {
  const std::optional<LifecycleStep> step = FindStep(status);
  return step ? static_cast<uint64_t>(std::chrono::nanoseconds(step->sla).count()) : 0;
}

// Draws from one seed the same way on every platform (the standard distributions may differ
// between standard libraries; the engine does not).
class Random {
 public:
  explicit Random(uint64_t seed) : engine_(seed) {}
  uint64_t Next() { return engine_(); }
  double Unit() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  // Uniform in [low, high].
  uint64_t Between(uint64_t low, uint64_t high) {
    return low + static_cast<uint64_t>(Unit() * static_cast<double>(high - low));
  }
  uint64_t Below(uint64_t n) { return static_cast<uint64_t>(Unit() * static_cast<double>(n)); }
  std::string Uuid() {
    uint64_t a = engine_(), b = engine_();
    char text[37];
    std::snprintf(text, sizeof text, "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                  static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xfff),
                  static_cast<unsigned>(0x8000 | ((b >> 48) & 0x3fff)),
                  static_cast<unsigned long long>(b & 0xffffffffffffULL));
    return text;
  }

 private:
  std::mt19937_64 engine_;
};

// SplitMix64's finaliser: span ids from an order's seed and the span's index.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

base::SpanId SpanIdOf(const ReplayOrder& order, int index) {
  uint64_t value = Mix(order.span_id_seed + static_cast<uint64_t>(index));
  if (value == 0) value = 1;
  base::SpanId id;
  for (int i = 0; i < 8; ++i) id.bytes[i] = static_cast<uint8_t>(value >> (56 - 8 * i));
  return id;
}

// Builds one order's spans in time relative to its start (0); ReplayDay::Generate moves them
// into the day.
class OrderBuilder {
 public:
  OrderBuilder(ReplayOrder& order, const SimFaultKind* fault, Random& random)
      : order_(order), fault_(fault), random_(random) {}

  // Plans every span; returns when the order is settled (relative): its last span, or the
  // latest deadline its truth expects to pass.
  uint64_t Build();

 private:
  bool Has(std::string_view kind) const { return fault_ != nullptr && fault_->name == kind; }
  uint64_t Minutes(double low, double high) {
    return random_.Between(static_cast<uint64_t>(low * kMinute),
                           static_cast<uint64_t>(high * kMinute));
  }
  uint64_t Millis(uint64_t low, uint64_t high) {
    return random_.Between(low * kMillisecond, high * kMillisecond);
  }
  int Add(ReplaySpanPlan plan) {
    order_.spans.push_back(plan);
    return static_cast<int>(order_.spans.size()) - 1;
  }
  // A status transition span ending at `at` (its event time), child of `parent` (the root
  // when -1): an HTTP operation (SERVER) unless `kind` says otherwise.
  int Transition(std::string_view new_status, ReplayService service, uint64_t at, int parent = 0,
                 base::SpanKind kind = base::SpanKind::kServer) {
    ReplaySpanPlan plan;
    plan.name = FindStep(new_status)->span_name;
    plan.service = service;
    plan.kind = kind;
    plan.end_unix_nano = at;
    plan.start_unix_nano = at - Millis(3, 60);
    plan.parent = parent;
    plan.new_status = new_status;
    plan.prev_status = status_;
    plan.event_version = ++version_;
    status_ = new_status;
    return Add(plan);
  }
  int Message(std::string_view exchange, std::string_view routing_key, std::string_view queue) {
    order_.messages.push_back({random_.Uuid(), exchange, routing_key, queue});
    return static_cast<int>(order_.messages.size()) - 1;
  }
  int Publish(std::string_view name, ReplayService service, int message, int parent, uint64_t at) {
    ReplaySpanPlan plan;
    plan.name = name;
    plan.service = service;
    plan.kind = base::SpanKind::kProducer;
    plan.start_unix_nano = at;
    plan.end_unix_nano = at + Millis(1, 6);  // the broker's confirm
    plan.parent = parent;
    plan.message = message;
    return Add(plan);
  }
  // A consume is a child of the order's root with a link to the publish (docs/services.md).
  int Consume(std::string_view name, ReplayService service, int message, int publish, uint64_t at,
              int64_t retry_count) {
    ReplaySpanPlan plan;
    plan.name = name;
    plan.service = service;
    plan.kind = base::SpanKind::kConsumer;
    plan.start_unix_nano = at;
    plan.end_unix_nano = at + Millis(2, 20);
    plan.parent = 0;
    plan.link = publish;
    plan.message = message;
    plan.retry_count = retry_count;
    return Add(plan);
  }
  // The order stops in the current status because of its fault; `deadline` is the latest
  // deadline the truth expects to pass.
  uint64_t Stop(uint64_t fault_at, uint64_t deadline, std::string note) {
    TruthRecord& truth = order_.truth;
    truth.outcome = "stopped";
    truth.last_status = std::string(status_);
    truth.note = std::move(note);
    truth.fault->at_unix_nano = static_cast<int64_t>(fault_at);
    return std::max(deadline, order_.spans.back().end_unix_nano);
  }
  uint64_t StageDeadline(uint64_t since) const { return since + StageSla(status_) + kGrace; }

  ReplayOrder& order_;
  const SimFaultKind* fault_;
  Random& random_;
  std::string_view status_;  // the status the order is in
  int64_t version_ = 0;
};

uint64_t OrderBuilder::Build() {
  // The shop's POST /api/orders: the trace root and shop.init under it.
  ReplaySpanPlan root;
  root.name = "order.root";
  root.service = ReplayService::kShop;
  root.kind = base::SpanKind::kServer;
  root.start_unix_nano = kSecond;  // room for the spans' own durations before their ends
  Add(root);
  const uint64_t initiated_at = root.start_unix_nano + Millis(5, 40);
  const int init = Transition(kInitiated, ReplayService::kShop, initiated_at);
  order_.spans[init].start_unix_nano = root.start_unix_nano + kMillisecond;
  order_.spans[0].end_unix_nano = initiated_at + Millis(1, 3);
  if (Has(kFaultPartnerOrderDropped)) {
    return Stop(initiated_at, StageDeadline(initiated_at),
                "the shop accepted the partner order, then dropped it");
  }

  uint64_t t = initiated_at + Minutes(1, 10);
  Transition(kFileUploaded, ReplayService::kShop, t);
  t += Minutes(1, 10);
  const uint64_t submitted_at = t;
  const int submit = Transition(kSubmitted, ReplayService::kShop, t);
  const int price_request = Message("alexandrite.price", "price.request", "mes.price.requests");
  const uint64_t requested_at = t + Millis(1, 4);
  const int price_publish =
      Publish("mq.publish.price", ReplayService::kShop, price_request, submit, requested_at);
  if (Has(kFaultLostPriceRequest)) {
    return Stop(submitted_at,
                std::max(requested_at + kMessageSla + kGrace, StageDeadline(submitted_at)),
                "the price request was published and never consumed");
  }

  // mes-api consumes the price request; a consumer that crashed on its first delivery leaves
  // no span for it, and its redelivery carries retry_count 1.
  const bool crash = Has(kFaultConsumerCrash);
  const uint64_t consumed_at =
      requested_at + (crash ? Minutes(0.5, 2) : random_.Between(2 * kSecond, 60 * kSecond));
  const int consume = Consume("mq.consume.price", ReplayService::kMes, price_request, price_publish,
                              consumed_at, crash ? 1 : 0);
  const uint64_t started_at = consumed_at + Millis(1, 15);
  Transition(kPriceCalculationStarted, ReplayService::kMes, started_at, consume,
             base::SpanKind::kInternal);
  if (Has(kFaultCalculatorHang)) {
    return Stop(started_at, StageDeadline(started_at), "the price calculator hung");
  }

  // The calculation and its four phases; a slow one runs well past its 30 min SLA.
  const uint64_t calculated_at =
      started_at + (Has(kFaultCalculatorSlow) ? Minutes(40, 90) : Minutes(2, 20));
  const uint64_t calc_start = started_at + Millis(1, 5);
  const int calc = Transition(kPriceCalculated, ReplayService::kMes, calculated_at, 0,
                              base::SpanKind::kInternal);
  order_.spans[calc].start_unix_nano = calc_start;
  static constexpr std::pair<std::string_view, double> kPhases[] = {
      {"mes.price.calc.mesh_analysis", 0.3},
      {"mes.price.calc.metal_estimate", 0.25},
      {"mes.price.calc.stone_setting", 0.3},
      {"mes.price.calc.quote", 0.15}};
  uint64_t phase_start = calc_start;
  const double calc_length = static_cast<double>(calculated_at - kMillisecond - calc_start);
  for (const auto& [name, share] : kPhases) {
    ReplaySpanPlan phase;
    phase.name = name;
    phase.service = ReplayService::kMes;
    phase.start_unix_nano = phase_start;
    phase.end_unix_nano = phase_start + static_cast<uint64_t>(share * calc_length);
    phase.parent = calc;
    phase_start = phase.end_unix_nano;
    Add(phase);
  }
  const int status_event = Message("alexandrite.status", "status.price_calculated", "crm.status");
  const uint64_t announced_at = calculated_at + Millis(1, 5);
  const int status_publish =
      Publish("mq.publish.status", ReplayService::kMes, status_event, calc, announced_at);
  if (Has(kFaultLostStatusEvent)) {
    return Stop(calculated_at, StageDeadline(calculated_at),
                "the PRICE_CALCULATED status event was published and never consumed");
  }
  Consume("mq.consume.status", ReplayService::kCrm, status_event, status_publish,
          announced_at + random_.Between(kSecond, 30 * kSecond), 0);

  const uint64_t approved_at = calculated_at + Minutes(5, 45);
  if (Has(kFaultMissedStatusWrite)) {
    // CRM consumed the event but missed the write: it still holds PRICE_CALCULATION_STARTED
    // and refuses the approval.
    ReplaySpanPlan refused;
    refused.name = FindStep(kManufacturingApproved)->span_name;
    refused.service = ReplayService::kCrm;
    refused.kind = base::SpanKind::kServer;
    refused.end_unix_nano = approved_at;
    refused.start_unix_nano = approved_at - Millis(3, 30);
    refused.parent = 0;
    refused.error = true;
    refused.current_status = kPriceCalculationStarted;
    Add(refused);
    return Stop(calculated_at, StageDeadline(calculated_at),
                "CRM missed the PRICE_CALCULATED write and refused the approval");
  }
  Transition(kManufacturingApproved, ReplayService::kCrm, approved_at);
  if (Has("operator_no_show")) {
    return Stop(approved_at, StageDeadline(approved_at), "no operator took the approved order");
  }

  t = approved_at + Minutes(10, 60);
  Transition(kManufacturingStarted, ReplayService::kMes, t);
  t += Minutes(60, 240);
  Transition(kManufacturingCompleted, ReplayService::kMes, t);
  if (Has(kFaultSkippedStatus)) {
    // Shipped within the completed stage's 1 h SLA, without PACKAGING.
    t += Minutes(15, 50);
    order_.truth.fault->at_unix_nano = static_cast<int64_t>(t);
  } else {
    t += Minutes(5, 30);
    Transition(kPackaging, ReplayService::kMes, t);
    t += Minutes(15, 120);
  }
  Transition(kShipped, ReplayService::kMes, t);
  t += Minutes(30, 240);
  Transition(kClosed, ReplayService::kCrm, t);
  order_.truth.outcome = "closed";
  order_.truth.last_status = std::string(kClosed);
  if (Has(kFaultStatusBackwards)) {
    t += Minutes(5, 30);
    Transition(kShipped, ReplayService::kMes, t);
    order_.truth.fault->at_unix_nano = static_cast<int64_t>(t);
    order_.truth.last_status = std::string(kShipped);
    order_.truth.note = "MES reported SHIPPED again after CLOSED";
  }
  if (fault_ != nullptr && order_.truth.fault->at_unix_nano == 0) {
    order_.truth.fault->at_unix_nano = static_cast<int64_t>(started_at);  // slow, crash
  }
  return t;
}

base::KeyValue Str(std::string_view key, std::string_view value) {
  return base::KeyValue{std::string(key), base::AnyValue::String(std::string(value))};
}
base::KeyValue Int(std::string_view key, int64_t value) {
  return base::KeyValue{std::string(key), base::AnyValue::Int(value)};
}

}  // namespace

std::string_view ReplayServiceName(ReplayService service) {
  switch (service) {
    case ReplayService::kShop:
      return "shop-api";
    case ReplayService::kCrm:
      return "crm-api";
    case ReplayService::kMes:
      return "mes-api";
  }
  return "";
}

std::vector<TruthGap> ExpectedGaps(std::string_view kind) {
  auto gap = [](std::string_view gap_kind, std::string_view stage, const char* state) {
    return TruthGap{std::string(gap_kind), std::string(stage), state};
  };
  if (kind == kFaultLostStatusEvent) {
    return {gap("message_not_consumed", kPriceCalculated, "open"),
            gap("missing_transition", kPriceCalculated, "open")};
  }
  if (kind == kFaultLostPriceRequest) {
    return {gap("message_not_consumed", kSubmitted, "open"),
            gap("missing_transition", kSubmitted, "open")};
  }
  if (kind == kFaultCalculatorHang) {
    return {gap("calculation_overdue", kPriceCalculationStarted, "open")};
  }
  if (kind == kFaultCalculatorSlow) {
    return {gap("calculation_overdue", kPriceCalculationStarted, "resolved")};
  }
  if (kind == "operator_no_show")
    return {gap("missing_transition", kManufacturingApproved, "open")};
  if (kind == kFaultMissedStatusWrite) {
    return {gap("status_disagreement", kPriceCalculated, "open"),
            gap("missing_transition", kPriceCalculated, "open")};
  }
  if (kind == kFaultSkippedStatus) return {gap("skipped_status", kPackaging, "resolved")};
  if (kind == kFaultPartnerOrderDropped) return {gap("missing_transition", kInitiated, "open")};
  if (kind == kFaultStatusBackwards) return {gap("status_backwards", kShipped, "open")};
  return {};  // no fault, or a consumer crash (no gap kind covers a redelivery)
}

absl::StatusOr<ReplayDay> ReplayDay::Generate(const ReplayDayOptions& options) {
  if (options.orders < 1) return absl::InvalidArgumentError("--orders must be at least 1");
  if (!(options.fault_share >= 0 && options.fault_share <= 1)) {
    return absl::InvalidArgumentError("--fault-share must be in [0, 1]");
  }
  if (!(options.partner_share >= 0 && options.partner_share <= 1)) {
    return absl::InvalidArgumentError("--partner-share must be in [0, 1]");
  }
  if (options.day_end_unix_nano <= static_cast<int64_t>(kDay)) {
    return absl::InvalidArgumentError("the day's end must be set");
  }
  std::vector<const SimFaultKind*> kinds;
  for (const std::string& name : options.fault_kinds) {
    const SimFaultKind* kind = FindAnyFault(name);
    if (kind == nullptr) return absl::InvalidArgumentError("unknown fault kind '" + name + "'");
    kinds.push_back(kind);
  }

  ReplayDay day;
  day.day_end_ = options.day_end_unix_nano;
  day.day_start_ = options.day_end_unix_nano - static_cast<int64_t>(kDay);
  Random random(options.seed);
  const int n = options.orders;

  // Which orders get which fault: the share split evenly over the kinds, each at least once.
  std::vector<const SimFaultKind*> fault_of(n, nullptr);
  if (!kinds.empty() && options.fault_share > 0) {
    int total = static_cast<int>(std::lround(n * options.fault_share));
    total = std::min(n, std::max<int>(total, static_cast<int>(kinds.size())));
    std::vector<int> indices(n);
    for (int i = 0; i < n; ++i) indices[i] = i;
    for (int i = n - 1; i > 0; --i) {
      std::swap(indices[i], indices[random.Below(static_cast<uint64_t>(i) + 1)]);
    }
    for (int k = 0; k < total; ++k) fault_of[indices[k]] = kinds[k % kinds.size()];
  }

  day.orders_.resize(n);
  for (int i = 0; i < n; ++i) {
    ReplayOrder& order = day.orders_[i];
    Random order_random(random.Next());
    const SimFaultKind* fault = fault_of[i];
    TruthRecord& truth = order.truth;
    truth.order_id = order_random.Uuid();
    truth.customer_id = "cust-" + std::to_string(options.seed) + "-" + std::to_string(i);
    const bool partner = order_random.Unit() < options.partner_share ||
                         (fault != nullptr && fault->name == kFaultPartnerOrderDropped);
    if (partner) truth.partner_id = "partner-" + std::to_string(1 + order_random.Below(50));
    truth.polygon_count = static_cast<int64_t>(2000 * std::exp(order_random.Unit() * 6.4));
    truth.time_scale = 1;
    if (fault != nullptr) {
      truth.fault = TruthFault{std::string(fault->name), std::string(fault->stage),
                               std::string(fault->service), "", 0};
    }
    for (auto& b : order.trace_id.bytes) b = static_cast<uint8_t>(order_random.Next());
    order.trace_id.bytes[0] |= 1;
    order.span_id_seed = order_random.Next();
    truth.trace_id = order.trace_id.ToHex();
    truth.expected_gaps = ExpectedGaps(fault != nullptr ? fault->name : "");

    const uint64_t settled = OrderBuilder(order, fault, order_random).Build();
    // Where the order starts: settled before the day's end; a backwards one goes back within
    // the day's last hours.
    const uint64_t day_start = static_cast<uint64_t>(day.day_start_);
    const uint64_t day_end = static_cast<uint64_t>(day.day_end_);
    const uint64_t latest = day_end - kSettledBeforeEnd - settled;
    uint64_t earliest = day_start;
    if (fault != nullptr && fault->name == kFaultStatusBackwards) {
      earliest = day_end - kBackwardsWithin - order.spans.back().end_unix_nano;
    }
    const uint64_t start = order_random.Between(earliest, latest);
    for (ReplaySpanPlan& span : order.spans) {
      span.start_unix_nano += start;
      span.end_unix_nano += start;
    }
    truth.started_at_unix_nano = static_cast<int64_t>(start);
    truth.finished_at_unix_nano = static_cast<int64_t>(order.spans.back().end_unix_nano);
    if (truth.fault.has_value()) truth.fault->at_unix_nano += static_cast<int64_t>(start);
    if (truth.outcome.empty()) truth.outcome = "closed";
  }

  for (uint32_t o = 0; o < day.orders_.size(); ++o) {
    for (uint32_t s = 0; s < day.orders_[o].spans.size(); ++s) day.timeline_.push_back({o, s});
  }
  std::sort(day.timeline_.begin(), day.timeline_.end(),
            [&day](const ReplaySpanRef& a, const ReplaySpanRef& b) {
              return std::tie(day.orders_[a.order].spans[a.span].end_unix_nano, a.order, a.span) <
                     std::tie(day.orders_[b.order].spans[b.span].end_unix_nano, b.order, b.span);
            });
  return day;
}

base::Span ReplayDay::MakeSpan(ReplaySpanRef ref) const {
  const ReplayOrder& order = orders_[ref.order];
  const ReplaySpanPlan& plan = order.spans[ref.span];
  base::Span span;
  span.trace_id = order.trace_id;
  span.span_id = SpanIdOf(order, static_cast<int>(ref.span));
  if (plan.parent >= 0) span.parent_span_id = SpanIdOf(order, plan.parent);
  span.flags = 1;  // sampled
  span.name = std::string(plan.name);
  span.kind = plan.kind;
  span.start_time_unix_nano = plan.start_unix_nano;
  span.end_time_unix_nano = plan.end_unix_nano;
  base::Attributes& attributes = span.attributes;
  attributes.reserve(12);
  attributes.push_back(Str(base::kOrderIdKey, order.truth.order_id));
  if (!order.truth.partner_id.empty()) {
    attributes.push_back(Str(base::kPartnerIdKey, order.truth.partner_id));
  }
  if (!plan.new_status.empty()) {
    if (!plan.prev_status.empty())
      attributes.push_back(Str(base::kPrevStatusKey, plan.prev_status));
    attributes.push_back(Str(base::kNewStatusKey, plan.new_status));
    attributes.push_back(Int(base::kEventVersionKey, plan.event_version));
  }
  if (plan.kind == base::SpanKind::kServer) {
    attributes.push_back(Str("http.request.method", "POST"));
    attributes.push_back(Int("http.response.status_code", plan.error ? 409 : 200));
  }
  if (plan.new_status == kPriceCalculationStarted || plan.new_status == kPriceCalculated) {
    attributes.push_back(Int("polygon_count", order.truth.polygon_count));
  }
  if (plan.message >= 0) {
    const ReplayMessage& message = order.messages[plan.message];
    const bool consumer = plan.kind == base::SpanKind::kConsumer;
    attributes.push_back(Str(base::kMessagingSystemKey, "rabbitmq"));
    attributes.push_back(Str(base::kMessagingOperationKey, consumer ? "process" : "publish"));
    attributes.push_back(Str(base::kMessagingDestinationNameKey, message.exchange));
    attributes.push_back(Str(base::kMessagingRoutingKeyKey, message.routing_key));
    attributes.push_back(Str(base::kMessagingMessageIdKey, message.message_id));
    attributes.push_back(Str(base::kMessageIdKey, message.message_id));
    attributes.push_back(Str(base::kQueueKey, message.queue));
    if (consumer) attributes.push_back(Int(base::kRetryCountKey, plan.retry_count));
  }
  if (plan.link >= 0) {
    base::SpanLink link;
    link.trace_id = order.trace_id;
    link.span_id = SpanIdOf(order, plan.link);
    link.flags = 1;
    span.links.push_back(std::move(link));
  }
  if (plan.error) {
    const std::string message = "order " + order.truth.order_id + " is " +
                                std::string(plan.current_status) + ", not " +
                                std::string(PreviousStatus(kManufacturingApproved));
    attributes.push_back(Str(base::kErrorCodeKey, "ILLEGAL_TRANSITION"));
    attributes.push_back(Str(base::kErrorMessageKey, message));
    attributes.push_back(Str(base::kCurrentStatusKey, plan.current_status));
    base::SpanEvent exception;
    exception.time_unix_nano = plan.end_unix_nano;
    exception.name = "exception";
    exception.attributes = {Str("exception.type", "ILLEGAL_TRANSITION"),
                            Str("exception.message", message)};
    span.events.push_back(std::move(exception));
    span.status.code = base::StatusCode::kError;
    span.status.message = message;
  }
  return span;
}

}  // namespace ordertrace::services::sim
