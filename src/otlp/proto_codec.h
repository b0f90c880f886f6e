// OTLP protobuf <-> model. Thread-safe (no shared state).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "base/span.h"
#include "otlp/decoded_request.h"
#include "otlp/received_bytes.h"

namespace opentelemetry::proto::collector::trace::v1 {
class ExportTraceServiceRequest;
}

namespace ordertrace::otlp {

// Decodes an ExportTraceServiceRequest (or TracesData: the same wire shape). An
// undecodable body is kInvalidArgument; invalid spans are dropped and counted.
absl::StatusOr<DecodedRequest> DecodeProtobufRequest(std::string_view body);

// The same, keeping `body` with where each span's bytes are in it (DecodedRequest::received),
// so that storing them copies bytes instead of encoding again.
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

// Splits a batch by trace and encodes each part, without copying the model. Spans with an entry
// in `received` (the batch's received bytes; may be null) are copied as they came, plus any
// attributes appended since; the others are encoded from the model.
std::vector<EncodedTrace> EncodeProtobufByTrace(const base::TraceBatch& batch,
                                                const ReceivedBytes* received = nullptr);

// One span as an OTLP Span message: a compact form for spans held in memory a while (one
// allocation instead of one per string). DecodeSpan refuses bytes that are not a valid span.
std::string EncodeSpan(const base::Span& span);
// The same from the span's received bytes (its entry in its batch's ReceivedBytes; may be null),
// plus any attributes appended since.
std::string EncodeSpan(const base::Span& span, const ReceivedBytes::Span* received);
absl::StatusOr<base::Span> DecodeSpan(std::string_view encoded);

}  // namespace ordertrace::otlp
