// Where a span sits in a batch: how the scrubbers report the spans they changed.
#pragma once

#include <cstdint>

namespace ordertrace::scrub {

// batch.resource_spans[resource].scope_spans[scope].spans[span].
struct SpanPosition {
  uint32_t resource = 0;
  uint32_t scope = 0;
  uint32_t span = 0;

  friend bool operator==(const SpanPosition&, const SpanPosition&) = default;
};

}  // namespace ordertrace::scrub
