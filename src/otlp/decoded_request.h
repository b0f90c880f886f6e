// What an OTLP decoder makes of one export request.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "base/span.h"
#include "otlp/received_bytes.h"

namespace ordertrace::otlp {

// The valid spans of a request, and what was refused. A span is refused, alone, when its
// trace id is not 16 non-zero bytes, its span id not 8 non-zero bytes, its parent id neither
// empty nor 8 bytes, or its name empty; OTLP answers that with `partial_success`.
struct DecodedRequest {
  base::TraceBatch batch;
  // Where `batch`'s spans sit in the request body: only from DecodeProtobufRequest given a
  // body to keep; empty otherwise.
  ReceivedBytes received;
  int64_t rejected_spans = 0;
  std::string rejection_message;  // the first reason, for partial_success.error_message

  void Reject(std::string reason) {
    if (rejected_spans++ == 0) rejection_message = std::move(reason);
  }

  // The decoders' shared tail, once per ResourceSpans they walked: keeps `resource` with the
  // scopes that still hold spans (their spans may all have been refused), or nothing when none
  // does. `entries`: the received bytes of its spans, kept aligned with them; empty: none.
  void Add(base::ResourceSpans&& resource, ReceivedBytes::Resource&& entries = {}) {
    EraseAligned(resource.scope_spans, entries.empty() ? nullptr : &entries,
                 [](const base::ScopeSpans& scope) { return scope.spans.empty(); });
    if (resource.scope_spans.empty()) return;
    batch.resource_spans.push_back(std::move(resource));
    if (entries.empty()) return;
    received.resources().resize(batch.resource_spans.size() - 1);
    received.resources().push_back(std::move(entries));
  }
};

}  // namespace ordertrace::otlp
