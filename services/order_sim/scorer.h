// order-sim's `score`: compares what ordertrace reports about each simulated order with the
// ground truth. Until the gap detector exists, it scores the order records: a faulted order is
// found when its record shows the fault (the stage it stopped in, a stage past its SLA, a
// redelivered message, a skipped status); a fault-free order is a false alarm when its record
// does not reach CLOSED or shows such a sign.
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

struct KindScore {
  int faulted = 0;
  int found = 0;
  int missed = 0;
};

struct ScoreReport {
  std::map<std::string, KindScore> kinds;
  int fault_free_orders = 0;
  int false_alarms = 0;
  int sim_errors = 0;  // orders order-sim could not drive; not scored
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

// Scores every order. A record that does not match yet is fetched again once a second, for up to
// `settle_seconds`, since spans reach ordertrace a little after the order moved.
ScoreReport Score(const std::vector<TruthRecord>& truth, const OrderRecordFetcher& fetch,
                  double settle_seconds);

}  // namespace ordertrace::services::sim
