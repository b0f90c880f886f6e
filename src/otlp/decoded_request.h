// What an OTLP decoder makes of one export request.
#pragma once

#include <cstdint>
#include <string>

#include "base/span.h"

namespace ordertrace::otlp {

// The valid spans of a request, and what was refused. A span is refused, alone, when its
// trace id is not 16 non-zero bytes, its span id not 8 non-zero bytes, its parent id neither
// empty nor 8 bytes, or its name empty; OTLP answers that with `partial_success`.
struct DecodedRequest {
  base::TraceBatch batch;
  int64_t rejected_spans = 0;
  std::string rejection_message;  // the first reason, for partial_success.error_message

  void Reject(std::string reason) {
    if (rejected_spans++ == 0) rejection_message = std::move(reason);
  }
};

}  // namespace ordertrace::otlp
