#include "bench/order_span_generator.h"

#include <algorithm>
#include <array>
#include <map>
#include <string_view>

#include "base/default_lifecycle.h"

namespace ordertrace::bench {
namespace {

struct Step {
  std::string_view service;
  std::string_view name;
  base::SpanKind kind = base::SpanKind::kInternal;
  std::string_view prev_status;  // transitions only; empty for the first status
  std::string_view new_status;   // transitions only
  int event_version = 0;         // transitions only
  std::string_view queue;        // messaging spans only
  int message = 0;  // messaging spans: which of the order's messages (publish and consume share it)
};

// The span that carries the transition to the default lifecycle's `index`th status. The price
// calculation's two run in mes-api's consumer of the price request, the others in HTTP handlers.
constexpr Step TransitionSpan(size_t index) {
  const base::LifecycleStep& step = base::kDefaultLifecycle[index];
  const bool on_message =
      step.status == base::kPriceCalculationStarted || step.status == base::kPriceCalculated;
  return Step{step.service,
              step.span_name,
              on_message ? base::SpanKind::kInternal : base::SpanKind::kServer,
              index == 0 ? std::string_view() : base::kDefaultLifecycle[index - 1].status,
              step.status,
              static_cast<int>(index) + 1};
}

// One order's spans as the services emit them: every status of the default lifecycle in order
// (so the gap detector sees a conforming order, as it would in production); after SUBMITTED the
// price request's RabbitMQ hop (publish and consume); after PRICE_CALCULATED the calculation's
// four phases (detail spans, which the tail sampler keeps for a share of traces) and the status
// message's hop to crm-api.
constexpr std::array<Step, OrderSpanGenerator::kSpansPerOrder> OrderSpans() {
  std::array<Step, OrderSpanGenerator::kSpansPerOrder> spans{};
  size_t n = 0;
  for (size_t i = 0; i < std::size(base::kDefaultLifecycle); ++i) {
    spans[n++] = TransitionSpan(i);
    const std::string_view status = base::kDefaultLifecycle[i].status;
    if (status == base::kSubmitted) {
      spans[n++] = {"shop-api",
                    "mq.publish.price",
                    base::SpanKind::kProducer,
                    {},
                    {},
                    0,
                    "mes.price.requests",
                    0};
      spans[n++] = {
          "mes-api", "mq.consume.price", base::SpanKind::kConsumer, {}, {}, 0, "mes.price.requests",
          0};
    }
    if (status == base::kPriceCalculated) {
      for (std::string_view phase : {"mes.price.phase.load_model", "mes.price.phase.analyze",
                                     "mes.price.phase.estimate", "mes.price.phase.quote"}) {
        spans[n++] = {"mes-api", phase, base::SpanKind::kInternal};
      }
      spans[n++] = {
          "mes-api", "mq.publish.status", base::SpanKind::kProducer, {}, {}, 0, "crm.status", 1};
      spans[n++] = {
          "crm-api", "mq.consume.status", base::SpanKind::kConsumer, {}, {}, 0, "crm.status", 1};
    }
  }
  return spans;
}

constexpr std::array<Step, OrderSpanGenerator::kSpansPerOrder> kOrderSpans = OrderSpans();
// kSpansPerOrder counts every span above: none is left unnamed.
static_assert(std::ranges::none_of(kOrderSpans,
                                   [](const Step& step) { return step.name.empty(); }));

base::KeyValue Str(const char* key, std::string value) {
  return base::KeyValue{key, base::AnyValue::String(std::move(value))};
}
base::KeyValue Int(const char* key, int64_t value) {
  return base::KeyValue{key, base::AnyValue::Int(value)};
}

}  // namespace

OrderSpanGenerator::OrderSpanGenerator(uint64_t seed, uint64_t base_time_unix_nano,
                                       OrderTiming timing)
    : rng_(seed), base_time_(base_time_unix_nano), timing_(timing) {}

uint64_t OrderSpanGenerator::NextOrderStart() const {
  // next_order_ counts the orders started, and order n starts at base + n * order_interval.
  return base_time_ + (next_order_ + 1) * timing_.order_interval_nanos;
}

base::Span OrderSpanGenerator::NextSpan(std::string& service) {
  if (step_ == 0) {
    for (auto& b : trace_.bytes) b = static_cast<uint8_t>(rng_());
    trace_.bytes[0] |= 1;
    order_id_ = "ord-" + std::to_string(next_order_);
    partner_id_ = rng_() % 4 == 0 ? "partner-" + std::to_string(rng_() % 50) : "";
    ++next_order_;
  }
  const Step& step = kOrderSpans[step_];
  base::Span span;
  span.trace_id = trace_;
  for (auto& b : span.span_id.bytes) b = static_cast<uint8_t>(rng_());
  span.span_id.bytes[0] |= 1;
  if (step_ == 0) {
    root_ = span.span_id;
  } else {
    span.parent_span_id = root_;
  }
  span.name = step.name;
  span.kind = step.kind;
  span.start_time_unix_nano =
      base_time_ + next_order_ * timing_.order_interval_nanos + step_ * timing_.step_interval_nanos;
  span.end_time_unix_nano = span.start_time_unix_nano + 2'000'000 + rng_() % 5'000'000;
  span.status.code = base::StatusCode::kOk;
  span.attributes.push_back(Str("order_id", order_id_));
  if (!partner_id_.empty()) span.attributes.push_back(Str("partner_id", partner_id_));
  if (!step.new_status.empty()) {
    if (!step.prev_status.empty()) {
      span.attributes.push_back(Str("prev_status", std::string(step.prev_status)));
    }
    span.attributes.push_back(Str("new_status", std::string(step.new_status)));
    span.attributes.push_back(Int("event_version", step.event_version));
  }
  if (!step.queue.empty()) {
    std::string message_id = order_id_ + "-" + std::to_string(step.message);
    span.attributes.push_back(Str("messaging.system", "rabbitmq"));
    span.attributes.push_back(Str("messaging.destination.name", "alexandrite"));
    span.attributes.push_back(Str("messaging.message.id", message_id));
    span.attributes.push_back(Str("queue", std::string(step.queue)));
    if (step.kind == base::SpanKind::kConsumer) span.attributes.push_back(Int("retry_count", 0));
  }
  if (step.new_status == base::kPriceCalculated) {
    span.attributes.push_back(Int("polygon_count", static_cast<int64_t>(10000 + rng_() % 900000)));
    span.attributes.push_back(Str("complexity_class", "medium"));
  }
  service = step.service;
  step_ = (step_ + 1) % kOrderSpans.size();
  return span;
}

base::TraceBatch OrderSpanGenerator::NextBatch(size_t span_count) {
  std::map<std::string, base::ScopeSpans> by_service;
  for (size_t i = 0; i < span_count; ++i) {
    std::string service;
    base::Span span = NextSpan(service);
    by_service[service].spans.push_back(std::move(span));
  }
  base::TraceBatch batch;
  for (auto& [service, scope_spans] : by_service) {
    base::ResourceSpans rs;
    rs.resource.attributes.push_back(Str("service.name", service));
    rs.resource.attributes.push_back(Str("service.version", "1.4.2"));
    rs.resource.attributes.push_back(Str("deployment.environment", "production"));
    scope_spans.scope.name = "alexandrite.tracing";
    scope_spans.scope.version = "0.1.0";
    rs.scope_spans.push_back(std::move(scope_spans));
    batch.resource_spans.push_back(std::move(rs));
  }
  return batch;
}

}  // namespace ordertrace::bench
