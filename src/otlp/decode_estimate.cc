#include "otlp/decode_estimate.h"

#include <cstdint>

#include "base/span.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace ordertrace::otlp {
namespace {

namespace pb_common = opentelemetry::proto::common::v1;
namespace pb_resource = opentelemetry::proto::resource::v1;
namespace pb_trace = opentelemetry::proto::trace::v1;
namespace pb_collector = opentelemetry::proto::collector::trace::v1;

// The messages of an ExportTraceServiceRequest, as far as the estimate needs to tell them apart.
enum class Kind : uint8_t {
  kRequest,
  kResourceSpans,
  kResource,
  kScopeSpans,
  kScope,
  kSpan,
  kEvent,
  kLink,
  kStatus,
  kKeyValue,
  kAnyValue,
  kArrayValue,
  kKeyValueList,
  kString,  // a string or bytes field: its payload is not a message
  kOther,   // a field the decoder does not keep as a message (numbers, unknown fields)
};

// A repeated message's pointer in its field's array, which grows by doubling.
constexpr size_t kPointer = 2 * sizeof(void*);
// A decoded message is libprotobuf's object (in the arena; repeated ones also hold a pointer)
// and, for most, the model's object it is converted to.
constexpr size_t kCost[] = {
    sizeof(pb_collector::ExportTraceServiceRequest),
    sizeof(pb_trace::ResourceSpans) + kPointer + sizeof(base::ResourceSpans),
    sizeof(pb_resource::Resource),
    sizeof(pb_trace::ScopeSpans) + kPointer + sizeof(base::ScopeSpans),
    sizeof(pb_common::InstrumentationScope),
    // The model reserves room for three derived attributes per span.
    sizeof(pb_trace::Span) + kPointer + sizeof(base::Span) + 3 * sizeof(base::KeyValue),
    sizeof(pb_trace::Span::Event) + kPointer + sizeof(base::SpanEvent),
    sizeof(pb_trace::Span::Link) + kPointer + sizeof(base::SpanLink),
    sizeof(pb_trace::Status),
    sizeof(pb_common::KeyValue) + kPointer + sizeof(base::KeyValue),
    sizeof(pb_common::AnyValue) + kPointer + sizeof(base::AnyValue),
    sizeof(pb_common::ArrayValue),
    sizeof(pb_common::KeyValueList),
};
// A string field: libprotobuf's std::string, and its heap copy and the model's when the text is
// too long to live inside the object (with malloc's bookkeeping).
constexpr size_t kStringObject = sizeof(std::string);
constexpr size_t kShortString = 15;
constexpr size_t kMallocOverhead = 16;

size_t StringCost(size_t length) {
  if (length <= kShortString) return kStringObject;
  return kStringObject + 2 * (length + 1 + kMallocOverhead);
}

// What field `field` of a `kind` message holds, when it is length-delimited.
Kind ChildOf(Kind kind, uint32_t field) {
  switch (kind) {
    case Kind::kRequest:
      return field == 1 ? Kind::kResourceSpans : Kind::kOther;
    case Kind::kResourceSpans:
      if (field == 1) return Kind::kResource;
      if (field == 2) return Kind::kScopeSpans;
      return field == 3 ? Kind::kString : Kind::kOther;
    case Kind::kResource:
      return field == 1 ? Kind::kKeyValue : Kind::kOther;
    case Kind::kScopeSpans:
      if (field == 1) return Kind::kScope;
      if (field == 2) return Kind::kSpan;
      return field == 3 ? Kind::kString : Kind::kOther;
    case Kind::kScope:
      if (field == 3) return Kind::kKeyValue;
      return field <= 2 ? Kind::kString : Kind::kOther;
    case Kind::kSpan:
      if (field == 9) return Kind::kKeyValue;
      if (field == 11) return Kind::kEvent;
      if (field == 13) return Kind::kLink;
      if (field == 15) return Kind::kStatus;
      return field <= 5 ? Kind::kString : Kind::kOther;
    case Kind::kEvent:
      if (field == 3) return Kind::kKeyValue;
      return field == 2 ? Kind::kString : Kind::kOther;
    case Kind::kLink:
      if (field == 4) return Kind::kKeyValue;
      return field <= 3 ? Kind::kString : Kind::kOther;
    case Kind::kStatus:
      return field == 2 ? Kind::kString : Kind::kOther;
    case Kind::kKeyValue:
      if (field == 2) return Kind::kAnyValue;
      return field == 1 ? Kind::kString : Kind::kOther;
    case Kind::kAnyValue:
      if (field == 5) return Kind::kArrayValue;
      if (field == 6) return Kind::kKeyValueList;
      return field == 1 || field == 7 ? Kind::kString : Kind::kOther;
    case Kind::kArrayValue:
      return field == 1 ? Kind::kAnyValue : Kind::kOther;
    case Kind::kKeyValueList:
      return field == 1 ? Kind::kKeyValue : Kind::kOther;
    default:
      return Kind::kOther;
  }
}

// libprotobuf refuses messages nested deeper than this (its default recursion limit).
constexpr int kMaxDepth = 100;

// One pass over the wire format, adding up kCost and StringCost. Stops at the first byte that
// is not well-formed, having counted what came before it.
class WireEstimate {
 public:
  size_t total() const { return total_; }

