#include "server/api_server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <set>

#include "absl/time/time.h"
#include "http/router.h"
#include "lifecycle/order_record_builder.h"
#include "otlp/json_codec.h"
#include "otlp/proto_codec.h"
#include "query/gap_marks.h"
#include "query/stuck_orders.h"
#include "server/api_json.h"
#include "server/charts_json.h"
#include "server/config.h"
#include "server/status_mapping.h"

namespace ordertrace::server {
namespace {

using nlohmann::json;

constexpr size_t kMaxListLimit = 1000;
// /api/v1/gaps/counts counts at most this many gaps (then says it stopped).
constexpr size_t kMaxCountedGaps = 200000;
constexpr size_t kMaxSearchLimit = 1000;

void Reply(http::Response& res, int status, const json& body) {
  res.status = status;
  // Paths, ids and attribute values come from clients and need not be UTF-8: bad bytes are
  // replaced (U+FFFD) rather than thrown about.
  res.SetContent(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void ReplyError(http::Response& res, int status, const std::string& message) {
  Reply(res, status, ErrorJson(status, message));
}

// Whether the request's Host names this API: a loopback address, localhost, or one of
// `allowed`. A page on another site that a DNS rebinding points here sends its own name. A
// request without Host (HTTP/1.0 tools) is let through: browsers always send one.
bool HostAllowed(const http::Request& req, const std::vector<std::string>& allowed) {
  if (!req.HasHeader("Host")) return true;
  std::string host = req.Header("Host");
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    host = host.substr(1, close == std::string::npos ? std::string::npos : close - 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (base::IsLoopbackHost(host)) return true;
  return std::find(allowed.begin(), allowed.end(), host) != allowed.end();
}

// Unknown paths, and the listener's own refusals (busy, too large, malformed HTTP).
void WriteError(const http::Request&, http::Response& res, int status, const std::string& message) {
  ReplyError(res, status, message);
}

void ReplyStoreError(http::Response& res, const absl::Status& status) {
  spdlog::error("query failed: {}", status.ToString());
  ReplyError(res, HttpStatusFor(status) == 400 ? 400 : 500, std::string(status.message()));
}

// A non-negative integer parameter; `fallback` when absent.
absl::StatusOr<uint64_t> UintParam(const http::Request& req, const char* name, uint64_t fallback) {
  if (!req.HasParam(name)) return fallback;
  std::string v = req.Param(name);
  uint64_t out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size() || v.empty()) {
    return absl::InvalidArgumentError(std::string(name) + " must be a non-negative integer");
  }
  return out;
}

// Durations as Tempo takes them: Go syntax ("1.5s" is not supported; "1500ms" is).
absl::StatusOr<uint64_t> DurationParam(const http::Request& req, const char* name) {
  if (!req.HasParam(name) || req.Param(name).empty()) return uint64_t{0};
  absl::StatusOr<uint64_t> d = ParseDurationNanos(req.Param(name));
  if (!d.ok())
    return absl::InvalidArgumentError(std::string(name) + ": " + std::string(d.status().message()));
  return d;
}

// A time parameter (ParseTimeParam); 0 when absent or empty.
absl::StatusOr<uint64_t> TimeParam(const http::Request& req, const char* name) {
  if (!req.HasParam(name) || req.Param(name).empty()) return uint64_t{0};
  absl::StatusOr<uint64_t> t = ParseTimeParam(req.Param(name));
  if (!t.ok()) {
    return absl::InvalidArgumentError(std::string(name) + ": " + std::string(t.status().message()));
  }
  return t;
}

// GET /api/v1/gaps's parameters as a history query.
absl::StatusOr<gaps::GapHistoryQuery> GapHistoryQueryOf(const http::Request& req) {
  gaps::GapHistoryQuery query;
  const std::string state = req.HasParam("state") ? req.Param("state") : "open";
  if (state == "open") {
    query.state = gaps::GapHistoryQuery::State::kOpen;
  } else if (state == "resolved") {
    query.state = gaps::GapHistoryQuery::State::kResolved;
  } else if (state == "all") {
    query.state = gaps::GapHistoryQuery::State::kAll;
  } else {
    return absl::InvalidArgumentError("state must be open, resolved or all");
  }
  query.kind = req.Param("kind");
  query.stage = req.Param("stage");
  query.partner_id = req.Param("partner_id");
  query.order_id = req.Param("order_id");
  query.cursor = req.Param("cursor");
  absl::StatusOr<uint64_t> from = TimeParam(req, "from");
  if (!from.ok()) return from.status();
  absl::StatusOr<uint64_t> to = TimeParam(req, "to");
  if (!to.ok()) return to.status();
  if (*from != 0 && *to != 0 && *from > *to) {
    return absl::InvalidArgumentError("from must not be after to");
  }
  query.since_from_unix_nano = *from;
  query.since_to_unix_nano = *to;
  absl::StatusOr<uint64_t> limit = UintParam(req, "limit", 100);
  if (!limit.ok() || *limit == 0 || *limit > kMaxListLimit) {
    return absl::InvalidArgumentError("limit must be an integer from 1 to " +
                                      std::to_string(kMaxListLimit));
  }
  query.limit = *limit;
  return query;
}

// The page of gaps `query` finds at `cursor`, as the orders they name.
absl::StatusOr<query::OpenGapPage> OpenGapPageOf(gaps::GapStore& history,
                                                 gaps::GapHistoryQuery query,
                                                 const std::string& cursor) {
  query.cursor = cursor;
  query.limit = kMaxListLimit;
  absl::StatusOr<gaps::GapPage> page = history.Query(query);
  if (!page.ok()) return page.status();
  query::OpenGapPage orders;
  for (const gaps::Gap& gap : page->gaps) orders.order_ids.push_back(gap.order_id);
  orders.next_cursor = page->next_cursor;
  return orders;
}

// An order's record, without its timeline.
absl::StatusOr<std::optional<model::OrderRecord>> ReadOrderRecord(query::OrderQuery& orders,
                                                                  const std::string& order_id) {
  absl::StatusOr<std::optional<query::OrderView>> view = orders.GetOrder(order_id);
  if (!view.ok()) return view.status();
  if (!view->has_value()) return std::optional<model::OrderRecord>();
  return std::optional<model::OrderRecord>(std::move((*view)->record));
}

// Whether `history` holds a gap, open or resolved, of the order.
absl::StatusOr<bool> OrderHadGap(gaps::GapStore& history, const std::string& order_id) {
  gaps::GapHistoryQuery query;
  query.state = gaps::GapHistoryQuery::State::kAll;
  query.order_id = order_id;
  query.limit = 1;
  absl::StatusOr<gaps::GapPage> page = history.Query(query);
  if (!page.ok()) return page.status();
  return !page->gaps.empty();
}

// The request as the audit log keeps it: the decoded path, and the query with the values of
// parameters and search tags that name what was read (ids, states, times), while any other
// value (a tag such as customer.email=...) is written as "*": a query may carry what ingest
// never stores.
std::string AuditTarget(const http::Request& req) {
  static const std::set<std::string, std::less<>> kKeptParams = {
      "state",  "kind", "stage", "partner_id",  "order_id",    "status", "limit",
      "cursor", "from", "to",    "minDuration", "maxDuration", "start",  "end"};
  static const std::set<std::string, std::less<>> kKeptTags = {
      "order_id", "partner_id",       "service.name", "name",        "span.name",
      "status",   "operator_id.hash", "new_status",   "prev_status", "current_status"};
  std::string out = req.path;
  char separator = '?';
  for (const auto& [name, value] : req.query) {
    out.push_back(separator);
    separator = '&';
    out += name;
    out.push_back('=');
    if (name == "tags") {
      absl::StatusOr<std::vector<std::pair<std::string, std::string>>> tags =
          ParseLogfmtTags(value);
      if (!tags.ok()) {
        out.push_back('*');
        continue;
      }
      for (size_t i = 0; i < tags->size(); ++i) {
        const auto& [key, tag_value] = (*tags)[i];
        if (i > 0) out.push_back(' ');
        out += key + "=" + (kKeptTags.count(key) != 0 ? tag_value : std::string("*"));
      }
    } else {
      out += kKeptParams.count(name) != 0 ? value : std::string("*");
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<uint64_t> ParseTimeParam(std::string_view text) {
  if (text.empty()) return absl::InvalidArgumentError("empty time");
  if (text.find_first_not_of("0123456789") == std::string_view::npos) {
    uint64_t out = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    if (ec != std::errc() || p != text.data() + text.size()) {
      return absl::InvalidArgumentError("unix nanoseconds out of range");
    }
    return out;
  }
  absl::Time time;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, std::string(text), &time, &error)) {
    return absl::InvalidArgumentError(
        "expected unix nanoseconds or an RFC 3339 time like 2026-11-24T03:04:05Z");
  }
  if (time < absl::UnixEpoch()) return absl::InvalidArgumentError("a time before 1970");
  return static_cast<uint64_t>(absl::ToUnixNanos(time));
}

std::optional<base::TraceId> ParseTraceIdParam(std::string_view text) {
  if (text.empty() || text.size() > 32) return std::nullopt;
  std::string padded(32 - text.size(), '0');
  padded.append(text);
  auto id = base::TraceId::FromHex(padded);
  if (!id || !id->IsValid()) return std::nullopt;
  return id;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseLogfmtTags(
    std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t i = 0;
  auto skip_spaces = [&] {
    while (i < text.size() && text[i] == ' ') ++i;
  };
  skip_spaces();
  while (i < text.size()) {
    size_t eq = text.find('=', i);
    size_t space = text.find(' ', i);
    if (eq == std::string_view::npos || (space != std::string_view::npos && space < eq)) {
      return absl::InvalidArgumentError("tags must be key=value pairs separated by spaces");
    }
    std::string key(text.substr(i, eq - i));
    if (key.empty()) return absl::InvalidArgumentError("a tag has an empty key");
    i = eq + 1;
    std::string value;
    if (i < text.size() && text[i] == '"') {
      ++i;
      bool closed = false;
      while (i < text.size()) {
        char c = text[i++];
        if (c == '\\' && i < text.size()) {
          value.push_back(text[i++]);
        } else if (c == '"') {
          closed = true;
          break;
        } else {
          value.push_back(c);
        }
      }
      if (!closed) return absl::InvalidArgumentError("a quoted tag value is not closed");
    } else {
      size_t end = text.find(' ', i);
      if (end == std::string_view::npos) end = text.size();
      value = std::string(text.substr(i, end - i));
      i = end;
    }
    out.emplace_back(std::move(key), std::move(value));
    skip_spaces();
  }
  return out;
}

namespace {

// The TraceQL filter of a search (`q=`) for a reader. As with tags=, a condition on operator_id
// compares with its hash unless the reader sees clear ids and does not give a hash.
absl::StatusOr<query::traceql::Filter> ReaderTraceQl(const std::string& q, bool sees_operator_ids) {
  absl::StatusOr<query::traceql::Filter> filter = query::traceql::Filter::Parse(q);
  if (!filter.ok()) return filter;
  for (query::traceql::Condition& c : filter->mutable_conditions()) {
    if (c.field.intrinsic != query::traceql::Intrinsic::kNone ||
        c.field.attribute != scrub::kOperatorIdAttribute) {
      continue;
    }
    if (!sees_operator_ids || c.value.text.rfind("hmac:", 0) == 0) {
      c.field.attribute = std::string(scrub::kOperatorIdHashAttribute);
    }
  }
  return filter;
}

// Tempo's v2 tag scopes: `all` (the default) lists resource, span and intrinsic tags; event,
// link and instrumentation exist in Tempo and hold nothing here.
absl::StatusOr<json> ScopedTagsJson(
    const std::string& scope, const std::function<absl::StatusOr<query::ScopedTagNames>()>& read) {
  static const std::set<std::string, std::less<>> kEmptyScopes = {"event", "link",
                                                                  "instrumentation"};
  const bool all = scope.empty() || scope == "all";
  json scopes = json::array();
  if (kEmptyScopes.count(scope) != 0) {
    scopes.push_back({{"name", scope}, {"tags", json::array()}});
    return scopes;
  }
  if (!all && scope != "resource" && scope != "span" && scope != "intrinsic") {
    return absl::InvalidArgumentError(
        "scope must be resource, span, intrinsic, event, link, instrumentation or all");
  }
  if (all || scope == "resource" || scope == "span") {
    absl::StatusOr<query::ScopedTagNames> names = read();
    if (!names.ok()) return names.status();
    if (all || scope == "resource") {
      scopes.push_back({{"name", "resource"}, {"tags", names->resource}});
    }
    if (all || scope == "span") scopes.push_back({{"name", "span"}, {"tags", names->span}});
  }
  if (all || scope == "intrinsic") {
    scopes.push_back(
        {{"name", "intrinsic"},
         {"tags", json::array({"duration", "kind", "name", "rootName", "rootServiceName", "status",
                               "statusMessage", "traceDuration"})}});
  }
  return scopes;
}

// The search's filter: TraceQL (`q=`) or logfmt tags (`tags=`), operator ids compared as the
// reader may see them. `order_id` is set to the order the filter names, for the audit line.
absl::Status ReadSearchFilter(const http::Request& req, bool sees_operator_ids,
                              query::TraceSearch& search, std::string& order_id) {
  // Tempo's `spss` (spans per span set) is accepted and ignored: no span sets are sent.
  if (req.HasParam("q") && !req.Param("q").empty()) {
    if (!req.Param("tags").empty()) {
      return absl::InvalidArgumentError("give either q= (TraceQL) or tags=, not both");
    }
    absl::StatusOr<query::traceql::Filter> filter =
        ReaderTraceQl(req.Param("q"), sees_operator_ids);
    if (!filter.ok()) return filter.status();
    order_id = filter->PinnedValue(lifecycle::kOrderIdKey).value_or("");
    search.traceql = std::move(*filter);
  }
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> tags =
      ParseLogfmtTags(req.Param("tags"));
  if (!tags.ok()) return tags.status();
  search.tags = std::move(*tags);
  for (auto& [key, value] : search.tags) {
    if (key == lifecycle::kOrderIdKey) order_id = value;
    // Everyone finds an operator by the hash; only ops by the clear id.
    if (key == scrub::kOperatorIdAttribute &&
        (!sees_operator_ids || value.rfind("hmac:", 0) == 0)) {
      key = std::string(scrub::kOperatorIdHashAttribute);
    }
  }
  return absl::OkStatus();
}

// The search's span durations, number of traces and time range.
absl::Status ReadSearchBounds(const http::Request& req, query::TraceSearch& search) {
  absl::StatusOr<uint64_t> min_d = DurationParam(req, "minDuration");
  absl::StatusOr<uint64_t> max_d = DurationParam(req, "maxDuration");
  absl::StatusOr<uint64_t> limit = UintParam(req, "limit", 20);
  absl::StatusOr<uint64_t> start = UintParam(req, "start", 0);
  absl::StatusOr<uint64_t> end = UintParam(req, "end", 0);
  for (const absl::StatusOr<uint64_t>* p : {&min_d, &max_d, &limit, &start, &end}) {
    if (!p->ok()) return p->status();
  }
  if (*limit == 0 || *limit > kMaxSearchLimit) {
    return absl::InvalidArgumentError("limit must be from 1 to " + std::to_string(kMaxSearchLimit));
  }
  search.min_duration_nanos = *min_d;
  search.max_duration_nanos = *max_d;
  search.limit = *limit;
  // Tempo: unix seconds. Past what nanoseconds can hold (year 2554) the range means nothing:
  // an error, not a multiplication that wraps to an empty answer.
  constexpr uint64_t kMaxSeconds = UINT64_MAX / base::kNanosPerSecond;
  if (*start > kMaxSeconds || *end > kMaxSeconds) {
    return absl::InvalidArgumentError("start and end are unix seconds up to " +
                                      std::to_string(kMaxSeconds));
  }
  if (*end != 0 && *start > *end) return absl::InvalidArgumentError("start is after end");
  search.start_unix_nano = *start * base::kNanosPerSecond;
  search.end_unix_nano = *end * base::kNanosPerSecond;
  return absl::OkStatus();
}

// A trace as Tempo answers it: protobuf when the client accepts it, else OTLP JSON (v1:
// `batches`; v2: `trace.resourceSpans`).
void WriteTrace(const std::string& accept, const base::TraceBatch& trace, bool v2,
                http::Response& res) {
  if (accept.find("application/protobuf") != std::string::npos ||
      accept.find("application/x-protobuf") != std::string::npos) {
    // Tempo's Trace message has the wire shape of TracesData (field 1: the batches).
    res.SetContent(otlp::EncodeProtobuf(trace), "application/protobuf");
    return;
  }
  json batches = json::array();
  for (const base::ResourceSpans& rs : trace.resource_spans) batches.push_back(otlp::ToJson(rs));
  if (v2) {
    Reply(res, 200, {{"trace", {{"resourceSpans", batches}}}});
  } else {
    Reply(res, 200, {{"batches", batches}});
  }
}

}  // namespace

// The one asking, as a route sees it.
struct ApiServer::Reader {
  std::optional<auth::Principal> who;
  std::string refusal;  // why there is no `who` (for the audit line)
  // Partners only: what they may read.
  std::unique_ptr<query::PartnerScope> scope;
  bool sees_operator_ids = true;
  // What the request named, for the audit line.
  std::string order_id;
  std::string trace_id;
};

ApiServer::ApiServer(query::OrderQuery& orders, query::TraceQuery& traces,
                     std::function<bool()> ready, http::ServerOptions http_options,
                     const gaps::GapDetector* gaps, gaps::GapStore* gap_history,
                     const metrics::Registry* metrics, ApiAccess access, ApiConsole console)
    : orders_(orders),
      traces_(traces),
      ready_(std::move(ready)),
      gaps_(gaps),
      gap_history_(gap_history),
      metrics_(metrics),
      access_(std::move(access)),
      console_(std::move(console)),
      router_(std::make_unique<http::Router>()) {
  router_->SetErrorWriter(WriteError);
  Routes();
  http_options.name = "HTTP API";
  http_ = std::make_unique<http::Server>(
      std::move(http_options),
      [router = router_.get(), hosts = access_.allowed_hosts](http::Request& req,
                                                              http::Response& res) {
        if (!HostAllowed(req, hosts)) {
          return ReplyError(res, 421,
                            "Host '" + req.Header("Host") +
                                "' is not a name of this API (loopback addresses, localhost, "
                                "and http.allowed_hosts)");
        }
        router->Handle(req, res);
      },
      WriteError);
}

ApiServer::~ApiServer() { Shutdown(); }

void ApiServer::Routes() {
  using auth::Access;
  Open("/healthz", &ApiServer::Healthz);
  Open("/readyz", &ApiServer::Readyz);
  // Tempo's readiness and echo endpoints, which Grafana's data source probes.
  Open("/ready", &ApiServer::TempoReady);
  Open("/api/echo", &ApiServer::TempoEcho);
  // `{*}`: the router matches the decoded path, so an order id sent as %2F arrives with a slash.
  Guarded("/api/v1/orders/{*}", Access::kReadOrders, &ApiServer::GetOrder);
  Guarded("/api/v1/orders", Access::kReadOrders, &ApiServer::ListOrders);
  Guarded("/api/v1/sla", Access::kReadSla, &ApiServer::GetSla);
  Guarded("/api/traces/{}", Access::kReadOrders, &ApiServer::GetTrace);
  Guarded("/api/v2/traces/{}", Access::kReadOrders, &ApiServer::GetTraceV2);
  Guarded("/api/search", Access::kReadOrders, &ApiServer::SearchTraces);
  Guarded("/api/search/tags", Access::kReadOrders, &ApiServer::ListTagNames);
  Guarded("/api/search/tag/{}/values", Access::kReadOrders, &ApiServer::ListTagValues);
  Guarded("/api/v2/search/tags", Access::kReadOrders, &ApiServer::ListScopedTagNames);
  Guarded("/api/v2/search/tag/{}/values", Access::kReadOrders, &ApiServer::ListTypedTagValues);
  if (gap_history_ != nullptr) {
    Guarded("/api/v1/gaps", Access::kReadOrders, &ApiServer::ListGaps);
    Guarded("/api/v1/gaps/counts", Access::kReadOrders, &ApiServer::ListGapCounts);
  }
  Guarded("/api/v1/whoami", Access::kIdentify, &ApiServer::WhoAmI);
  if (metrics_ != nullptr) Guarded("/api/v1/charts", Access::kReadCharts, &ApiServer::Charts);
  if (console_.files != nullptr && !console_.files->empty()) ConsoleRoutes();
  if (metrics_ != nullptr) Guarded("/metrics", Access::kReadMetrics, &ApiServer::Metrics);
}

void ApiServer::Open(const std::string& pattern, OpenHandler handler) {
  router_->Get(pattern, [this, handler](http::Request& req, http::Response& res) {
    (this->*handler)(req, res);
  });
}

void ApiServer::Guarded(const std::string& pattern, auth::Access access, Handler handler) {
  router_->Get(pattern, [this, access, handler](http::Request& req, http::Response& res) {
    Reader reader;
    if (Admit(req, res, access, reader)) (this->*handler)(req, res, reader);
    Audit(req, res, reader);
  });
}

bool ApiServer::Admit(const http::Request& req, http::Response& res, auth::Access access,
                      Reader& reader) {
  if (access_.tokens == nullptr || !access_.tokens->enabled()) {
    reader.who = auth::TokenAuthenticator::Anonymous();
    return true;
  }
  auth::Authentication found = access_.tokens->Authenticate(req.Header("Authorization"), "API");
  if (!found.principal) {
    reader.refusal = std::string(auth::AuthFailureName(found.failure));
    // RFC 6750: a request without credentials gets the challenge alone; a bad token, its error.
    res.SetHeader("WWW-Authenticate", found.failure == auth::AuthFailure::kMissing
                                          ? "Bearer realm=\"ordertrace\""
                                          : "Bearer realm=\"ordertrace\", error=\"invalid_token\"");
    ReplyError(res, 401, found.message);
    return false;
  }
  reader.who = std::move(found.principal);
  const auth::Principal& who = *reader.who;
  if (!auth::Allows(who.role, access)) {
    reader.refusal = std::string(auth::AuthFailureName(auth::AuthFailure::kForbidden));
    access_.tokens->CountForbidden(who, "API " + req.path);
    ReplyError(res, 403,
               "the token '" + who.token_name + "' (" + std::string(auth::RoleName(who.role)) +
                   ") may not read " + req.path);
    return false;
  }
  if (who.role == auth::Role::kPartnerReadonly) {
    reader.scope = orders_.NewPartnerScope(who.partner_id);
  }
  reader.sees_operator_ids =
      access_.operator_ids == nullptr || auth::Allows(who.role, auth::Access::kSeeOperatorIds);
  return true;
}

void ApiServer::Audit(const http::Request& req, const http::Response& res, const Reader& reader) {
  if (access_.audit == nullptr) return;
  auth::AuditEntry entry;
  entry.at_unix_nano =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count());
  if (reader.who) {
    entry.token_name = reader.who->token_name;
    entry.role = std::string(auth::RoleName(reader.who->role));
    entry.partner_id = reader.who->partner_id;
  }
  entry.refusal = reader.refusal;
  entry.method = req.method;
  entry.target = AuditTarget(req);
  entry.order_id = reader.order_id;
  entry.trace_id = reader.trace_id;
  entry.status = res.status;
  access_.audit->Record(std::move(entry));
}

void ApiServer::Healthz(http::Request&, http::Response& res) {
  Reply(res, 200, {{"status", "ok"}});
}

void ApiServer::Readyz(http::Request&, http::Response& res) {
  bool ready = ready_();
  Reply(res, ready ? 200 : 503, {{"status", ready ? "ready" : "starting"}});
}

void ApiServer::TempoReady(http::Request&, http::Response& res) {
  bool ready = ready_();
  res.status = ready ? 200 : 503;
  res.SetContent(ready ? "ready" : "not ready", "text/plain");
}

void ApiServer::TempoEcho(http::Request&, http::Response& res) {
  res.SetContent("echo", "text/plain");
}

void ApiServer::GetOrder(http::Request& req, http::Response& res, Reader& reader) {
  const std::string order_id = req.PathParam(0);
  if (!lifecycle::IsValidOrderId(order_id)) return ReplyError(res, 400, "malformed order id");
  reader.order_id = order_id;
  absl::StatusOr<std::optional<query::OrderView>> view = orders_.GetOrder(order_id);
  if (!view.ok()) return ReplyStoreError(res, view.status());
  // Another partner's order is answered exactly as an unknown one.
  if (!view->has_value() ||
      (reader.scope != nullptr && !reader.scope->SeesOrder((*view)->record))) {
    return ReplyError(res, 404, "order '" + order_id + "' is unknown");
  }
  json body = OrderJson(**view);
  AddStageSlas(**view, body["timeline"]);
  if (gaps_ != nullptr) {
    json open = json::array();
    for (const gaps::Gap& gap : gaps_->OpenGapsOf(order_id)) open.push_back(GapJson(gap));
    body["open_gaps"] = open;
  }
  Reply(res, 200, body);
}

void ApiServer::ListOrders(http::Request& req, http::Response& res, Reader& reader) {
  const std::string stuck = req.Param("stuck");
  if (!stuck.empty() && stuck != "true" && stuck != "false") {
    return ReplyError(res, 400, "stuck must be true or false");
  }
  if (stuck == "true") return ListStuckOrders(req, res, reader);
  store::OrderFilter filter;
  filter.status = req.Param("status");
  filter.partner_id = req.Param("partner_id");
  absl::StatusOr<uint64_t> limit = UintParam(req, "limit", 100);
  if (!limit.ok() || *limit == 0 || *limit > kMaxListLimit) {
    return ReplyError(res, 400,
                      "limit must be an integer from 1 to " + std::to_string(kMaxListLimit));
  }
  filter.limit = *limit;
  if (reader.scope != nullptr) {
    if (!filter.partner_id.empty() && filter.partner_id != reader.scope->partner_id()) {
      return Reply(res, 200, {{"orders", json::array()}, {"count", 0}});
    }
    filter.partner_id = reader.scope->partner_id();
  }
  absl::StatusOr<std::vector<model::OrderRecord>> list = orders_.ListOrders(filter);
  if (!list.ok()) return ReplyStoreError(res, list.status());
  json orders = json::array();
  for (const model::OrderRecord& r : *list) orders.push_back(OrderSummaryJson(r));
  Reply(res, 200, {{"orders", orders}, {"count", list->size()}});
}

void ApiServer::GetSla(http::Request& req, http::Response& res, Reader& reader) {
  std::string partner_id = req.Param("partner_id");
  if (reader.scope != nullptr) {
    // A partner reads its own figures; another partner's do not exist for it.
    if (!partner_id.empty() && partner_id != reader.scope->partner_id()) {
      return ReplyError(res, 404, "partner '" + partner_id + "' is unknown");
    }
    partner_id = reader.scope->partner_id();
  }
  absl::StatusOr<query::SlaReport> report = orders_.Sla(partner_id, access_.sla);
  if (!report.ok()) return ReplyStoreError(res, report.status());
  Reply(res, 200, SlaReportJson(*report));
}

void ApiServer::AddStageSlas(const query::OrderView& view, json& timeline) const {
  if (!access_.sla.sla) return;
  size_t i = 0;
  for (const lifecycle::Stage& stage : view.timeline) {
    if (i >= timeline.size()) break;
    std::optional<uint64_t> sla = access_.sla.sla(stage.status, view.record.partner_id);
    json& entry = timeline[i++];
    entry["sla_seconds"] = sla ? json(static_cast<double>(*sla) / 1e9) : json();
    entry["over_sla"] = sla.has_value() && stage.duration_nanos > *sla;
  }
}

void ApiServer::ListStuckOrders(http::Request& req, http::Response& res, Reader& reader) {
  if (gap_history_ == nullptr) return ReplyError(res, 400, "stuck= needs the gap detector");
  absl::StatusOr<uint64_t> limit = UintParam(req, "limit", 100);
  if (!limit.ok() || *limit == 0 || *limit > kMaxListLimit) {
    return ReplyError(res, 400,
                      "limit must be an integer from 1 to " + std::to_string(kMaxListLimit));
  }
  gaps::GapHistoryQuery open_gaps;
  open_gaps.state = gaps::GapHistoryQuery::State::kOpen;
  open_gaps.partner_id = req.Param("partner_id");
  json orders = json::array();
  if (ScopeGapQuery(reader, open_gaps)) {
    query::StuckOrderFilter filter;
    filter.status = req.Param("status");
    filter.limit = *limit;
    filter.max_orders_read = kMaxCountedGaps;
    absl::StatusOr<std::vector<model::OrderRecord>> stuck = query::ListStuckOrders(
        [&](const std::string& cursor) { return OpenGapPageOf(*gap_history_, open_gaps, cursor); },
        [this](const std::string& order_id) { return ReadOrderRecord(orders_, order_id); }, filter);
    if (!stuck.ok()) return ReplyStoreError(res, stuck.status());
    for (const model::OrderRecord& r : *stuck) orders.push_back(OrderSummaryJson(r));
  }
  Reply(res, 200, {{"orders", orders}, {"count", orders.size()}});
}

void ApiServer::GetTrace(http::Request& req, http::Response& res, Reader& reader) {
  ServeTrace(req, res, reader, /*v2=*/false);
}

void ApiServer::GetTraceV2(http::Request& req, http::Response& res, Reader& reader) {
  ServeTrace(req, res, reader, /*v2=*/true);
}

void ApiServer::ServeTrace(http::Request& req, http::Response& res, Reader& reader, bool v2) {
  std::optional<base::TraceBatch> trace = ReadVisibleTrace(req, res, reader);
  if (!trace) return;
  if (gap_history_ != nullptr) {
    absl::Status marked = query::MarkGapDetected(*trace, [this](const std::string& order_id) {
      return OrderHadGap(*gap_history_, order_id);
    });
    if (!marked.ok()) return ReplyStoreError(res, marked);
  }
  if (!reader.sees_operator_ids) access_.operator_ids->HashOperatorIds(*trace);
  WriteTrace(req.Header("Accept"), *trace, v2, res);
}

std::optional<base::TraceBatch> ApiServer::ReadVisibleTrace(http::Request& req, http::Response& res,
                                                            Reader& reader) {
  std::optional<base::TraceId> id = ParseTraceIdParam(req.PathParam(0));
  if (!id) {
    ReplyError(res, 400, "malformed trace id: expected up to 32 hex digits, not all zero");
    return std::nullopt;
  }
  reader.trace_id = id->ToHex();
  absl::StatusOr<std::optional<base::TraceBatch>> trace = traces_.GetTrace(*id);
  if (!trace.ok()) {
    ReplyStoreError(res, trace.status());
    return std::nullopt;
  }
  bool visible = trace->has_value();
  if (visible && reader.scope != nullptr) {
    absl::StatusOr<bool> sees = reader.scope->SeesTrace(**trace);
    if (!sees.ok()) {
      ReplyStoreError(res, sees.status());
      return std::nullopt;
    }
    visible = *sees;
  }
  if (!visible) {
    ReplyError(res, 404, "trace " + id->ToHex() + " not found");
    return std::nullopt;
  }
  return std::move(*trace);
}

void ApiServer::SearchTraces(http::Request& req, http::Response& res, Reader& reader) {
  query::TraceSearch search;
  absl::Status read = ReadSearchFilter(req, reader.sees_operator_ids, search, reader.order_id);
  if (read.ok()) read = ReadSearchBounds(req, search);
  if (!read.ok()) return ReplyError(res, 400, std::string(read.message()));
  search.scope = reader.scope.get();
  query::SearchStats stats;
  absl::StatusOr<std::vector<query::TraceSummary>> found = traces_.Search(search, &stats);
  if (!found.ok()) return ReplyStoreError(res, found.status());
  json traces = json::array();
  for (const query::TraceSummary& s : *found) traces.push_back(TraceSummaryJson(s));
  Reply(res, 200, {{"traces", traces}, {"metrics", {{"inspectedTraces", stats.inspected_traces}}}});
}

void ApiServer::ListTagNames(http::Request&, http::Response& res, Reader& reader) {
  absl::StatusOr<std::vector<std::string>> names = traces_.TagNames(reader.scope.get());
  if (!names.ok()) return ReplyStoreError(res, names.status());
  Reply(res, 200, {{"tagNames", *names}});
}

void ApiServer::ListTagValues(http::Request& req, http::Response& res, Reader& reader) {
  const std::string& tag = req.PathParam(0);
  absl::StatusOr<std::vector<std::string>> values = traces_.TagValues(tag, reader.scope.get());
  if (!values.ok()) return ReplyStoreError(res, values.status());
  if (tag == scrub::kOperatorIdAttribute && !reader.sees_operator_ids) {
    std::set<std::string> hashed;
    for (const std::string& v : *values) hashed.insert(access_.operator_ids->Hash(v));
    values->assign(hashed.begin(), hashed.end());
  }
  Reply(res, 200, {{"tagValues", *values}});
}

void ApiServer::ListScopedTagNames(http::Request& req, http::Response& res, Reader& reader) {
  absl::StatusOr<json> scopes = ScopedTagsJson(
      req.Param("scope"), [&] { return traces_.TagNamesByScope(reader.scope.get()); });
  if (!scopes.ok()) {
    if (scopes.status().code() == absl::StatusCode::kInvalidArgument) {
      return ReplyError(res, 400, std::string(scopes.status().message()));
    }
    return ReplyStoreError(res, scopes.status());
  }
  Reply(res, 200, {{"scopes", *scopes}});
}

void ApiServer::ListTypedTagValues(http::Request& req, http::Response& res, Reader& reader) {
  absl::StatusOr<query::traceql::Field> field = query::traceql::ParseField(req.PathParam(0));
  if (!field.ok()) return ReplyError(res, 400, std::string(field.status().message()));
  absl::StatusOr<std::vector<query::TypedTagValue>> values =
      traces_.TypedTagValues(*field, reader.scope.get());
  if (!values.ok()) return ReplyStoreError(res, values.status());
  if (field->intrinsic == query::traceql::Intrinsic::kNone &&
      field->attribute == scrub::kOperatorIdAttribute && !reader.sees_operator_ids) {
    std::set<query::TypedTagValue> hashed;
    for (const query::TypedTagValue& v : *values) {
      hashed.insert({"string", access_.operator_ids->Hash(v.value)});
    }
    values->assign(hashed.begin(), hashed.end());
  }
  json list = json::array();
  for (const query::TypedTagValue& v : *values) {
    list.push_back({{"type", v.type}, {"value", v.value}});
  }
  Reply(res, 200, {{"tagValues", list}});
}

void ApiServer::ListGaps(http::Request& req, http::Response& res, Reader& reader) {
  absl::StatusOr<gaps::GapHistoryQuery> query = GapHistoryQueryOf(req);
  if (!query.ok()) return ReplyError(res, 400, std::string(query.status().message()));
  reader.order_id = query->order_id;
  if (!ScopeGapQuery(reader, *query)) {
    return Reply(res, 200, {{"gaps", json::array()}, {"count", 0}, {"next_cursor", json()}});
  }
  absl::StatusOr<gaps::GapPage> page = gap_history_->Query(*query);
  if (!page.ok()) {
    // A cursor this server did not hand out is the client's error, not a failed query.
    if (page.status().code() == absl::StatusCode::kInvalidArgument) {
      return ReplyError(res, 400, std::string(page.status().message()));
    }
    return ReplyStoreError(res, page.status());
  }
  json list = json::array();
  for (const gaps::Gap& gap : page->gaps) list.push_back(GapJson(gap));
  json next = page->next_cursor.empty() ? json() : json(page->next_cursor);
  Reply(res, 200, {{"gaps", list}, {"count", list.size()}, {"next_cursor", next}});
}

void ApiServer::ListGapCounts(http::Request& req, http::Response& res, Reader& reader) {
  absl::StatusOr<gaps::GapHistoryQuery> query = GapHistoryQueryOf(req);
  if (!query.ok()) return ReplyError(res, 400, std::string(query.status().message()));
  reader.order_id = query->order_id;
  gaps::GapCounts counts;
  if (ScopeGapQuery(reader, *query)) {
    absl::StatusOr<gaps::GapCounts> counted =
        gaps::CountGaps(*gap_history_, *query, kMaxCountedGaps);
    if (!counted.ok()) return ReplyStoreError(res, counted.status());
    counts = *std::move(counted);
  }
  Reply(res, 200, GapCountsJson(counts));
}

bool ApiServer::ScopeGapQuery(const Reader& reader, gaps::GapHistoryQuery& query) const {
  if (reader.scope == nullptr) return true;
  // Another partner's gaps do not exist for this one.
  if (!query.partner_id.empty() && query.partner_id != reader.scope->partner_id()) return false;
  query.partner_id = reader.scope->partner_id();
  return true;
}

void ApiServer::WhoAmI(http::Request&, http::Response& res, Reader& reader) {
  const auth::Principal& who = *reader.who;
  const bool tokens_on = access_.tokens != nullptr && access_.tokens->enabled();
  auto text_or_null = [](const std::string& s) { return s.empty() ? json() : json(s); };
  Reply(
      res, 200,
      {{"auth", tokens_on},
       {"token_name", tokens_on ? text_or_null(who.token_name) : json()},
       {"role", std::string(auth::RoleName(who.role))},
       {"partner_id", text_or_null(who.partner_id)},
       {"may",
        {{"orders", auth::Allows(who.role, auth::Access::kReadOrders)},
         {"sla", auth::Allows(who.role, auth::Access::kReadSla)},
         {"charts", metrics_ != nullptr && auth::Allows(who.role, auth::Access::kReadCharts)},
         {"metrics", metrics_ != nullptr && auth::Allows(who.role, auth::Access::kReadMetrics)}}}});
}

void ApiServer::Charts(http::Request&, http::Response& res, Reader&) {
  Reply(
      res, 200,
      ChartsJson(*metrics_, {console_.history, access_.sla.statuses, console_.message_sla_nanos}));
}

void ApiServer::Metrics(http::Request& req, http::Response& res, Reader&) {
  // OpenMetrics (with exemplars) for scrapers that ask for it, Prometheus text otherwise.
  metrics::Format format = metrics::FormatForAccept(req.Header("Accept"));
  res.SetContent(metrics_->Render(format), std::string(metrics::ContentType(format)));
}

void ApiServer::ConsoleRoutes() {
  auto send = [files = console_.files](http::Response& res, std::string_view path) {
    std::optional<ConsoleFile> file = files->Read(path);
    if (!file) return ReplyError(res, 404, "no console file '" + std::string(path) + "'");
    // The console builds its pages from API data with DOM calls only; the policy makes sure
    // nothing else runs or loads (no inline script, no other origin).
    res.SetHeader("Content-Security-Policy",
                  "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                  "script-src 'self'; object-src 'none'; base-uri 'none'; "
                  "frame-ancestors 'none'; form-action 'self'");
    res.SetHeader("X-Content-Type-Options", "nosniff");
    res.SetHeader("Referrer-Policy", "no-referrer");
    res.SetHeader("Cache-Control", "no-cache");
    res.SetContent(std::move(file->content), std::move(file->content_type));
  };
  // Every console route is the one page; it reads its route from the address.
  for (const char* page : {"/", "/orders/{*}", "/traces/{*}", "/gaps", "/charts", "/login"}) {
    router_->Get(page, [send](http::Request&, http::Response& res) { send(res, "index.html"); });
  }
  router_->Get("/assets/{*}", [send](http::Request& req, http::Response& res) {
    send(res, "assets/" + req.PathParam(0));
  });
}

absl::StatusOr<int> ApiServer::Start(const base::ListenAddress& address) {
  return http_->Start(address);
}

void ApiServer::Shutdown() { http_->Shutdown(); }

http::ServerStats ApiServer::HttpStats() const { return http_->Stats(); }

}  // namespace ordertrace::server
