#include "sdk/amqp_carrier.h"

namespace ordertrace::sdk {

void InjectAmqpHeaders(const SpanContext& context, std::string_view order_id,
                       AmqpHeaders& headers) {
  if (context.IsValid()) {
    headers[kTraceparentHeader] = FormatTraceparent(context);
    std::string trace_state = context.trace_state.ToHeader();
    if (trace_state.empty()) {
      headers.erase(kTracestateHeader);
    } else {
      headers[kTracestateHeader] = std::move(trace_state);
    }
  } else {
    headers.erase(kTraceparentHeader);
    headers.erase(kTracestateHeader);
  }
  if (!order_id.empty()) headers[kOrderIdHeader] = std::string(order_id);
}

void InjectOrderRootHeader(const SpanContext& order_root, AmqpHeaders& headers) {
  if (order_root.IsValid()) {
    headers[kOrderTraceparentHeader] = FormatTraceparent(order_root);
  } else {
    headers.erase(kOrderTraceparentHeader);
  }
}

ExtractedAmqpContext ExtractAmqpHeaders(const AmqpHeaders& headers) {
  ExtractedAmqpContext extracted;
  if (auto it = headers.find(kOrderIdHeader); it != headers.end()) extracted.order_id = it->second;
  if (auto it = headers.find(kOrderTraceparentHeader); it != headers.end()) {
    absl::StatusOr<SpanContext> root = ParseTraceparent(it->second);
    if (root.ok()) extracted.order_root = *std::move(root);
  }
  auto traceparent = headers.find(kTraceparentHeader);
  if (traceparent == headers.end()) return extracted;
  auto tracestate = headers.find(kTracestateHeader);
  absl::StatusOr<SpanContext> context = ParseTraceContext(
      traceparent->second, tracestate == headers.end() ? std::string_view() : tracestate->second);
  if (context.ok()) extracted.context = *std::move(context);
  return extracted;
}

}  // namespace ordertrace::sdk
