#include "services/crm/crm_service.h"

#include "services/common/http_api.h"
#include "services/common/order_transitions.h"

namespace ordertrace::services::crm {

absl::StatusOr<std::unique_ptr<CrmService>> CrmService::Start(const ServiceOptions& options) {
  absl::StatusOr<std::unique_ptr<ServiceRuntime>> runtime =
      ServiceRuntime::Create(kCrmIdentity, options, kOrderSchema);
  if (!runtime.ok()) return runtime.status();
  std::unique_ptr<CrmService> service(new CrmService(*std::move(runtime)));
  service->AddRoutes();
  service->runtime_->ConsumeStatusEvents();
  if (absl::Status started = service->runtime_->Start(); !started.ok()) return started;
  return service;
}

void CrmService::AddRoutes() {
  ServiceRuntime& runtime = *runtime_;
  http::Router& routes = runtime.http();

  routes.Post("/api/orders/{}/approve",
              [&runtime](const http::Request& request, http::Response& response) {
                runtime.RunHttpTransition(request, response, "crm.approve.manufacturing",
                                          "/api/orders/{id}/approve", request.PathParam(0),
                                          kManufacturingApproved);
              });

  routes.Post("/api/orders/{}/close",
              [&runtime](const http::Request& request, http::Response& response) {
                runtime.RunHttpTransition(request, response, "crm.close", "/api/orders/{id}/close",
                                          request.PathParam(0), kClosed);
              });

  routes.Get("/api/orders/{}", [&runtime](const http::Request& request, http::Response& response) {
    ReplyOrder(runtime, request.PathParam(0), response);
  });
}

}  // namespace ordertrace::services::crm
