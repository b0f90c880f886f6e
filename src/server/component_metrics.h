// ordertrace's own figures at /metrics, beside the trace metrics: the gap detector's gaps, the
// Alertmanager client, ingest and the tail sampler. Each is copied from its part's Stats() when
// Prometheus scrapes, so the parts need not know about metrics.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "auth/audit_log.h"
#include "auth/token_authenticator.h"
#include "http/server.h"

namespace ordertrace::metrics {
class Registry;
}  // namespace ordertrace::metrics
namespace ordertrace::gaps {
class GapDetector;
class AlertmanagerClient;
}  // namespace ordertrace::gaps
namespace ordertrace::ingest {
class Ingester;
}  // namespace ordertrace::ingest
namespace ordertrace::store {
class Store;
}  // namespace ordertrace::store
namespace ordertrace::sampling {
class TailSampler;
}  // namespace ordertrace::sampling
namespace ordertrace::otlp {
class DecodeBudget;
}  // namespace ordertrace::otlp
namespace ordertrace::scrub {
class PiiScrubber;
}  // namespace ordertrace::scrub
namespace ordertrace::forward {
class OtlpForwarder;
}  // namespace ordertrace::forward

namespace ordertrace::server {

// Every part is borrowed, may be null (its families are then absent), and must outlive
// `registry`'s last Render.
void RegisterComponentMetrics(metrics::Registry& registry, const gaps::GapDetector* gaps,
                              const gaps::AlertmanagerClient* alerts,
                              const ingest::Ingester* ingester,
                              const sampling::TailSampler* sampler);

// The OTLP decode budget: bytes leased, requests refused past it or past the per-request
// ceiling. `budget` must outlive the registry.
void RegisterDecodeBudgetMetrics(metrics::Registry& registry, const otlp::DecodeBudget& budget);

// Tokens accepted and refused by reason (ordertrace_auth_*), and the audit log's lines and
// write errors (ordertrace_audit_*; `audit` may be null). Both must outlive the registry's
// scrapes.
void RegisterAuthMetrics(metrics::Registry& registry, const auth::TokenAuthenticator& tokens,
                         const auth::AuditLog* audit);

// The store's degraded mode: ordertrace_store_out_of_space (1 while writes are refused for
// want of disk space). `store` must outlive the registry.
void RegisterStoreMetrics(metrics::Registry& registry, const store::Store& store);

// The OTLP forward: ordertrace_forward_spans_total{result}, _requests_total{code},
// _retries_total and _queue_bytes. `forwarder` must outlive the registry.
void RegisterForwardMetrics(metrics::Registry& registry, const forward::OtlpForwarder& forwarder);

// What the PII scrubber removed or masked, by rule: ordertrace_pii_removed_total{rule}.
// `scrubber` must outlive the registry's last Render.
void RegisterPiiMetrics(metrics::Registry& registry, const scrub::PiiScrubber& scrubber);

// One HTTP listener's figures, read at each scrape; `name` is its `listener` label.
struct HttpListenerSource {
  std::string name;
  std::function<http::ServerStats()> stats;
};

// The HTTP listeners' connections, queues and refusals (ordertrace_http_*).
void RegisterHttpMetrics(metrics::Registry& registry, std::vector<HttpListenerSource> listeners);

// Certificate reloads by result (ordertrace_tls_reloads_total{result="ok|failed"}). The counters
// must outlive the registry's scrapes.
void RegisterTlsReloadMetrics(metrics::Registry& registry, const std::atomic<uint64_t>& ok,
                              const std::atomic<uint64_t>& failed);

}  // namespace ordertrace::server
