#include "otlp/json_codec.h"

#include <charconv>
#include <cmath>
#include <limits>

#include "absl/strings/escaping.h"

namespace ordertrace::otlp {
namespace {

using nlohmann::json;

// Thrown inside the decoder for a body that is JSON but not an OTLP request; caught at the
// top and turned into kInvalidArgument.
struct ShapeError {
  std::string message;
};

// Rejects deeply nested documents before nlohmann builds them, in one pass over the bytes.
bool DepthWithinLimit(std::string_view body, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) return false;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

// The member named `camel` or `snake`, or nullptr. Both spellings are in use.
const json* Field(const json& obj, const char* camel, const char* snake = nullptr) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(camel);
  if (it != obj.end() && !it->is_null()) return &*it;
  if (snake != nullptr) {
    it = obj.find(snake);
    if (it != obj.end() && !it->is_null()) return &*it;
  }
  return nullptr;
}

const json& ArrayField(const json& obj, const char* camel, const char* snake) {
  static const json kEmpty = json::array();
  const json* f = Field(obj, camel, snake);
  if (f == nullptr) return kEmpty;
  if (!f->is_array()) throw ShapeError{std::string(camel) + " must be an array"};
  return *f;
}

std::string StringField(const json& obj, const char* camel, const char* snake = nullptr) {
  const json* f = Field(obj, camel, snake);
  if (f == nullptr) return std::string();
  if (!f->is_string()) throw ShapeError{std::string(camel) + " must be a string"};
  return f->get<std::string>();
}

// A 64-bit unsigned integer given as a decimal string or a JSON number.
uint64_t Uint64Field(const json& obj, const char* camel, const char* snake) {
  const json* f = Field(obj, camel, snake);
  if (f == nullptr) return 0;
  if (f->is_number_unsigned()) return f->get<uint64_t>();
  if (f->is_number_integer()) {
    int64_t v = f->get<int64_t>();
    if (v < 0) throw ShapeError{std::string(camel) + " must not be negative"};
    return static_cast<uint64_t>(v);
  }
  if (f->is_string()) {
    const std::string& s = f->get_ref<const std::string&>();
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && p == s.data() + s.size() && !s.empty()) return v;
  }
  throw ShapeError{std::string(camel) + " must be an unsigned 64-bit integer"};
}

int64_t Int64Value(const json& v, const char* what) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return static_cast<int64_t>(u);
    }
  }
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    int64_t out = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec == std::errc() && p == s.data() + s.size() && !s.empty()) return out;
  }
  throw ShapeError{std::string(what) + " must be a 64-bit integer"};
}

uint32_t Uint32Field(const json& obj, const char* camel, const char* snake) {
  const json* f = Field(obj, camel, snake);
  if (f == nullptr) return 0;
  int64_t v = Int64Value(*f, camel);
  if (v < 0 || v > std::numeric_limits<uint32_t>::max()) {
    throw ShapeError{std::string(camel) + " is out of range"};
  }
  return static_cast<uint32_t>(v);
}

// An enum given as its number, or as its name from `names` (index = value).
template <size_t N>
int32_t EnumField(const json& obj, const char* camel, const char* snake,
                  const std::array<const char*, N>& names) {
  const json* f = Field(obj, camel, snake);
  if (f == nullptr) return 0;
  if (f->is_number_integer()) {
    int64_t v = f->get<int64_t>();
    if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
      throw ShapeError{std::string(camel) + " is out of range"};
    }
    return static_cast<int32_t>(v);
  }
  if (f->is_string()) {
    const std::string& s = f->get_ref<const std::string&>();
    for (size_t i = 0; i < N; ++i) {
      if (s == names[i]) return static_cast<int32_t>(i);
    }
  }
  throw ShapeError{std::string(camel) + " has an unknown value"};
}

constexpr std::array<const char*, 6> kSpanKindNames = {
    "SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",      "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"};
constexpr std::array<const char*, 3> kStatusCodeNames = {"STATUS_CODE_UNSET", "STATUS_CODE_OK",
                                                         "STATUS_CODE_ERROR"};

base::Attributes AttributesFrom(const json& list);