  bool Message(const char* p, const char* end, Kind kind, int depth) {
    if (depth > kMaxDepth) return false;
    total_ += kCost[static_cast<size_t>(kind)];
    while (p < end) {
      uint64_t tag = 0;
      if (!Varint(p, end, tag)) return false;
      const auto field = static_cast<uint32_t>(tag >> 3);
      if (field == 0) return false;
      switch (tag & 7) {
        case 0:  // varint
          if (!Varint(p, end, tag)) return false;
          break;
        case 1:  // fixed64
          if (end - p < 8) return false;
          p += 8;
          break;
        case 5:  // fixed32
          if (end - p < 4) return false;
          p += 4;
          break;
        case 2:
          if (!LengthDelimited(p, end, ChildOf(kind, field), depth)) return false;
          break;
        case 3:  // a group: OTLP has none; libprotobuf keeps an unknown one as its bytes
          if (!SkipGroup(p, end, field, depth + 1)) return false;
          break;
        default:
          return false;
      }
    }
    return true;
  }

 private:
  static bool Varint(const char*& p, const char* end, uint64_t& value) {
    value = 0;
    for (int shift = 0; shift < 64 && p < end; shift += 7) {
      const auto byte = static_cast<uint8_t>(*p++);
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return true;
    }
    return false;
  }

  bool LengthDelimited(const char*& p, const char* end, Kind child, int depth) {
    uint64_t length = 0;
    if (!Varint(p, end, length) || length > static_cast<uint64_t>(end - p)) return false;
    const char* payload = p;
    p += length;
    if (child == Kind::kString || child == Kind::kOther) {
      total_ += StringCost(length);
      return true;
    }
    return Message(payload, p, child, depth + 1);
  }

  // Skips to the end of group `field`, counting its bytes as one unknown field.
  bool SkipGroup(const char*& p, const char* end, uint32_t field, int depth) {
    if (depth > kMaxDepth) return false;
    const char* start = p;
    while (p < end) {
      uint64_t tag = 0;
      if (!Varint(p, end, tag) || (tag >> 3) == 0) return false;
      uint64_t length = 0;
      switch (tag & 7) {
        case 0:
          if (!Varint(p, end, length)) return false;
          break;
        case 1:
          if (end - p < 8) return false;
          p += 8;
          break;
        case 5:
          if (end - p < 4) return false;
          p += 4;
          break;
        case 2:
          if (!Varint(p, end, length) || length > static_cast<uint64_t>(end - p)) return false;
          p += length;
          break;
        case 3:
          if (!SkipGroup(p, end, static_cast<uint32_t>(tag >> 3), depth + 1)) return false;
          break;
        case 4:
          if ((tag >> 3) != field) return false;
          total_ += StringCost(static_cast<size_t>(p - start));
          return true;
        default:
          return false;
      }
    }
    return false;
  }

  size_t total_ = 0;
};

// A parsed JSON document (nlohmann::json): every value a 16-byte node, every object member also
// a map node with its key, every container its own allocation; most objects become a model
// object too (a span, a key-value, a value).
constexpr size_t kJsonValue = 16;
constexpr size_t kJsonMember = 48 + sizeof(std::string) + kMallocOverhead;
constexpr size_t kJsonContainer = 48 + kMallocOverhead;
constexpr size_t kJsonModelObject = sizeof(pb_common::KeyValue) + sizeof(base::KeyValue);

}  // namespace

size_t EstimateProtobufDecodeBytes(std::string_view body) {
  WireEstimate estimate;
  estimate.Message(body.data(), body.data() + body.size(), Kind::kRequest, 0);
  return body.size() + estimate.total();
}

size_t EstimateJsonDecodeBytes(std::string_view body) {
  size_t values = 1, members = 0, containers = 0, objects = 0, string_bytes = 0;
  bool in_string = false;
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      } else {
        ++string_bytes;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '{':
        ++objects;
        ++containers;
        break;
      case '[':
        ++containers;
        break;
      case ',':
        ++values;
        break;
      case ':':
        ++members;
        break;
      default:
        break;
    }
  }
  // Each string's text is held by the document and copied into the model.
  return body.size() + (values + containers) * kJsonValue + members * kJsonMember +
         containers * kJsonContainer + objects * kJsonModelObject + 2 * string_bytes;
}

}  // namespace ordertrace::otlp
