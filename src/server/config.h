// ordertrace's configuration: one struct of defaulted options, filled from ordertrace.yaml
// and then from flags. `ordertrace.yaml` at the repository root documents every field.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "auth/audit_log.h"
#include "auth/token_authenticator.h"
#include "forward/otlp_forwarder.h"
#include "gaps/gap_detector.h"
#include "gaps/stage_model.h"
#include "http/server.h"
#include "http/tls_options.h"
#include "ingest/ingester.h"
#include "metrics/trace_metrics.h"
#include "otlp/decode_budget.h"
#include "query/trace_query.h"
#include "sampling/tail_sampler.h"
#include "scrub/pii_scrubber.h"
#include "store/retention.h"
#include "store/rocks_store.h"

namespace ordertrace::server {

struct ServerConfig {
  std::string data_dir = "./data";
  std::string otlp_grpc_listen = "127.0.0.1:4317";
  std::string otlp_http_listen = "127.0.0.1:4318";
  std::string http_listen = "127.0.0.1:8686";
  std::string log_level = "info";

  // Largest request body after decompression (OTLP/HTTP) or message (OTLP/gRPC).
  size_t max_request_bytes = 16 << 20;
  // Told to clients that are refused because the ingest queue is full.
  uint64_t retry_after_seconds = 1;
  size_t http_threads = 8;
  // Both HTTP listeners' connections, deadlines and admission (the `http:` section). Their
  // worker threads come from `http_threads`, their largest bodies from `max_request_bytes`
  // (OTLP) and 1 MiB (the API).
  http::ServerOptions http;
  // Host names the API answers to besides loopback addresses and localhost (`http.allowed_hosts`);
  // any other Host is refused (421), so a web page cannot read the API by DNS rebinding.
  std::vector<std::string> allowed_hosts;
  // Bearer tokens and their roles (the `auth:` section); none: open, as on loopback by default.
  auth::AuthOptions auth;
  // Who read what (the `audit:` section); `audit.path` empty: <data_dir>/audit.log.
  bool audit_enabled = true;
  auth::AuditLogOptions audit;
  // TLS on all three listeners (the `tls:` section); `tls.enabled()` when a certificate is set.
  // `client_ca_file` makes the OTLP listeners require client certificates, not the API.
  http::TlsOptions tls;

  // The console on the API port (the `console:` section): on by default, from the copy built
  // into the binary; `console.dir` serves the repository's web/ from disk instead (console
  // development: edits show on reload).
  bool console_enabled = true;
  std::string console_dir;

  ingest::IngesterOptions ingest;
  // `ingest.max_span_age`; 0: retention.spans (MaxSpanAgeNanos).
  uint64_t max_span_age_nanos = 0;
  // What the OTLP requests being decoded may hold (`ingest.decode_budget_mb`,
  // `ingest.max_decoded_request_mb`).
  otlp::DecodeBudgetOptions decode_budget;
  store::RocksStoreOptions store;  // `path` is derived from data_dir
  store::RetentionOptions retention;
  query::TraceQueryOptions query;

  // The lifecycle the gap detector checks orders against (the `lifecycle:` section).
  gaps::StageModelOptions lifecycle = gaps::DefaultStageModelOptions();
  // How the gap detector waits for evidence (`lifecycle.watermarks`).
  gaps::GapDetectorOptions gap_detector;

  // Alertmanager's base URL (e.g. http://127.0.0.1:9093); empty: no alerts are sent, gaps are
  // still detected and served.
  std::string alertmanager_url;
  // For an https:// alertmanager_url: the CA that signs Alertmanager's certificate (empty: the
  // system's CAs), and a client certificate and key to present (both or neither).
  std::string alertmanager_ca_file;
  std::string alertmanager_cert_file;
  std::string alertmanager_key_file;
  // How alerts link back to ordertrace.
  std::string external_url = "http://127.0.0.1:8686";
  // Active alerts are sent again this often, before Alertmanager lets them expire.
  uint64_t alertmanager_resend_nanos = 60ULL * 1'000'000'000ULL;
  // Span and business metrics at /metrics (the `metrics:` section); off: only ordertrace's
  // own figures (gaps, ingest, sampling) are served.
  bool metrics_enabled = true;
  metrics::TraceMetricsOptions metrics;
  // The tail sampler (the `sampling:` section).
  sampling::SamplingOptions sampling;
  // The OTLP forward of stored spans to Tempo, Jaeger or a Collector (the `forward:` section);
  // `forward.endpoint` empty: off. Its `before_send` is set by the server, not the file.
  forward::OtlpForwarderOptions forward;
  // PII removal at ingest (the `pii:` section): `pii.rules` entries named like a default rule
  // change it, others are added after the defaults.
  scrub::PiiScrubberOptions pii;
  // `pii.operator_id_secret`: the HMAC key for operator ids; empty: the environment variable
  // ORDERTRACE_OPERATOR_ID_SECRET, else <data_dir>/operator_id.key.
  std::string operator_id_secret;
};

// Reads a YAML config file over the defaults. Unknown keys and bad values are errors that
// name the key, so a typo never silently falls back to a default.
absl::StatusOr<ServerConfig> LoadConfigFile(const std::string& path, ServerConfig base = {});

// Parses "30s", "10m", "24h", "14d", "1h30m", "250ms" or a bare number of seconds.
absl::StatusOr<uint64_t> ParseDurationNanos(const std::string& text);

// Checks values that no single field can check alone (addresses, ranges).
absl::Status Validate(const ServerConfig& config);

// Every number of the config within its range; the first one outside is named with its range.
absl::Status ValidateRanges(const ServerConfig& config);

// The oldest span ingest accepts: ingest.max_span_age, by default the span retention.
uint64_t MaxSpanAgeNanos(const ServerConfig& config);

}  // namespace ordertrace::server
