#include "server/ordertrace_server.h"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "ingest/ingester.h"
#include "query/order_query.h"
#include "query/trace_query.h"
#include "server/api_server.h"
#include "server/listen_address.h"
#include "server/otlp_grpc_receiver.h"
#include "server/otlp_http_receiver.h"
#include "store/retention.h"
#include "store/rocks_store.h"

namespace ordertrace::server {

const model::Clock& OrdertraceServer::DefaultClock() {
  static const model::SystemClock clock;
  return clock;
}

OrdertraceServer::OrdertraceServer(ServerConfig config, const model::Clock& clock)
    : config_(std::move(config)), clock_(clock) {}

OrdertraceServer::~OrdertraceServer() { Shutdown(); }

absl::Status OrdertraceServer::Start() {
  absl::Status valid = Validate(config_);
  if (!valid.ok()) return valid;
  absl::StatusOr<ListenAddress> grpc_address = ParseListenAddress(config_.otlp_grpc_listen);
  absl::StatusOr<ListenAddress> otlp_http_address = ParseListenAddress(config_.otlp_http_listen);
  absl::StatusOr<ListenAddress> http_address = ParseListenAddress(config_.http_listen);

  store::RocksStoreOptions store_options = config_.store;
  store_options.path = (std::filesystem::path(config_.data_dir) / "store").string();
  absl::StatusOr<std::unique_ptr<store::Store>> store = store::OpenRocksStore(store_options);
  if (!store.ok()) return store.status();
  store_ = std::move(*store);

  ingester_ = std::make_unique<ingest::Ingester>(*store_, clock_, config_.ingest);
  retention_ = std::make_unique<store::RetentionRunner>(*store_, clock_, config_.retention);
  retention_->Start();
  order_query_ = std::make_unique<query::OrderQuery>(*store_, clock_);
  trace_query_ = std::make_unique<query::TraceQuery>(*store_, clock_, config_.query);

  api_ = std::make_unique<ApiServer>(
      *order_query_, *trace_query_, [this] { return ready_.load(); }, config_.http_threads);
  absl::StatusOr<int> http_port = api_->Start(*http_address);
  if (!http_port.ok()) return http_port.status();
  ports_.http = *http_port;

  grpc_ = std::make_unique<OtlpGrpcReceiver>(
      *ingester_, OtlpGrpcReceiverOptions{config_.max_request_bytes, config_.retry_after_seconds});
  absl::StatusOr<int> grpc_port = grpc_->Start(*grpc_address);
  if (!grpc_port.ok()) return grpc_port.status();
  ports_.otlp_grpc = *grpc_port;

  otlp_http_ = std::make_unique<OtlpHttpReceiver>(
      *ingester_, OtlpHttpReceiverOptions{config_.max_request_bytes, config_.retry_after_seconds,
                                          config_.http_threads});
  absl::StatusOr<int> otlp_http_port = otlp_http_->Start(*otlp_http_address);
  if (!otlp_http_port.ok()) return otlp_http_port.status();
  ports_.otlp_http = *otlp_http_port;

  ready_ = true;
  spdlog::info("ordertrace ready: OTLP/gRPC {}:{}, OTLP/HTTP {}:{}, API http://{}:{} (data in {})",
               grpc_address->host, ports_.otlp_grpc, otlp_http_address->host, ports_.otlp_http,
               http_address->host, ports_.http, config_.data_dir);
  return absl::OkStatus();
}

void OrdertraceServer::Shutdown() {
  ready_ = false;
  // Receivers first, so nothing new arrives; then the ingester drains what it accepted.
  if (otlp_http_) otlp_http_->Shutdown();
  if (grpc_) grpc_->Shutdown();
  if (ingester_) ingester_->Shutdown();
  if (api_) api_->Shutdown();
  if (retention_) retention_->Shutdown();
  otlp_http_.reset();
  grpc_.reset();
  api_.reset();
  trace_query_.reset();
  order_query_.reset();
  retention_.reset();
  ingester_.reset();
  store_.reset();
}

}  // namespace ordertrace::server
