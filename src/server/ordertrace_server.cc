#include "server/ordertrace_server.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <optional>

#include "base/listen_address.h"
#include "forward/otlp_forwarder.h"
#include "gaps/alertmanager_client.h"
#include "gaps/gap_codec.h"
#include "gaps/gap_detector.h"
#include "gaps/stage_model.h"
#include "gaps/stuck_trace_keeper.h"
#include "http/tls_context.h"
#include "ingest/ingester.h"
#include "metrics/registry.h"
#include "metrics/trace_metrics.h"
#include "query/order_query.h"
#include "query/trace_query.h"
#include "sampling/tail_sampler.h"
#include "scrub/operator_id_hasher.h"
#include "scrub/pii_scrubber.h"
#include "server/api_server.h"
#include "server/component_metrics.h"
#include "server/otlp_grpc_receiver.h"
#include "server/otlp_http_receiver.h"
#include "server/store_gap_store.h"
#include "store/retention.h"
#include "store/rocks_store.h"

namespace ordertrace::server {

namespace {

// Detail that waited for the sampler when ordertrace stopped goes back to it with its deadline
// (decided as if there had been no stop); without a sampler now, it is all kept.
absl::Status RestorePendingDetail(store::Store& store, sampling::TailSampler* sampler,
                                  const base::Clock& clock) {
  absl::StatusOr<std::vector<store::PendingBlock>> blocks = store.ReadPendingBlocks();
  if (!blocks.ok() || blocks->empty()) return blocks.status();
  store::WriteSet keep_all;
  for (store::PendingBlock& block : *blocks) {
    if (sampler == nullptr) {
      keep_all.blocks.push_back({block.trace_id, clock.NowUnixNano(), std::move(block.encoded)});
      keep_all.pending.decided_below =
          std::max(keep_all.pending.decided_below, block.buffering + 1);
      continue;
    }
    absl::Status restored = sampler->RestorePending(
        {block.trace_id, block.buffering, block.part, block.deadline_unix_nano}, block.encoded);
    if (!restored.ok()) {
      spdlog::warn("sampler: a stored pending block is unreadable: {}", restored.ToString());
    }
  }
  spdlog::info("sampler: {} stored blocks of detail waiting for a decision restored",
               blocks->size());
  return sampler == nullptr ? store.Write(keep_all) : absl::OkStatus();
}

// Hands every order record ingest changed to the gap detector: the first step of the
// stuck-trace loop (gaps/stuck_trace_keeper.h).
class GapFeed final : public ingest::OrderObserver {
 public:
  explicit GapFeed(gaps::GapDetector& detector) : detector_(detector) {}
  void OnOrderUpdated(const model::OrderRecord* before, const model::OrderRecord& after) override {
    detector_.OnOrderChanged(before, after);
  }
  void OnSpansArrived(const base::TraceBatch& batch) override { detector_.OnSpansArrived(batch); }

 private:
  gaps::GapDetector& detector_;
};

// The sampler's side of the stuck-trace loop (gaps/stuck_trace_keeper.h): a gap's trace keeps
// its buffered and later detail spans.
class SamplerKeepsStuckTraces final : public gaps::StuckTraceKeeper {
 public:
  explicit SamplerKeepsStuckTraces(sampling::TailSampler& sampler) : sampler_(sampler) {}
  void KeepStuckTrace(const base::TraceId& trace_id) override { sampler_.ForceKeep(trace_id); }

