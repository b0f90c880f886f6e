// How the OTLP forward reaches its endpoint: one ExportTraceServiceRequest at a time, over
// OTLP/HTTP (protobuf) or OTLP/gRPC. The forwarder (otlp_forwarder.h) owns the retry policy;
// a transport makes one attempt and says how it went. Tests inject a fake.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace ordertrace::forward {

// What one attempt came to.
struct SendResult {
  enum class Outcome {
    kAccepted,   // 2xx / OK: the endpoint has the spans
    kRetryable,  // 429, 5xx, a connection failure, gRPC UNAVAILABLE and the like
    kRejected,  // the endpoint refused these spans for good (4xx but 429; gRPC INVALID_ARGUMENT...)
  };
  Outcome outcome = Outcome::kRetryable;
  // The answer as a metric label: the HTTP status ("200", "503"), the gRPC code name ("OK",
  // "UNAVAILABLE"), or "error" when no answer came (connection refused, timeout, TLS).
  std::string code = "error";
  // How long the endpoint asked to wait before trying again (Retry-After, gRPC RetryInfo).
  std::optional<std::chrono::milliseconds> retry_after;
  // For the log: what went wrong, short and printable.
  std::string detail;
};

// Thread-safety: Send from one thread at a time; Cancel from any thread, at any time.
class ForwardTransport {
 public:
  virtual ~ForwardTransport() = default;
  // Sends `request` (an encoded ExportTraceServiceRequest) once, waiting at most the
  // transport's timeout.
  virtual SendResult Send(const std::string& request) = 0;
  // Aborts a Send under way (it returns kRetryable) and makes later ones return at once.
  virtual void Cancel() = 0;
};

// Where and how to send: the `forward:` section of ordertrace.yaml.
struct TransportOptions {
  // OTLP/HTTP: an http:// or https:// URL; without a path "/v1/traces" is used.
  // OTLP/gRPC: host:port, or http://host:port (plain) or https://host:port (TLS).
  std::string endpoint;
  // Request headers (HTTP) or metadata (gRPC, names lower-cased), e.g. X-Scope-OrgID.
  std::map<std::string, std::string> headers;
  // gRPC: SSL channel credentials (also when ca_file is set, or the endpoint is https://).
  // HTTP: TLS comes with an https:// endpoint.
  bool tls = false;
  std::string ca_file;           // PEM; empty: the system's trust store
  std::string client_cert_file;  // with client_key_file: a client certificate
  std::string client_key_file;
  // The most one attempt may take.
  std::chrono::milliseconds timeout = std::chrono::seconds(10);
};

// kInvalidArgument for an endpoint that is not a URL of the right kind, a certificate or key
// that cannot be read; the message names the setting.
absl::StatusOr<std::unique_ptr<ForwardTransport>> CreateHttpTransport(TransportOptions options);
absl::StatusOr<std::unique_ptr<ForwardTransport>> CreateGrpcTransport(TransportOptions options);

}  // namespace ordertrace::forward