base::AnyValue AnyValueFrom(const json& v) {
  using T = base::AnyValue::Type;
  base::AnyValue out;
  if (!v.is_object()) throw ShapeError{"an attribute value must be an object"};
  if (const json* f = Field(v, "stringValue", "string_value")) {
    if (!f->is_string()) throw ShapeError{"stringValue must be a string"};
    out.type = T::kString;
    out.string_value = f->get<std::string>();
  } else if (const json* f = Field(v, "boolValue", "bool_value")) {
    if (!f->is_boolean()) throw ShapeError{"boolValue must be a boolean"};
    out.type = T::kBool;
    out.bool_value = f->get<bool>();
  } else if (const json* f = Field(v, "intValue", "int_value")) {
    out.type = T::kInt;
    out.int_value = Int64Value(*f, "intValue");
  } else if (const json* f = Field(v, "doubleValue", "double_value")) {
    out.type = T::kDouble;
    if (f->is_number()) {
      out.double_value = f->get<double>();
    } else if (f->is_string()) {
      // The JSON mapping spells non-finite doubles as strings.
      const std::string& s = f->get_ref<const std::string&>();
      if (s == "NaN") {
        out.double_value = std::numeric_limits<double>::quiet_NaN();
      } else if (s == "Infinity") {
        out.double_value = std::numeric_limits<double>::infinity();
      } else if (s == "-Infinity") {
        out.double_value = -std::numeric_limits<double>::infinity();
      } else {
        throw ShapeError{"doubleValue must be a number"};
      }
    } else {
      throw ShapeError{"doubleValue must be a number"};
    }
  } else if (const json* f = Field(v, "arrayValue", "array_value")) {
    out.type = T::kArray;
    for (const json& item : ArrayField(*f, "values", "values")) {
      out.array_values.push_back(AnyValueFrom(item));
    }
  } else if (const json* f = Field(v, "kvlistValue", "kvlist_value")) {
    out.type = T::kKvList;
    out.kvlist_values = AttributesFrom(ArrayField(*f, "values", "values"));
  } else if (const json* f = Field(v, "bytesValue", "bytes_value")) {
    if (!f->is_string() || !absl::Base64Unescape(f->get<std::string>(), &out.string_value)) {
      throw ShapeError{"bytesValue must be base64"};
    }
    out.type = T::kBytes;
  }
  return out;
}

base::Attributes AttributesFrom(const json& list) {
  if (!list.is_array()) throw ShapeError{"attributes must be an array"};
  base::Attributes out;
  out.reserve(list.size());
  for (const json& kv : list) {
    if (!kv.is_object()) throw ShapeError{"an attribute must be an object"};
    base::KeyValue item;
    item.key = StringField(kv, "key");
    if (const json* v = Field(kv, "value")) item.value = AnyValueFrom(*v);
    out.push_back(std::move(item));
  }
  return out;
}

base::Attributes AttributesField(const json& obj) {
  return AttributesFrom(ArrayField(obj, "attributes", "attributes"));
}

// Span ids in OTLP/JSON are hex; an empty string means "absent".
template <typename IdT>
bool HexIdField(const json& obj, const char* camel, const char* snake, IdT& out) {
  std::string hex = StringField(obj, camel, snake);
  if (hex.empty()) return false;
  auto id = IdT::FromHex(hex);
  if (!id) throw std::invalid_argument(std::string(camel));
  out = *id;
  return true;
}

// Converts one span; false (with a reason) when OTLP calls it invalid.
bool SpanFrom(const json& in, base::Span& out, std::string& reason) {
  if (!in.is_object()) throw ShapeError{"a span must be an object"};
  try {
    if (!HexIdField(in, "traceId", "trace_id", out.trace_id) || !out.trace_id.IsValid()) {
      reason = "span has an invalid traceId (must be 32 hex digits, not all zero)";
      return false;
    }
  } catch (const std::invalid_argument&) {
    reason = "span has an invalid traceId (must be 32 hex digits, not all zero)";
    return false;
  }
  try {
    if (!HexIdField(in, "spanId", "span_id", out.span_id) || !out.span_id.IsValid()) {
      reason = "span has an invalid spanId (must be 16 hex digits, not all zero)";
      return false;
    }
    HexIdField(in, "parentSpanId", "parent_span_id", out.parent_span_id);
  } catch (const std::invalid_argument& e) {
    reason = std::string("span has an invalid ") + e.what() + " (must be 16 hex digits)";
    return false;
  }
  out.name = StringField(in, "name");
  if (out.name.empty()) {
    reason = "span has no name";
    return false;
  }
  out.trace_state = StringField(in, "traceState", "trace_state");
  out.flags = Uint32Field(in, "flags", "flags");
  out.kind = static_cast<base::SpanKind>(EnumField(in, "kind", "kind", kSpanKindNames));
  out.start_time_unix_nano = Uint64Field(in, "startTimeUnixNano", "start_time_unix_nano");
  out.end_time_unix_nano = Uint64Field(in, "endTimeUnixNano", "end_time_unix_nano");
  out.attributes = AttributesField(in);
  out.dropped_attributes_count =
      Uint32Field(in, "droppedAttributesCount", "dropped_attributes_count");
  for (const json& e : ArrayField(in, "events", "events")) {
    base::SpanEvent event;
    event.time_unix_nano = Uint64Field(e, "timeUnixNano", "time_unix_nano");
    event.name = StringField(e, "name");
    event.attributes = AttributesField(e);
    event.dropped_attributes_count =
        Uint32Field(e, "droppedAttributesCount", "dropped_attributes_count");
    out.events.push_back(std::move(event));
  }
  out.dropped_events_count = Uint32Field(in, "droppedEventsCount", "dropped_events_count");
  out.dropped_links_count = Uint32Field(in, "droppedLinksCount", "dropped_links_count");
  for (const json& l : ArrayField(in, "links", "links")) {
    base::SpanLink link;
    try {
      if (!HexIdField(l, "traceId", "trace_id", link.trace_id) ||
          !HexIdField(l, "spanId", "span_id", link.span_id)) {
        throw std::invalid_argument("link id");
      }
    } catch (const std::invalid_argument&) {
      ++out.dropped_links_count;  // a malformed link costs the link, not the span
      continue;
    }
    link.trace_state = StringField(l, "traceState", "trace_state");
    link.attributes = AttributesField(l);
    link.dropped_attributes_count =
        Uint32Field(l, "droppedAttributesCount", "dropped_attributes_count");
    link.flags = Uint32Field(l, "flags", "flags");
    out.links.push_back(std::move(link));
  }
  if (const json* s = Field(in, "status")) {
    out.status.code =
        static_cast<base::StatusCode>(EnumField(*s, "code", "code", kStatusCodeNames));
    out.status.message = StringField(*s, "message");
  }
  return true;
}

