// crm-api: CRM's view of every order, kept from the status events, manufacturing approval
// (PRICE_CALCULATED -> MANUFACTURING_APPROVED, `crm.approve.manufacturing`) and closing
// (SHIPPED -> CLOSED, `crm.close`). docs/services.md has the API.
//
// Thread-safe: HTTP handlers and consumers run on their own threads; Start and Shutdown from
// the owner.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "services/common/service_runtime.h"

namespace ordertrace::services::crm {

class CrmService final : public StartedService {
 public:
  static absl::StatusOr<std::unique_ptr<CrmService>> Start(const ServiceOptions& options);
  ~CrmService() override { Shutdown(); }

  int http_port() const { return runtime_->http_port(); }
  ServiceRuntime& runtime() { return *runtime_; }
  void Shutdown() override { runtime_->Shutdown(); }

 private:
  explicit CrmService(std::unique_ptr<ServiceRuntime> runtime) : runtime_(std::move(runtime)) {}
  void AddRoutes();

  std::unique_ptr<ServiceRuntime> runtime_;
};

}  // namespace ordertrace::services::crm
