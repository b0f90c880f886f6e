// The exporter's OTLP mapping: finished spans to an ExportTraceServiceRequest, with the
// protobuf classes generated from the OTLP .proto files. The SDK owns this mapping, as
// opentelemetry-cpp's OTLP exporter does, so that it needs nothing from the server that receives
// the spans. Thread-safe (no shared state).
#pragma once

#include <span>
#include <string>

#include "sdk/span_data.h"

namespace ordertrace::sdk {

// One ExportTraceServiceRequest in protobuf wire form (the body of an OTLP/HTTP protobuf
// export). Spans are grouped by resource, then by scope, in order of first appearance, as
// ToTraceBatch groups them; spans without a resource or scope go under an empty one. Ids are
// written as their raw bytes, a parent id only when valid, a status only when it has a code or a
// message. The spans' other fields are copied as they are; nothing is validated or dropped.
std::string EncodeExportRequest(std::span<const SpanData> spans);

}  // namespace ordertrace::sdk
