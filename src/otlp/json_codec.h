// OTLP/JSON <-> model, as the OTLP specification defines the JSON mapping: hex trace and
// span ids, enums as integers, 64-bit integers as decimal strings. The decoder also takes
// snake_case keys, enum names and 64-bit integers as JSON numbers, as lenient receivers do.
// Thread-safe (no shared state).
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "absl/status/statusor.h"
#include "base/span.h"
#include "otlp/decoded_request.h"

namespace ordertrace::otlp {

// The deepest JSON nesting a request may have; deeper bodies are refused before parsing.
inline constexpr int kMaxJsonDepth = 64;

// Decodes an ExportTraceServiceRequest in OTLP/JSON. A body that is not JSON, or not shaped
// like the request, is kInvalidArgument; invalid spans are dropped and counted.
absl::StatusOr<DecodedRequest> DecodeJsonRequest(std::string_view body);

// One ResourceSpans in OTLP/JSON (lowerCamelCase keys).
nlohmann::json ToJson(const base::ResourceSpans& resource_spans);

}  // namespace ordertrace::otlp
