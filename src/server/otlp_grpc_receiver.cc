#include "server/otlp_grpc_receiver.h"

#include <fcntl.h>
#include <grpc/support/log.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <grpcpp/support/method_handler.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <mutex>
#include <string>
#include <string_view>

#include "auth/access_policy.h"
#include "google/protobuf/any.pb.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otlp/proto_codec.h"

namespace ordertrace::server {
namespace {

namespace pb_collector = opentelemetry::proto::collector::trace::v1;

constexpr char kExportMethod[] = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

// The request's bytes in one string (gRPC hands them over in slices, already decompressed).
std::shared_ptr<const std::string> BodyOf(const grpc::ByteBuffer& request) {
  std::vector<grpc::Slice> slices;
  auto body = std::make_shared<std::string>();
  if (!request.Dump(&slices).ok()) return body;
  body->reserve(request.Length());
  for (const grpc::Slice& slice : slices) {
    body->append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return body;
}

// Replaces `path` with `bytes` by a rename, so that a reader sees the old file or the new one,
// never a part. Mode 0600: one of them is the private key.
absl::Status ReplaceFile(const std::string& path, const std::string& bytes) {
  const std::string staging = path + ".new";
  int fd = open(staging.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::UnavailableError("cannot write " + staging + " (" + std::strerror(errno) + ")");
  }
  size_t written = 0;
  while (written < bytes.size()) {
    ssize_t n = write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  close(fd);
  if (written != bytes.size() || std::rename(staging.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError("cannot write " + path + " (" + std::strerror(errno) + ")");
  }
  return absl::OkStatus();
}

// gRPC core writes every failed TLS handshake (plain HTTP/2, a scanner, a missing client
// certificate) to stderr as an error line of its own format: a port scan would flood the log.
// Its lines go through spdlog instead, failed handshakes at debug.
void LogGrpcThroughSpdlog(gpr_log_func_args* args) {
  const std::string_view message = args->message != nullptr ? args->message : "";
  if (message.find("Handshake failed") != std::string_view::npos) {
    spdlog::debug("OTLP/gRPC receiver: {}", message);
  } else if (args->severity == GPR_LOG_SEVERITY_ERROR) {
    spdlog::error("gRPC: {}", message);
  } else if (args->severity == GPR_LOG_SEVERITY_INFO) {
    spdlog::info("gRPC: {}", message);
  } else {
    spdlog::debug("gRPC: {}", message);
  }
}

struct CredentialFiles {
  std::string certificate_chain;
  std::string private_key;
  std::string client_ca;  // empty: no client CA
};

CredentialFiles FilesIn(const std::string& directory, bool client_ca) {
  const std::filesystem::path dir(directory);
  return {(dir / "cert.pem").string(), (dir / "key.pem").string(),
          client_ca ? (dir / "client_ca.pem").string() : ""};
}

// The certificate first and the key right after. Two renames are not one step: a poll of gRPC's
// watcher that falls between them (microseconds, once a second) reads a pair that does not match,
// and the next poll reads the matching one.
absl::Status WriteCredentialFiles(const CredentialFiles& files,
                                  const http::TlsCredentials& credentials) {
  if (absl::Status s = ReplaceFile(files.certificate_chain, credentials.certificate_chain_pem);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ReplaceFile(files.private_key, credentials.private_key_pem); !s.ok()) {
    return s;
  }
  if (!files.client_ca.empty()) return ReplaceFile(files.client_ca, credentials.client_ca_pem);
  return absl::OkStatus();
}

grpc::ByteBuffer Serialized(const pb_collector::ExportTraceServiceResponse& response) {
  const std::string bytes = response.SerializeAsString();
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace

// TraceService/Export registered by hand with a ByteBuffer request instead of the generated
// service, whose synchronous handler gets the request already parsed by libprotobuf: a 14 MB
// message of 7 million empty values took 1.1 GB before any of our code could refuse it.
// RpcMethodHandler is what the generated code uses for the same registration.
class OtlpGrpcReceiver::Service final : public grpc::Service {
 public:
  Service(ingest::Ingester& ingester, otlp::DecodeBudget& budget, uint64_t retry_after_seconds,
          const auth::TokenAuthenticator* tokens)
      : ingester_(ingester),
        budget_(budget),
        retry_after_seconds_(retry_after_seconds),
        tokens_(tokens) {
    AddMethod(new grpc::internal::RpcServiceMethod(
        kExportMethod, grpc::internal::RpcMethod::NORMAL_RPC,
        new grpc::internal::RpcMethodHandler<Service, grpc::ByteBuffer, grpc::ByteBuffer>(
            [](Service* service, grpc::ServerContext* context, const grpc::ByteBuffer* request,
               grpc::ByteBuffer* response) {
              if (grpc::Status refused = service->Authorize(*context); !refused.ok()) {
                return refused;
              }
              return service->Export(*request, *response);
            },
            this)));
  }

 private:
  // The `authorization` metadata's token, before a byte of the request is decoded.
  grpc::Status Authorize(const grpc::ServerContext& context) const {
    if (tokens_ == nullptr || !tokens_->enabled()) return grpc::Status::OK;
    const auto& metadata = context.client_metadata();
    auto header = metadata.find("authorization");
    const std::string_view value =
        header == metadata.end() ? std::string_view()
                                 : std::string_view(header->second.data(), header->second.size());
    auth::Authentication found = tokens_->Authenticate(value, "OTLP/gRPC");
    if (!found.principal) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, found.message);
    if (!auth::Allows(found.principal->role, auth::Access::kIngest)) {
      tokens_->CountForbidden(*found.principal, "OTLP/gRPC");
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          "the token '" + found.principal->token_name + "' (" +
                              std::string(auth::RoleName(found.principal->role)) +
                              ") may not export spans: that takes the ingest role");
    }
    return grpc::Status::OK;
  }

  grpc::Status Export(const grpc::ByteBuffer& request, grpc::ByteBuffer& response) {
    std::shared_ptr<const std::string> body = BodyOf(request);
    absl::StatusOr<otlp::DecodeBudget::Lease> lease = budget_.AdmitProtobuf(*body);
    if (!lease.ok()) return Refusal(lease.status());
    absl::StatusOr<otlp::DecodedRequest> decoded = otlp::DecodeProtobufRequest(body);
    if (!decoded.ok()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          std::string(decoded.status().message()));
    }
    ingest::RejectedSpans rejected;
    absl::Status stored =
        ingester_.Ingest(std::move(decoded->batch), std::move(decoded->received), &rejected);
    if (!stored.ok()) return Refusal(stored);
    response = Serialized(Answer(*decoded, rejected));
    return grpc::Status::OK;
  }

  // partial_success: the spans the decoder refused and those ingest refused; the first reason.
  static pb_collector::ExportTraceServiceResponse Answer(const otlp::DecodedRequest& decoded,
                                                         const ingest::RejectedSpans& rejected) {
    pb_collector::ExportTraceServiceResponse answer;
    const int64_t count = decoded.rejected_spans + rejected.count;
    if (count == 0) return answer;
    answer.mutable_partial_success()->set_rejected_spans(count);
    answer.mutable_partial_success()->set_error_message(
        decoded.rejected_spans > 0 ? decoded.rejection_message : rejected.message);
    return answer;
  }

  grpc::Status Refusal(const absl::Status& status) const {
    switch (status.code()) {
      case absl::StatusCode::kResourceExhausted:
        // OTLP: RESOURCE_EXHAUSTED is retryable only with RetryInfo in the details.
        return Throttled(grpc::StatusCode::RESOURCE_EXHAUSTED, std::string(status.message()));
      case absl::StatusCode::kOutOfRange:
        // Too large ever to be admitted: RESOURCE_EXHAUSTED without RetryInfo, as gRPC answers a
        // message over its size limit.
        return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, std::string(status.message()));
      case absl::StatusCode::kUnavailable:
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, std::string(status.message()));
      default:
        spdlog::error("storing spans failed: {}", status.ToString());
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, std::string(status.message()));
    }
  }

