// OTLP/HTTP trace receiver: POST /v1/traces with application/x-protobuf or application/json
// bodies, gzip-compressed or not, answered as the OTLP specification says. Thread-safe;
// serves on an http::Server (event-driven I/O, worker threads for the handlers, admission
// control: see http/server.h).
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "auth/token_authenticator.h"
#include "base/listen_address.h"
#include "http/server.h"
#include "ingest/ingester.h"
#include "otlp/decode_budget.h"

namespace ordertrace::server {

struct OtlpHttpReceiverOptions {
  size_t max_request_bytes = 16 << 20;  // after decompression
  uint64_t retry_after_seconds = 1;
  // Connections, deadlines and admission; `max_body_bytes` and `retry_after_seconds` are taken
  // from the two fields above.
  http::ServerOptions http;
  // Bearer tokens: with tokens configured, only the `ingest` role may export (401 without a
  // valid token, 403 for another role). Borrowed, may be null (open).
  const auth::TokenAuthenticator* tokens = nullptr;
};

struct OtlpHttpReceiverStats {
  uint64_t requests = 0;
  uint64_t spans_accepted = 0;
  uint64_t spans_rejected = 0;
  uint64_t requests_malformed = 0;
  uint64_t requests_too_large = 0;
  uint64_t requests_throttled = 0;
};

class OtlpHttpReceiver {
 public:
  // A request body's media type: OTLP protobuf, OTLP JSON or neither (defined in the .cc).
  enum class Encoding : int;

  // `budget` (shared with the gRPC receiver) bounds what decoding requests may hold; both
  // borrowed, and must outlive this.
  OtlpHttpReceiver(ingest::Ingester& ingester, otlp::DecodeBudget& budget,
                   OtlpHttpReceiverOptions options);
  ~OtlpHttpReceiver();

  // Binds and starts serving; returns the bound port (useful with port 0).
  absl::StatusOr<int> Start(const base::ListenAddress& address);
  void Shutdown();
  OtlpHttpReceiverStats Stats() const;
  // The listener's connections and refusals.
  http::ServerStats HttpStats() const;

 private:
  struct Counters;

  void Export(http::Request& request, http::Response& response);
  // The refusal of a head whose token may not export (none: it may).
  std::optional<http::HeadRefusal> CheckToken(const http::Request& head) const;
  // The body decompressed, or the error answered.
  std::optional<std::string> DecompressedBody(http::Request& request, http::Response& response,
                                              Encoding encoding);
  // Answers a refusal from the decode budget or the ingester (413, 429 or 503).
  void Refuse(http::Response& response, Encoding encoding, const absl::Status& status);

  ingest::Ingester& ingester_;
  otlp::DecodeBudget& budget_;
  const OtlpHttpReceiverOptions options_;
  std::unique_ptr<Counters> counters_;
  std::unique_ptr<http::Server> http_;
};

}  // namespace ordertrace::server
