// SLA aggregates from the order records: for each stage of the lifecycle, how long orders
// stayed in it against its SLA. What a partner sees of its own orders (GET /api/v1/sla), and
// what support and ops see for any partner or all orders. Knows nothing about HTTP.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "store/store.h"

namespace ordertrace::query {

struct StageSla {
  std::string stage;
  std::optional<uint64_t> sla_nanos;  // none: the stage has no SLA
  // Orders that left the stage, and how long they stayed.
  size_t completed = 0;
  size_t completed_within_sla = 0;
  uint64_t p50_nanos = 0;
  uint64_t p95_nanos = 0;
  uint64_t max_nanos = 0;
  // Orders in the stage now, and how many of them are past its SLA.
  size_t current = 0;
  size_t current_over_sla = 0;
};

struct SlaReport {
  std::string partner_id;  // empty: every order
  size_t orders = 0;       // records read
  bool truncated = false;  // more orders exist than `max_orders`: the newest were read
  uint64_t as_of_unix_nano = 0;
  std::vector<StageSla> stages;  // in lifecycle order
};

struct SlaReportOptions {
  // The lifecycle's statuses in order, and the SLA of a status for a partner (none: no SLA).
  std::vector<std::string> statuses;
  std::function<std::optional<uint64_t>(std::string_view status, std::string_view partner)> sla;
  size_t max_orders = 10'000;
};

// Reads the newest `options.max_orders` records of `partner_id` (empty: of everyone) and
// aggregates their stages as of `now_unix_nano`.
absl::StatusOr<SlaReport> BuildSlaReport(store::Store& store, const std::string& partner_id,
                                         uint64_t now_unix_nano, const SlaReportOptions& options);

}  // namespace ordertrace::query
