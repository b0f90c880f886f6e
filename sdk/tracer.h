// Tracer provider, tracers and spans with OpenTelemetry's names and meaning, so that a move to
// opentelemetry-cpp is mechanical. There is no implicit "current span": the parent is passed
// explicitly in StartSpanOptions.
//
// Thread-safety: TracerProvider, Tracer and Span are thread-safe. A Tracer is a cheap handle
// that may outlive its provider; spans then still end, but after the provider's Shutdown they
// are dropped by its processor.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "base/attribute_names.h"
#include "base/clock.h"
#include "base/span.h"
#include "sdk/id_generator.h"
#include "sdk/sampler.h"
#include "sdk/span_processor.h"
#include "sdk/trace_context.h"

namespace ordertrace::sdk {

// Attribute names the design asks for on failures (RecordError).
using base::kErrorCodeKey;
using base::kErrorMessageKey;

// OpenTelemetry's span limits; what is over them is dropped and counted in the span.
struct SpanLimits {
  size_t max_attributes = 128;
  size_t max_events = 128;
  size_t max_links = 128;
  size_t max_attributes_per_event = 128;
  size_t max_attributes_per_link = 128;
};

// A resource naming the service, as OpenTelemetry's `service.name`, plus `extra` attributes.
base::Resource MakeResource(std::string_view service_name, base::Attributes extra = {});

struct TracerProviderOptions {
  // Should carry `service.name` (see MakeResource).
  base::Resource resource;
  // Null: ParentBased{root=AlwaysOn}, OpenTelemetry's default.
  std::unique_ptr<Sampler> sampler;
  // Null: RandomIdGenerator.
  std::unique_ptr<IdGenerator> id_generator;
  // Null: the system clock. Borrowed; must outlive the provider and every span.
  const base::Clock* clock = nullptr;
  SpanLimits limits;
};

// A link to another span's context, e.g. from a consumer to the producer of its message.
struct SpanLink {
  SpanContext context;
  base::Attributes attributes;
};

struct StartSpanOptions {
  base::SpanKind kind = base::SpanKind::kInternal;
  // The parent; none, or an invalid context, starts a new trace.
  std::optional<SpanContext> parent;
  // Links with an invalid context are ignored.
  std::vector<SpanLink> links;
  base::Attributes attributes;
  // Unset: now.
  std::optional<uint64_t> start_time_unix_nano;
};

namespace internal {
struct TracerSharedState;
}

// One operation. Made by Tracer::StartSpan, finished by End (or by the destructor). A span
// that was not sampled records nothing but still has a context to propagate. Thread-safe.
class Span {
 public:
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;
  // Ends the span if End was not called.
  ~Span();

  // The context children and carriers use; fixed at start.
  const SpanContext& GetContext() const { return context_; }
  // False when not sampled, and after End.
  bool IsRecording() const;

  // Sets an attribute, replacing one with the same key. Ignored once ended.
  void SetAttribute(std::string_view key, base::AnyValue value);
  void SetAttribute(std::string_view key, std::string_view value);
  void SetAttribute(std::string_view key, const char* value);
  void SetAttribute(std::string_view key, int64_t value);
  void SetAttribute(std::string_view key, int value);
  void SetAttribute(std::string_view key, bool value);
  void SetAttribute(std::string_view key, double value);

  // Adds a timestamped event (now when `time_unix_nano` is unset).
  void AddEvent(std::string_view name, base::Attributes attributes = {},
                std::optional<uint64_t> time_unix_nano = std::nullopt);

  // OpenTelemetry's rules: kUnset is ignored, kOk is final, the description is kept for
  // kError only.
  void SetStatus(base::StatusCode code, std::string_view description = "");

  // Records a failure the way the design asks: attributes `error_code` and `error_message`,
  // an "exception" event (exception.type, exception.message), and status ERROR.
  void RecordError(std::string_view code, std::string_view message);

  // Ends the span (at `end_time_unix_nano`, or now) and hands it to the processor when
  // sampled. Later calls do nothing.
  void End(std::optional<uint64_t> end_time_unix_nano = std::nullopt);

 private:
  friend class Tracer;
  Span(std::shared_ptr<internal::TracerSharedState> state,
       std::shared_ptr<const base::InstrumentationScope> scope, SpanContext context,
       bool recording);

  void SetAttributeLocked(std::string_view key, base::AnyValue value);

  // Constant after construction.
  const std::shared_ptr<internal::TracerSharedState> state_;
  const std::shared_ptr<const base::InstrumentationScope> scope_;
  const SpanContext context_;

  mutable std::mutex mu_;
  bool recording_;   // guarded by mu_; false once ended
  base::Span data_;  // guarded by mu_
};

// Makes spans for one instrumentation scope. A cheap, copyable handle; thread-safe.
class Tracer {
 public:
  // Starts a span. Ids come from the provider's generator; the sampler decides whether it is
  // recorded. With a valid parent the span joins the parent's trace and inherits its tracestate.
  std::unique_ptr<Span> StartSpan(std::string_view name, StartSpanOptions options = {}) const;

  const base::InstrumentationScope& scope() const { return *scope_; }

 private:
  friend class TracerProvider;
  Tracer(std::shared_ptr<internal::TracerSharedState> state,
         std::shared_ptr<const base::InstrumentationScope> scope);

  std::shared_ptr<internal::TracerSharedState> state_;
  std::shared_ptr<const base::InstrumentationScope> scope_;
};

// Owns the resource, sampler, id generator and span processor of one service. Thread-safe.
class TracerProvider {
 public:
  // A null `processor` drops every span (tracing switched off, context still propagated).
  TracerProvider(TracerProviderOptions options, std::unique_ptr<SpanProcessor> processor);
  TracerProvider(const TracerProvider&) = delete;
  TracerProvider& operator=(const TracerProvider&) = delete;
  // Shuts down (with a 5 s timeout) unless Shutdown was called.
  ~TracerProvider();

  // A tracer for the instrumentation scope `name` (e.g. "shop-api"), `version` optional.
  Tracer GetTracer(std::string_view name, std::string_view version = "");

  // Forwarded to the processor.
  absl::Status ForceFlush(std::chrono::milliseconds timeout);
  // Shuts the processor down once; later calls return OK and do nothing.
  absl::Status Shutdown(std::chrono::milliseconds timeout);

  const base::Resource& resource() const;

 private:
  std::shared_ptr<internal::TracerSharedState> state_;
};

}  // namespace ordertrace::sdk
