// The HTTP API on 8686: orders, Tempo-compatible trace queries, health. Thread-safe; serves on
// an http::Server (event-driven I/O, worker threads for the handlers, admission control).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "absl/status/statusor.h"
#include "auth/access_policy.h"
#include "auth/audit_log.h"
#include "auth/token_authenticator.h"
#include "base/listen_address.h"
#include "gaps/gap_detector.h"
#include "gaps/gap_store.h"
#include "http/router.h"
#include "http/server.h"
#include "metrics/history.h"
#include "metrics/registry.h"
#include "query/order_query.h"
#include "query/sla_report.h"
#include "query/trace_query.h"
#include "scrub/operator_id_hasher.h"
#include "server/console_files.h"

namespace ordertrace::server {

// Who may read what through the API, and what is written down about it. The pointers are
// borrowed, may be null, and must outlive the server.
struct ApiAccess {
  // Host names the API answers to besides loopback addresses and localhost.
  std::vector<std::string> allowed_hosts;
  // Bearer tokens and roles; null or without tokens: every request reads as ops.
  const auth::TokenAuthenticator* tokens = nullptr;
  // One line per request that needs a role (health probes do not).
  auth::AuditLog* audit = nullptr;
  // operator_id values are answered as this hash to every role but ops; null: in clear.
  const scrub::OperatorIdHasher* operator_ids = nullptr;
  // The lifecycle's stages and SLAs, for GET /api/v1/sla.
  query::SlaReportOptions sla;
};

// The console on the API port (borrowed pointers, may be null; they must outlive the server).
struct ApiConsole {
  // Served at `/`, `/orders/{id}`, `/traces/{id}`, `/gaps`, `/charts`, `/login` (index.html)
  // and `/assets/*`, to anyone the Host check lets in: the files hold no data, every figure
  // they show comes from the API with the reader's token. Null: no console.
  std::shared_ptr<const ConsoleFiles> files;
  // The figures over time in /api/v1/charts.
  const metrics::MetricHistory* history = nullptr;
  // How long a RabbitMQ message may wait for its consumer (time-scaled), drawn on the
  // publish-to-consume chart; 0: none.
  uint64_t message_sla_nanos = 0;
};

class ApiServer {
 public:
  // `ready` says whether ordertrace accepts spans (for /readyz and /ready). `gaps` (may be null)
  // gives an order view its open gaps. `gap_history` (may be null) serves /api/v1/gaps and the
  // `gap_detected` attribute of a trace's root spans. `metrics` (may be null) is served at
  // /metrics. All three must outlive this. Requests whose Host is neither a loopback address,
  // localhost nor one of `access.allowed_hosts` are refused with 421 (DNS rebinding). Every
  // endpoint but the health probes needs a role that may use it (auth/access_policy.h): no or
  // an unknown token is answered 401, a role that may not 403; a partner sees only its own
  // orders, traces, gaps, tag values and SLA figures, and anything else answers as if it did not
  // exist. `http_options` sets the listener's connections, deadlines and admission (its `name`
  // is set here). `console` adds the console's pages and GET /api/v1/charts (with `metrics`).
  ApiServer(query::OrderQuery& orders, query::TraceQuery& traces, std::function<bool()> ready,
            http::ServerOptions http_options, const gaps::GapDetector* gaps = nullptr,
            gaps::GapStore* gap_history = nullptr, const metrics::Registry* metrics = nullptr,
            ApiAccess access = {}, ApiConsole console = {});
  ~ApiServer();

  absl::StatusOr<int> Start(const base::ListenAddress& address);
  void Shutdown();
  // The listener's connections and refusals.
  http::ServerStats HttpStats() const;

 private:
  struct Reader;
  // A route for everyone (health probes): no role, no audit line.
  using OpenHandler = void (ApiServer::*)(http::Request&, http::Response&);
  // A route that needs a role; `Reader` is who asks and what the request named.
  using Handler = void (ApiServer::*)(http::Request&, http::Response&, Reader&);

  // The route table: every path the API serves, the role it needs, and its handler.
  void Routes();
  void Open(const std::string& pattern, OpenHandler handler);
  // Registers GET `pattern` for the roles that may do `access`, with the audit line.
  void Guarded(const std::string& pattern, auth::Access access, Handler handler);
  // Authenticates the request and checks its role; on refusal the answer is written.
  bool Admit(const http::Request& req, http::Response& res, auth::Access access, Reader& reader);
  void Audit(const http::Request& req, const http::Response& res, const Reader& reader);

