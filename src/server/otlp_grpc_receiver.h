// OTLP/gRPC trace receiver: opentelemetry.proto.collector.trace.v1.TraceService/Export.
// gzip is negotiated by gRPC itself. Requests arrive as bytes: each is admitted by the shared
// decode budget (otlp/decode_budget.h) before it is decoded, so a small message that would
// decode into gigabytes is refused before it costs them. Thread-safe; gRPC owns the serving
// threads.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "auth/token_authenticator.h"
#include "base/listen_address.h"
#include "http/tls_context.h"
#include "ingest/ingester.h"
#include "otlp/decode_budget.h"

namespace grpc {
class Server;
class ServerCredentials;
namespace experimental {
class CertificateProviderInterface;
}
}  // namespace grpc

namespace ordertrace::server {

struct OtlpGrpcReceiverOptions {
  size_t max_request_bytes = 16 << 20;
  uint64_t retry_after_seconds = 1;
  // Bearer tokens in the `authorization` metadata: with tokens configured, only the `ingest`
  // role may export (UNAUTHENTICATED without a valid token, PERMISSION_DENIED for another
  // role). Borrowed, may be null (open).
  const auth::TokenAuthenticator* tokens = nullptr;
  // Set: only TLS is served, with these credentials (checked by http::LoadTlsCredentials), and
  // a client certificate signed by their client CA is required when they carry one. Unset:
  // plaintext.
  std::optional<http::TlsCredentials> tls;
  // With `tls`: the folder (created, mode 0700) holding the copies of the credentials that
  // gRPC reads; InstallTls rewrites them.
  std::string tls_directory;
};

class OtlpGrpcReceiver {
 public:
  // `ingester` and `decode_budget` are borrowed and must outlive the receiver.
  OtlpGrpcReceiver(ingest::Ingester& ingester, otlp::DecodeBudget& decode_budget,
                   OtlpGrpcReceiverOptions options);
  ~OtlpGrpcReceiver();

  // Binds and starts serving; returns the bound port.
  absl::StatusOr<int> Start(const base::ListenAddress& address);
  void Shutdown();

  // Serves `credentials` to new connections from within kTlsRefreshSeconds on; open ones keep
  // theirs. gRPC 1.51 can only be handed certificates by a provider that polls files, so this
  // rewrites the copies it polls (each file replaced by a rename). Only for a receiver started
  // with `tls`; thread-safe.
  absl::Status InstallTls(const http::TlsCredentials& credentials);
  static constexpr unsigned kTlsRefreshSeconds = 1;

 private:
  class Service;

  // Insecure, or TLS from options_.tls (writing the files gRPC watches).
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials();

  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  const OtlpGrpcReceiverOptions options_;
  std::shared_ptr<grpc::experimental::CertificateProviderInterface> certificates_;
  std::mutex tls_mu_;  // one InstallTls writes the files at a time
};

}  // namespace ordertrace::server
