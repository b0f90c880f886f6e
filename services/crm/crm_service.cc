#include "services/crm/crm_service.h"

#include <httplib.h>

#include "services/common/http_api.h"
#include "services/common/order_lifecycle.h"

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
  httplib::Server& http = runtime.http();

  http.Post(R"(/api/orders/([^/]+)/approve)",
            [&runtime](const httplib::Request& request, httplib::Response& response) {
              runtime.RunHttpTransition(request, response, "crm.approve.manufacturing",
                                        "/api/orders/{id}/approve", request.matches[1].str(),
                                        kManufacturingApproved);
            });

  http.Post(R"(/api/orders/([^/]+)/close)",
            [&runtime](const httplib::Request& request, httplib::Response& response) {
              runtime.RunHttpTransition(request, response, "crm.close", "/api/orders/{id}/close",
                                        request.matches[1].str(), kClosed);
            });

  http.Get(R"(/api/orders/([^/]+))",
           [&runtime](const httplib::Request& request, httplib::Response& response) {
             ReplyOrder(runtime, request.matches[1].str(), response);
           });
}

}  // namespace ordertrace::services::crm
