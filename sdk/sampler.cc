#include "sdk/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace ordertrace::sdk {
namespace {

// 2^63 as a double; ratio * 2^63 fits in uint64_t for ratio < 1.
constexpr double kTwoPow63 = 9223372036854775808.0;

uint64_t UpperBound(double ratio) {
  if (!(ratio > 0)) return 0;  // also NaN
  if (ratio >= 1) return uint64_t{1} << 63;
  return static_cast<uint64_t>(ratio * kTwoPow63);
}

// The trace id's lower 8 bytes, big-endian, without the top bit: the part W3C Trace Context
// level 2 calls random, read the way OpenTelemetry's Go and Java SDKs read it.
uint64_t RandomPart(const base::TraceId& trace_id) {
  uint64_t value = 0;
  for (size_t i = 8; i < 16; ++i) value = value << 8 | trace_id.bytes[i];
  return value >> 1;
}

}  // namespace

TraceIdRatioBasedSampler::TraceIdRatioBasedSampler(double ratio)
    : ratio_(std::isnan(ratio) ? 0 : std::clamp(ratio, 0.0, 1.0)),
      upper_bound_(UpperBound(ratio)) {}

SamplingDecision TraceIdRatioBasedSampler::ShouldSample(const std::optional<SpanContext>&,
                                                        const base::TraceId& trace_id,
                                                        std::string_view, base::SpanKind) const {
  return RandomPart(trace_id) < upper_bound_ ? SamplingDecision::kRecordAndSample
                                             : SamplingDecision::kDrop;
}

std::string TraceIdRatioBasedSampler::Description() const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "TraceIdRatioBased{%f}", ratio_);
  return buf;
}

ParentBasedSampler::ParentBasedSampler(std::unique_ptr<Sampler> root) : root_(std::move(root)) {}

SamplingDecision ParentBasedSampler::ShouldSample(const std::optional<SpanContext>& parent,
                                                  const base::TraceId& trace_id,
                                                  std::string_view name,
                                                  base::SpanKind kind) const {
  if (parent.has_value() && parent->IsValid()) {
    return parent->IsSampled() ? SamplingDecision::kRecordAndSample : SamplingDecision::kDrop;
  }
  return root_->ShouldSample(parent, trace_id, name, kind);
}

std::string ParentBasedSampler::Description() const {
  return "ParentBased{root=" + root_->Description() + "}";
}

std::unique_ptr<Sampler> MakeParentBasedTraceIdRatioSampler(double ratio) {
  return std::make_unique<ParentBasedSampler>(std::make_unique<TraceIdRatioBasedSampler>(ratio));
}

}  // namespace ordertrace::sdk
