// OTLP/gRPC trace receiver: opentelemetry.proto.collector.trace.v1.TraceService/Export.
// gzip is negotiated by gRPC itself. Requests arrive as bytes: each is admitted by the shared
// decode budget (otlp/decode_budget.h) before it is decoded, so a small message that would
// decode into gigabytes is refused before it costs them. Thread-safe; gRPC owns the serving
// threads.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "ingest/ingester.h"
#include "otlp/decode_budget.h"
#include "server/listen_address.h"

namespace grpc {
class Server;
}

namespace ordertrace::server {

struct OtlpGrpcReceiverOptions {
  size_t max_request_bytes = 16 << 20;
  uint64_t retry_after_seconds = 1;
};

class OtlpGrpcReceiver {
 public:
  // `ingester` and `decode_budget` are borrowed and must outlive the receiver.
  OtlpGrpcReceiver(ingest::Ingester& ingester, otlp::DecodeBudget& decode_budget,
                   OtlpGrpcReceiverOptions options);
  ~OtlpGrpcReceiver();

  // Binds and starts serving; returns the bound port.
  absl::StatusOr<int> Start(const ListenAddress& address);
  void Shutdown();

 private:
  class Service;

  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  const OtlpGrpcReceiverOptions options_;
};

}  // namespace ordertrace::server
