// shop-api: customers' and partners' orders. Creates an order (INITIATED, the order's trace root
// `order.root` and `shop.init`), takes its 3D model (FILE_UPLOADED, the polygon count read from
// the binary STL), submits it (SUBMITTED, publishing the status event and the price request), and
// keeps the shop's view of each order from everyone's status events. docs/services.md has the API.
//
// Thread-safe: HTTP handlers and consumers run on their own threads; Start and Shutdown from
// the owner.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "services/common/service_runtime.h"

namespace ordertrace::services::shop {

class ShopService final : public StartedService {
 public:
  // Opens the database, sets up tracing, binds the HTTP address and starts consuming.
  static absl::StatusOr<std::unique_ptr<ShopService>> Start(const ServiceOptions& options);
  ~ShopService() override { Shutdown(); }

  int http_port() const { return runtime_->http_port(); }
  ServiceRuntime& runtime() { return *runtime_; }
  void Shutdown() override { runtime_->Shutdown(); }

 private:
  explicit ShopService(std::unique_ptr<ServiceRuntime> runtime) : runtime_(std::move(runtime)) {}
  void AddRoutes();

  std::unique_ptr<ServiceRuntime> runtime_;
};

}  // namespace ordertrace::services::shop
