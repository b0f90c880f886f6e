// The whole ordertrace process as a library: opens the store, starts ingest, retention, the
// OTLP receivers and the HTTP API; Shutdown() stops them in reverse. main() only parses flags
// and calls this; tests embed it. Start/Shutdown from one thread.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/clock.h"
#include "server/config.h"

namespace ordertrace::store {
class Store;
class RetentionRunner;
}  // namespace ordertrace::store
namespace ordertrace::ingest {
class Ingester;
class OrderObserver;
}  // namespace ordertrace::ingest
namespace ordertrace::gaps {
class StageModel;
class GapDetector;
class GapStore;
class GapSink;
class StuckTraceKeeper;
class AlertmanagerClient;
}  // namespace ordertrace::gaps
namespace ordertrace::metrics {
class MetricHistory;
class Registry;
class TraceMetrics;
}  // namespace ordertrace::metrics
namespace ordertrace::scrub {
class PiiScrubber;
class OperatorIdHasher;
}  // namespace ordertrace::scrub
namespace ordertrace::sampling {
class TailSampler;
}  // namespace ordertrace::sampling
namespace ordertrace::forward {
class OtlpForwarder;
}  // namespace ordertrace::forward
namespace ordertrace::query {
class OrderQuery;
class TraceQuery;
}  // namespace ordertrace::query

namespace ordertrace::server {

class OtlpHttpReceiver;
class OtlpGrpcReceiver;
class ApiServer;
struct ApiConsole;

struct BoundPorts {
  int otlp_grpc = 0;
  int otlp_http = 0;
  int http = 0;
};

class OrdertraceServer {
 public:
  explicit OrdertraceServer(ServerConfig config, const base::Clock& clock = DefaultClock());
  ~OrdertraceServer();

  absl::Status Start();
  void Shutdown();
  const BoundPorts& ports() const { return ports_; }
  // The operator id hasher (scrub/operator_id_hasher.h), built in Start before the ingester
  // and the API; null before Start. Lives until the server is destroyed.
  const scrub::OperatorIdHasher* operator_hasher() const { return operator_hasher_.get(); }
  // Reads the `tls:` files again (on SIGHUP): new connections on every listener get the new
  // certificate (OTLP/gRPC within OtlpGrpcReceiver::kTlsRefreshSeconds), open ones keep theirs.
  // A missing, unreadable or mismatched file keeps the old certificate, logs one line and is
  // returned. Counted in ordertrace_tls_reloads_total. Thread-safe against itself; call it
  // between Start and Shutdown.
  absl::Status ReloadTls();

  static const base::Clock& DefaultClock();

 private:
  // Start's steps, in order.
  // The `tls:` files, and the listeners' TLS contexts made from them; nullopt without TLS.
  absl::StatusOr<std::optional<http::TlsCredentials>> LoadTls();
  // The store, and the scrubber and operator id hasher that ingest and the API use.
  absl::Status OpenStore();
  // Where spans and gaps go besides the store: the lifecycle, the gap store, Alertmanager, the
  // tail sampler (with its restored pending detail) and the gap-to-sampler loop, the metrics.
  absl::Status MakeGapOutputs();
  // The gap detector, recovered and replayed from the stored orders, then started.
  absl::Status StartGapDetector();
  absl::Status StartIngest();
  absl::Status StartForward();
  // The queries, auth, the audit log and the HTTP API (not serving yet).
  absl::Status MakeApi();
  absl::Status OpenAuditLog();
  void MakeReceivers(const std::optional<http::TlsCredentials>& tls);
  // Starts every listener; then ordertrace is ready.
  absl::Status Listen();
  // The console's files (built in, or `console.dir`) and the figures it charts over time;
  // nothing when `console.enabled` is off.
  absl::StatusOr<ApiConsole> MakeConsole();

  const ServerConfig config_;
  const base::Clock& clock_;
  BoundPorts ports_;
  std::atomic<bool> ready_{false};

  std::unique_ptr<store::Store> store_;
  std::unique_ptr<gaps::StageModel> lifecycle_;
  std::unique_ptr<gaps::GapStore> gap_store_;
  std::unique_ptr<gaps::AlertmanagerClient> alerts_;  // null without an Alertmanager URL
  std::unique_ptr<sampling::TailSampler> sampler_;    // null when sampling is off
  // The gap-to-sampler loop (gaps/stuck_trace_keeper.h); null when sampling is off.
  std::unique_ptr<gaps::StuckTraceKeeper> stuck_traces_;
  // Alertmanager and stuck_traces_, for the gap detector.
  std::unique_ptr<gaps::GapSink> gap_sinks_;
  std::unique_ptr<metrics::Registry> metrics_;
  std::unique_ptr<metrics::TraceMetrics> trace_metrics_;  // null when metrics are off
  std::unique_ptr<gaps::GapDetector> gaps_;
  std::unique_ptr<ingest::OrderObserver> gap_feed_;
  // Applied by the ingester to every request; created before it, destroyed after it.
  std::unique_ptr<scrub::PiiScrubber> scrubber_;
  std::unique_ptr<scrub::OperatorIdHasher> operator_hasher_;
  std::unique_ptr<ingest::Ingester> ingester_;
  std::unique_ptr<store::RetentionRunner> retention_;
  std::unique_ptr<forward::OtlpForwarder> forwarder_;  // null when the forward is off
  std::unique_ptr<query::OrderQuery> order_query_;
  std::unique_ptr<query::TraceQuery> trace_query_;
  // Shared by both OTLP receivers; outlives them.
  std::unique_ptr<otlp::DecodeBudget> decode_budget_;
  std::unique_ptr<OtlpGrpcReceiver> grpc_;
  std::unique_ptr<OtlpHttpReceiver> otlp_http_;
  std::unique_ptr<auth::TokenAuthenticator> tokens_;
  std::unique_ptr<auth::AuditLog> audit_;            // null when audit.enabled is off
  std::unique_ptr<metrics::MetricHistory> history_;  // null without the console
  std::unique_ptr<ApiServer> api_;

  // TLS (null without a `tls:` section): one context provider per HTTP listener, the API's
  // never asking for client certificates.
  std::shared_ptr<http::TlsContextProvider> api_tls_;
  std::shared_ptr<http::TlsContextProvider> otlp_tls_;
  std::mutex tls_reload_mu_;  // one reload at a time
  std::atomic<uint64_t> tls_reloads_ok_{0};
  std::atomic<uint64_t> tls_reloads_failed_{0};
};

}  // namespace ordertrace::server
