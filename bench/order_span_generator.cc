#include "bench/order_span_generator.h"

#include <array>
#include <map>

namespace ordertrace::bench {
namespace {

struct Step {
  const char* service;
  const char* name;
  base::SpanKind kind;
  const char* prev_status;
  const char* new_status;
  int event_version;  // transitions only
  const char* queue;  // messaging spans only
  int message;  // messaging spans: which of the order's messages (publish and consume share it)
};

// One order's lifecycle as the services emit it: every status of the default lifecycle model in
// order (so the gap detector sees a conforming order, as it would in production), the two
// RabbitMQ hops, each a publish and a consume, and the price calculation's four phases (19 spans).
constexpr std::array<Step, 19> kLifecycle = {{
    {"shop-api", "shop.init", base::SpanKind::kServer, "", "INITIATED", 1, nullptr, 0},
    {"shop-api", "shop.upload", base::SpanKind::kServer, "INITIATED", "FILE_UPLOADED", 2, nullptr,
     0},
    {"shop-api", "shop.submit", base::SpanKind::kServer, "FILE_UPLOADED", "SUBMITTED", 3, nullptr,
     0},
    {"shop-api", "mq.publish.price", base::SpanKind::kProducer, "", "", 0, "mes.price.requests",
     0},
    {"mes-api", "mq.consume.price", base::SpanKind::kConsumer, "", "", 0, "mes.price.requests", 0},
    {"mes-api", "mes.price.start", base::SpanKind::kInternal, "SUBMITTED",
     "PRICE_CALCULATION_STARTED", 4, nullptr, 0},
    {"mes-api", "mes.price.calc", base::SpanKind::kInternal, "PRICE_CALCULATION_STARTED",
     "PRICE_CALCULATED", 5, nullptr, 0},
    // The calculation's phases: detail spans, which the tail sampler keeps for a share of traces.
    {"mes-api", "mes.price.phase.load_model", base::SpanKind::kInternal, "", "", 0, nullptr, 0},
    {"mes-api", "mes.price.phase.analyze", base::SpanKind::kInternal, "", "", 0, nullptr, 0},
    {"mes-api", "mes.price.phase.estimate", base::SpanKind::kInternal, "", "", 0, nullptr, 0},
    {"mes-api", "mes.price.phase.quote", base::SpanKind::kInternal, "", "", 0, nullptr, 0},
    {"mes-api", "mq.publish.status", base::SpanKind::kProducer, "", "", 0, "crm.status", 1},
    {"crm-api", "mq.consume.status", base::SpanKind::kConsumer, "", "", 0, "crm.status", 1},
    {"crm-api", "crm.approve.manufacturing", base::SpanKind::kServer, "PRICE_CALCULATED",
     "MANUFACTURING_APPROVED", 6, nullptr, 0},
    {"mes-api", "mes.manufacturing.start", base::SpanKind::kServer, "MANUFACTURING_APPROVED",
     "MANUFACTURING_STARTED", 7, nullptr, 0},
    {"mes-api", "mes.manufacturing.complete", base::SpanKind::kServer, "MANUFACTURING_STARTED",
     "MANUFACTURING_COMPLETED", 8, nullptr, 0},
    {"mes-api", "mes.packaging", base::SpanKind::kServer, "MANUFACTURING_COMPLETED", "PACKAGING",
     9, nullptr, 0},
    {"mes-api", "mes.shipped", base::SpanKind::kServer, "PACKAGING", "SHIPPED", 10, nullptr, 0},
    {"crm-api", "crm.close", base::SpanKind::kServer, "SHIPPED", "CLOSED", 11, nullptr, 0},
}};
static_assert(kLifecycle.size() == OrderSpanGenerator::kSpansPerOrder);

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
  const Step& step = kLifecycle[step_];
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
  if (*step.new_status != '\0') {
    if (*step.prev_status != '\0') span.attributes.push_back(Str("prev_status", step.prev_status));
    span.attributes.push_back(Str("new_status", step.new_status));
    span.attributes.push_back(Int("event_version", step.event_version));
  }
  if (step.queue != nullptr) {
    std::string message_id = order_id_ + "-" + std::to_string(step.message);
    span.attributes.push_back(Str("messaging.system", "rabbitmq"));
    span.attributes.push_back(Str("messaging.destination.name", "alexandrite"));
    span.attributes.push_back(Str("messaging.message.id", message_id));
    span.attributes.push_back(Str("queue", step.queue));
    if (step.kind == base::SpanKind::kConsumer) span.attributes.push_back(Int("retry_count", 0));
  }
  if (std::string_view(step.name) == "mes.price.calc") {
    span.attributes.push_back(Int("polygon_count", static_cast<int64_t>(10000 + rng_() % 900000)));
    span.attributes.push_back(Str("complexity_class", "medium"));
  }
  service = step.service;
  step_ = (step_ + 1) % kLifecycle.size();
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
