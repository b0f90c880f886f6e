// shop-api: parses its settings and runs the Shop service until SIGTERM or SIGINT.
#include "services/shop/shop_service.h"

int main(int argc, char** argv) {
  using namespace ordertrace::services;
  return RunServiceMain(kShopIdentity, argc, argv, [](const ServiceOptions& options) {
    absl::StatusOr<std::unique_ptr<shop::ShopService>> service = shop::ShopService::Start(options);
    if (!service.ok()) return absl::StatusOr<std::unique_ptr<StartedService>>(service.status());
    return absl::StatusOr<std::unique_ptr<StartedService>>(*std::move(service));
  });
}
