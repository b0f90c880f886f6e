#include "query/order_query.h"

namespace ordertrace::query {

OrderQuery::OrderQuery(store::Store& store, const base::Clock& clock)
    : store_(store), clock_(clock) {}

absl::StatusOr<std::optional<OrderView>> OrderQuery::GetOrder(const std::string& order_id) {
  absl::StatusOr<std::optional<model::OrderRecord>> record = store_.GetOrder(order_id);
  if (!record.ok()) return record.status();
  if (!record->has_value()) return std::optional<OrderView>();
  std::optional<OrderView> view(std::in_place);
  view->record = std::move(**record);
  view->as_of_unix_nano = clock_.NowUnixNano();
  view->timeline = lifecycle::Timeline(view->record, view->as_of_unix_nano);
  return view;
}

absl::StatusOr<std::vector<model::OrderRecord>> OrderQuery::ListOrders(
    const store::OrderFilter& filter) {
  return store_.ListOrders(filter);
}

std::unique_ptr<PartnerScope> OrderQuery::NewPartnerScope(std::string partner_id) {
  return std::make_unique<PartnerScope>(store_, std::move(partner_id));
}

absl::StatusOr<SlaReport> OrderQuery::Sla(const std::string& partner_id,
                                          const SlaReportOptions& options) {
  return BuildSlaReport(store_, partner_id, clock_.NowUnixNano(), options);
}

}  // namespace ordertrace::query
