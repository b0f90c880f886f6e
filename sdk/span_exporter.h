// Where a span processor sends finished spans. The interface is opentelemetry-cpp's
// SpanExporter, reduced to what this project needs.
#pragma once

#include <span>

#include "absl/status/status.h"
#include "sdk/span_data.h"

namespace ordertrace::sdk {

// Export is called by one thread at a time (a processor's worker); Shutdown may be called from
// any thread, also while an Export is running.
class SpanExporter {
 public:
  virtual ~SpanExporter() = default;

  // Delivers one batch, or gives up on it; returns only when done either way. The spans are
  // borrowed for the duration of the call.
  virtual absl::Status Export(std::span<const SpanData> spans) = 0;

  // Makes a running Export return soon (no more retries) and later ones fail. Idempotent.
  virtual void Shutdown() = 0;
};

}  // namespace ordertrace::sdk