DecodedRequest RequestFrom(const json& root) {
  if (!root.is_object()) throw ShapeError{"the request must be a JSON object"};
  DecodedRequest out;
  std::string reason;
  for (const json& rs_in : ArrayField(root, "resourceSpans", "resource_spans")) {
    if (!rs_in.is_object()) throw ShapeError{"resourceSpans items must be objects"};
    base::ResourceSpans rs;
    if (const json* r = Field(rs_in, "resource")) {
      rs.resource.attributes = AttributesField(*r);
      rs.resource.dropped_attributes_count =
          Uint32Field(*r, "droppedAttributesCount", "dropped_attributes_count");
    }
    rs.schema_url = StringField(rs_in, "schemaUrl", "schema_url");
    for (const json& ss_in : ArrayField(rs_in, "scopeSpans", "scope_spans")) {
      if (!ss_in.is_object()) throw ShapeError{"scopeSpans items must be objects"};
      base::ScopeSpans& ss = rs.scope_spans.emplace_back();
      if (const json* s = Field(ss_in, "scope")) {
        ss.scope.name = StringField(*s, "name");
        ss.scope.version = StringField(*s, "version");
        ss.scope.attributes = AttributesField(*s);
        ss.scope.dropped_attributes_count =
            Uint32Field(*s, "droppedAttributesCount", "dropped_attributes_count");
      }
      ss.schema_url = StringField(ss_in, "schemaUrl", "schema_url");
      for (const json& span_in : ArrayField(ss_in, "spans", "spans")) {
        base::Span span;
        if (SpanFrom(span_in, span, reason)) {
          ss.spans.push_back(std::move(span));
        } else {
          out.Reject(reason);
        }
      }
    }
    out.Add(std::move(rs));
  }
  return out;
}

json ToJson(const base::AnyValue& v);

json ToJson(const base::Attributes& attributes) {
  json out = json::array();
  for (const base::KeyValue& kv : attributes) {
    out.push_back(json{{"key", kv.key}, {"value", ToJson(kv.value)}});
  }
  return out;
}

json ToJson(const base::AnyValue& v) {
  using T = base::AnyValue::Type;
  switch (v.type) {
    case T::kString:
      return json{{"stringValue", v.string_value}};
    case T::kBool:
      return json{{"boolValue", v.bool_value}};
    case T::kInt:
      return json{{"intValue", std::to_string(v.int_value)}};
    case T::kDouble:
      if (std::isnan(v.double_value)) return json{{"doubleValue", "NaN"}};
      if (std::isinf(v.double_value)) {
        return json{{"doubleValue", v.double_value > 0 ? "Infinity" : "-Infinity"}};
      }
      return json{{"doubleValue", v.double_value}};
    case T::kArray: {
      json values = json::array();
      for (const auto& item : v.array_values) values.push_back(ToJson(item));
      return json{{"arrayValue", {{"values", values}}}};
    }
    case T::kKvList:
      return json{{"kvlistValue", {{"values", ToJson(v.kvlist_values)}}}};
    case T::kBytes:
      return json{{"bytesValue", absl::Base64Escape(v.string_value)}};
    case T::kEmpty:
      break;
  }
  return json::object();
}

