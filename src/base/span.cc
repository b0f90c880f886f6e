#include "base/span.h"

#include <charconv>
#include <cstdio>

namespace ordertrace::base {

std::string AnyValue::AsText() const {
  switch (type) {
    case Type::kString:
      return string_value;
    case Type::kBool:
      return bool_value ? "true" : "false";
    case Type::kInt:
      return std::to_string(int_value);
    case Type::kDouble: {
      char buf[32];
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, double_value);
      return ec == std::errc() ? std::string(buf, end) : std::string();
    }
    default:
      return std::string();
  }
}

// Written out (not defaulted): clang 14 crashes on a defaulted comparison of this recursive type.
bool operator==(const AnyValue& a, const AnyValue& b) {
  if (a.type != b.type) return false;
  using T = AnyValue::Type;
  switch (a.type) {
    case T::kString:
    case T::kBytes:
      return a.string_value == b.string_value;
    case T::kBool:
      return a.bool_value == b.bool_value;
    case T::kInt:
      return a.int_value == b.int_value;
    case T::kDouble:
      return a.double_value == b.double_value;
    case T::kArray:
      return a.array_values == b.array_values;
    case T::kKvList:
      return a.kvlist_values == b.kvlist_values;
    case T::kEmpty:
      return true;
  }
  return true;
}

size_t TraceBatch::SpanCount() const {
  size_t n = 0;
  for (const ResourceSpans& rs : resource_spans) {
    for (const ScopeSpans& ss : rs.scope_spans) n += ss.spans.size();
  }
  return n;
}

std::string_view ServiceNameView(const Resource& resource) {
  const AnyValue* v = FindAttribute(resource.attributes, "service.name");
  if (v != nullptr && v->type == AnyValue::Type::kString && !v->string_value.empty()) {
    return v->string_value;
  }
  return "unknown_service";
}

std::string ServiceName(const Resource& resource) { return std::string(ServiceNameView(resource)); }

}  // namespace ordertrace::base
