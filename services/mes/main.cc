// mes-api: parses its settings and runs the MES service until SIGTERM or SIGINT.
#include "services/mes/mes_service.h"

int main(int argc, char** argv) {
  using namespace ordertrace::services;
  return RunServiceMain(kMesIdentity, argc, argv, [](const ServiceOptions& options) {
    absl::StatusOr<std::unique_ptr<mes::MesService>> service = mes::MesService::Start(options);
    if (!service.ok()) return absl::StatusOr<std::unique_ptr<StartedService>>(service.status());
    return absl::StatusOr<std::unique_ptr<StartedService>>(*std::move(service));
  });
}
