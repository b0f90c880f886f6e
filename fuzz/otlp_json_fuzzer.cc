// libFuzzer target: the OTLP/JSON decoder must never crash, hang or leak on any input, and
// what it accepts must survive the trip through our OTLP/JSON encoder.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "otlp/json_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto decoded = ordertrace::otlp::DecodeJsonRequest(body);
  if (!decoded.ok()) return 0;
  nlohmann::json request = {{"resourceSpans", nlohmann::json::array()}};
  for (const auto& rs : decoded->batch.resource_spans) {
    request["resourceSpans"].push_back(ordertrace::otlp::ToJson(rs));
  }
  auto again = ordertrace::otlp::DecodeJsonRequest(request.dump());
  if (!again.ok() || again->batch.SpanCount() != decoded->batch.SpanCount()) __builtin_trap();
  return 0;
}