  // Health: /healthz, /readyz, and Tempo's /ready and /api/echo.
  void Healthz(http::Request& req, http::Response& res);
  void Readyz(http::Request& req, http::Response& res);
  void TempoReady(http::Request& req, http::Response& res);
  void TempoEcho(http::Request& req, http::Response& res);

  // Orders: GET /api/v1/orders/{id}, /api/v1/orders, /api/v1/sla.
  void GetOrder(http::Request& req, http::Response& res, Reader& reader);
  void ListOrders(http::Request& req, http::Response& res, Reader& reader);
  // GET /api/v1/orders?stuck=true: the orders with an open gap (query/stuck_orders.h).
  void ListStuckOrders(http::Request& req, http::Response& res, Reader& reader);
  void GetSla(http::Request& req, http::Response& res, Reader& reader);
  // Each timeline entry gets the SLA of its status for the order's partner and whether it
  // took longer (`sla_seconds`, `over_sla`).
  void AddStageSlas(const query::OrderView& view, nlohmann::json& timeline) const;

  // Traces, Tempo's API: /api/traces/{id} and /api/v2/traces/{id}.
  void GetTrace(http::Request& req, http::Response& res, Reader& reader);
  void GetTraceV2(http::Request& req, http::Response& res, Reader& reader);
  void ServeTrace(http::Request& req, http::Response& res, Reader& reader, bool v2);
  // The trace the path names, if the reader may see it; otherwise the answer (400, 404 or
  // 500) is written and nullopt returned.
  std::optional<base::TraceBatch> ReadVisibleTrace(http::Request& req, http::Response& res,
                                                   Reader& reader);
  // Search, Tempo's API: /api/search, /api/search/tags, /api/search/tag/{tag}/values and
  // their v2 forms.
  void SearchTraces(http::Request& req, http::Response& res, Reader& reader);
  void ListTagNames(http::Request& req, http::Response& res, Reader& reader);
  void ListTagValues(http::Request& req, http::Response& res, Reader& reader);
  void ListScopedTagNames(http::Request& req, http::Response& res, Reader& reader);
  void ListTypedTagValues(http::Request& req, http::Response& res, Reader& reader);

  // Gaps: GET /api/v1/gaps, and /api/v1/gaps/counts, the same filters counted per stage and
  // kind (an incident, many orders stuck at one stage, reads as one line).
  void ListGaps(http::Request& req, http::Response& res, Reader& reader);
  void ListGapCounts(http::Request& req, http::Response& res, Reader& reader);
  // Narrows a gap query to the reader's partner; false when it asked for another partner's.
  bool ScopeGapQuery(const Reader& reader, gaps::GapHistoryQuery& query) const;

  // GET /api/v1/whoami: who the token is and what it may read (the console's login checks a
  // token with it and shows only what the role may open).
  void WhoAmI(http::Request& req, http::Response& res, Reader& reader);
  // GET /api/v1/charts (with metrics): the console's figures over time.
  void Charts(http::Request& req, http::Response& res, Reader& reader);
  // GET /metrics: OpenMetrics with exemplars when asked for, Prometheus text otherwise.
  void Metrics(http::Request& req, http::Response& res, Reader& reader);
  // The console's pages and assets.
  void ConsoleRoutes();

  query::OrderQuery& orders_;
  query::TraceQuery& traces_;
  const std::function<bool()> ready_;
  const gaps::GapDetector* const gaps_;
  gaps::GapStore* const gap_history_;
  const metrics::Registry* const metrics_;
  const ApiAccess access_;
  const ApiConsole console_;
  std::unique_ptr<http::Router> router_;
  std::unique_ptr<http::Server> http_;
};

// Parses Tempo's `tags` parameter (logfmt: `k=v k2="v 2"`).
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseLogfmtTags(
    std::string_view text);

// Parses a point in time: unix nanoseconds (digits only) or RFC 3339
// ("2026-11-24T03:04:05.5Z", "2026-11-24T04:04:05+01:00"). Times before 1970 are refused.
absl::StatusOr<uint64_t> ParseTimeParam(std::string_view text);

// Parses a trace id in hex, up to 32 digits (shorter ids are left-padded, as Tempo does).
std::optional<base::TraceId> ParseTraceIdParam(std::string_view text);

}  // namespace ordertrace::server