  grpc::Status Throttled(grpc::StatusCode code, const std::string& message) const {
    google::rpc::RetryInfo retry;
    retry.mutable_retry_delay()->set_seconds(static_cast<int64_t>(retry_after_seconds_));
    google::rpc::Status details;
    details.set_code(static_cast<int>(code));
    details.set_message(message);
    details.add_details()->PackFrom(retry);
    return grpc::Status(code, message, details.SerializeAsString());
  }

  ingest::Ingester& ingester_;
  otlp::DecodeBudget& budget_;
  const uint64_t retry_after_seconds_;
  const auth::TokenAuthenticator* const tokens_;  // may be null
};

OtlpGrpcReceiver::OtlpGrpcReceiver(ingest::Ingester& ingester, otlp::DecodeBudget& decode_budget,
                                   OtlpGrpcReceiverOptions options)
    : service_(std::make_unique<Service>(ingester, decode_budget, options.retry_after_seconds,
                                         options.tokens)),
      options_(options) {}

OtlpGrpcReceiver::~OtlpGrpcReceiver() { Shutdown(); }

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> OtlpGrpcReceiver::Credentials() {
  if (!options_.tls.has_value()) return grpc::InsecureServerCredentials();
  static std::once_flag log_function_set;
  std::call_once(log_function_set, [] { gpr_set_log_function(LogGrpcThroughSpdlog); });
  const http::TlsCredentials& tls = *options_.tls;
  const bool client_ca = !tls.client_ca_pem.empty();
  std::error_code ec;
  std::filesystem::create_directories(options_.tls_directory, ec);
  if (ec || chmod(options_.tls_directory.c_str(), 0700) != 0) {
    return absl::UnavailableError("OTLP/gRPC receiver cannot create " + options_.tls_directory +
                                  " for its TLS files");
  }
  const CredentialFiles files = FilesIn(options_.tls_directory, client_ca);
  if (absl::Status written = WriteCredentialFiles(files, tls); !written.ok()) return written;
  // Why files: gRPC 1.51's C++ API has no provider that takes new certificates from memory; the
  // file watcher polls, so a reload (InstallTls) reaches gRPC within kTlsRefreshSeconds.
  certificates_ = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      files.private_key, files.certificate_chain, files.client_ca, kTlsRefreshSeconds);
  grpc::experimental::TlsServerCredentialsOptions tls_options(certificates_);
  tls_options.watch_identity_key_cert_pairs();
  if (client_ca) {
    tls_options.watch_root_certs();
    tls_options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    tls_options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(tls_options);
}