json ToJson(const base::Span& s) {
  json out = {
      {"traceId", s.trace_id.ToHex()},
      {"spanId", s.span_id.ToHex()},
      {"name", s.name},
      {"kind", static_cast<int>(s.kind)},
      {"startTimeUnixNano", std::to_string(s.start_time_unix_nano)},
      {"endTimeUnixNano", std::to_string(s.end_time_unix_nano)},
      {"attributes", ToJson(s.attributes)},
      {"status", json::object()},
  };
  if (s.parent_span_id.IsValid()) out["parentSpanId"] = s.parent_span_id.ToHex();
  if (!s.trace_state.empty()) out["traceState"] = s.trace_state;
  if (s.flags != 0) out["flags"] = s.flags;
  if (s.dropped_attributes_count != 0) out["droppedAttributesCount"] = s.dropped_attributes_count;
  if (!s.events.empty()) {
    json events = json::array();
    for (const base::SpanEvent& e : s.events) {
      json ev = {{"timeUnixNano", std::to_string(e.time_unix_nano)},
                 {"name", e.name},
                 {"attributes", ToJson(e.attributes)}};
      if (e.dropped_attributes_count != 0) {
        ev["droppedAttributesCount"] = e.dropped_attributes_count;
      }
      events.push_back(std::move(ev));
    }
    out["events"] = std::move(events);
  }
  if (s.dropped_events_count != 0) out["droppedEventsCount"] = s.dropped_events_count;
  if (!s.links.empty()) {
    json links = json::array();
    for (const base::SpanLink& l : s.links) {
      json link = {{"traceId", l.trace_id.ToHex()},
                   {"spanId", l.span_id.ToHex()},
                   {"attributes", ToJson(l.attributes)}};
      if (!l.trace_state.empty()) link["traceState"] = l.trace_state;
      if (l.flags != 0) link["flags"] = l.flags;
      if (l.dropped_attributes_count != 0) {
        link["droppedAttributesCount"] = l.dropped_attributes_count;
      }
      links.push_back(std::move(link));
    }
    out["links"] = std::move(links);
  }
  if (s.dropped_links_count != 0) out["droppedLinksCount"] = s.dropped_links_count;
  if (s.status.code != base::StatusCode::kUnset) {
    out["status"]["code"] = static_cast<int>(s.status.code);
  }
  if (!s.status.message.empty()) out["status"]["message"] = s.status.message;
  return out;
}

}  // namespace

absl::StatusOr<DecodedRequest> DecodeJsonRequest(std::string_view body) {
  if (!DepthWithinLimit(body, kMaxJsonDepth)) {
    return absl::InvalidArgumentError("JSON body is nested deeper than " +
                                      std::to_string(kMaxJsonDepth) + " levels");
  }
  json root = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    return absl::InvalidArgumentError("request body is not valid JSON");
  }
  try {
    return RequestFrom(root);
  } catch (const ShapeError& e) {
    return absl::InvalidArgumentError("request body is not an OTLP trace request: " + e.message);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(std::string("request body is not an OTLP trace request: ") +
                                      e.what());
  }
}

json ToJson(const base::ResourceSpans& rs) {
  json scope_spans = json::array();
  for (const base::ScopeSpans& ss : rs.scope_spans) {
    json spans = json::array();
    for (const base::Span& s : ss.spans) spans.push_back(ToJson(s));
    json scope = {{"name", ss.scope.name}};
    if (!ss.scope.version.empty()) scope["version"] = ss.scope.version;
    if (!ss.scope.attributes.empty()) scope["attributes"] = ToJson(ss.scope.attributes);
    if (ss.scope.dropped_attributes_count != 0) {
      scope["droppedAttributesCount"] = ss.scope.dropped_attributes_count;
    }
    json item = {{"scope", std::move(scope)}, {"spans", std::move(spans)}};
    if (!ss.schema_url.empty()) item["schemaUrl"] = ss.schema_url;
    scope_spans.push_back(std::move(item));
  }
  json out = {{"resource", {{"attributes", ToJson(rs.resource.attributes)}}},
              {"scopeSpans", std::move(scope_spans)}};
  if (rs.resource.dropped_attributes_count != 0) {
    out["resource"]["droppedAttributesCount"] = rs.resource.dropped_attributes_count;
  }
  if (!rs.schema_url.empty()) out["schemaUrl"] = rs.schema_url;
  return out;
}

}  // namespace ordertrace::otlp
