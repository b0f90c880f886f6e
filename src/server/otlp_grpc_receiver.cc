#include "server/otlp_grpc_receiver.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>

#include "google/protobuf/any.pb.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "otlp/proto_codec.h"

namespace ordertrace::server {

namespace pb_collector = opentelemetry::proto::collector::trace::v1;

class OtlpGrpcReceiver::Service final : public pb_collector::TraceService::Service {
 public:
  Service(ingest::Ingester& ingester, uint64_t retry_after_seconds)
      : ingester_(ingester), retry_after_seconds_(retry_after_seconds) {}

  grpc::Status Export(grpc::ServerContext* context,
                      const pb_collector::ExportTraceServiceRequest* request,
                      pb_collector::ExportTraceServiceResponse* response) override {
    otlp::DecodedRequest decoded = otlp::FromProto(*request);
    absl::Status stored = ingester_.Ingest(std::move(decoded.batch));
    if (stored.code() == absl::StatusCode::kResourceExhausted) {
      // OTLP: RESOURCE_EXHAUSTED is retryable only with RetryInfo in the details.
      return Throttled(grpc::StatusCode::RESOURCE_EXHAUSTED, std::string(stored.message()));
    }
    if (!stored.ok()) {
      if (stored.code() != absl::StatusCode::kUnavailable) {
        spdlog::error("storing spans failed: {}", stored.ToString());
      }
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, std::string(stored.message()));
    }
    if (decoded.rejected_spans > 0) {
      response->mutable_partial_success()->set_rejected_spans(decoded.rejected_spans);
      response->mutable_partial_success()->set_error_message(decoded.rejection_message);
    }
    return grpc::Status::OK;
  }

 private:
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
  const uint64_t retry_after_seconds_;
};

OtlpGrpcReceiver::OtlpGrpcReceiver(ingest::Ingester& ingester, OtlpGrpcReceiverOptions options)
    : service_(std::make_unique<Service>(ingester, options.retry_after_seconds)),
      options_(options) {}

OtlpGrpcReceiver::~OtlpGrpcReceiver() { Shutdown(); }

absl::StatusOr<int> OtlpGrpcReceiver::Start(const ListenAddress& address) {
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address.ToString(), grpc::InsecureServerCredentials(), &port);
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
