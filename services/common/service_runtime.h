// What every Alexandrite service runs on: its SQLite database, its tracer (exporting OTLP/HTTP to
// ordertrace), the outbox relay, its queue consumers and its HTTP server, started and stopped in
// the right order. A service builds one, adds its routes and consumers, then calls Start.
//
// Thread-safety: set up (http(), AddConsumer) before Start, from one thread; Start and Shutdown
// from the owner; db(), tracer() and outbox() from any thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "http/router.h"
#include "http/server.h"
#include "sdk/tracer.h"
#include "services/common/fault_switch.h"
#include "services/common/message_consumer.h"
#include "services/common/order_store.h"
#include "services/common/outbox.h"
#include "services/common/service_db.h"
#include "services/common/service_options.h"

namespace ordertrace::services {

class ServiceRuntime {
 public:
  // Opens the database (with `schema_sql` and the outbox / inbox tables) and sets up tracing.
  // kInvalidArgument for a bad endpoint, kUnavailable for a database that cannot be opened.
  static absl::StatusOr<std::unique_ptr<ServiceRuntime>> Create(const ServiceIdentity& identity,
                                                                const ServiceOptions& options,
                                                                std::string_view schema_sql);
  ~ServiceRuntime();  // Shutdown()
  ServiceRuntime(const ServiceRuntime&) = delete;
  ServiceRuntime& operator=(const ServiceRuntime&) = delete;

  const ServiceIdentity& identity() const { return identity_; }
  const ServiceOptions& options() const { return options_; }
  ServiceDb& db() { return *db_; }
  const sdk::Tracer& tracer() const { return tracer_; }
  OutboxRelay& outbox() { return *outbox_; }
  // The demo fault switch; null unless the service runs with demo faults on.
  FaultSwitch* faults() { return faults_.get(); }
  // Routes are added before Start. JSON errors for unknown routes and for handler exceptions
  // are already set up.
  http::Router& http() { return router_; }

  // Consumes `queue` with `handler` once started; spans named `span_name`.
  void AddConsumer(std::string queue, std::string span_name, MessageHandler handler);
  // Consumes the service's status queue (`<short name>.status`), applying other services'
  // status events to this service's view by version.
  void ConsumeStatusEvents();

  // Runs an HTTP operation that moves an order to `new_status` (docs/services.md, "The
  // lifecycle"): starts the SERVER span `span_name` under the order's trace root, applies the
  // transition with its status event (and `extra_messages`) through the outbox, and answers:
  // 200 with the order, or the error (404 unknown order, 409 illegal transition, ...), which the
  // span records. Returns the result for the caller to add to.
  absl::StatusOr<TransitionResult> RunHttpTransition(
      const http::Request& request, http::Response& response, std::string_view span_name,
      std::string_view route, std::string_view order_id, std::string_view new_status,
      const TransitionDetails& details = {}, const std::vector<OutboxMessage>& extra_messages = {});

  // Refuses a malformed request about `order_id` with `status`, on a span in the order's trace
  // when the order is known (so ordertrace sees the refusal against the order).
  void RefuseHttpRequest(const http::Request& request, http::Response& response,
                         std::string_view span_name, std::string_view route,
                         std::string_view order_id, const absl::Status& status);

  // Binds the HTTP address (kUnavailable when in use), then starts the outbox relay, the
  // consumers and the HTTP server.
  absl::Status Start();
  // The bound HTTP port (after Start).
  int http_port() const { return http_port_; }
  // True when every consumer is connected and consuming.
  bool IsConsuming() const;

  // Stops taking HTTP requests, stops consumers and the relay, flushes spans. Idempotent.
  void Shutdown();

 private:
  // POST /api/demo/faults {"key", "kind", "param"?} arms a fault; GET lists the armed ones.
  void AddFaultRoutes();

  ServiceRuntime(const ServiceIdentity& identity, const ServiceOptions& options,
                 std::unique_ptr<ServiceDb> db,
                 std::unique_ptr<sdk::TracerProvider> tracer_provider);

  // Constant after construction.
  const ServiceIdentity identity_;
  const ServiceOptions options_;

  std::unique_ptr<FaultSwitch> faults_;  // null unless options_.demo_faults
  std::unique_ptr<ServiceDb> db_;
  std::unique_ptr<sdk::TracerProvider> tracer_provider_;
  sdk::Tracer tracer_;
  std::unique_ptr<OutboxRelay> outbox_;
  std::vector<std::unique_ptr<MessageConsumer>> consumers_;
  http::Router router_;
  std::unique_ptr<http::Server> http_;
  int http_port_ = 0;
  bool started_ = false;
  bool stopped_ = false;
};

// Answers GET /api/orders/{id} with the service's view of the order (404 when unknown).
void ReplyOrder(ServiceRuntime& runtime, const std::string& order_id, http::Response& response);

// A running service, as main() sees it.
class StartedService {
 public:
  virtual ~StartedService() = default;
  virtual void Shutdown() = 0;
};

// The shared main() of the three services: parses the options, calls `start`, and runs until
// SIGTERM or SIGINT, then shuts the service down. A start error is printed as one line (exit 1).
int RunServiceMain(
    const ServiceIdentity& identity, int argc, char** argv,
    const std::function<absl::StatusOr<std::unique_ptr<StartedService>>(const ServiceOptions&)>&
        start);

}  // namespace ordertrace::services
