// order-sim's `score`: compares what ordertrace reports about each simulated order with the
// ground truth. With ordertrace's gap detector (GET /api/v1/gaps), a faulted order is found when
// the gap its fault must cause is there (SimFaultKind::gap_kind, at its stage), and the delay
// from the gap's SLA deadline to its detection is reported; a fault-free order with any gap is a
// false alarm. Faults no gap kind covers (a redelivery), and ordertraces without the detector,
// are judged from the order record: the stage it stopped in, a stage past its SLA, a redelivered
// message, a skipped status.
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
  // "order_id: why" for each miss and each false alarm.
  std::vector<std::string> missed;
  std::vector<std::string> false_alarm_orders;

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

// Scores every order. A record that does not match yet is fetched again once a second, for up to
// `settle_seconds`, since spans reach ordertrace a little after the order moved.
// `fetch_gaps` may be null: records only.
ScoreReport Score(const std::vector<TruthRecord>& truth, const OrderRecordFetcher& fetch,
                  const OrderGapsFetcher& fetch_gaps, double settle_seconds);

}  // namespace ordertrace::services::sim
