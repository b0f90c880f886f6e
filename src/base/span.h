// The span data model: a lossless, plain-data mirror of OTLP's ResourceSpans tree, so that
// what a client sent can be stored and served back unchanged. No I/O, no protobuf types.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/ids.h"

namespace ordertrace::base {

struct KeyValue;

// An attribute value; `type` says which member holds it.
struct AnyValue {
  enum class Type { kEmpty, kString, kBool, kInt, kDouble, kArray, kKvList, kBytes };
  Type type = Type::kEmpty;
  std::string string_value;  // kString, and kBytes (raw bytes)
  bool bool_value = false;
  int64_t int_value = 0;
  double double_value = 0;
  std::vector<AnyValue> array_values;
  std::vector<KeyValue> kvlist_values;

  // Factories, defined below once KeyValue is complete.
  static AnyValue String(std::string v);
  static AnyValue Int(int64_t v);
  static AnyValue Bool(bool v);
  static AnyValue Double(double v);
  // The value as text: strings as they are, numbers and booleans printed; empty otherwise.
  std::string AsText() const;

  // Compares type and the member that holds the value.
  friend bool operator==(const AnyValue&, const AnyValue&);
};

struct KeyValue {
  std::string key;
  AnyValue value;

  friend bool operator==(const KeyValue&, const KeyValue&) = default;
};

inline AnyValue AnyValue::String(std::string v) {
  AnyValue a;
  a.type = Type::kString;
  a.string_value = std::move(v);
  return a;
}
inline AnyValue AnyValue::Int(int64_t v) {
  AnyValue a;
  a.type = Type::kInt;
  a.int_value = v;
  return a;
}
inline AnyValue AnyValue::Bool(bool v) {
  AnyValue a;
  a.type = Type::kBool;
  a.bool_value = v;
  return a;
}
inline AnyValue AnyValue::Double(double v) {
  AnyValue a;
  a.type = Type::kDouble;
  a.double_value = v;
  return a;
}

using Attributes = std::vector<KeyValue>;

// Returns the attribute named `key`, or nullptr. Inline, with the length and first byte
// compared before the rest: every ingested span is searched for several keys that most spans
// lack, and calling memcmp for each of its attributes was a visible share of ingest CPU.
inline const AnyValue* FindAttribute(const Attributes& attributes, std::string_view key) {
  for (const KeyValue& kv : attributes) {
    if (kv.key.size() == key.size() && (key.empty() || kv.key[0] == key[0]) &&
        std::string_view(kv.key) == key) {
      return &kv.value;
    }
  }
  return nullptr;
}

enum class SpanKind : int32_t {
  kUnspecified = 0,
  kInternal = 1,
  kServer = 2,
  kClient = 3,
  kProducer = 4,
  kConsumer = 5,
};

enum class StatusCode : int32_t { kUnset = 0, kOk = 1, kError = 2 };

struct SpanStatus {
  StatusCode code = StatusCode::kUnset;
  std::string message;
};

struct SpanEvent {
  uint64_t time_unix_nano = 0;
  std::string name;
  Attributes attributes;
  uint32_t dropped_attributes_count = 0;
};

struct SpanLink {
  TraceId trace_id;
  SpanId span_id;
  std::string trace_state;
  Attributes attributes;
  uint32_t dropped_attributes_count = 0;
  uint32_t flags = 0;
};

struct Span {
  TraceId trace_id;
  SpanId span_id;
  std::string trace_state;
  SpanId parent_span_id;  // all zero for a root span
  uint32_t flags = 0;
  std::string name;
  SpanKind kind = SpanKind::kUnspecified;
  uint64_t start_time_unix_nano = 0;
  uint64_t end_time_unix_nano = 0;
  Attributes attributes;
  uint32_t dropped_attributes_count = 0;
  std::vector<SpanEvent> events;
  uint32_t dropped_events_count = 0;
  std::vector<SpanLink> links;
  uint32_t dropped_links_count = 0;
  SpanStatus status;
};

struct Resource {
  Attributes attributes;
  uint32_t dropped_attributes_count = 0;

  friend bool operator==(const Resource&, const Resource&) = default;
};

struct InstrumentationScope {
  std::string name;
  std::string version;
  Attributes attributes;
  uint32_t dropped_attributes_count = 0;

  friend bool operator==(const InstrumentationScope&, const InstrumentationScope&) = default;
};

struct ScopeSpans {
  InstrumentationScope scope;
  std::string schema_url;
  std::vector<Span> spans;
};

struct ResourceSpans {
  Resource resource;
  std::string schema_url;
  std::vector<ScopeSpans> scope_spans;
};

// What one OTLP export request (or one stored block) carries.
struct TraceBatch {
  std::vector<ResourceSpans> resource_spans;

  size_t SpanCount() const;
};

// The resource's `service.name`, or "unknown_service" as OpenTelemetry's SDKs default.
std::string ServiceName(const Resource& resource);
// The same without a copy: valid while `resource` is.
std::string_view ServiceNameView(const Resource& resource);

}  // namespace ordertrace::base
