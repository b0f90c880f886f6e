// mes-api: the manufacturing side. Consumes price requests and runs the price calculator
// (PRICE_CALCULATION_STARTED `mes.price.start`, then PRICE_CALCULATED `mes.price.calc` with a
// sub-span per phase) on a pool of workers; manufacturing start and completion by an operator,
// packaging and shipping over HTTP; and the dashboard of new orders, whose SELECT is traced as a
// DB span. docs/services.md has the API.
//
// Thread-safe: HTTP handlers, consumers and calculation workers run on their own threads; Start
// and Shutdown from the owner.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "services/common/service_runtime.h"

namespace ordertrace::services::mes {

// Runs calculations on a fixed set of threads. A calculation waits out its scaled duration on a
// condition variable, so Shutdown interrupts it at once. Thread-safe.
class CalculationWorkers {
 public:
  // A job runs with a predicate that turns true when the pool is stopping.
  using Job = std::function<void(const std::function<bool(std::chrono::nanoseconds)>& wait)>;

  explicit CalculationWorkers(int threads);
  ~CalculationWorkers();  // Shutdown()

  void Submit(Job job);
  // Interrupts running jobs (their wait returns false) and drops queued ones.
  void Shutdown();

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable changed_;
  std::deque<Job> queue_;  // guarded by mu_
  bool stop_ = false;      // guarded by mu_
  std::vector<std::thread> threads_;
};

class MesService final : public StartedService {
 public:
  static absl::StatusOr<std::unique_ptr<MesService>> Start(const ServiceOptions& options);
  ~MesService() override { Shutdown(); }

  int http_port() const { return runtime_->http_port(); }
  ServiceRuntime& runtime() { return *runtime_; }
  // Stops the calculators first (their price requests return to the queue), then the rest.
  void Shutdown() override;

 private:
  explicit MesService(std::unique_ptr<ServiceRuntime> runtime);
  void AddRoutes();
  void ConsumePriceRequests();
  HandlerOutcome HandlePriceRequest(const ReceivedMessage& message, sdk::Span& consume_span,
                                    SettleMessage settle);
  void Calculate(const std::string& order_id, int64_t polygon_count, const sdk::SpanContext& parent,
                 const std::function<bool(std::chrono::nanoseconds)>& wait,
                 const SettleMessage& settle);

  std::unique_ptr<ServiceRuntime> runtime_;
  CalculationWorkers workers_;
  // Demo fault calculator_hang: the open spans of calculations that never finish.
  std::mutex hung_mu_;
  std::vector<std::unique_ptr<sdk::Span>> hung_calculations_;  // guarded by hung_mu_
};

}  // namespace ordertrace::services::mes
