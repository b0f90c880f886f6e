// libFuzzer target: the OTLP protobuf decoder must never crash, hang or leak on any input,
// and what it accepts must survive re-encoding.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "otlp/proto_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto decoded = ordertrace::otlp::DecodeProtobufRequest(body);
  if (!decoded.ok()) return 0;
  // Accepted spans are valid by construction: re-encoding and decoding keeps them all.
  auto again =
      ordertrace::otlp::DecodeProtobufRequest(ordertrace::otlp::EncodeProtobuf(decoded->batch));
  if (!again.ok() || again->batch.SpanCount() != decoded->batch.SpanCount() ||
      again->rejected_spans != 0) {
    __builtin_trap();
  }
  return 0;
}
