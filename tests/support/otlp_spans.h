// Test support for the tests that send orders' spans to ordertrace as OTLP/HTTP protobuf: test
// orders with distinct ids and traces, and their status transition spans as the services report
// them (attributes order_id, partner_id, new_status, prev_status, event_version), and detail
// spans with none of those, built with the generated protobuf classes.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"

namespace ordertrace::test_support {

namespace pb_collector = opentelemetry::proto::collector::trace::v1;
namespace pb_trace = opentelemetry::proto::trace::v1;
namespace pb_common = opentelemetry::proto::common::v1;

inline constexpr uint64_t kNanosPerSecond = 1'000'000'000ULL;
// The instrumentation scope of every span built here.
inline constexpr char kTestScope[] = "ordertrace_tests";

// Lowercase hex of raw bytes (how the API prints trace and span ids).
inline std::string Hex(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

// An order of a test: its id (a UUID, as the shop issues them), partner and the ids of its trace.
struct TestOrder {
  std::string order_id;
  std::string partner_id;
  std::string trace_id;      // 16 bytes
  std::string root_span_id;  // 8 bytes

  std::string TraceHex() const { return Hex(trace_id); }
};

// Order number `n` (1..255): distinct ids and trace per test order, partner "partner-17".
inline TestOrder MakeOrder(uint8_t n) {
  TestOrder order;
  char id[40];
  std::snprintf(id, sizeof id, "6f1c2a9e-0b7d-4c55-9e1a-3d2f8b7c4a%02x", n);
  order.order_id = id;
  order.partner_id = "partner-17";
  order.trace_id = std::string(16, '\0');
  for (size_t i = 0; i < 16; ++i) order.trace_id[i] = static_cast<char>(0xa0 + i);
  order.trace_id[0] = static_cast<char>(n);
  order.root_span_id = std::string(8, '\0');
  for (size_t i = 0; i < 8; ++i) order.root_span_id[i] = static_cast<char>(0x10 + i);
  order.root_span_id[0] = static_cast<char>(n);
  return order;
}

inline void AddAttribute(google::protobuf::RepeatedPtrField<pb_common::KeyValue>* attributes,
                         const std::string& key, const std::string& value) {
  pb_common::KeyValue* kv = attributes->Add();
  kv->set_key(key);
  kv->mutable_value()->set_string_value(value);
}

inline void AddIntAttribute(google::protobuf::RepeatedPtrField<pb_common::KeyValue>* attributes,
                            const std::string& key, int64_t value) {
  pb_common::KeyValue* kv = attributes->Add();
  kv->set_key(key);
  kv->mutable_value()->set_int_value(value);
}

// A new ResourceSpans of `service` in `request` with one scope, to add spans to.
inline pb_trace::ScopeSpans* AddServiceScope(pb_collector::ExportTraceServiceRequest& request,
                                             const std::string& service) {
  pb_trace::ResourceSpans* rs = request.add_resource_spans();
  AddAttribute(rs->mutable_resource()->mutable_attributes(), "service.name", service);
  pb_trace::ScopeSpans* scope = rs->add_scope_spans();
  scope->mutable_scope()->set_name(kTestScope);
  return scope;
}

// The order's root span (shop-api's `order.root`), ending at `end_unix_nano` after 2 s.
inline void AddRootSpan(pb_collector::ExportTraceServiceRequest& request, const TestOrder& order,
                        uint64_t end_unix_nano) {
  pb_trace::Span* root = AddServiceScope(request, "shop-api")->add_spans();
  root->set_trace_id(order.trace_id);
  root->set_span_id(order.root_span_id);
  root->set_name("order.root");
  root->set_kind(pb_trace::Span::SPAN_KIND_SERVER);
  root->set_start_time_unix_nano(end_unix_nano - 2 * kNanosPerSecond);
  root->set_end_time_unix_nano(end_unix_nano);
  AddAttribute(root->mutable_attributes(), "order_id", order.order_id);
}

// One status transition of an order as its service reports it: an internal span of 40 ms
// ending at `end_unix_nano` (when the status is reached) under the order's root span.
struct Transition {
  std::string service;
  std::string span_name;
  std::string new_status;
  std::string prev_status;
  int64_t event_version = 0;
  uint64_t end_unix_nano = 0;
  uint8_t span_number = 1;  // distinct span ids within the order
};

// The id of span `span_number` of `order` (the root span's id with its last byte replaced).
inline std::string SpanIdOf(const TestOrder& order, uint8_t span_number) {
  std::string span_id = order.root_span_id;
  span_id[7] = static_cast<char>(span_number);
  return span_id;
}

// Adds `t` of `order` to `request`, in a ResourceSpans of its own.
inline void AddTransition(pb_collector::ExportTraceServiceRequest& request, const TestOrder& order,
                          const Transition& t) {
  pb_trace::Span* span = AddServiceScope(request, t.service)->add_spans();
  span->set_trace_id(order.trace_id);
  span->set_span_id(SpanIdOf(order, t.span_number));
  span->set_parent_span_id(order.root_span_id);
  span->set_name(t.span_name);
  span->set_kind(pb_trace::Span::SPAN_KIND_INTERNAL);
  span->set_start_time_unix_nano(t.end_unix_nano - 40'000'000);
  span->set_end_time_unix_nano(t.end_unix_nano);
  AddAttribute(span->mutable_attributes(), "order_id", order.order_id);
  AddAttribute(span->mutable_attributes(), "partner_id", order.partner_id);
  AddAttribute(span->mutable_attributes(), "new_status", t.new_status);
  AddAttribute(span->mutable_attributes(), "prev_status", t.prev_status);
  AddIntAttribute(span->mutable_attributes(), "event_version", t.event_version);
}

// A span of an order's trace that carries no lifecycle attribute (no order_id, status or
// messaging attribute): what the tail sampler calls detail, such as a database call. An
// internal span of `duration_nanos` ending at `end_unix_nano`, under span `parent_number` of
// the order (0: its root span); `failed` sets its status to ERROR.
struct DetailSpan {
  std::string service;
  std::string span_name;
  uint8_t span_number = 1;
  uint8_t parent_number = 0;
  uint64_t end_unix_nano = 0;
  uint64_t duration_nanos = 20'000'000;
  bool failed = false;
};

// Adds `d` of `order` to `request`, in a ResourceSpans of its own.
inline void AddDetailSpan(pb_collector::ExportTraceServiceRequest& request, const TestOrder& order,
                          const DetailSpan& d) {
  pb_trace::Span* span = AddServiceScope(request, d.service)->add_spans();
  span->set_trace_id(order.trace_id);
  span->set_span_id(SpanIdOf(order, d.span_number));
  span->set_parent_span_id(d.parent_number == 0 ? order.root_span_id
                                                : SpanIdOf(order, d.parent_number));
  span->set_name(d.span_name);
  span->set_kind(pb_trace::Span::SPAN_KIND_INTERNAL);
  span->set_start_time_unix_nano(d.end_unix_nano - d.duration_nanos);
  span->set_end_time_unix_nano(d.end_unix_nano);
  if (d.failed) {
    span->mutable_status()->set_code(pb_trace::Status::STATUS_CODE_ERROR);
    span->mutable_status()->set_message("detail failed");
  }
}

}  // namespace ordertrace::test_support
