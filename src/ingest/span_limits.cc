#include "ingest/span_limits.h"

#include <ctime>
#include <string_view>
#include <utility>
#include <vector>

#include "base/attribute_names.h"
#include "base/clock.h"

namespace ordertrace::ingest {
namespace {

constexpr uint64_t kMinute = 60 * base::kNanosPerSecond;
constexpr uint64_t kHour = 60 * kMinute;
constexpr uint64_t kDay = 24 * kHour;

// "14d", "24h", "90m" or "30s", as ordertrace.yaml writes durations.
std::string Duration(uint64_t nanos) {
  if (nanos >= kDay && nanos % kDay == 0) return std::to_string(nanos / kDay) + "d";
  if (nanos >= kHour && nanos % kHour == 0) return std::to_string(nanos / kHour) + "h";
  if (nanos >= kMinute && nanos % kMinute == 0) return std::to_string(nanos / kMinute) + "m";
  return std::to_string(nanos / base::kNanosPerSecond) + "s";
}

std::string Rfc3339(uint64_t unix_nano) {
  const auto seconds = static_cast<std::time_t>(unix_nano / base::kNanosPerSecond);
  std::tm utc{};
  char text[40] = "";
  if (gmtime_r(&seconds, &utc) != nullptr) {
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  }
  return text;
}

// The length of a value as the limit counts it: its text, or its elements' lengths together.
// Stops counting once past `limit`.
size_t ValueLength(const base::AnyValue& value, size_t limit) {
  using T = base::AnyValue::Type;
  switch (value.type) {
    case T::kString:
    case T::kBytes:
      return value.string_value.size();
    case T::kArray: {
      size_t total = 0;
      for (const base::AnyValue& element : value.array_values) {
        total += ValueLength(element, limit);
        if (total > limit) break;
      }
      return total;
    }
    case T::kKvList: {
      size_t total = 0;
      for (const base::KeyValue& kv : value.kvlist_values) {
        total += kv.key.size() + ValueLength(kv.value, limit);
        if (total > limit) break;
      }
      return total;
    }
    default:
      return sizeof(int64_t);
  }
}

size_t ValueBytes(const base::AnyValue& value) {
  size_t bytes = value.string_value.capacity() > 15 ? value.string_value.capacity() : 0;
  for (const base::AnyValue& element : value.array_values) {
    bytes += sizeof(base::AnyValue) + ValueBytes(element);
  }
  for (const base::KeyValue& kv : value.kvlist_values) {
    bytes += sizeof(base::KeyValue) + kv.key.size() + ValueBytes(kv.value);
  }
  return bytes;
}

size_t AttributesBytes(const base::Attributes& attributes) {
  size_t bytes = attributes.capacity() * sizeof(base::KeyValue);
  for (const base::KeyValue& kv : attributes) {
    bytes += (kv.key.size() > 15 ? kv.key.size() : 0) + ValueBytes(kv.value);
  }
  return bytes;
}

// Why `attributes` (named `where` in the reason) break the limits, or "".
std::string AttributesProblem(const base::Attributes& attributes, const SpanLimits& limits,
                              std::string_view where) {
  for (const base::KeyValue& kv : attributes) {
    if (kv.key.size() > limits.max_attribute_key_bytes) {
      return std::string(where) + " attribute key '" + kv.key.substr(0, 32) + "...' is " +
             std::to_string(kv.key.size()) + " bytes, over the limit of " +
             std::to_string(limits.max_attribute_key_bytes) + " (ingest.max_attribute_key_bytes)";
    }
    if (kv.key == base::kOrderIdKey && kv.value.string_value.size() > limits.max_order_id_bytes) {
      return std::string(where) + " attribute order_id is " +
             std::to_string(kv.value.string_value.size()) + " bytes, over the limit of " +
             std::to_string(limits.max_order_id_bytes) + " (ingest.max_order_id_bytes)";
    }
    const size_t length = ValueLength(kv.value, limits.max_attribute_value_bytes);
    if (length > limits.max_attribute_value_bytes) {
      return std::string(where) + " attribute '" + kv.key.substr(0, 64) + "' has a value over " +
             std::to_string(limits.max_attribute_value_bytes) +
             " bytes (ingest.max_attribute_value_bytes)";
    }
  }
  return "";
}

RefusalReason AttributeReason(const std::string& problem) {
  return problem.find("attribute order_id") != std::string::npos ? RefusalReason::kOrderIdTooLong
                                                                 : RefusalReason::kAttributeTooLong;
}

// Why `span` breaks the time window, or "".
std::string TimeProblem(const base::Span& span, const SpanLimits& limits, uint64_t now,
                        RefusalReason& reason) {
  const uint64_t oldest = now > limits.max_span_age_nanos ? now - limits.max_span_age_nanos : 0;
  const uint64_t newest = now > UINT64_MAX - limits.max_span_future_nanos
                              ? UINT64_MAX
                              : now + limits.max_span_future_nanos;
  for (const auto& [what, time] :
       {std::pair{"start", span.start_time_unix_nano}, std::pair{"end", span.end_time_unix_nano}}) {
    if (time < oldest) {
      reason = RefusalReason::kTooOld;
      return std::string(what) + " time " + Rfc3339(time) + " is older than " +
             Duration(limits.max_span_age_nanos) + " (ingest.max_span_age, the span retention)";
    }
    if (time > newest) {
      reason = RefusalReason::kInTheFuture;
      return std::string(what) + " time " + Rfc3339(time) + " is more than " +
             Duration(limits.max_span_future_nanos) +
             " ahead of ordertrace's clock (ingest.max_span_future)";
    }
  }
  return "";
}

// Why `span` is refused, or "".
std::string SpanProblem(const base::Span& span, const SpanLimits& limits, uint64_t now,
                        RefusalReason& reason) {
  std::string problem = TimeProblem(span, limits, now, reason);
  if (!problem.empty()) return problem;
  problem = AttributesProblem(span.attributes, limits, "span");
  for (size_t i = 0; problem.empty() && i < span.events.size(); ++i) {
    problem = AttributesProblem(span.events[i].attributes, limits, "event");
  }
  for (size_t i = 0; problem.empty() && i < span.links.size(); ++i) {
    problem = AttributesProblem(span.links[i].attributes, limits, "link");
  }
  if (!problem.empty()) reason = AttributeReason(problem);
  return problem;
}

}  // namespace

const char* RefusalReasonName(RefusalReason reason) {
  switch (reason) {
    case RefusalReason::kTooOld:
      return "too_old";
    case RefusalReason::kInTheFuture:
      return "in_the_future";
    case RefusalReason::kOrderIdTooLong:
      return "order_id_too_long";
    case RefusalReason::kAttributeTooLong:
      return "attribute_too_long";
    default:
      return "other";
  }
}

size_t ApproximateBytes(const base::Span& span) {
  size_t bytes = sizeof(base::Span) + AttributesBytes(span.attributes);
  if (span.name.size() > 15) bytes += span.name.size();
  if (span.trace_state.size() > 15) bytes += span.trace_state.size();
  for (const base::SpanEvent& event : span.events) {
    bytes += sizeof(base::SpanEvent) + event.name.size() + AttributesBytes(event.attributes);
  }
  for (const base::SpanLink& link : span.links) {
    bytes += sizeof(base::SpanLink) + link.trace_state.size() + AttributesBytes(link.attributes);
  }
  return bytes + span.status.message.size();
}

CheckedBatch CheckSpans(base::TraceBatch& batch, const SpanLimits& limits, uint64_t now_unix_nano,
                        RejectedSpans& rejected, otlp::ReceivedBytes* received) {
  CheckedBatch out;
  auto refuse = [&](const base::Span& span, RefusalReason reason, const std::string& problem) {
    ++out.refused[static_cast<size_t>(reason)];
    rejected.Add("span " + span.span_id.ToHex() + ": " + problem);
  };
  for (size_t r = 0; r < batch.resource_spans.size(); ++r) {
    base::ResourceSpans& rs = batch.resource_spans[r];
    std::string resource_problem = AttributesProblem(rs.resource.attributes, limits, "resource");
    for (size_t s = 0; s < rs.scope_spans.size(); ++s) {
      base::ScopeSpans& ss = rs.scope_spans[s];
      std::string scope_problem = resource_problem.empty()
                                      ? AttributesProblem(ss.scope.attributes, limits, "scope")
                                      : resource_problem;
      otlp::ReceivedBytes::Scope* ss_received = received ? received->MutableScope(r, s) : nullptr;
      otlp::EraseAligned(ss.spans, ss_received, [&](const base::Span& span) {
        if (!scope_problem.empty()) {
          refuse(span, AttributeReason(scope_problem), scope_problem);
          return true;
        }
        RefusalReason reason{};
        std::string problem = SpanProblem(span, limits, now_unix_nano, reason);
        if (problem.empty()) return false;
        refuse(span, reason, problem);
        return true;
      });
      out.spans += ss.spans.size();
      for (const base::Span& span : ss.spans) out.bytes += ApproximateBytes(span);
    }
    otlp::EraseAligned(rs.scope_spans, received ? received->MutableResource(r) : nullptr,
                       [](const base::ScopeSpans& ss) { return ss.spans.empty(); });
    out.bytes += sizeof(base::ResourceSpans) + AttributesBytes(rs.resource.attributes);
  }
  otlp::EraseAligned(batch.resource_spans, received ? &received->resources() : nullptr,
                     [](const base::ResourceSpans& rs) { return rs.scope_spans.empty(); });
  // The request body the spans' received bytes keep alive.
  if (received != nullptr && received->body() != nullptr) out.bytes += received->body()->size();
  return out;
}

}  // namespace ordertrace::ingest
