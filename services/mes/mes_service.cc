#include "services/mes/mes_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "base/attribute_names.h"
#include "services/common/http_api.h"
#include "services/common/messages.h"
#include "services/common/order_transitions.h"
#include "services/mes/dashboard.h"
#include "services/pricing/price_calculator.h"

namespace ordertrace::services::mes {
namespace {

// Calculations that run at once; more wait in the pool's queue (and RabbitMQ's prefetch).
constexpr int kCalculationThreads = 16;
constexpr int64_t kDefaultDashboardRows = 50;
constexpr int64_t kMaxDashboardRows = 500;

}  // namespace

CalculationWorkers::CalculationWorkers(int threads) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
}

CalculationWorkers::~CalculationWorkers() { Shutdown(); }

void CalculationWorkers::Submit(Job job) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stop_) return;
  queue_.push_back(std::move(job));
  changed_.notify_all();
}

void CalculationWorkers::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    queue_.clear();
    changed_.notify_all();
  }
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

void CalculationWorkers::Run() {
  auto wait = [this](std::chrono::nanoseconds duration) {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait_for(lock, duration, [this] { return stop_; });
    return !stop_;
  };
  while (true) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      changed_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job(wait);
  }
}

MesService::MesService(std::unique_ptr<ServiceRuntime> runtime)
    : runtime_(std::move(runtime)), workers_(kCalculationThreads) {}

absl::StatusOr<std::unique_ptr<MesService>> MesService::Start(const ServiceOptions& options) {
  absl::StatusOr<std::unique_ptr<ServiceRuntime>> runtime =
      ServiceRuntime::Create(kMesIdentity, options, kOrderSchema);
  if (!runtime.ok()) return runtime.status();
  absl::Status prepared = (*runtime)->db().Run([&](SqliteDb& db) {
    absl::Status status = SetDashboardIndexes(db, options.dashboard_indexes);
    if (status.ok() && options.seed_history > 0) status = SeedHistory(db, options.seed_history);
    return status;
  });
  if (!prepared.ok()) return prepared;
  std::unique_ptr<MesService> service(new MesService(*std::move(runtime)));
  service->AddRoutes();
  service->runtime_->ConsumeStatusEvents();
  service->ConsumePriceRequests();
  if (absl::Status started = service->runtime_->Start(); !started.ok()) return started;
  return service;
}

void MesService::Shutdown() {
  workers_.Shutdown();
  {
    std::lock_guard<std::mutex> lock(hung_mu_);
    for (auto& span : hung_calculations_) {
      span->RecordError("SERVICE_STOPPING", "the service stopped during the calculation");
      span->End();
    }
    hung_calculations_.clear();
  }
  runtime_->Shutdown();
}

void MesService::ConsumePriceRequests() {
  runtime_->AddConsumer(
      kPriceQueue, "mq.consume.price",
      [this](const ReceivedMessage& message, sdk::Span& span, SettleMessage settle) {
        return HandlePriceRequest(message, span, std::move(settle));
      });
}

HandlerOutcome MesService::HandlePriceRequest(const ReceivedMessage& message,
                                              sdk::Span& consume_span, SettleMessage settle) {
  absl::StatusOr<PriceRequest> request = DecodePriceRequest(message.delivery.body);
  if (!request.ok()) return HandlerOutcome::Failed(request.status());
  consume_span.SetAttribute(base::kOrderIdKey, request->order_id);
  consume_span.SetAttribute("polygon_count", request->polygon_count);
  if (!request->partner_id.empty()) {
    consume_span.SetAttribute(base::kPartnerIdKey, request->partner_id);
  }

  // The request itself says the order was SUBMITTED (its status event may come later on the
  // other queue), so the MES view learns that first.
  StatusEvent submitted;
  submitted.order_id = request->order_id;
  submitted.event_version = request->event_version;
  submitted.prev_status = std::string(kFileUploaded);
  submitted.new_status = std::string(kSubmitted);
  submitted.partner_id = request->partner_id;
  submitted.service = kShopIdentity.name;
  submitted.polygon_count = request->polygon_count;
  ServiceRuntime& runtime = *runtime_;
  absl::StatusOr<std::optional<OrderView>> view =
      runtime.db().Run([&](SqliteDb& db) -> absl::StatusOr<std::optional<OrderView>> {
        absl::StatusOr<bool> applied = ApplyStatusEvent(db, submitted, message.order_root);
        if (!applied.ok()) return applied.status();
        return LoadOrder(db, request->order_id);
      });
  if (!view.ok()) return HandlerOutcome::Failed(view.status());
  if (!view->has_value()) {
    return HandlerOutcome::Failed(absl::InternalError("order vanished after it was recorded"));
  }
  const std::string status = (*view)->status;
  if (LifecycleIndex(status) > LifecycleIndex(kPriceCalculationStarted)) {
    consume_span.SetAttribute("outcome", "already calculated");
    return HandlerOutcome::Done();
  }
  if (status == kSubmitted) {
    sdk::StartSpanOptions options;
    options.parent = consume_span.GetContext();
    std::unique_ptr<sdk::Span> start = runtime.tracer().StartSpan("mes.price.start", options);
    TransitionDetails details;
    details.polygon_count = request->polygon_count;
    details.complexity_class = std::string(pricing::ComplexityClass(request->polygon_count));
    absl::StatusOr<TransitionResult> started = runtime.db().Run([&](SqliteDb& db) {
      return Transition(db, request->order_id, kPriceCalculationStarted, details, kMesIdentity.name,
                        start->GetContext());
    });
    if (!started.ok()) {
      start->RecordError("TRANSITION_FAILED", std::string(started.status().message()));
      return HandlerOutcome::Failed(started.status());
    }
    SetTransitionAttributes(*start, started->event);
    start->SetAttribute("polygon_count", request->polygon_count);
    start->SetAttribute("complexity_class", details.complexity_class);
    start->End();
    runtime.outbox().Notify();
  } else if (status != kPriceCalculationStarted) {
    return HandlerOutcome::Failed(absl::FailedPreconditionError(
        "order " + request->order_id + " is " + status + ", not ready for pricing"));
  } else {
    // Delivered again after a crash or a restart mid-calculation: calculate again.
    consume_span.SetAttribute("outcome", "calculation restarted");
  }
  sdk::SpanContext parent = consume_span.GetContext();
  std::string order_id = request->order_id;
  int64_t polygons = request->polygon_count;
  workers_.Submit([this, order_id, polygons, parent, settle](const auto& wait) {
    Calculate(order_id, polygons, parent, wait, settle);
  });
  return HandlerOutcome::Deferred();
}

