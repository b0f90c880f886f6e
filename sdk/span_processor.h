// What a tracer provider hands ended spans to. The interface is opentelemetry-cpp's
// SpanProcessor, reduced to what this project needs.
#pragma once

#include <chrono>

#include "absl/status/status.h"
#include "sdk/span_data.h"

namespace ordertrace::sdk {

// Implementations are thread-safe: spans end on any thread.
class SpanProcessor {
 public:
  virtual ~SpanProcessor() = default;

  // Takes a sampled span that has just ended. Must return promptly: no I/O, no waiting on export.
  virtual void OnEnd(SpanData&& span) = 0;

  // Exports what has been handed over so far; kDeadlineExceeded when `timeout` passes first.
  virtual absl::Status ForceFlush(std::chrono::milliseconds timeout) = 0;

  // Flushes, stops background work and shuts the exporter down; later spans are dropped.
  // kDeadlineExceeded when the flush did not finish within `timeout` (the rest is dropped).
  virtual absl::Status Shutdown(std::chrono::milliseconds timeout) = 0;
};

}  // namespace ordertrace::sdk
