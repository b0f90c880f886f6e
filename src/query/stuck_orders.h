// Stuck orders: the orders with an open gap, the most recently stuck first. The open gaps'
// index answers this without reading every order. Knows nothing about HTTP or how gaps are
// stored: the caller pages through the open gaps and reads orders.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/order_record.h"

namespace ordertrace::query {

// One page of open gaps, most recently stuck first: the order of each gap ("" for a gap of no
// order, such as a silent source), and the cursor of the next page ("" after the last).
struct OpenGapPage {
  std::vector<std::string> order_ids;
  std::string next_cursor;
};
// Reads the page of open gaps at `cursor` ("" for the first).
using OpenGapPager = std::function<absl::StatusOr<OpenGapPage>(const std::string& cursor)>;
// Reads an order's record; nullopt for an unknown order.
using OrderReader =
    std::function<absl::StatusOr<std::optional<model::OrderRecord>>(const std::string& order_id)>;

struct StuckOrderFilter {
  // Only orders whose current status is this one; empty: any.
  std::string status;
  // At most this many orders.
  size_t limit = 100;
  // Pages are read until this many distinct orders were looked at, found or not.
  size_t max_orders_read = 200000;
};

// Each stuck order once, in the order its first open gap comes. The first failed read is
// returned.
absl::StatusOr<std::vector<model::OrderRecord>> ListStuckOrders(const OpenGapPager& open_gaps,
                                                                const OrderReader& read_order,
                                                                const StuckOrderFilter& filter);

}  // namespace ordertrace::query
