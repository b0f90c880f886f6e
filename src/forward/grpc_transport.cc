// OTLP/gRPC for the forward: TraceService/Export through the stub generated from proto/
// (the receiver's own service definition), plain or with SSL channel credentials.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <mutex>
#include <sstream>

#include "forward/forward_transport.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"

namespace ordertrace::forward {
namespace {

namespace pb_collector = opentelemetry::proto::collector::trace::v1;

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

// The wait a google.rpc.RetryInfo in the status details asks for, if any.
std::optional<std::chrono::milliseconds> RetryDelayOf(const grpc::Status& status) {
  if (status.error_details().empty()) return std::nullopt;
  google::rpc::Status details;
  if (!details.ParseFromString(status.error_details())) return std::nullopt;
  for (const google::protobuf::Any& any : details.details()) {
    google::rpc::RetryInfo retry;
    if (any.Is<google::rpc::RetryInfo>() && any.UnpackTo(&retry)) {
      const auto seconds = std::clamp<int64_t>(retry.retry_delay().seconds(), 0, 86400);
      return std::chrono::milliseconds(seconds * 1000 + retry.retry_delay().nanos() / 1'000'000);
    }
  }
  return std::nullopt;
}

// OTLP/gRPC's table: these codes may pass later; RESOURCE_EXHAUSTED only when the server says
// when (RetryInfo), otherwise it means "never" (a message too large). The rest is final.
SendResult::Outcome OutcomeOf(const grpc::Status& status, bool has_retry_info) {
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
      return SendResult::Outcome::kAccepted;
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DATA_LOSS:
      return SendResult::Outcome::kRetryable;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return has_retry_info ? SendResult::Outcome::kRetryable : SendResult::Outcome::kRejected;
    default:
      return SendResult::Outcome::kRejected;
  }
}

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* key) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(std::string(key) + ": cannot read " + path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

class GrpcTransport final : public ForwardTransport {
 public:
  GrpcTransport(std::shared_ptr<grpc::Channel> channel, TransportOptions options)
      : stub_(pb_collector::TraceService::NewStub(channel)), options_(std::move(options)) {}

  SendResult Send(const std::string& request) override {
    SendResult result;
    pb_collector::ExportTraceServiceRequest message;
    if (!message.ParseFromString(request)) {
      // Our own encoding: cannot happen unless the queue is corrupt. Never sendable.
      result.outcome = SendResult::Outcome::kRejected;
      result.code = "unencodable";
      result.detail = "the queued spans are not a valid ExportTraceServiceRequest";
      return result;
    }
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + options_.timeout);
    for (const auto& [name, value] : options_.headers) context.AddMetadata(name, value);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (cancelled_) {
        result.detail = "forward stopped";
        return result;
      }
      current_ = &context;
    }
    pb_collector::ExportTraceServiceResponse response;
    const grpc::Status status = stub_->Export(&context, message, &response);
    {
      std::lock_guard<std::mutex> lock(mu_);
      current_ = nullptr;
    }
    result.code = CodeName(status.error_code());
    result.retry_after = RetryDelayOf(status);
    result.outcome = OutcomeOf(status, result.retry_after.has_value());
    if (!status.ok()) result.detail = result.code + ": " + status.error_message();
    return result;
  }

  void Cancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
    if (current_ != nullptr) current_->TryCancel();
  }

 private:
  const std::unique_ptr<pb_collector::TraceService::Stub> stub_;
  const TransportOptions options_;
  std::mutex mu_;
  grpc::ClientContext* current_ = nullptr;  // guarded by mu_: the call under way
  bool cancelled_ = false;                  // guarded by mu_
};

}  // namespace

absl::StatusOr<std::unique_ptr<ForwardTransport>> CreateGrpcTransport(TransportOptions options) {
  std::string target = options.endpoint;
  bool tls = options.tls || !options.ca_file.empty();
  if (target.rfind("https://", 0) == 0) {
    tls = true;
    target = target.substr(8);
  } else if (target.rfind("http://", 0) == 0) {
    target = target.substr(7);
  } else if (target.find("://") != std::string::npos) {
    return absl::InvalidArgumentError(
        "forward.endpoint for forward.protocol grpc must be host:port, http://host:port or "
        "https://host:port, got '" +
        options.endpoint + "'");
  }
  target = target.substr(0, target.find('/'));
  if (target.empty() || target.front() == ':' || target.find(':') == std::string::npos) {
    return absl::InvalidArgumentError("forward.endpoint must name a host and a port, got '" +
                                      options.endpoint + "'");
  }
  if (!tls && !options.client_cert_file.empty()) {
    return absl::InvalidArgumentError(
        "forward.client_cert_file needs TLS (forward.tls: true, forward.ca_file or an https:// "
        "endpoint)");
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (tls) {
    grpc::SslCredentialsOptions ssl;
    if (!options.ca_file.empty()) {
      absl::StatusOr<std::string> ca = ReadFile(options.ca_file, "forward.ca_file");
      if (!ca.ok()) return ca.status();
      ssl.pem_root_certs = *std::move(ca);
    }
    if (!options.client_cert_file.empty()) {
      absl::StatusOr<std::string> cert =
          ReadFile(options.client_cert_file, "forward.client_cert_file");
      if (!cert.ok()) return cert.status();
      absl::StatusOr<std::string> key =
          ReadFile(options.client_key_file, "forward.client_key_file");
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *std::move(cert);
      ssl.pem_private_key = *std::move(key);
    }
    credentials = grpc::SslCredentials(ssl);
  }
  // gRPC metadata keys are lower case; a header written X-Scope-OrgID is sent as x-scope-orgid.
  std::map<std::string, std::string> metadata;
  for (const auto& [name, value] : options.headers) {
    std::string key = name;
    for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    metadata[key] = value;
  }
  options.headers = std::move(metadata);
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(-1);
  // Reconnect soon after the endpoint comes back: gRPC's default backoff reaches 120 s, and the
  // forwarder already waits between attempts.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(target, credentials, args);
  return std::unique_ptr<ForwardTransport>(
      new GrpcTransport(std::move(channel), std::move(options)));
}

}  // namespace ordertrace::forward