absl::Status OtlpGrpcReceiver::InstallTls(const http::TlsCredentials& credentials) {
  if (!options_.tls.has_value()) {
    return absl::FailedPreconditionError("the OTLP/gRPC receiver was started without TLS");
  }
  std::lock_guard<std::mutex> lock(tls_mu_);
  return WriteCredentialFiles(FilesIn(options_.tls_directory, !credentials.client_ca_pem.empty()),
                              credentials);
}

absl::StatusOr<int> OtlpGrpcReceiver::Start(const base::ListenAddress& address) {
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = Credentials();
  if (!credentials.ok()) return credentials.status();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address.ToString(), *credentials, &port);
  // gRPC shares ports by default (SO_REUSEPORT): a second ordertrace would then split the
  // traffic with the first instead of failing to start.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // gRPC takes an int: larger limits mean "no smaller limit than gRPC's own maximum".
  builder.SetMaxReceiveMessageSize(static_cast<int>(
      std::min<size_t>(options_.max_request_bytes, std::numeric_limits<int>::max())));
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (!server_ || port == 0) {
    server_.reset();
    return absl::UnavailableError("OTLP/gRPC receiver cannot listen on " + address.ToString() +
                                  " (in use, or not a local address)");
  }
  return port;
}

void OtlpGrpcReceiver::Shutdown() {
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_.reset();
  }
}

}  // namespace ordertrace::server
