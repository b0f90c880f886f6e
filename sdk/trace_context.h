// W3C Trace Context (https://www.w3.org/TR/trace-context/): the span context that crosses process
// boundaries, and the `traceparent` / `tracestate` headers that carry it. Parsing is strict and
// total: any input gives either a context or an error, never a crash.
// Plain values and free functions; thread-compatible (no shared state).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "base/ids.h"

namespace ordertrace::sdk {

inline constexpr char kTraceparentHeader[] = "traceparent";
inline constexpr char kTracestateHeader[] = "tracestate";

// The only trace flag defined by W3C Trace Context level 1.
inline constexpr uint8_t kTraceFlagSampled = 0x01;

// The vendor-specific `tracestate` list: ordered key=value members, at most 32, keys unique.
// Always valid: it is only built by Parse and Set, which check every member.
class TraceState {
 public:
  static constexpr size_t kMaxMembers = 32;

  TraceState() = default;

  // Parses a `tracestate` header value. Empty and whitespace-only members are allowed and
  // skipped; an invalid key or value, a duplicate key or more than 32 members is
  // kInvalidArgument (the spec says to discard such a header as a whole).
  static absl::StatusOr<TraceState> Parse(std::string_view header);

  // True for a key of the W3C grammar: `simple-key` or `tenant@system`.
  static bool IsValidKey(std::string_view key);
  // True for a value of the W3C grammar: 1 to 256 printable ASCII characters other than `,`
  // and `=`, not ending with a space.
  static bool IsValidValue(std::string_view value);

  // The header value, members joined by ",". Empty for an empty list.
  std::string ToHeader() const;

  // The value for `key`, if present.
  std::optional<std::string_view> Get(std::string_view key) const;

  // Returns a copy with `key` set to `value` and moved to the front (the spec's rule for a
  // vendor updating its own entry); when the list is full the last member is dropped.
  // kInvalidArgument for an invalid key or value.
  absl::StatusOr<TraceState> Set(std::string_view key, std::string_view value) const;

  bool empty() const { return members_.empty(); }
  size_t size() const { return members_.size(); }
  const std::vector<std::pair<std::string, std::string>>& members() const { return members_; }

  friend bool operator==(const TraceState&, const TraceState&) = default;

 private:
  std::vector<std::pair<std::string, std::string>> members_;
};

// What identifies a span to other spans and processes. Invalid (the default) when either id is
// all zero.
struct SpanContext {
  base::TraceId trace_id;
  base::SpanId span_id;
  uint8_t trace_flags = 0;
  TraceState trace_state;
  // True when the context came from another process (extracted from a carrier).
  bool is_remote = false;

  bool IsValid() const { return trace_id.IsValid() && span_id.IsValid(); }
  bool IsSampled() const { return (trace_flags & kTraceFlagSampled) != 0; }

  friend bool operator==(const SpanContext&, const SpanContext&) = default;
};

// Parses a `traceparent` header value into a remote context with an empty trace state.
// Version 00 must be exactly `00-<32 hex>-<16 hex>-<2 hex>` in lower case. A later version
// (01 to fe) must be at least that long, and anything after the first four fields must start
// with "-"; the extra fields are ignored and only the sampled flag is kept. Version ff, upper
// case hex, an all-zero trace or span id and any other deviation are kInvalidArgument.
absl::StatusOr<SpanContext> ParseTraceparent(std::string_view traceparent);

// Parses both headers as a receiver must: the traceparent decides (an error means "start a new
// trace"); an invalid tracestate is dropped and the traceparent kept.
absl::StatusOr<SpanContext> ParseTraceContext(std::string_view traceparent,
                                              std::string_view tracestate);

// Formats `context` as a version 00 traceparent; the empty string for an invalid context.
std::string FormatTraceparent(const SpanContext& context);

}  // namespace ordertrace::sdk
