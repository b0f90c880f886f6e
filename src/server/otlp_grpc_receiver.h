// OTLP/gRPC trace receiver: opentelemetry.proto.collector.trace.v1.TraceService/Export.
// gzip is negotiated by gRPC itself. Thread-safe; gRPC owns the serving threads.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "ingest/ingester.h"
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
  OtlpGrpcReceiver(ingest::Ingester& ingester, OtlpGrpcReceiverOptions options);
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
