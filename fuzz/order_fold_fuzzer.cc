// libFuzzer target: the order record fold (lifecycle::ApplySpan). Its header promises that the
// record does not depend on the order spans arrive in and that a span applied twice changes
// nothing. The input is an OTLP protobuf request; every span it holds is folded into one
// record in the order received, in reverse, and each twice: the three records must be equal.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "lifecycle/order_record_builder.h"
#include "otlp/proto_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto decoded = ordertrace::otlp::DecodeProtobufRequest(body);
  if (!decoded.ok()) return 0;
  std::vector<std::pair<const ordertrace::base::Span*, const ordertrace::base::Resource*>> spans;
  for (const auto& resource_spans : decoded->batch.resource_spans) {
    for (const auto& scope_spans : resource_spans.scope_spans) {
      for (const auto& span : scope_spans.spans) {
        spans.emplace_back(&span, &resource_spans.resource);
      }
    }
  }
  if (spans.empty()) return 0;

  auto fold = [&](auto begin, auto end, int times) {
    ordertrace::model::OrderRecord record;
    record.order_id = "fuzzed-order";
    for (auto it = begin; it != end; ++it) {
      for (int i = 0; i < times; ++i) {
        ordertrace::lifecycle::ApplySpan(*it->first, *it->second, record);
      }
    }
    return record;
  };
  ordertrace::model::OrderRecord in_order = fold(spans.begin(), spans.end(), 1);
  if (!(fold(spans.rbegin(), spans.rend(), 1) == in_order)) __builtin_trap();
  if (!(fold(spans.begin(), spans.end(), 2) == in_order)) __builtin_trap();
  return 0;
}
