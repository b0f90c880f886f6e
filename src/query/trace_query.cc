#include "query/trace_query.h"

#include <algorithm>
#include <limits>
#include <set>
#include <unordered_set>

#include "lifecycle/order_record_builder.h"
#include "otlp/proto_codec.h"

namespace ordertrace::query {
namespace {

// Tag and value listings look at this many recent blocks at most.
constexpr size_t kTagScanBlocks = 5000;
constexpr size_t kMaxTagValues = 1000;

struct SpanIdHash {
  size_t operator()(const base::SpanId& id) const {
    size_t h = 0;
    for (uint8_t b : id.bytes) h = h * 131 + b;
    return h;
  }
};

std::string StatusText(base::StatusCode code) {
  switch (code) {
    case base::StatusCode::kError:
      return "error";
    case base::StatusCode::kOk:
      return "ok";
    default:
      return "unset";
  }
}

bool TagHolds(const base::Span& span, const base::Resource& resource, const std::string& key,
              const std::string& value) {
  if (key == "name" || key == "span.name") return span.name == value;
  if (key == "status") return StatusText(span.status.code) == value;
  const base::AnyValue* v = base::FindAttribute(span.attributes, key);
  if (v == nullptr) v = base::FindAttribute(resource.attributes, key);
  return v != nullptr && v->AsText() == value;
}

bool SpanMatches(const base::Span& span, const base::Resource& resource, const TraceSearch& search,
                 const traceql::TraceFacts* trace) {
  for (const auto& [key, value] : search.tags) {
    if (!TagHolds(span, resource, key, value)) return false;
  }
  return !search.traceql || search.traceql->Matches(span, resource, trace);
}

// Whether the TraceQL filter asks about the whole trace (traceDuration, rootName,
// rootServiceName): then no one stored block can tell, only the merged trace.
bool NeedsTraceFacts(const TraceSearch& search) {
  return search.traceql && search.traceql->NeedsTraceFacts();
}

traceql::TraceFacts FactsOf(const TraceSummary& summary) {
  return traceql::TraceFacts{summary.root_span_name, summary.root_service_name,
                             summary.duration_nanos};
}

// Whether a block must be decoded to tell: not when nothing is asked of its spans.
bool FiltersSpans(const TraceSearch& search) {
  return !search.tags.empty() || (search.traceql && !search.traceql->MatchesEverything());
}

// The order id the search pins, whose order record names the candidate traces.
std::optional<std::string> PinnedOrderId(const TraceSearch& search) {
  for (const auto& [key, value] : search.tags) {
    if (key == lifecycle::kOrderIdKey) return value;
  }
  if (search.traceql) return search.traceql->PinnedValue(lifecycle::kOrderIdKey);
  return std::nullopt;
}

// `trace`: the facts of the batch's whole trace, or null when the search needs none.
bool BatchMatches(const base::TraceBatch& batch, const TraceSearch& search,
                  const traceql::TraceFacts* trace = nullptr) {
  for (const base::ResourceSpans& rs : batch.resource_spans) {
    for (const base::ScopeSpans& ss : rs.scope_spans) {
      for (const base::Span& span : ss.spans) {
        if (SpanMatches(span, rs.resource, search, trace)) return true;
      }
    }
  }
  return false;
}

std::vector<TraceSummary> NewestFirst(std::vector<TraceSummary> results) {
  std::sort(results.begin(), results.end(), [](const TraceSummary& a, const TraceSummary& b) {
    return a.start_unix_nano > b.start_unix_nano;
  });
  return results;
}

// The time window a search reads: [start, end], defaulting to the last
// default_search_window_nanos; `windowed` false when an order search set no window itself (an
// order is found whatever its age).
struct SearchWindow {
  uint64_t start = 0;
  uint64_t end = 0;
  bool windowed = true;
};

SearchWindow WindowOf(const TraceSearch& search, bool pins_order, uint64_t now,
                      uint64_t default_window) {
  SearchWindow window;
  window.end = search.end_unix_nano != 0 ? search.end_unix_nano : now;
  window.start = search.start_unix_nano != 0
                     ? search.start_unix_nano
                     : (window.end > default_window ? window.end - default_window : 0);
  window.windowed = !pins_order || search.start_unix_nano != 0 || search.end_unix_nano != 0;
  return window;
}

// One run of TraceQuery::Search: the traces already considered, the results so far and the
// first error. Candidates come either from an order's record (ByOrder) or from a scan of the
// window's blocks (ByScan); each is read whole once, judged, scoped and kept.
class SearchRun {
 public:
  SearchRun(TraceQuery& query, store::Store& store, const TraceSearch& search, SearchWindow window,
            SearchStats& read)
      : query_(query),
        store_(store),
        search_(search),
        window_(window),
        read_(read),
        needs_trace_facts_(NeedsTraceFacts(search)) {}