 private:
  sampling::TailSampler& sampler_;
};

// The SLA of a stage for a partner, as the lifecycle sets it (none: no SLA).
metrics::SlaLookup SlaOf(const gaps::StageModel& lifecycle) {
  const gaps::StageModel* model = &lifecycle;
  return [model](std::string_view status, std::string_view partner) -> std::optional<uint64_t> {
    const gaps::StageRule* rule = model->RuleFor(status);
    if (rule == nullptr) return std::nullopt;
    return model->SlaNanos(*rule, partner);
  };
}

gaps::AlertmanagerClientOptions AlertmanagerOptionsOf(const ServerConfig& config) {
  gaps::AlertmanagerClientOptions options;
  options.url = config.alertmanager_url;
  options.tls = {config.alertmanager_ca_file, config.alertmanager_cert_file,
                 config.alertmanager_key_file};
  options.external_url = config.external_url;
  options.resend_interval = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::nanoseconds(config.alertmanager_resend_nanos));
  // Alertmanager expires an alert at its endsAt: leave room for several missed re-sends.
  options.alert_lifetime =
      std::max(std::chrono::milliseconds(300'000), 5 * options.resend_interval);
  return options;
}

// The lifecycle's SLAs, for the trace metrics' SLA aggregates and the alert rules' gauges.
void PublishSlas(const gaps::StageModel& lifecycle, metrics::TraceMetrics& trace_metrics) {
  std::vector<std::pair<std::string, double>> stages;
  std::optional<double> price_calc;
  for (const std::string& status : lifecycle.statuses()) {
    const gaps::StageRule* rule = lifecycle.RuleFor(status);
    if (rule == nullptr) continue;
    double seconds = static_cast<double>(lifecycle.SlaNanos(*rule, "")) / 1e9;
    stages.emplace_back(status, seconds);
    if (rule->calculation && !price_calc) price_calc = seconds;
  }
  trace_metrics.SetSlas(stages, price_calc);
}

}  // namespace

const base::Clock& OrdertraceServer::DefaultClock() {
  static const base::SystemClock clock;
  return clock;
}

OrdertraceServer::OrdertraceServer(ServerConfig config, const base::Clock& clock)
    : config_(std::move(config)), clock_(clock) {}

OrdertraceServer::~OrdertraceServer() { Shutdown(); }

absl::Status OrdertraceServer::Start() {
  absl::Status valid = Validate(config_);
  if (!valid.ok()) return valid;
  // The certificate files are read before anything else starts: a bad one is one line at start.
  absl::StatusOr<std::optional<http::TlsCredentials>> tls = LoadTls();
  if (!tls.ok()) return tls.status();
  // In this order: each step uses what the steps before it built.
  for (absl::Status (OrdertraceServer::*step)() :
       {&OrdertraceServer::OpenStore, &OrdertraceServer::MakeGapOutputs,
        &OrdertraceServer::StartGapDetector, &OrdertraceServer::StartIngest,
        &OrdertraceServer::StartForward, &OrdertraceServer::MakeApi}) {
    if (absl::Status done = (this->*step)(); !done.ok()) return done;
  }
  // Every listener is built, and its metrics registered, before the first one serves.
  MakeReceivers(*tls);
  return Listen();
}

absl::StatusOr<std::optional<http::TlsCredentials>> OrdertraceServer::LoadTls() {
  if (!config_.tls.enabled()) return std::optional<http::TlsCredentials>();
  absl::StatusOr<http::TlsCredentials> tls = http::LoadTlsCredentials(config_.tls);
  if (!tls.ok()) return tls.status();
  absl::StatusOr<std::shared_ptr<http::TlsContextProvider>> api_tls =
      http::TlsContextProvider::Create(*tls, http::ClientCertificates::kNotAsked);
  if (!api_tls.ok()) return api_tls.status();
  absl::StatusOr<std::shared_ptr<http::TlsContextProvider>> otlp_tls =
      http::TlsContextProvider::Create(*tls, http::ClientCertificates::kRequiredWhenCaGiven);
  if (!otlp_tls.ok()) return otlp_tls.status();
  api_tls_ = *std::move(api_tls);
  otlp_tls_ = *std::move(otlp_tls);
  spdlog::info("TLS on every listener: {}{}", tls->description,
               tls->client_ca_pem.empty()
                   ? ""
                   : "; OTLP clients need a certificate from " + config_.tls.client_ca_file);
  return std::optional<http::TlsCredentials>(*std::move(tls));
}

absl::Status OrdertraceServer::OpenStore() {
  store::RocksStoreOptions store_options = config_.store;
  store_options.path = (std::filesystem::path(config_.data_dir) / "store").string();
  // The forward's queue is written with the spans it forwards (forward/otlp_forwarder.h).
  store_options.forward_queue = !config_.forward.endpoint.empty();
  absl::StatusOr<std::unique_ptr<store::Store>> store = store::OpenRocksStore(store_options);
  if (!store.ok()) return store.status();
  store_ = std::move(*store);
  absl::StatusOr<std::unique_ptr<scrub::PiiScrubber>> scrubber =
      scrub::PiiScrubber::Create(config_.pii);
  if (!scrubber.ok()) return scrubber.status();
  scrubber_ = *std::move(scrubber);
  // After the store: the data folder exists for the key file.
  scrub::OperatorIdHasherOptions hasher_options;
  hasher_options.secret = config_.operator_id_secret;
  hasher_options.key_file = (std::filesystem::path(config_.data_dir) / "operator_id.key").string();
  absl::StatusOr<std::unique_ptr<scrub::OperatorIdHasher>> hasher =
      scrub::OperatorIdHasher::Create(hasher_options);
  if (!hasher.ok()) return hasher.status();
  operator_hasher_ = *std::move(hasher);
  if (!scrubber_->enabled()) spdlog::warn("pii: scrubbing is off (pii.enabled: false)");
  return absl::OkStatus();
}

absl::Status OrdertraceServer::MakeGapOutputs() {
  absl::StatusOr<gaps::StageModel> lifecycle = gaps::StageModel::Create(config_.lifecycle);
  if (!lifecycle.ok()) return lifecycle.status();
  lifecycle_ = std::make_unique<gaps::StageModel>(*std::move(lifecycle));
  gap_store_ = std::make_unique<StoreGapStore>(*store_);
  if (!config_.alertmanager_url.empty()) {
    absl::StatusOr<std::unique_ptr<gaps::AlertmanagerClient>> alerts =
        gaps::AlertmanagerClient::Create(AlertmanagerOptionsOf(config_), clock_);
    if (!alerts.ok()) return alerts.status();
    alerts_ = *std::move(alerts);
    spdlog::info("gap alerts go to Alertmanager at {}", config_.alertmanager_url);
  }
  if (config_.sampling.enabled) {
    sampler_ = std::make_unique<sampling::TailSampler>(config_.sampling, clock_);
  }
  absl::Status restored = RestorePendingDetail(*store_, sampler_.get(), clock_);
  if (!restored.ok()) spdlog::warn("sampler: pending detail not restored: {}", restored.ToString());
  if (sampler_) stuck_traces_ = std::make_unique<SamplerKeepsStuckTraces>(*sampler_);
  gap_sinks_ = std::make_unique<gaps::GapFanOut>(alerts_.get(), stuck_traces_.get());
  metrics_ = std::make_unique<metrics::Registry>();
  if (config_.metrics_enabled) {
    trace_metrics_ =
        std::make_unique<metrics::TraceMetrics>(*metrics_, config_.metrics, SlaOf(*lifecycle_));
    PublishSlas(*lifecycle_, *trace_metrics_);
  }
  return absl::OkStatus();
}

absl::Status OrdertraceServer::StartGapDetector() {
  store::Store* order_store = store_.get();
  gaps_ = std::make_unique<gaps::GapDetector>(
      *lifecycle_, clock_,
      [order_store](const std::string& order_id) { return order_store->GetOrder(order_id); },
      gap_store_.get(), gap_sinks_.get(), config_.gap_detector);
  if (absl::Status recovered = gaps_->Recover(); !recovered.ok()) return recovered;
  // Rebuild every deadline from the stored orders: one that passed while ordertrace was down
  // is judged like any other once the sources have had time to flush, and gaps already found
  // are not found again.
  size_t replayed = 0;
  absl::Status scanned = store_->ScanOrders([&](const model::OrderRecord& record) {
    gaps_->RestoreOrder(record);
    if (trace_metrics_) trace_metrics_->CountStoredOrder(record);
    ++replayed;
    return true;
  });
  if (!scanned.ok()) return scanned;
  if (replayed > 0) spdlog::info("gap detector: {} stored orders replayed", replayed);
  gaps_->Start();
  gap_feed_ = std::make_unique<GapFeed>(*gaps_);
  return absl::OkStatus();
}

absl::Status OrdertraceServer::StartIngest() {
  ingest::IngesterOptions ingest_options = config_.ingest;
  ingest_options.price_calc_span = config_.metrics.price_calc_span;
  ingest_options.limits.max_span_age_nanos = MaxSpanAgeNanos(config_);
  ingester_ = std::make_unique<ingest::Ingester>(
      *store_, clock_, ingest_options,
      ingest::IngestConsumers{gap_feed_.get(), trace_metrics_.get(), sampler_.get(),
                              scrubber_.get(), operator_hasher_.get()});
  RegisterComponentMetrics(*metrics_, gaps_.get(), alerts_.get(), ingester_.get(), sampler_.get());
  RegisterPiiMetrics(*metrics_, *scrubber_);
  RegisterStoreMetrics(*metrics_, *store_);
  retention_ = std::make_unique<store::RetentionRunner>(*store_, clock_, config_.retention);
  retention_->Start();
  return absl::OkStatus();
}

absl::Status OrdertraceServer::StartForward() {
  if (config_.forward.endpoint.empty()) return absl::OkStatus();
  forward::OtlpForwarderOptions forward_options = config_.forward;
  // What is stored is scrubbed already (ingest); operator ids are stored in clear for ops,
  // and leave only as their HMAC.
  const scrub::OperatorIdHasher* hasher = operator_hasher_.get();
  forward_options.before_send = [hasher](base::TraceBatch& batch) {
    hasher->HashOperatorIds(batch);
  };
  absl::StatusOr<std::unique_ptr<forward::OtlpForwarder>> forwarder =
      forward::OtlpForwarder::Create(*store_, std::move(forward_options));
  if (!forwarder.ok()) return forwarder.status();
  forwarder_ = *std::move(forwarder);
  RegisterForwardMetrics(*metrics_, *forwarder_);
  forwarder_->Start();
  spdlog::info("forward: stored spans go on to {} over {}", config_.forward.endpoint,
               config_.forward.protocol == forward::OtlpForwarderOptions::Protocol::kGrpc
                   ? "OTLP/gRPC"
                   : "OTLP/HTTP");
  return absl::OkStatus();
}

absl::Status OrdertraceServer::MakeApi() {
  order_query_ = std::make_unique<query::OrderQuery>(*store_, clock_);
  trace_query_ = std::make_unique<query::TraceQuery>(*store_, clock_, config_.query);
  tokens_ = std::make_unique<auth::TokenAuthenticator>(config_.auth);
  if (absl::Status opened = OpenAuditLog(); !opened.ok()) return opened;
  spdlog::info("auth: {}", tokens_->enabled()
                               ? std::to_string(config_.auth.tokens.size()) + " tokens"
                               : std::string("no tokens, open to loopback (docs/security.md)"));
  RegisterAuthMetrics(*metrics_, *tokens_, audit_.get());
  ApiAccess access;
  access.allowed_hosts = config_.allowed_hosts;
  access.tokens = tokens_.get();
  access.audit = audit_.get();
  access.operator_ids = operator_hasher_.get();
  access.sla.statuses = lifecycle_->statuses();
  access.sla.sla = SlaOf(*lifecycle_);
  absl::StatusOr<ApiConsole> console = MakeConsole();
  if (!console.ok()) return console.status();
  http::ServerOptions api_http = config_.http;
  api_http.worker_threads = config_.http_threads;
  api_http.retry_after_seconds = config_.retry_after_seconds;
  // The API reads no bodies (GET only, 1 MiB at most): a small share of memory is plenty.
  api_http.max_inflight_bytes = std::min<size_t>(api_http.max_inflight_bytes, 16 << 20);
  api_http.tls = api_tls_;
  api_ = std::make_unique<ApiServer>(
      *order_query_, *trace_query_, [this] { return ready_.load(); }, std::move(api_http),
      gaps_.get(), gap_store_.get(), metrics_.get(), std::move(access), *std::move(console));
  return absl::OkStatus();
}

absl::Status OrdertraceServer::OpenAuditLog() {
  if (!config_.audit_enabled) return absl::OkStatus();
  auth::AuditLogOptions audit_options = config_.audit;
  if (audit_options.path.empty()) {
    audit_options.path = (std::filesystem::path(config_.data_dir) / "audit.log").string();
  }
  // A search by an e-mail address must not put it in the log.
  const scrub::PiiScrubber* scrubber = scrubber_.get();
  audit_options.redact = [scrubber](std::string& target) { target = scrubber->ScrubText(target); };
  absl::StatusOr<std::unique_ptr<auth::AuditLog>> audit =
      auth::AuditLog::Open(std::move(audit_options));
  if (!audit.ok()) return audit.status();
  audit_ = *std::move(audit);
  return absl::OkStatus();
}

void OrdertraceServer::MakeReceivers(const std::optional<http::TlsCredentials>& tls) {
  decode_budget_ = std::make_unique<otlp::DecodeBudget>(config_.decode_budget);
  RegisterDecodeBudgetMetrics(*metrics_, *decode_budget_);
  OtlpGrpcReceiverOptions grpc_options{config_.max_request_bytes, config_.retry_after_seconds,
                                       tokens_.get()};
  grpc_options.tls = tls;
  grpc_options.tls_directory = (std::filesystem::path(config_.data_dir) / "grpc-tls").string();
  grpc_ = std::make_unique<OtlpGrpcReceiver>(*ingester_, *decode_budget_, std::move(grpc_options));
  OtlpHttpReceiverOptions otlp_http_options{config_.max_request_bytes, config_.retry_after_seconds,
                                            config_.http};
  otlp_http_options.http.worker_threads = config_.http_threads;
  otlp_http_options.tokens = tokens_.get();
  otlp_http_options.http.tls = otlp_tls_;
  otlp_http_ =
      std::make_unique<OtlpHttpReceiver>(*ingester_, *decode_budget_, std::move(otlp_http_options));
  RegisterHttpMetrics(*metrics_, {{"api", [this] { return api_->HttpStats(); }},
                                  {"otlp_http", [this] { return otlp_http_->HttpStats(); }}});
  if (tls) RegisterTlsReloadMetrics(*metrics_, tls_reloads_ok_, tls_reloads_failed_);
}

absl::Status OrdertraceServer::Listen() {
  absl::StatusOr<base::ListenAddress> grpc_address =
      base::ParseListenAddress(config_.otlp_grpc_listen);
  absl::StatusOr<base::ListenAddress> otlp_http_address =
      base::ParseListenAddress(config_.otlp_http_listen);
  absl::StatusOr<base::ListenAddress> http_address = base::ParseListenAddress(config_.http_listen);
  for (const absl::StatusOr<base::ListenAddress>* address :
       {&grpc_address, &otlp_http_address, &http_address}) {
    if (!address->ok()) return address->status();
  }
  absl::StatusOr<int> http_port = api_->Start(*http_address);
  if (!http_port.ok()) return http_port.status();
  ports_.http = *http_port;
  absl::StatusOr<int> grpc_port = grpc_->Start(*grpc_address);
  if (!grpc_port.ok()) return grpc_port.status();
  ports_.otlp_grpc = *grpc_port;
  absl::StatusOr<int> otlp_http_port = otlp_http_->Start(*otlp_http_address);
  if (!otlp_http_port.ok()) return otlp_http_port.status();
  ports_.otlp_http = *otlp_http_port;

  ready_ = true;
  if (history_) history_->Start();
  spdlog::info("ordertrace ready: OTLP/gRPC {}:{}, OTLP/HTTP {}:{}, API {}://{}:{} (data in {})",
               grpc_address->host, ports_.otlp_grpc, otlp_http_address->host, ports_.otlp_http,
               config_.tls.enabled() ? "https" : "http", http_address->host, ports_.http,
               config_.data_dir);
  if (config_.console_enabled) {
    spdlog::info("console: {}://{}:{}/ ({})", config_.tls.enabled() ? "https" : "http",
                 http_address->host, ports_.http,
                 config_.console_dir.empty() ? std::string("built in") : config_.console_dir);
  }
  return absl::OkStatus();
}

absl::StatusOr<ApiConsole> OrdertraceServer::MakeConsole() {
  ApiConsole console;
  if (!config_.console_enabled) return console;
  if (config_.console_dir.empty()) {
    console.files = ConsoleFiles::Embedded();
  } else {
    absl::StatusOr<std::shared_ptr<const ConsoleFiles>> files =
        ConsoleFiles::FromDirectory(config_.console_dir);
    if (!files.ok()) return files.status();
    console.files = *std::move(files);
  }
  if (console.files->empty()) {
    spdlog::warn("console: this build holds no console files (web/ was missing when it was built)");
  }
  // Started at the end of Start: its samples run the registry's scrape hooks, which other parts
  // are still adding until then.
  history_ = std::make_unique<metrics::MetricHistory>(*metrics_, metrics::ConsoleHistoryOptions());
  console.history = history_.get();
  console.message_sla_nanos = lifecycle_->MessageSlaNanos();
  return console;
}

absl::Status OrdertraceServer::ReloadTls() {
  if (!config_.tls.enabled()) {
    return absl::FailedPreconditionError("no tls.cert_file configured: nothing to reload");
  }
  std::lock_guard<std::mutex> lock(tls_reload_mu_);
  if (api_tls_ == nullptr || otlp_tls_ == nullptr || grpc_ == nullptr) {
    return absl::FailedPreconditionError("ordertrace is not serving: nothing to reload");
  }
  absl::StatusOr<http::TlsCredentials> loaded = http::LoadTlsCredentials(config_.tls);
  absl::Status installed = loaded.status();
  // A file that fails to load changes nothing; the three listeners get the same credentials.
  if (installed.ok()) installed = otlp_tls_->Install(*loaded);
  if (installed.ok()) installed = api_tls_->Install(*loaded);
  if (installed.ok()) installed = grpc_->InstallTls(*loaded);
  if (!installed.ok()) {
    ++tls_reloads_failed_;
    spdlog::error("TLS reload failed, the previous certificate is still served: {}",
                  std::string(installed.message()));
    return installed;
  }
  ++tls_reloads_ok_;
  spdlog::info("TLS reloaded: new connections get {}", loaded->description);
  return absl::OkStatus();
}

void OrdertraceServer::Shutdown() {
  ready_ = false;
  // Receivers first, so nothing new arrives; then the ingester drains what it accepted.
  if (otlp_http_) otlp_http_->Shutdown();
  if (grpc_) grpc_->Shutdown();
  if (ingester_) ingester_->Shutdown();
  // After ingest, which queues its last spans; what is left queued is sent after the restart.
  if (forwarder_) forwarder_->Shutdown();
  if (gaps_) gaps_->Shutdown();
  if (api_) api_->Shutdown();
  if (history_) history_->Stop();
  if (retention_) retention_->Shutdown();
  otlp_http_.reset();
  grpc_.reset();
  api_.reset();
  history_.reset();
  audit_.reset();
  tokens_.reset();
  trace_query_.reset();
  order_query_.reset();
  retention_.reset();
  forwarder_.reset();
  ingester_.reset();
  operator_hasher_.reset();
  scrubber_.reset();
  gap_feed_.reset();
  gaps_.reset();
  gap_sinks_.reset();
  stuck_traces_.reset();
  trace_metrics_.reset();
  metrics_.reset();
  sampler_.reset();
  alerts_.reset();
  gap_store_.reset();
  lifecycle_.reset();
  store_.reset();
}

}  // namespace ordertrace::server
