#include "sdk/tracer.h"

#include <algorithm>
#include <atomic>
#include <utility>

namespace ordertrace::sdk {

namespace internal {

// What a provider shares with its tracers and spans: shared, because a span may end after the
// provider is gone (its processor then drops it).
struct TracerSharedState {
  std::shared_ptr<const base::Resource> resource;
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<IdGenerator> id_generator;
  std::unique_ptr<base::SystemClock> own_clock;  // set when no clock was injected
  const base::Clock* clock = nullptr;
  SpanLimits limits;
  std::unique_ptr<SpanProcessor> processor;
  std::atomic<bool> shut_down{false};
};

}  // namespace internal

namespace {

class DroppingSpanProcessor final : public SpanProcessor {
 public:
  void OnEnd(SpanData&&) override {}
  absl::Status ForceFlush(std::chrono::milliseconds) override { return absl::OkStatus(); }
  absl::Status Shutdown(std::chrono::milliseconds) override { return absl::OkStatus(); }
};

// OTLP Span.flags / Link.flags bits 8 and 9: whether the parent (or linked) span is remote is
// known, and whether it is.
constexpr uint32_t kFlagHasIsRemote = 0x100;
constexpr uint32_t kFlagIsRemote = 0x200;

uint32_t OtlpFlags(uint8_t trace_flags, bool remote) {
  return trace_flags | kFlagHasIsRemote | (remote ? kFlagIsRemote : 0);
}

// Sets `key` in `attributes`, replacing an existing one; false when it had to be dropped.
bool PutAttribute(base::Attributes& attributes, std::string_view key, base::AnyValue value,
                  size_t limit) {
  for (base::KeyValue& kv : attributes) {
    if (kv.key == key) {
      kv.value = std::move(value);
      return true;
    }
  }
  if (attributes.size() >= limit) return false;
  attributes.push_back(base::KeyValue{std::string(key), std::move(value)});
  return true;
}

// Copies at most `limit` attributes; returns how many were left out.
uint32_t CopyLimited(base::Attributes&& from, size_t limit, base::Attributes& to) {
  uint32_t dropped = 0;
  for (base::KeyValue& kv : from) {
    if (!PutAttribute(to, kv.key, std::move(kv.value), limit)) ++dropped;
  }
  return dropped;
}

}  // namespace

base::Resource MakeResource(std::string_view service_name, base::Attributes extra) {
  base::Resource resource;
  resource.attributes.push_back(
      base::KeyValue{"service.name", base::AnyValue::String(std::string(service_name))});
  resource.attributes.push_back(
      base::KeyValue{"telemetry.sdk.name", base::AnyValue::String("ordertrace-sdk")});
  resource.attributes.push_back(
      base::KeyValue{"telemetry.sdk.language", base::AnyValue::String("cpp")});
  for (base::KeyValue& kv : extra) {
    PutAttribute(resource.attributes, kv.key, std::move(kv.value), SIZE_MAX);
  }
  return resource;
}

// Span

Span::Span(std::shared_ptr<internal::TracerSharedState> state,
           std::shared_ptr<const base::InstrumentationScope> scope, SpanContext context,
           bool recording)
    : state_(std::move(state)),
      scope_(std::move(scope)),
      context_(std::move(context)),
      recording_(recording) {}

Span::~Span() { End(); }

bool Span::IsRecording() const {
  std::lock_guard<std::mutex> lock(mu_);
  return recording_;
}

void Span::SetAttributeLocked(std::string_view key, base::AnyValue value) {
  if (!PutAttribute(data_.attributes, key, std::move(value), state_->limits.max_attributes)) {
    ++data_.dropped_attributes_count;
  }
}

void Span::SetAttribute(std::string_view key, base::AnyValue value) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!recording_) return;
  SetAttributeLocked(key, std::move(value));
}

void Span::SetAttribute(std::string_view key, std::string_view value) {
  SetAttribute(key, base::AnyValue::String(std::string(value)));
}
void Span::SetAttribute(std::string_view key, const char* value) {
  SetAttribute(key, base::AnyValue::String(value));
}
void Span::SetAttribute(std::string_view key, int64_t value) {
  SetAttribute(key, base::AnyValue::Int(value));
}
void Span::SetAttribute(std::string_view key, int value) {
  SetAttribute(key, base::AnyValue::Int(value));
}
void Span::SetAttribute(std::string_view key, bool value) {
  SetAttribute(key, base::AnyValue::Bool(value));
}
void Span::SetAttribute(std::string_view key, double value) {
  SetAttribute(key, base::AnyValue::Double(value));
}

void Span::AddEvent(std::string_view name, base::Attributes attributes,
                    std::optional<uint64_t> time_unix_nano) {
  uint64_t at = time_unix_nano.value_or(state_->clock->NowUnixNano());
  std::lock_guard<std::mutex> lock(mu_);
  if (!recording_) return;
  if (data_.events.size() >= state_->limits.max_events) {
    ++data_.dropped_events_count;
    return;
  }
  base::SpanEvent& event = data_.events.emplace_back();
  event.time_unix_nano = at;
  event.name = std::string(name);
  event.dropped_attributes_count =
      CopyLimited(std::move(attributes), state_->limits.max_attributes_per_event, event.attributes);
}

void Span::SetStatus(base::StatusCode code, std::string_view description) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!recording_ || code == base::StatusCode::kUnset) return;
  if (data_.status.code == base::StatusCode::kOk) return;  // final
  data_.status.code = code;
  data_.status.message = code == base::StatusCode::kError ? std::string(description) : "";
}