  // The traces the order's record names: no scan.
  absl::Status ByOrder(const std::string& order_id) {
    absl::StatusOr<std::optional<model::OrderRecord>> order = store_.GetOrder(order_id);
    if (!order.ok()) return order.status();
    if (!order->has_value()) return absl::OkStatus();
    for (const base::TraceId& trace_id : (*order)->trace_ids) {
      if (!considered_.insert(trace_id).second) continue;
      ++read_.inspected_traces;
      absl::StatusOr<std::optional<base::TraceBatch>> trace = query_.GetTrace(trace_id);
      if (!trace.ok()) return trace.status();
      if (!trace->has_value()) continue;
      const TraceSummary summary = SummarizeTrace(trace_id, **trace);
      if (!WholeTraceMatches(**trace, summary)) continue;
      if (!InScope(trace_id)) {
        if (!error_.ok()) return error_;
        continue;
      }
      if (!Keep(summary)) break;
    }
    return absl::OkStatus();
  }

  // The window's blocks, at most `max_scanned_blocks`. A block is judged alone unless the filter
  // needs the whole trace; then Consider judges the trace.
  absl::Status ByScan(size_t max_scanned_blocks) {
    const bool filters_spans = FiltersSpans(search_) && !needs_trace_facts_;
    absl::Status scan = store_.ScanBlocks(
        window_.start, window_.end, [&](const base::TraceId& trace_id, std::string_view encoded) {
          if (read_.scanned_blocks >= max_scanned_blocks) {
            read_.scan_limit_reached = true;
            return false;
          }
          ++read_.scanned_blocks;
          if (considered_.count(trace_id) != 0) return true;
          if (filters_spans) {
            absl::StatusOr<otlp::DecodedRequest> block = otlp::DecodeProtobufRequest(encoded);
            if (!block.ok() || !BatchMatches(block->batch, search_)) return true;
          }
          return Consider(trace_id);
        });
    if (!error_.ok()) return error_;
    return scan;
  }

  std::vector<TraceSummary> TakeNewestFirst() { return NewestFirst(std::move(results_)); }

 private:
  // Keeps a trace that passes the window and duration filters; false once `limit` is reached.
  bool Keep(const TraceSummary& s) {
    // The store scans whole buckets; keep traces that started inside the window.
    if (window_.windowed &&
        (s.start_unix_nano < window_.start || s.start_unix_nano > window_.end)) {
      return true;
    }
    if (s.duration_nanos < search_.min_duration_nanos) return true;
    if (search_.max_duration_nanos != 0 && s.duration_nanos > search_.max_duration_nanos) {
      return true;
    }
    results_.push_back(s);
    return results_.size() < search_.limit;
  }

  // Whether the search's scope sees the trace; false (and error_) when that cannot be told.
  bool InScope(const base::TraceId& trace_id) {
    if (search_.scope == nullptr) return true;
    absl::StatusOr<bool> sees = search_.scope->Sees(trace_id);
    if (!sees.ok()) error_ = sees.status();
    return sees.ok() && *sees;
  }

  // Whether the whole trace satisfies the search, given its summary (whose facts the
  // trace-level conditions read).
  bool WholeTraceMatches(const base::TraceBatch& trace, const TraceSummary& summary) const {
    if (!needs_trace_facts_) return BatchMatches(trace, search_);
    const traceql::TraceFacts facts = FactsOf(summary);
    return BatchMatches(trace, search_, &facts);
  }

