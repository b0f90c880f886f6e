// Head samplers with OpenTelemetry's names and semantics: AlwaysOn, AlwaysOff,
// TraceIdRatioBased and ParentBased. Samplers are immutable after construction and thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/ids.h"
#include "base/span.h"
#include "sdk/trace_context.h"

namespace ordertrace::sdk {

enum class SamplingDecision {
  kDrop,             // not recorded, not exported; the context still propagates
  kRecordAndSample,  // recorded, exported, and the sampled flag set for children
};

// Decides at span start whether a span is recorded. Thread-safe.
class Sampler {
 public:
  virtual ~Sampler() = default;
  // `parent` is the parent's context when the span has a valid one.
  virtual SamplingDecision ShouldSample(const std::optional<SpanContext>& parent,
                                        const base::TraceId& trace_id, std::string_view name,
                                        base::SpanKind kind) const = 0;
  // A description in OpenTelemetry's format, e.g. "TraceIdRatioBased{0.100000}".
  virtual std::string Description() const = 0;
};

class AlwaysOnSampler final : public Sampler {
 public:
  SamplingDecision ShouldSample(const std::optional<SpanContext>&, const base::TraceId&,
                                std::string_view, base::SpanKind) const override {
    return SamplingDecision::kRecordAndSample;
  }
  std::string Description() const override { return "AlwaysOnSampler"; }
};

class AlwaysOffSampler final : public Sampler {
 public:
  SamplingDecision ShouldSample(const std::optional<SpanContext>&, const base::TraceId&,
                                std::string_view, base::SpanKind) const override {
    return SamplingDecision::kDrop;
  }
  std::string Description() const override { return "AlwaysOffSampler"; }
};

// Samples a fraction `ratio` of traces, deterministically from the trace id: the lower 8 bytes
// (big-endian, top bit discarded) are compared with ratio * 2^63, as OpenTelemetry's
// TraceIdRatioBased sampler does, so every service makes the same decision for a trace.
// A ratio <= 0 samples nothing, >= 1 everything.
class TraceIdRatioBasedSampler final : public Sampler {
 public:
  explicit TraceIdRatioBasedSampler(double ratio);
  SamplingDecision ShouldSample(const std::optional<SpanContext>& parent,
                                const base::TraceId& trace_id, std::string_view name,
                                base::SpanKind kind) const override;
  std::string Description() const override;

 private:
  const double ratio_;
  const uint64_t upper_bound_;  // sample when the id's 63-bit value is below this
};

// Follows the parent's sampled flag when there is a parent; asks `root` otherwise.
class ParentBasedSampler final : public Sampler {
 public:
  explicit ParentBasedSampler(std::unique_ptr<Sampler> root);
  SamplingDecision ShouldSample(const std::optional<SpanContext>& parent,
                                const base::TraceId& trace_id, std::string_view name,
                                base::SpanKind kind) const override;
  std::string Description() const override;

 private:
  const std::unique_ptr<Sampler> root_;
};

// ParentBased{root=TraceIdRatioBased{ratio}}: the sampler services use.
std::unique_ptr<Sampler> MakeParentBasedTraceIdRatioSampler(double ratio);

}  // namespace ordertrace::sdk