void Span::RecordError(std::string_view code, std::string_view message) {
  base::Attributes exception;
  exception.push_back({"exception.type", base::AnyValue::String(std::string(code))});
  exception.push_back({"exception.message", base::AnyValue::String(std::string(message))});
  AddEvent("exception", std::move(exception));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!recording_) return;
    SetAttributeLocked(kErrorCodeKey, base::AnyValue::String(std::string(code)));
    SetAttributeLocked(kErrorMessageKey, base::AnyValue::String(std::string(message)));
  }
  SetStatus(base::StatusCode::kError, message);
}

void Span::End(std::optional<uint64_t> end_time_unix_nano) {
  SpanData finished;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!recording_) return;
    recording_ = false;
    data_.end_time_unix_nano = end_time_unix_nano.value_or(state_->clock->NowUnixNano());
    // A clock that stepped back must not make a negative duration.
    data_.end_time_unix_nano = std::max(data_.end_time_unix_nano, data_.start_time_unix_nano);
    finished.span = std::move(data_);
  }
  finished.resource = state_->resource;
  finished.scope = scope_;
  state_->processor->OnEnd(std::move(finished));
}

// Tracer

Tracer::Tracer(std::shared_ptr<internal::TracerSharedState> state,
               std::shared_ptr<const base::InstrumentationScope> scope)
    : state_(std::move(state)), scope_(std::move(scope)) {}

std::unique_ptr<Span> Tracer::StartSpan(std::string_view name, StartSpanOptions options) const {
  std::optional<SpanContext> parent = options.parent;
  if (parent.has_value() && !parent->IsValid()) parent.reset();

  SpanContext context;
  context.trace_id = parent ? parent->trace_id : state_->id_generator->NewTraceId();
  context.span_id = state_->id_generator->NewSpanId();
  if (parent) context.trace_state = parent->trace_state;
  SamplingDecision decision =
      state_->sampler->ShouldSample(parent, context.trace_id, name, options.kind);
  bool sampled = decision == SamplingDecision::kRecordAndSample;
  context.trace_flags = sampled ? kTraceFlagSampled : 0;

  std::unique_ptr<Span> span(new Span(state_, scope_, context, sampled));
  if (!sampled) return span;

  base::Span& data = span->data_;  // not shared yet: no lock needed
  data.trace_id = context.trace_id;
  data.span_id = context.span_id;
  data.trace_state = context.trace_state.ToHeader();
  if (parent) data.parent_span_id = parent->span_id;
  data.flags = OtlpFlags(context.trace_flags, parent && parent->is_remote);
  data.name = std::string(name);
  data.kind = options.kind;
  data.start_time_unix_nano = options.start_time_unix_nano.value_or(state_->clock->NowUnixNano());
  data.dropped_attributes_count =
      CopyLimited(std::move(options.attributes), state_->limits.max_attributes, data.attributes);
  for (SpanLink& link : options.links) {
    if (!link.context.IsValid()) continue;
    if (data.links.size() >= state_->limits.max_links) {
      ++data.dropped_links_count;
      continue;
    }
    base::SpanLink& out = data.links.emplace_back();
    out.trace_id = link.context.trace_id;
    out.span_id = link.context.span_id;
    out.trace_state = link.context.trace_state.ToHeader();
    out.flags = OtlpFlags(link.context.trace_flags, link.context.is_remote);
    out.dropped_attributes_count = CopyLimited(
        std::move(link.attributes), state_->limits.max_attributes_per_link, out.attributes);
  }
  return span;
}

// TracerProvider

TracerProvider::TracerProvider(TracerProviderOptions options,
                               std::unique_ptr<SpanProcessor> processor)
    : state_(std::make_shared<internal::TracerSharedState>()) {
  state_->resource = std::make_shared<const base::Resource>(std::move(options.resource));
  state_->sampler = options.sampler != nullptr
                        ? std::move(options.sampler)
                        : std::make_unique<ParentBasedSampler>(std::make_unique<AlwaysOnSampler>());
  state_->id_generator = options.id_generator != nullptr ? std::move(options.id_generator)
                                                         : std::make_unique<RandomIdGenerator>();
  if (options.clock != nullptr) {
    state_->clock = options.clock;
  } else {
    state_->own_clock = std::make_unique<base::SystemClock>();
    state_->clock = state_->own_clock.get();
  }
  state_->limits = options.limits;
  state_->processor =
      processor != nullptr ? std::move(processor) : std::make_unique<DroppingSpanProcessor>();
}

TracerProvider::~TracerProvider() { Shutdown(std::chrono::seconds(5)).IgnoreError(); }

Tracer TracerProvider::GetTracer(std::string_view name, std::string_view version) {
  auto scope = std::make_shared<base::InstrumentationScope>();
  scope->name = std::string(name);
  scope->version = std::string(version);
  return Tracer(state_, std::move(scope));
}

absl::Status TracerProvider::ForceFlush(std::chrono::milliseconds timeout) {
  return state_->processor->ForceFlush(timeout);
}

absl::Status TracerProvider::Shutdown(std::chrono::milliseconds timeout) {
  if (state_->shut_down.exchange(true)) return absl::OkStatus();
  return state_->processor->Shutdown(timeout);
}

const base::Resource& TracerProvider::resource() const { return *state_->resource; }

}  // namespace ordertrace::sdk
