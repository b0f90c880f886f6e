// Trace and span id generation, as opentelemetry-cpp's IdGenerator.
#pragma once

#include <mutex>
#include <random>

#include "base/ids.h"

namespace ordertrace::sdk {

// Thread-safe.
class IdGenerator {
 public:
  virtual ~IdGenerator() = default;
  // Never returns the all-zero (invalid) id.
  virtual base::TraceId NewTraceId() = 0;
  virtual base::SpanId NewSpanId() = 0;
};

// Random ids from a 64-bit Mersenne Twister seeded from std::random_device. All 16 trace id
// bytes are random, so the lower 8 satisfy W3C level 2's "random trace id" and the ratio
// sampler. Thread-safe (one mutex).
class RandomIdGenerator final : public IdGenerator {
 public:
  RandomIdGenerator();
  base::TraceId NewTraceId() override;
  base::SpanId NewSpanId() override;

 private:
  std::mutex mu_;
  std::mt19937_64 engine_;  // guarded by mu_
};

}  // namespace ordertrace::sdk
