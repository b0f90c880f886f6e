// OTLP protobuf <-> model. Thread-safe (no shared state).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "model/span.h"
#include "otlp/decoded_request.h"

namespace opentelemetry::proto::collector::trace::v1 {
class ExportTraceServiceRequest;
}

namespace ordertrace::otlp {

// Decodes an ExportTraceServiceRequest (or TracesData: the same wire shape). An
// undecodable body is kInvalidArgument; invalid spans are dropped and counted.
absl::StatusOr<DecodedRequest> DecodeProtobufRequest(std::string_view body);

// Converts a request that gRPC has already parsed.
DecodedRequest FromProto(
    const opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest& request);

// Encodes a batch as TracesData (readable by DecodeProtobufRequest).
std::string EncodeProtobuf(const model::TraceBatch& batch);

}  // namespace ordertrace::otlp
