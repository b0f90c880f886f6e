// order-sim's `score`: compares what ordertrace reports about each simulated order with the
// ground truth. With ordertrace's gap detector (GET /api/v1/gaps), a faulted order is found when
// the gap its fault must cause is there (SimFaultKind::gap_kind, at its stage; open or resolved),
// and the delay from the gap's SLA deadline to its detection is reported; a fault-free order with
// any gap is a false alarm. Faults no gap kind covers (a redelivery), and ordertraces without the
// detector, are judged from the order record: the stage it stopped in, a stage past its SLA, a
// redelivered message, a skipped status. A replay's truth also lists the gaps each order must end
// with: the number of open ones must match. Gaps about no order (a silent source) are counted
// apart and judged by nobody here.
//
// Pure given the record fetcher; thread-compatible.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/order_sim/truth.h"

namespace ordertrace::services::sim {

// Returns ordertrace's GET /api/v1/orders/{id} body; kNotFound for an order it does not know.
using OrderRecordFetcher = std::function<absl::StatusOr<nlohmann::json>(const std::string&)>;
// Returns the order's gaps, open and resolved (GET /api/v1/gaps?order_id=...&state=all, the
// "gaps" array); kUnimplemented when ordertrace has no gap detector.
using OrderGapsFetcher = std::function<absl::StatusOr<nlohmann::json>(const std::string&)>;
// Returns every gap ordertrace holds, open and resolved (GET /api/v1/gaps?state=all, page after
// page), as one array; kUnimplemented when ordertrace has no gap detector, kOutOfRange when the
// list cannot be paged (then the order-by-order fetcher is used).
using AllGapsFetcher = std::function<absl::StatusOr<nlohmann::json>()>;

struct ScoreSources {
  OrderRecordFetcher record;    // required
  OrderGapsFetcher order_gaps;  // may be null: records only
  AllGapsFetcher all_gaps;      // may be null: one gap query per order
};

struct KindScore {
  int faulted = 0;
  int found = 0;
  int missed = 0;
  // Seconds from each found gap's deadline to its detection.
  std::vector<double> detection_delays;
};

struct ScoreReport {
  std::map<std::string, KindScore> kinds;
  int fault_free_orders = 0;
  int false_alarms = 0;
  int sim_errors = 0;      // orders order-sim could not drive; not scored
  bool used_gaps = false;  // scored from the gap detector (else from order records)
  bool bulk = false;       // gaps read from the whole paged list (else one query per order)
  // Replay truths: orders whose open gap count differs from the truth's.
  int orders_with_expected_gaps = 0;
  int open_count_mismatches = 0;
  int gaps_seen = 0;    // on the truth's orders
  int source_gaps = 0;  // about no order (source_silent); not judged
  // "order_id: why" for each miss, each false alarm, each open count mismatch.
  std::vector<std::string> missed;
  std::vector<std::string> false_alarm_orders;
  std::vector<std::string> open_count_mismatch_orders;
  // Every gap read in the last pass (for --gaps-out).
  nlohmann::json gaps = nlohmann::json::array();

  int found() const;
  int missed_count() const;
  nlohmann::json ToJson() const;
  // A table for people.
  std::string ToText() const;
};

// Why `record` does not show `truth`'s fault ("" when it does), or, for a fault-free order, why
// it looks faulty ("" when it does not).
std::string Judge(const TruthRecord& truth, const nlohmann::json& record);

// The same from the order's gaps (a JSON array); `delay` gets the found gap's detection delay.
std::string JudgeGaps(const TruthRecord& truth, const nlohmann::json& record,
                      const nlohmann::json& gaps, double& delay);

// Why the order's open gaps do not number what `truth.expected_gaps` says ("" when they do, or
// when the truth lists none).
std::string JudgeOpenGaps(const TruthRecord& truth, const nlohmann::json& gaps);

// Scores every order. A record that does not match yet is fetched again once a second, for up to
// `settle_seconds`, since spans reach ordertrace a little after the order moved. Order records
// are read only where needed: for faults no gap kind covers, for `run`'s truth, and without gaps.
ScoreReport Score(const std::vector<TruthRecord>& truth, const ScoreSources& sources,
                  double settle_seconds);
// The same with one gap query per order; `fetch_gaps` may be null: records only.
ScoreReport Score(const std::vector<TruthRecord>& truth, const OrderRecordFetcher& fetch,
                  const OrderGapsFetcher& fetch_gaps, double settle_seconds);

}  // namespace ordertrace::services::sim