void MesService::Calculate(const std::string& order_id, int64_t polygon_count,
                           const sdk::SpanContext& parent,
                           const std::function<bool(std::chrono::nanoseconds)>& wait,
                           const SettleMessage& settle) {
  ServiceRuntime& runtime = *runtime_;
  const std::string complexity(pricing::ComplexityClass(polygon_count));
  sdk::StartSpanOptions options;
  options.parent = parent;
  std::unique_ptr<sdk::Span> calc = runtime.tracer().StartSpan("mes.price.calc", options);
  calc->SetAttribute(base::kOrderIdKey, order_id);
  calc->SetAttribute("polygon_count", polygon_count);
  calc->SetAttribute("complexity_class", complexity);
  const double scale = runtime.options().time_scale;
  auto total = pricing::SimulatedCalculationTime(polygon_count);
  FaultSwitch* faults = runtime.faults();
  if (faults != nullptr && faults->Take(order_id, kFaultCalculatorHang)) {
    // Demo fault: the calculator hangs. Its span stays open and its request unacknowledged
    // until the service stops; the worker thread is given back, so hangs never starve the pool.
    calc->AddEvent("calculator hung");
    std::lock_guard<std::mutex> lock(hung_mu_);
    hung_calculations_.push_back(std::move(calc));
    return;
  }
  if (faults != nullptr) {
    if (std::optional<std::string> factor = faults->Take(order_id, kFaultCalculatorSlow)) {
      // Demo fault: the calculation runs `factor` times longer (default 4) and then finishes.
      double times = 4;
      if (!factor->empty()) times = std::max(1.0, std::atof(factor->c_str()));
      total = std::chrono::nanoseconds(
          static_cast<int64_t>(static_cast<double>(total.count()) * times));
      calc->SetAttribute("slowdown_factor", times);
    }
  }
  for (const pricing::CalculationPhase& phase : pricing::CalculationPhases()) {
    sdk::StartSpanOptions phase_options;
    phase_options.parent = calc->GetContext();
    std::unique_ptr<sdk::Span> step = runtime.tracer().StartSpan(phase.span_name, phase_options);
    auto real = std::chrono::nanoseconds(
        static_cast<int64_t>(static_cast<double>(total.count()) * phase.share / scale));
    if (!wait(real)) {
      step->RecordError("SERVICE_STOPPING", "the service stopped during the calculation");
      calc->RecordError("SERVICE_STOPPING", "the service stopped during the calculation");
      return;  // not settled: the request returns to the queue and is calculated again
    }
  }
  TransitionDetails details;
  details.polygon_count = polygon_count;
  details.complexity_class = complexity;
  details.price = pricing::QuotePrice(polygon_count);
  absl::StatusOr<TransitionResult> done = runtime.db().Run([&](SqliteDb& db) {
    return Transition(db, order_id, kPriceCalculated, details, kMesIdentity.name,
                      calc->GetContext());
  });
  if (!done.ok()) {
    if (done.status().code() == absl::StatusCode::kFailedPrecondition) {
      // Another delivery of the same request finished first; nothing is left to do.
      calc->SetAttribute("outcome", "already calculated");
      settle(absl::OkStatus());
      return;
    }
    calc->RecordError("TRANSITION_FAILED", std::string(done.status().message()));
    settle(done.status());
    return;
  }
  SetTransitionAttributes(*calc, done->event);
  calc->SetAttribute("price", *details.price);
  calc->End();
  runtime.outbox().Notify();
  settle(absl::OkStatus());
}

