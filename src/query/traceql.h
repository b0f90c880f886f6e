// TraceQL, the subset Grafana's Tempo search builder writes: one spanset filter `{ ... }` whose
// conditions compare a span's attributes, its resource's, the span intrinsics `name`, `status`,
// `statusMessage`, `duration` and `kind`, or the trace intrinsics `traceDuration`, `rootName` and
// `rootServiceName` (also `trace:duration`, `trace:rootName`, `trace:rootService`) with a value,
// joined by `&&` and `||` with parentheses. A trace matches when one of its spans satisfies the
// whole filter; a trace intrinsic has the same value on every span of the trace. Anything
// outside the subset (pipelines but `| select(...)`, structural operators, several spansets,
// arithmetic, metrics functions) is refused by Parse with a message naming the part and its
// byte offset. docs/metrics.md ("TraceQL subset") has the grammar and the limits.
//
// Thread-safety: a parsed Filter is immutable and may be evaluated from any number of threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "base/span.h"

namespace re2 {
class RE2;
}  // namespace re2

namespace ordertrace::query::traceql {

// What a query may cost; each refusal is a kInvalidArgument naming the limit.
struct Limits {
  size_t max_query_bytes = 4096;
  size_t max_depth = 32;  // parentheses inside the braces
  size_t max_conditions = 64;
  size_t max_regex_bytes = 1024;
  int max_regex_program_size = 5000;  // RE2's compiled size, roughly its instructions
};

// Where an attribute is looked up: `span.x`, `resource.x`, or `.x` (either).
enum class Scope { kSpanOrResource, kSpan, kResource };

enum class Intrinsic {
  kNone,
  kName,
  kStatus,
  kStatusMessage,
  kDuration,
  kKind,
  // Of the whole trace (TraceFacts), the same for each of its spans.
  kTraceDuration,
  kRootName,
  kRootServiceName,
};

// Whether the intrinsic describes the trace rather than the span.
bool IsTraceIntrinsic(Intrinsic intrinsic);

// What the trace intrinsics compare, as query::SummarizeTrace defines them: the root span's
// name and service, and the time from the first span's start to the last span's end.
struct TraceFacts {
  std::string root_name;
  std::string root_service_name;
  uint64_t duration_nanos = 0;
};

enum class Op { kEqual, kNotEqual, kRegex, kNotRegex, kGreater, kGreaterEqual, kLess, kLessEqual };

// What a condition's left side names: an intrinsic, or an attribute in a scope.
struct Field {
  Intrinsic intrinsic = Intrinsic::kNone;
  Scope scope = Scope::kSpanOrResource;
  std::string attribute;  // when intrinsic is kNone
};

// A literal on a condition's right side.
struct Value {
  enum class Type { kString, kInt, kDouble, kBool, kDuration, kStatus, kKind, kNil };
  Type type = Type::kNil;
  std::string text;         // kString (also the pattern of =~ and !~)
  int64_t int_value = 0;    // kInt; kDuration in nanoseconds
  double double_value = 0;  // kDouble
  bool bool_value = false;  // kBool
  base::StatusCode status = base::StatusCode::kUnset;
  base::SpanKind kind = base::SpanKind::kUnspecified;
};

struct Condition {
  Field field;
  Op op = Op::kEqual;
  Value value;
  size_t offset = 0;                      // of the field in the query
  std::shared_ptr<const re2::RE2> regex;  // =~ and !~: the value, fully anchored
};

// A parsed spanset filter. Copyable (compiled regexes are shared, and immutable).
class Filter {
 public:
  // kInvalidArgument "TraceQL: ... at offset N" for a query outside the subset or the limits.
  static absl::StatusOr<Filter> Parse(std::string_view query, const Limits& limits = {});

  // Whether the span, with its resource and its trace's facts, satisfies the filter. Without
  // facts (null) a condition on a trace intrinsic does not hold, whatever its operator.
  bool Matches(const base::Span& span, const base::Resource& resource,
               const TraceFacts* trace = nullptr) const;
  // Whether one span of the batch does.
  bool MatchesAny(const base::TraceBatch& batch, const TraceFacts* trace = nullptr) const;
  // Whether a condition names a trace intrinsic: then only the whole trace's facts can tell,
  // never one stored block of it.
  bool NeedsTraceFacts() const;
  // `{}` and `{ true }`: every span matches.
  bool MatchesEverything() const;

  // The string a condition `<field> = "value"` on `attribute` (span., resource. or unscoped)
  // pins, when that condition must hold for the filter to (it sits under `&&` only).
  std::optional<std::string> PinnedValue(std::string_view attribute) const;

  // The conditions in query order; mutable so that a caller can redirect an attribute (a
  // reader who may search operator ids by their hash only) before evaluating.
  const std::vector<Condition>& conditions() const { return conditions_; }
  std::vector<Condition>& mutable_conditions() { return conditions_; }

 private:
  friend class Parser;
  struct Node {
    enum class Kind { kTrue, kFalse, kCondition, kAnd, kOr };
    Kind kind = Kind::kTrue;
    size_t condition = 0;          // kCondition: index in conditions_
    std::vector<size_t> children;  // kAnd, kOr: indexes in nodes_
  };
  bool Evaluate(size_t node, const base::Span& span, const base::Resource& resource,
                const TraceFacts* trace) const;
  void CollectPins(size_t node, std::vector<size_t>& pinned) const;

  std::vector<Condition> conditions_;
  std::vector<Node> nodes_;
  size_t root_ = 0;
};

// A TraceQL identifier as the tag endpoints take it: `resource.service.name`, `span.x`, `.x`,
// or an intrinsic (`name`, `status`, `statusMessage`, `duration`, `kind`, `traceDuration`,
// `rootName`, `rootServiceName`, and their `span:` and `trace:` spellings).
absl::StatusOr<Field> ParseField(std::string_view text);

// Tempo's words for a status and a kind ("error", "server", ...).
std::string_view StatusName(base::StatusCode code);
std::string_view KindName(base::SpanKind kind);

}  // namespace ordertrace::query::traceql
