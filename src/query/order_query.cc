#include "query/order_query.h"

namespace ordertrace::query {

OrderQuery::OrderQuery(store::Store& store, const model::Clock& clock)
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

}  // namespace ordertrace::query
