// Ground truth: one JSON line per simulated order, saying what order-sim did to it and where it
// ended, so that what ordertrace reports can be scored against it. Plain values; thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ordertrace::services::sim {

struct TruthFault {
  std::string kind;
  std::string stage;    // see SimFaultKind::stage
  std::string service;  // the service that made it, "" for order-sim itself
  std::string param;
  int64_t at_unix_nano = 0;  // when the fault hit (when the order reached the stage)
};

// A gap ordertrace must hold for the order once every span is in (order-sim replay knows them:
// it wrote the spans). `state` is "open" or "resolved".
struct TruthGap {
  std::string kind;
  std::string stage;
  std::string state;

  friend bool operator==(const TruthGap&, const TruthGap&) = default;
};

struct TruthRecord {
  std::string order_id;
  std::string customer_id;
  std::string partner_id;
  int64_t polygon_count = 0;
  double time_scale = 1;
  std::optional<TruthFault> fault;
  // "closed": went through every status; "stopped": stopped where its fault left it;
  // "sim_error": order-sim could not drive it (a service refused or was unreachable).
  std::string outcome;
  std::string last_status;  // the last status order-sim saw the order reach
  std::string note;         // why it stopped, for people
  int64_t started_at_unix_nano = 0;
  int64_t finished_at_unix_nano = 0;
  // Set by `replay` (whose spans are known in full), absent from `run`'s truth: the order's
  // trace, and every gap ordertrace must end with for it (none for a fault-free order).
  std::string trace_id;
  std::optional<std::vector<TruthGap>> expected_gaps;
};

std::string EncodeTruth(const TruthRecord& record);
absl::StatusOr<TruthRecord> DecodeTruth(const std::string& line);

// Reads a JSONL truth file; kInvalidArgument names the first bad line.
absl::StatusOr<std::vector<TruthRecord>> ReadTruthFile(const std::string& path);

}  // namespace ordertrace::services::sim
