// Reads traces back from the store and searches them, in the shape Tempo's API needs.
// Knows nothing about HTTP. Thread-safe (the store is).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "base/clock.h"
#include "base/span.h"
#include "query/partner_scope.h"
#include "query/traceql.h"
#include "store/store.h"

namespace ordertrace::query {

struct TraceSearch {
  // Every tag must hold on one span (its attributes, its resource's, or the special keys
  // `name` / `span.name` for the span name and `status` for error/ok/unset).
  std::vector<std::pair<std::string, std::string>> tags;
  // A TraceQL spanset filter that the same span must satisfy too (nullopt: none). When it pins
  // `order_id` with `=` under `&&` only, the order index names the candidate traces. When it
  // asks about the trace (traceDuration, rootName, rootServiceName) each candidate trace is
  // read whole and judged with its SummarizeTrace facts instead of block by block.
  std::optional<traceql::Filter> traceql;
  uint64_t min_duration_nanos = 0;
  uint64_t max_duration_nanos = 0;  // 0: no upper bound
  // 0: `default_window` before now; but a search by order id with neither start nor end set
  // finds the order's traces whatever their age.
  uint64_t start_unix_nano = 0;
  uint64_t end_unix_nano = 0;  // 0: now
  size_t limit = 20;
  // Only traces this scope sees (borrowed for the call; null: every trace).
  TraceScope* scope = nullptr;
};

struct TraceSummary {
  base::TraceId trace_id;
  std::string root_service_name;
  std::string root_span_name;
  uint64_t start_unix_nano = 0;
  uint64_t duration_nanos = 0;
  size_t span_count = 0;
};

// What one search read.
struct SearchStats {
  size_t scanned_blocks = 0;    // blocks the scan visited (never above max_scanned_blocks)
  size_t inspected_traces = 0;  // candidate traces read whole
  bool scan_limit_reached = false;
};

// Attribute keys by where they were seen.
struct ScopedTagNames {
  std::vector<std::string> resource;
  std::vector<std::string> span;
};

// A value of a tag with its TraceQL type, as Tempo's v2 tag values name it: "string", "int",
// "float", "bool", or "keyword" (status and kind).
struct TypedTagValue {
  std::string type;
  std::string value;
  friend bool operator<(const TypedTagValue& a, const TypedTagValue& b) {
    return std::tie(a.value, a.type) < std::tie(b.value, b.type);
  }
};

struct TraceQueryOptions {
  uint64_t default_search_window_nanos = 24ULL * 3600 * base::kNanosPerSecond;
  // A search decodes at most this many blocks, so one query cannot hold the store for long.
  size_t max_scanned_blocks = 200'000;
};

class TraceQuery {
 public:
  TraceQuery(store::Store& store, const base::Clock& clock, TraceQueryOptions options = {});

  // The whole trace, spans merged from every block (a span stored twice appears once),
  // grouped by resource and scope. nullopt when the store has no span of it.
  absl::StatusOr<std::optional<base::TraceBatch>> GetTrace(const base::TraceId& trace_id);

  // Traces with a span that satisfies every tag and the TraceQL filter, newest first. `stats`
  // (optional) is filled with what the search read.
  absl::StatusOr<std::vector<TraceSummary>> Search(const TraceSearch& search,
                                                   SearchStats* stats = nullptr);

  // Attribute keys (span and resource) seen in recent blocks, and the values of one key.
  // With a scope, only the spans of traces it sees count.
  absl::StatusOr<std::vector<std::string>> TagNames(TraceScope* scope = nullptr);
  absl::StatusOr<std::vector<std::string>> TagValues(const std::string& tag,
                                                     TraceScope* scope = nullptr);
  // The same, split by scope (Tempo's v2 tags); intrinsics are not listed.
  absl::StatusOr<ScopedTagNames> TagNamesByScope(TraceScope* scope = nullptr);
  // The values of a TraceQL field (`resource.x`, `span.x`, `.x`, `name`, `status`, `kind`,
  // `statusMessage`, and `rootName` / `rootServiceName` from parentless spans) with their types,
  // sorted by value; `duration` and `traceDuration` have none.
  absl::StatusOr<std::vector<TypedTagValue>> TypedTagValues(const traceql::Field& field,
                                                            TraceScope* scope = nullptr);

 private:
  // Calls `visit` for spans of the recent search window, a bounded number of blocks, until it
  // returns false.
  absl::Status VisitRecentSpans(
      const std::function<bool(const base::Span&, const base::Resource&)>& visit,
      TraceScope* scope);

  store::Store& store_;
  const base::Clock& clock_;
  const TraceQueryOptions options_;
};

// What a trace looks like from above: root span, first start, last end.
TraceSummary SummarizeTrace(const base::TraceId& trace_id, const base::TraceBatch& trace);

}  // namespace ordertrace::query