void MesService::AddRoutes() {
  ServiceRuntime& runtime = *runtime_;
  http::Router& routes = runtime.http();

  routes.Get("/api/dashboard/new-orders", [&runtime](const http::Request& request,
                                                     http::Response& response) {
    std::unique_ptr<sdk::Span> span = StartOperationSpan(
        runtime.tracer(), "mes.dashboard.new_orders", "/api/dashboard/new-orders", request, {});
    int64_t limit = kDefaultDashboardRows;
    if (request.HasParam("limit")) {
      std::string text = request.Param("limit");
      auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), limit);
      if (error != std::errc() || end != text.data() + text.size() || limit < 1 ||
          limit > kMaxDashboardRows) {
        FailOperation(*span, response,
                      absl::InvalidArgumentError("limit must be an integer from 1 to 500"));
        return;
      }
    }
    // The problem query gets its own short DB span, as the design asks.
    sdk::StartSpanOptions db_options;
    db_options.kind = base::SpanKind::kClient;
    db_options.parent = span->GetContext();
    std::unique_ptr<sdk::Span> select = runtime.tracer().StartSpan("SELECT orders", db_options);
    select->SetAttribute("db.system", "sqlite");
    select->SetAttribute("db.operation.name", "SELECT");
    select->SetAttribute("db.collection.name", "orders");
    select->SetAttribute("db.query.text", kNewOrdersQuery);
    select->SetAttribute("db.namespace", runtime.options().db_path);
    absl::StatusOr<std::vector<DashboardRow>> rows;
    absl::StatusOr<std::string> plan;
    runtime.db().Run([&](SqliteDb& db) {
      plan = ExplainNewOrders(db);
      rows = QueryNewOrders(db, limit);
      return 0;
    });
    if (plan.ok()) select->SetAttribute("db.query.plan", *plan);
    if (!rows.ok()) {
      select->RecordError("DB_ERROR", std::string(rows.status().message()));
      select->End();
      FailOperation(*span, response, rows.status());
      return;
    }
    select->SetAttribute("db.response.returned_rows", static_cast<int64_t>(rows->size()));
    select->End();
    nlohmann::json orders = nlohmann::json::array();
    for (const DashboardRow& row : *rows) {
      orders.push_back({{"order_id", row.order_id},
                        {"status", row.status},
                        {"partner_id", row.partner_id.empty() ? nlohmann::json()
                                                              : nlohmann::json(row.partner_id)},
                        {"polygon_count", row.polygon_count},
                        {"complexity_class", row.complexity_class},
                        {"price", row.price},
                        {"updated_at_unix_nano", row.updated_at_unix_nano},
                        {"events", row.events}});
    }
    span->SetAttribute("http.response.status_code", 200);
    ReplyJson(response, 200,
              {{"orders", orders},
               {"indexes", runtime.options().dashboard_indexes ? "on" : "off"},
               {"plan", plan.ok() ? *plan : ""}});
  });

  routes.Post("/api/orders/{}/manufacturing/start", [&runtime](const http::Request& request,
                                                               http::Response& response) {
    absl::StatusOr<nlohmann::json> body = JsonBody(request);
    absl::Status invalid;
    TransitionDetails details;
    if (!body.ok()) {
      invalid = body.status();
    } else if (auto it = body->find("operator_id"); it == body->end() || !it->is_string() ||
                                                    it->get<std::string>().empty() ||
                                                    it->get<std::string>().size() > 128) {
      invalid =
          absl::InvalidArgumentError("\"operator_id\" must be a string of 1 to 128 characters");
    } else {
      details.operator_id = it->get<std::string>();
    }
    if (!invalid.ok()) {
      runtime.RefuseHttpRequest(request, response, "mes.manufacturing.start",
                                "/api/orders/{id}/manufacturing/start", request.PathParam(0),
                                invalid);
      return;
    }
    absl::StatusOr<TransitionResult> result = runtime.RunHttpTransition(
        request, response, "mes.manufacturing.start", "/api/orders/{id}/manufacturing/start",
        request.PathParam(0), kManufacturingStarted, details);
    (void)result;
  });

  struct Step {
    const char* path;
    const char* route;
    const char* span_name;
    std::string_view status;
  };
  for (const Step& step : {
           Step{"/api/orders/{}/manufacturing/complete", "/api/orders/{id}/manufacturing/complete",
                "mes.manufacturing.complete", kManufacturingCompleted},
           Step{"/api/orders/{}/packaging", "/api/orders/{id}/packaging", "mes.packaging",
                kPackaging},
           Step{"/api/orders/{}/ship", "/api/orders/{id}/ship", "mes.shipped", kShipped},
       }) {
    routes.Post(step.path,
                [&runtime, step](const http::Request& request, http::Response& response) {
                  runtime.RunHttpTransition(request, response, step.span_name, step.route,
                                            request.PathParam(0), step.status);
                });
  }

  routes.Get("/api/orders/{}", [&runtime](const http::Request& request, http::Response& response) {
    ReplyOrder(runtime, request.PathParam(0), response);
  });
}

}  // namespace ordertrace::services::mes
