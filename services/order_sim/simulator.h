// order-sim's `run`: drives orders through the three services' HTTP APIs the way customers,
// partners and operators do, on a simulated clock scaled by `time_scale`; arms the chosen faults
// in the services' demo fault switches; and writes the ground truth, one line per order.
//
// Thread-safety: one Run at a time; Run uses `concurrency` threads of its own.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace ordertrace::services::sim {

struct SimulatorOptions {
  int orders = 100;
  std::vector<std::string> faults;  // kinds (SimFaultKinds); empty: a fault-free run
  // Kinds with a share of their own (of all orders); the others share `fault_rate`.
  std::map<std::string, double> fault_rates;
  // Share of orders that get a fault; at least one order per kind when there are enough orders.
  double fault_rate = 0.2;
  double partner_share = 0.3;
  // Simulated seconds per real second; must equal the services' --time-scale.
  double time_scale = 600;
  // Orders arrive at this rate (per simulated hour).
  double orders_per_hour = 120;
  // Polygon counts are drawn log-uniformly in [min, max]; the STL upload grows with them
  // (50 bytes per triangle).
  int64_t min_polygons = 2000;
  int64_t max_polygons = 1'200'000;
  // How long an operator takes to start manufacturing an approved order (simulated minutes,
  // drawn uniformly); the design's SLA for that stage is 2 hours.
  double operator_min_minutes = 10;
  double operator_max_minutes = 60;
  uint64_t seed = 1;
  int concurrency = 64;
  std::string shop_url = "http://127.0.0.1:8081";
  std::string crm_url = "http://127.0.0.1:8082";
  std::string mes_url = "http://127.0.0.1:8083";
  std::string truth_path = "truth.jsonl";
  // The longest order-sim waits for a status another service must reach, in real seconds at
  // least (simulated waits are also scaled).
  double wait_floor_seconds = 15;
};

struct SimulatorSummary {
  int closed = 0;
  int stopped = 0;
  int sim_errors = 0;
  int faulted = 0;
};

// Runs the simulation to the end: every order closed, stopped by its fault, or failed to drive
// (counted in sim_errors, with the reason in the truth file). kInvalidArgument for bad options,
// kUnavailable when a service cannot be reached at the start.
absl::Status RunSimulation(const SimulatorOptions& options, SimulatorSummary& summary);

}  // namespace ordertrace::services::sim
