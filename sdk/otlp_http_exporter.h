// An OTLP/HTTP exporter: POSTs spans as protobuf (sdk/otlp_encoding.h) to a collector,
// Tempo, Jaeger or ordertrace. Retries 429, 502, 503, 504 and connection failures with
// exponential backoff and jitter, honours Retry-After, and never spends longer than `timeout`
// on one batch. Optional gzip; https endpoints use TLS (cpp-httplib with OpenSSL).
//
// Thread-safety: Export is called by one thread at a time (calls are serialised by a mutex);
// Shutdown and stats may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "sdk/span_exporter.h"

namespace httplib {
class Client;
}

namespace ordertrace::sdk {

struct OtlpHttpExporterOptions {
  // http:// or https://, with the path; an endpoint without a path gets "/v1/traces".
  std::string endpoint = "http://127.0.0.1:4318/v1/traces";
  // Sends the body gzip-compressed (Content-Encoding: gzip).
  bool gzip = false;
  // Extra request headers, e.g. {"authorization", "Bearer ..."}.
  std::map<std::string, std::string> headers;
  // The most one Export may take, all attempts and waits included (OTEL_EXPORTER_OTLP_TIMEOUT).
  std::chrono::milliseconds timeout = std::chrono::seconds(10);
  // Per attempt, for establishing the connection (also capped by what is left of `timeout`).
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(5);
  // Retry policy, OpenTelemetry's defaults: 5 attempts, backoff 1 s growing by 1.5 to 5 s,
  // each wait randomised by +-20%. A Retry-After header replaces the backoff for that wait.
  int max_attempts = 5;
  std::chrono::milliseconds initial_backoff = std::chrono::seconds(1);
  std::chrono::milliseconds max_backoff = std::chrono::seconds(5);
  double backoff_multiplier = 1.5;
  // TLS, for https endpoints. Empty CA file: the system's trust store.
  std::string ca_cert_file;
  std::string client_cert_file;  // with client_key_file: mutual TLS
  std::string client_key_file;
  bool verify_server_certificate = true;
};

// Counters since construction.
struct OtlpHttpExporterStats {
  uint64_t spans_exported = 0;
  uint64_t spans_failed = 0;
  uint64_t requests = 0;  // HTTP attempts, retries included
  uint64_t retries = 0;
};

class OtlpHttpExporter final : public SpanExporter {
 public:
  // kInvalidArgument for an endpoint that is not an http(s) URL with a host, or a retry policy
  // that makes no sense (no attempts, a multiplier below 1).
  static absl::StatusOr<std::unique_ptr<OtlpHttpExporter>> Create(OtlpHttpExporterOptions options);
  ~OtlpHttpExporter() override;

  // Sends the spans as one ExportTraceServiceRequest. OK on a 2xx answer. Otherwise the error of
  // the last attempt: the HTTP status mapped to a canonical code (400 -> kInvalidArgument,
  // 429 -> kResourceExhausted, 503 -> kUnavailable, ...), kUnavailable for a connection failure
  // (a refused server certificate is not retried),
  // kDeadlineExceeded when the next wait would pass `timeout`, kCancelled after Shutdown.
  absl::Status Export(std::span<const SpanData> spans) override;
  void Shutdown() override;

  OtlpHttpExporterStats stats() const;

 private:
  OtlpHttpExporter(OtlpHttpExporterOptions options, std::string path,
                   std::unique_ptr<httplib::Client> client);

  // Waits up to `duration` unless Shutdown comes first; false when it did.
  bool WaitUnlessShutdown(std::chrono::steady_clock::duration duration);
  std::chrono::steady_clock::duration Jittered(std::chrono::steady_clock::duration backoff);

  // Constant after construction.
  const OtlpHttpExporterOptions options_;
  const std::string path_;

  std::mutex export_mu_;                     // serialises Export
  std::unique_ptr<httplib::Client> client_;  // used under export_mu_; stop() from Shutdown
  std::mt19937 jitter_engine_;               // guarded by export_mu_

  std::mutex shutdown_mu_;
  std::condition_variable shutdown_cv_;
  bool shutdown_ = false;  // guarded by shutdown_mu_

  std::atomic<uint64_t> spans_exported_{0};
  std::atomic<uint64_t> spans_failed_{0};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> retries_{0};
};

// gzip (RFC 1952) of `data`, as zlib's deflate with a gzip wrapper.
std::string GzipCompress(std::string_view data);

// What an HTTP status means as a canonical code; OK for 2xx.
absl::Status HttpStatusToStatus(int http_status, std::string_view body);

// True for the answers worth retrying: 429, 502, 503, 504.
bool IsRetryableHttpStatus(int http_status);

}  // namespace ordertrace::sdk