  // Reads a trace the scan named, once; with trace facts needed, the whole trace is judged here
  // (the block alone could not be). False stops the scan.
  bool Consider(const base::TraceId& trace_id) {
    if (!considered_.insert(trace_id).second) return true;
    if (!InScope(trace_id)) return error_.ok();
    ++read_.inspected_traces;
    absl::StatusOr<std::optional<base::TraceBatch>> trace = query_.GetTrace(trace_id);
    if (!trace.ok()) {
      error_ = trace.status();
      return false;
    }
    if (!trace->has_value()) return true;
    const TraceSummary summary = SummarizeTrace(trace_id, **trace);
    if (needs_trace_facts_ && !WholeTraceMatches(**trace, summary)) return true;
    return Keep(summary);
  }

  TraceQuery& query_;
  store::Store& store_;
  const TraceSearch& search_;
  const SearchWindow window_;
  SearchStats& read_;
  const bool needs_trace_facts_;
  std::set<base::TraceId> considered_;
  std::vector<TraceSummary> results_;
  absl::Status error_ = absl::OkStatus();
};

}  // namespace

TraceSummary SummarizeTrace(const base::TraceId& trace_id, const base::TraceBatch& trace) {
  TraceSummary summary;
  summary.trace_id = trace_id;
  uint64_t start = std::numeric_limits<uint64_t>::max();
  uint64_t end = 0;
  const base::Span* root = nullptr;
  const base::Resource* root_resource = nullptr;
  for (const base::ResourceSpans& rs : trace.resource_spans) {
    for (const base::ScopeSpans& ss : rs.scope_spans) {
      for (const base::Span& span : ss.spans) {
        ++summary.span_count;
        start = std::min(start, span.start_time_unix_nano);
        end = std::max(end, span.end_time_unix_nano);
        bool is_root = !span.parent_span_id.IsValid();
        bool root_is_root = root != nullptr && !root->parent_span_id.IsValid();
        // The root is the parentless span; lacking one, the earliest span stands in.
        if (root == nullptr || (is_root && !root_is_root) ||
            (is_root == root_is_root && span.start_time_unix_nano < root->start_time_unix_nano)) {
          root = &span;
          root_resource = &rs.resource;
        }
      }
    }
  }
  if (root != nullptr) {
    summary.root_span_name = root->name;
    summary.root_service_name = base::ServiceName(*root_resource);
    summary.start_unix_nano = start;
    summary.duration_nanos = end > start ? end - start : 0;
  }
  return summary;
}

TraceQuery::TraceQuery(store::Store& store, const base::Clock& clock, TraceQueryOptions options)
    : store_(store), clock_(clock), options_(options) {}

absl::StatusOr<std::optional<base::TraceBatch>> TraceQuery::GetTrace(
    const base::TraceId& trace_id) {
  absl::StatusOr<std::vector<std::string>> blocks = store_.ReadTrace(trace_id);
  if (!blocks.ok()) return blocks.status();
  if (blocks->empty()) return std::optional<base::TraceBatch>();

  base::TraceBatch merged;
  std::unordered_set<base::SpanId, SpanIdHash> seen;
  for (const std::string& encoded : *blocks) {
    absl::StatusOr<otlp::DecodedRequest> block = otlp::DecodeProtobufRequest(encoded);
    if (!block.ok()) {
      return absl::DataLossError("a stored block of trace " + trace_id.ToHex() + " is corrupt");
    }
    for (base::ResourceSpans& rs : block->batch.resource_spans) {
      auto same_resource =
          std::find_if(merged.resource_spans.begin(), merged.resource_spans.end(),
                       [&](const base::ResourceSpans& m) {
                         return m.resource == rs.resource && m.schema_url == rs.schema_url;
                       });
      if (same_resource == merged.resource_spans.end()) {
        merged.resource_spans.push_back(base::ResourceSpans{rs.resource, rs.schema_url, {}});
        same_resource = merged.resource_spans.end() - 1;
      }
      for (base::ScopeSpans& ss : rs.scope_spans) {
        auto same_scope =
            std::find_if(same_resource->scope_spans.begin(), same_resource->scope_spans.end(),
                         [&](const base::ScopeSpans& m) {
                           return m.scope == ss.scope && m.schema_url == ss.schema_url;
                         });
        if (same_scope == same_resource->scope_spans.end()) {
          same_resource->scope_spans.push_back(base::ScopeSpans{ss.scope, ss.schema_url, {}});
          same_scope = same_resource->scope_spans.end() - 1;
        }
        for (base::Span& span : ss.spans) {
          if (seen.insert(span.span_id).second) same_scope->spans.push_back(std::move(span));
        }
      }
    }
  }
  for (base::ResourceSpans& rs : merged.resource_spans) {
    for (base::ScopeSpans& ss : rs.scope_spans) {
      std::stable_sort(ss.spans.begin(), ss.spans.end(),
                       [](const base::Span& a, const base::Span& b) {
                         return a.start_time_unix_nano < b.start_time_unix_nano;
                       });
    }
  }
  return std::optional<base::TraceBatch>(std::move(merged));
}

absl::StatusOr<std::vector<TraceSummary>> TraceQuery::Search(const TraceSearch& search,
                                                             SearchStats* stats) {
  SearchStats local_stats;
  SearchStats& read = stats != nullptr ? *stats : local_stats;
  read = SearchStats{};
  const std::optional<std::string> order_id = PinnedOrderId(search);
  const SearchWindow window = WindowOf(search, order_id.has_value(), clock_.NowUnixNano(),
                                       options_.default_search_window_nanos);
  SearchRun run(*this, store_, search, window, read);
  absl::Status status = order_id ? run.ByOrder(*order_id) : run.ByScan(options_.max_scanned_blocks);
  if (!status.ok()) return status;
  return run.TakeNewestFirst();
}

absl::Status TraceQuery::VisitRecentSpans(
    const std::function<bool(const base::Span&, const base::Resource&)>& visit, TraceScope* scope) {
  uint64_t now = clock_.NowUnixNano();
  uint64_t start =
      now > options_.default_search_window_nanos ? now - options_.default_search_window_nanos : 0;
  size_t scanned = 0;
  absl::Status error = absl::OkStatus();
  absl::Status scan =
      store_.ScanBlocks(start, now, [&](const base::TraceId& trace_id, std::string_view encoded) {
        if (scope != nullptr) {
          absl::StatusOr<bool> sees = scope->Sees(trace_id);
          if (!sees.ok()) {
            error = sees.status();
            return false;
          }
          if (!*sees) return ++scanned < kTagScanBlocks;
        }
        absl::StatusOr<otlp::DecodedRequest> block = otlp::DecodeProtobufRequest(encoded);
        if (block.ok()) {
          for (const base::ResourceSpans& rs : block->batch.resource_spans) {
            for (const base::ScopeSpans& ss : rs.scope_spans) {
              for (const base::Span& span : ss.spans) {
                if (!visit(span, rs.resource)) return false;
              }
            }
          }
        }
        return ++scanned < kTagScanBlocks;
      });
  return error.ok() ? scan : error;
}

absl::StatusOr<std::vector<std::string>> TraceQuery::TagNames(TraceScope* scope) {
  std::set<std::string> names = {"name", "status"};
  absl::Status s = VisitRecentSpans(
      [&](const base::Span& span, const base::Resource& resource) {
        for (const base::KeyValue& kv : resource.attributes) names.insert(kv.key);
        for (const base::KeyValue& kv : span.attributes) names.insert(kv.key);
        return names.size() < kMaxTagValues;
      },
      scope);
  if (!s.ok()) return s;
  return std::vector<std::string>(names.begin(), names.end());
}

absl::StatusOr<std::vector<std::string>> TraceQuery::TagValues(const std::string& tag,
                                                               TraceScope* scope) {
  std::set<std::string> values;
  absl::Status s = VisitRecentSpans(
      [&](const base::Span& span, const base::Resource& resource) {
        if (tag == "name" || tag == "span.name") {
          values.insert(span.name);
        } else if (tag == "status") {
          values.insert(StatusText(span.status.code));
        } else {
          const base::AnyValue* v = base::FindAttribute(span.attributes, tag);
          if (v == nullptr) v = base::FindAttribute(resource.attributes, tag);
          if (v != nullptr) values.insert(v->AsText());
        }
        return values.size() < kMaxTagValues;
      },
      scope);
  if (!s.ok()) return s;
  return std::vector<std::string>(values.begin(), values.end());
}

absl::StatusOr<ScopedTagNames> TraceQuery::TagNamesByScope(TraceScope* scope) {
  std::set<std::string> resource_names;
  std::set<std::string> span_names;
  absl::Status s = VisitRecentSpans(
      [&](const base::Span& span, const base::Resource& resource) {
        for (const base::KeyValue& kv : resource.attributes) resource_names.insert(kv.key);
        for (const base::KeyValue& kv : span.attributes) span_names.insert(kv.key);
        return resource_names.size() + span_names.size() < kMaxTagValues;
      },
      scope);
  if (!s.ok()) return s;
  return ScopedTagNames{{resource_names.begin(), resource_names.end()},
                        {span_names.begin(), span_names.end()}};
}

namespace {

// An attribute value as Tempo's v2 tag values type it; nullopt for arrays, maps and bytes.
std::optional<TypedTagValue> Typed(const base::AnyValue& v) {
  switch (v.type) {
    case base::AnyValue::Type::kString:
      return TypedTagValue{"string", v.string_value};
    case base::AnyValue::Type::kInt:
      return TypedTagValue{"int", v.AsText()};
    case base::AnyValue::Type::kDouble:
      return TypedTagValue{"float", v.AsText()};
    case base::AnyValue::Type::kBool:
      return TypedTagValue{"bool", v.AsText()};
    default:
      return std::nullopt;
  }
}

}  // namespace

absl::StatusOr<std::vector<TypedTagValue>> TraceQuery::TypedTagValues(const traceql::Field& field,
                                                                      TraceScope* scope) {
  std::set<TypedTagValue> values;
  if (field.intrinsic == traceql::Intrinsic::kDuration ||
      field.intrinsic == traceql::Intrinsic::kTraceDuration) {
    return std::vector<TypedTagValue>();
  }
  auto add = [&](const base::AnyValue* v) {
    if (v == nullptr) return;
    if (std::optional<TypedTagValue> typed = Typed(*v)) values.insert(std::move(*typed));
  };
  absl::Status s = VisitRecentSpans(
      [&](const base::Span& span, const base::Resource& resource) {
        switch (field.intrinsic) {
          case traceql::Intrinsic::kName:
            values.insert({"string", span.name});
            break;
          case traceql::Intrinsic::kStatusMessage:
            if (!span.status.message.empty()) values.insert({"string", span.status.message});
            break;
          case traceql::Intrinsic::kStatus:
            values.insert({"keyword", std::string(traceql::StatusName(span.status.code))});
            break;
          case traceql::Intrinsic::kKind:
            values.insert({"keyword", std::string(traceql::KindName(span.kind))});
            break;
          // A parentless span is its trace's root (a trace whose root is lost is not listed).
          case traceql::Intrinsic::kRootName:
            if (!span.parent_span_id.IsValid()) values.insert({"string", span.name});
            break;
          case traceql::Intrinsic::kRootServiceName:
            if (!span.parent_span_id.IsValid()) {
              values.insert({"string", base::ServiceName(resource)});
            }
            break;
          case traceql::Intrinsic::kDuration:
          case traceql::Intrinsic::kTraceDuration:
            break;
          case traceql::Intrinsic::kNone:
            if (field.scope != traceql::Scope::kResource) {
              add(base::FindAttribute(span.attributes, field.attribute));
            }
            if (field.scope != traceql::Scope::kSpan) {
              add(base::FindAttribute(resource.attributes, field.attribute));
            }
            break;
        }
        return values.size() < kMaxTagValues;
      },
      scope);
  if (!s.ok()) return s;
  return std::vector<TypedTagValue>(values.begin(), values.end());
}

}  // namespace ordertrace::query
