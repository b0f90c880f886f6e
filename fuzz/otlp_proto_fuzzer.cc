// libFuzzer target: the OTLP protobuf decoder must never crash, hang or leak on any input,
// and what it accepts must survive re-encoding, and splitting by trace from its received bytes.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
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
  // Decoded with the body kept, the spans are stored by copying their received bytes: the
  // parts must decode, hold every span once, and refuse none.
  auto kept = ordertrace::otlp::DecodeProtobufRequest(std::make_shared<const std::string>(body));
  if (!kept.ok()) __builtin_trap();
  size_t stored = 0;
  for (const auto& part : ordertrace::otlp::EncodeProtobufByTrace(kept->batch, &kept->received)) {
    auto back = ordertrace::otlp::DecodeProtobufRequest(part.encoded);
    if (!back.ok() || back->rejected_spans != 0) __builtin_trap();
    stored += back->batch.SpanCount();
  }
  if (stored != decoded->batch.SpanCount()) __builtin_trap();
  return 0;
}
