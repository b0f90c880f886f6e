// OTLP protobuf <-> model. Thread-safe (no shared state).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "base/span.h"
#include "otlp/decoded_request.h"

namespace opentelemetry::proto::collector::trace::v1 {
class ExportTraceServiceRequest;
}

namespace ordertrace::otlp {

// Decodes an ExportTraceServiceRequest (or TracesData: the same wire shape). An
// undecodable body is kInvalidArgument; invalid spans are dropped and counted.
absl::StatusOr<DecodedRequest> DecodeProtobufRequest(std::string_view body);

// The same, keeping `body` with the spans (ResourceSpans::wire_body) and where each span's
// bytes are (Span::wire), so that storing them copies bytes instead of encoding again.
absl::StatusOr<DecodedRequest> DecodeProtobufRequest(std::shared_ptr<const std::string> body);

// Converts a request that gRPC has already parsed.
DecodedRequest FromProto(
    const opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest& request);

// Encodes a batch as TracesData (readable by DecodeProtobufRequest).
std::string EncodeProtobuf(const base::TraceBatch& batch);

// One trace's share of a batch, encoded as TracesData with its resources and scopes.
struct EncodedTrace {
  base::TraceId trace_id;
  uint64_t latest_end_unix_nano = 0;
  std::string encoded;
};

// Splits a batch by trace and encodes each part, without copying the model. Spans that still
// have their received bytes (Span::wire) are copied as they came, plus any attributes
// appended since.
std::vector<EncodedTrace> EncodeProtobufByTrace(const base::TraceBatch& batch);

// One span as an OTLP Span message: a compact form for spans held in memory a while (one
// allocation instead of one per string). DecodeSpan refuses bytes that are not a valid span.
std::string EncodeSpan(const base::Span& span);
// The same for a span of `resource_spans`: its received bytes when it still has them.
std::string EncodeSpan(const base::Span& span, const base::ResourceSpans& resource_spans);
absl::StatusOr<base::Span> DecodeSpan(std::string_view encoded);

}  // namespace ordertrace::otlp
