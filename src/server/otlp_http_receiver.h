// OTLP/HTTP trace receiver: POST /v1/traces with application/x-protobuf or application/json
// bodies, gzip-compressed or not, answered as the OTLP specification says. Thread-safe;
// serves on an http::Server (event-driven I/O, worker threads for the handlers, admission
// control: see http/server.h).
#pragma once

#include <atomic>
#include <memory>
#include <thread>

#include "absl/status/status.h"
#include "http/server.h"
#include "ingest/ingester.h"
#include "server/listen_address.h"

namespace ordertrace::server {

struct OtlpHttpReceiverOptions {
  size_t max_request_bytes = 16 << 20;  // after decompression
  uint64_t retry_after_seconds = 1;
  // Connections, deadlines and admission; `max_body_bytes` and `retry_after_seconds` are taken
  // from the two fields above.
  http::ServerOptions http;
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
  OtlpHttpReceiver(ingest::Ingester& ingester, OtlpHttpReceiverOptions options);
  ~OtlpHttpReceiver();

  // Binds and starts serving; returns the bound port (useful with port 0).
  absl::StatusOr<int> Start(const ListenAddress& address);
  void Shutdown();
  OtlpHttpReceiverStats Stats() const;
  // The listener's connections and refusals.
  http::ServerStats HttpStats() const;

 private:
  struct Counters;

  void Export(http::Request& request, http::Response& response);

  ingest::Ingester& ingester_;
  const OtlpHttpReceiverOptions options_;
  std::unique_ptr<Counters> counters_;
  std::unique_ptr<http::Server> http_;
};

}  // namespace ordertrace::server
