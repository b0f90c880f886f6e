#include "services/common/service_runtime.h"

#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>

#include "base/attribute_names.h"
#include "base/listen_address.h"
#include "sdk/batch_span_processor.h"
#include "sdk/otlp_http_exporter.h"
#include "services/common/http_api.h"

namespace ordertrace::services {
namespace {

// Handlers block on SQLite and on ordertrace's exporter queue, never on a client: the
// connections themselves are held by the server's I/O thread, not by these.
constexpr size_t kHttpThreads = 16;

// The services' error shape ({"error": code, "message": ...}) for the server's own refusals.
void WriteRefusal(const http::Request&, http::Response& response, int status,
                  const std::string& message) {
  std::string_view code = status == 413   ? "body_too_large"
                          : status == 429 ? "too_many_requests"
                          : status == 503 ? "unavailable"
                          : status == 500 ? "internal"
                          : status == 404 ? "not_found"
                          : status == 405 ? "method_not_allowed"
                                          : "bad_request";
  ReplyError(response, status, code, message);
}

http::ServerOptions HttpOptions(const ServiceIdentity& identity, const ServiceOptions& options) {
  http::ServerOptions http;
  http.name = std::string(identity.name);
  http.worker_threads = kHttpThreads;
  http.max_body_bytes = static_cast<size_t>(options.max_body_bytes);
  // Two of the largest bodies at once, at least.
  http.max_inflight_bytes = std::max<size_t>(256 << 20, 2 * http.max_body_bytes);
  return http;
}

absl::StatusOr<std::unique_ptr<sdk::TracerProvider>> MakeTracerProvider(
    const ServiceIdentity& identity, const ServiceOptions& options) {
  sdk::TracerProviderOptions provider_options;
  provider_options.resource = sdk::MakeResource(
      identity.name, {base::KeyValue{"service.namespace", base::AnyValue::String("alexandrite")}});
  std::unique_ptr<sdk::SpanProcessor> processor;
  if (!options.otlp_endpoint.empty()) {
    sdk::OtlpHttpExporterOptions exporter_options;
    exporter_options.endpoint = options.otlp_endpoint;
    exporter_options.ca_cert_file = options.otlp_ca_file;
    exporter_options.headers = options.otlp_headers;
    absl::StatusOr<std::unique_ptr<sdk::OtlpHttpExporter>> exporter =
        sdk::OtlpHttpExporter::Create(std::move(exporter_options));
    if (!exporter.ok()) return exporter.status();
    sdk::BatchSpanProcessorOptions batch;
    batch.schedule_delay = std::chrono::milliseconds(500);
    processor = std::make_unique<sdk::BatchSpanProcessor>(*std::move(exporter), batch);
  }
  return std::make_unique<sdk::TracerProvider>(std::move(provider_options), std::move(processor));
}

}  // namespace

ServiceRuntime::ServiceRuntime(const ServiceIdentity& identity, const ServiceOptions& options,
                               std::unique_ptr<ServiceDb> db,
                               std::unique_ptr<sdk::TracerProvider> tracer_provider)
    : identity_(identity),
      options_(options),
      db_(std::move(db)),
      tracer_provider_(std::move(tracer_provider)),
      tracer_(tracer_provider_->GetTracer(identity.name)) {
  if (options.demo_faults) faults_ = std::make_unique<FaultSwitch>();
  outbox_ = std::make_unique<OutboxRelay>(OutboxRelayOptions{options.amqp_url}, *db_, tracer_,
                                          faults_.get());
  if (faults_ != nullptr) AddFaultRoutes();
  router_.SetErrorWriter(WriteRefusal);
  http_ = std::make_unique<http::Server>(
      HttpOptions(identity, options),
      [this](http::Request& request, http::Response& response) {
        router_.Handle(request, response);
      },
      WriteRefusal);
  router_.Get("/healthz", [](const http::Request&, http::Response& response) {
    ReplyJson(response, 200, {{"status", "ok"}});
  });
  router_.Get("/readyz", [this](const http::Request&, http::Response& response) {
    bool consuming = IsConsuming();
    ReplyJson(response, consuming ? 200 : 503,
              {{"status", consuming ? "ready" : "not consuming"}, {"consuming", consuming}});
  });
}

void ServiceRuntime::AddFaultRoutes() {
  router_.Post("/api/demo/faults", [this](const http::Request& request, http::Response& response) {
    absl::StatusOr<nlohmann::json> body = JsonBody(request);
    if (!body.ok()) return ReplyStatus(response, body.status());
    auto text = [&](const char* key) {
      auto it = body->find(key);
      return it != body->end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    ArmedFault fault{text("key"), text("kind"), text("param")};
    if (fault.key.empty() || !IsServiceFaultKind(fault.kind)) {
      return ReplyError(response, 400, "bad_request",
                        "need \"key\" (an order id, or a customer id for "
                        "partner_order_dropped) and a known \"kind\"");
    }
    spdlog::info("{}: demo fault {} armed for {}", identity_.name, fault.kind, fault.key);
    faults_->Arm(std::move(fault));
    response.status = 204;
  });
  router_.Get("/api/demo/faults", [this](const http::Request&, http::Response& response) {
    nlohmann::json armed = nlohmann::json::array();
    for (const ArmedFault& fault : faults_->Armed()) {
      armed.push_back({{"key", fault.key}, {"kind", fault.kind}, {"param", fault.param}});
    }
    ReplyJson(response, 200, {{"armed", armed}});
  });
}

absl::StatusOr<std::unique_ptr<ServiceRuntime>> ServiceRuntime::Create(
    const ServiceIdentity& identity, const ServiceOptions& options, std::string_view schema_sql) {
  absl::StatusOr<std::unique_ptr<ServiceDb>> db = ServiceDb::Open(options.db_path, schema_sql);
  if (!db.ok()) return db.status();
  absl::StatusOr<std::unique_ptr<sdk::TracerProvider>> provider =
      MakeTracerProvider(identity, options);
  if (!provider.ok()) return provider.status();
  return std::unique_ptr<ServiceRuntime>(
      new ServiceRuntime(identity, options, *std::move(db), *std::move(provider)));
}

ServiceRuntime::~ServiceRuntime() { Shutdown(); }

void ServiceRuntime::AddConsumer(std::string queue, std::string span_name, MessageHandler handler) {
  MessageConsumerOptions consumer_options;
  consumer_options.amqp_url = options_.amqp_url;
  consumer_options.queue = std::move(queue);
  consumer_options.span_name = std::move(span_name);
  consumers_.push_back(std::make_unique<MessageConsumer>(std::move(consumer_options), *db_, tracer_,
                                                         std::move(handler), faults_.get()));
}

void ServiceRuntime::ConsumeStatusEvents() {
  AddConsumer(StatusQueue(identity_.short_name), "mq.consume.status",
              [this](const ReceivedMessage& message, sdk::Span& span, SettleMessage) {
                absl::StatusOr<StatusEvent> event = DecodeStatusEvent(message.delivery.body);
                if (!event.ok()) return HandlerOutcome::Failed(event.status());
                // Not the transition attributes: only the span that makes a transition carries
                // new_status, so ordertrace counts each transition once.
                span.SetAttribute(base::kOrderIdKey, event->order_id);
                span.SetAttribute(base::kEventVersionKey, event->event_version);
                span.SetAttribute("status_event.new_status", event->new_status);
                if (!event->partner_id.empty()) {
                  span.SetAttribute(base::kPartnerIdKey, event->partner_id);
                }
                if (faults_ != nullptr &&
                    faults_->Take(event->order_id, kFaultMissedStatusWrite, event->new_status)) {
                  // Demo fault: the status is acknowledged but never written.
                  span.SetAttribute("applied", false);
                  return HandlerOutcome::Done();
                }
                absl::StatusOr<bool> applied = db_->Run(
                    [&](SqliteDb& db) { return ApplyStatusEvent(db, *event, message.order_root); });
                if (!applied.ok()) return HandlerOutcome::Failed(applied.status());
                span.SetAttribute("applied", *applied);
                return HandlerOutcome::Done();
              });
}

absl::StatusOr<TransitionResult> ServiceRuntime::RunHttpTransition(
    const http::Request& request, http::Response& response, std::string_view span_name,
    std::string_view route, std::string_view order_id, std::string_view new_status,
    const TransitionDetails& details, const std::vector<OutboxMessage>& extra_messages) {
  absl::StatusOr<std::optional<OrderView>> known =
      db_->Run([&](SqliteDb& db) { return LoadOrder(db, order_id); });
  sdk::SpanContext order_root;
  if (known.ok() && known->has_value()) order_root = (*known)->order_root;
  std::unique_ptr<sdk::Span> span =
      StartOperationSpan(tracer_, span_name, route, request, order_root);
  if (!known.ok()) {
    FailOperation(*span, response, known.status());
    return known.status();
  }
  if (!known->has_value()) {
    // An order this service does not know gets no order_id attribute: ordertrace must not
    // open a record for it.
    absl::Status missing = absl::NotFoundError("order " + std::string(order_id) + " not found");
    FailOperation(*span, response, missing);
    return missing;
  }
  span->SetAttribute(base::kOrderIdKey, order_id);
  if (!(*known)->partner_id.empty()) span->SetAttribute(base::kPartnerIdKey, (*known)->partner_id);
  TransitionDetails effective = details;
  if (faults_ != nullptr && faults_->Take(order_id, kFaultSkippedStatus, new_status)) {
    effective.allow_skipping_one = true;  // demo fault: the lifecycle check lets one status go
  }
  absl::StatusOr<TransitionResult> result = db_->Run([&](SqliteDb& db) {
    return Transition(db, order_id, new_status, effective, identity_.name, span->GetContext(),
                      extra_messages);
  });
  if (!result.ok()) {
    if (std::string current = CurrentStatusOf(result.status()); !current.empty()) {
      span->SetAttribute(base::kCurrentStatusKey, current);
    }
    FailOperation(*span, response, result.status());
    return result.status();
  }
  outbox_->Notify();
  SetTransitionAttributes(*span, result->event);
  span->SetAttribute("http.response.status_code", 200);
  ReplyJson(response, 200, OrderJson(result->order));
  return result;
}

void ServiceRuntime::RefuseHttpRequest(const http::Request& request, http::Response& response,
                                       std::string_view span_name, std::string_view route,
                                       std::string_view order_id, const absl::Status& status) {
  absl::StatusOr<std::optional<OrderView>> known =
      db_->Run([&](SqliteDb& db) { return LoadOrder(db, order_id); });
  const bool found = known.ok() && known->has_value();
  std::unique_ptr<sdk::Span> span = StartOperationSpan(
      tracer_, span_name, route, request, found ? (*known)->order_root : sdk::SpanContext{});
  if (found) {
    span->SetAttribute(base::kOrderIdKey, order_id);
    if (!(*known)->partner_id.empty()) {
      span->SetAttribute(base::kPartnerIdKey, (*known)->partner_id);
    }
  }
  FailOperation(*span, response, status);
}

absl::Status ServiceRuntime::Start() {
  if (started_) return absl::FailedPreconditionError("already started");
  absl::StatusOr<base::ListenAddress> address = base::ParseListenAddress(options_.http_listen);
  if (!address.ok()) return address.status();
  absl::StatusOr<int> port = http_->Start(*address);
  if (!port.ok()) return port.status();
  http_port_ = *port;
  started_ = true;
  outbox_->Start();
  for (auto& consumer : consumers_) consumer->Start();
  return absl::OkStatus();
}

bool ServiceRuntime::IsConsuming() const {
  for (const auto& consumer : consumers_) {
    if (!consumer->IsConsuming()) return false;
  }
  return true;
}

void ServiceRuntime::Shutdown() {
  if (stopped_) return;
  stopped_ = true;
  http_->Shutdown();
  for (auto& consumer : consumers_) consumer->Shutdown();
  outbox_->Shutdown();
  tracer_provider_->Shutdown(std::chrono::seconds(5)).IgnoreError();
}

void ReplyOrder(ServiceRuntime& runtime, const std::string& order_id, http::Response& response) {
  absl::StatusOr<std::optional<OrderView>> order =
      runtime.db().Run([&](SqliteDb& db) { return LoadOrder(db, order_id); });
  if (!order.ok()) return ReplyStatus(response, order.status());
  if (!order->has_value()) {
    return ReplyStatus(response, absl::NotFoundError("order " + order_id + " not found"));
  }
  ReplyJson(response, 200, OrderJson(**order));
}

int RunServiceMain(
    const ServiceIdentity& identity, int argc, char** argv,
    const std::function<absl::StatusOr<std::unique_ptr<StartedService>>(const ServiceOptions&)>&
        start) {
  ServiceOptions options;
  if (int exit_code = ParseServiceOptions(identity, argc, argv, options); exit_code >= 0) {
    return exit_code;
  }
  // Block the stop signals in every thread the service starts; this one waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<std::unique_ptr<StartedService>> service = start(options);
  if (!service.ok()) {
    std::cerr << identity.name << ": " << service.status().message() << std::endl;
    return 1;
  }
  spdlog::info("{} listening on http://{}", identity.name, options.http_listen);
  int signal = 0;
  sigwait(&signals, &signal);
  spdlog::info("{}: signal {}, stopping", identity.name, signal);
  (*service)->Shutdown();
  return 0;
}

}  // namespace ordertrace::services
