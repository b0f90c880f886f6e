// What decoding an OTLP request will cost in memory, estimated from its bytes before anything is
// allocated. A protobuf message can be 2 bytes on the wire and over 100 bytes decoded
// (libprotobuf's object, then the model's), so the body's size alone says little: an array of 7
// million empty values is 14 MB on the wire and took 1.1 GB to decode. Stateless free functions;
// thread-safe.
#pragma once

#include <cstddef>
#include <string_view>

namespace ordertrace::otlp {

// The bytes decoding `body` (an ExportTraceServiceRequest) with DecodeProtobufRequest holds at
// its peak, the body itself included: one pass over the wire format that counts the messages and
// string bytes it holds. Bytes that are not a well-formed message are counted up to where they
// stop being one (where libprotobuf also stops).
size_t EstimateProtobufDecodeBytes(std::string_view body);

// The same for an OTLP/JSON body and DecodeJsonRequest: one pass over the bytes that counts the
// JSON values (each a node of the parsed document and, most of them, of the model).
size_t EstimateJsonDecodeBytes(std::string_view body);

}  // namespace ordertrace::otlp
