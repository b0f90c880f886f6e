// Answers "where is order X": its record with the status timeline, and order listings.
// Knows nothing about HTTP. Thread-safe (the store is).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/clock.h"
#include "lifecycle/order_timeline.h"
#include "model/order_record.h"
#include "query/partner_scope.h"
#include "query/sla_report.h"
#include "store/store.h"

namespace ordertrace::query {

struct OrderView {
  model::OrderRecord record;
  std::vector<lifecycle::Stage> timeline;  // points into `record`: keep them together
  uint64_t as_of_unix_nano = 0;

  OrderView() = default;
  OrderView(const OrderView&) = delete;
  OrderView& operator=(const OrderView&) = delete;
  OrderView(OrderView&&) = default;
};

class OrderQuery {
 public:
  OrderQuery(store::Store& store, const base::Clock& clock);

  // nullopt for an unknown order.
  absl::StatusOr<std::optional<OrderView>> GetOrder(const std::string& order_id);

  // Newest first.
  absl::StatusOr<std::vector<model::OrderRecord>> ListOrders(const store::OrderFilter& filter);

  // The scope of what partner `partner_id` may read (one per request).
  std::unique_ptr<PartnerScope> NewPartnerScope(std::string partner_id);

  // SLA aggregates of a partner's orders (empty: every order's) as of now.
  absl::StatusOr<SlaReport> Sla(const std::string& partner_id, const SlaReportOptions& options);

 private:
  store::Store& store_;
  const base::Clock& clock_;
};

}  // namespace ordertrace::query
