// crm-api: parses its settings and runs the CRM service until SIGTERM or SIGINT.
#include "services/crm/crm_service.h"

int main(int argc, char** argv) {
  using namespace ordertrace::services;
  return RunServiceMain(kCrmIdentity, argc, argv, [](const ServiceOptions& options) {
    absl::StatusOr<std::unique_ptr<crm::CrmService>> service = crm::CrmService::Start(options);
    if (!service.ok()) return absl::StatusOr<std::unique_ptr<StartedService>>(service.status());
    return absl::StatusOr<std::unique_ptr<StartedService>>(*std::move(service));
  });
}
