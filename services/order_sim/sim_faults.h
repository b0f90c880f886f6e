// The faults order-sim causes: what each is called, which service makes it through its
// demo fault switch, where the order stops because of it, and what ordertrace must show for the
// fault to count as found. Constants and pure functions; thread-safe.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace ordertrace::services::sim {

// How a fault shows in ordertrace's order record.
enum class FaultEvidence {
  kStopsAtStage,   // the order stops: its current status is the fault's stage
  kSlowStage,      // the order finishes, but its stage lasted longer than the stage's SLA
  kRedelivery,     // the order finishes; one of its messages was delivered more than once
  kSkippedStatus,  // the order finishes without passing the fault's stage
  kWentBack,       // after its terminal status, a service reports the fault's stage again
};

struct SimFaultKind {
  std::string_view name;
  // Where the fault hits: the status the order stops in (kStopsAtStage) or the stage that is
  // slow, redelivered or skipped.
  std::string_view stage;
  FaultEvidence evidence;
  // The service whose fault switch makes it ("shop", "crm", "mes"), or "" when order-sim makes
  // it by itself (an operator who never comes).
  std::string_view service;
  // The risk in the design (architecture.md 2.2) it stands for.
  std::string_view description;
  // The gap ordertrace's detector must open for it (gaps/gap.h kinds), and at which stage ("":
  // any); an empty kind when no gap kind covers it and the order record is the evidence.
  std::string_view gap_kind;
  std::string_view gap_stage;
};

// The faults `order-sim run` makes through the real services.
const std::vector<SimFaultKind>& SimFaultKinds();
const SimFaultKind* FindSimFault(std::string_view name);

// The faults `order-sim replay` writes into its spans: SimFaultKinds() and the kinds the real
// services cannot make (status_backwards), which `run` must not offer.
const std::vector<SimFaultKind>& ReplayFaultKinds();
// A kind of ReplayFaultKinds() (a superset of SimFaultKinds()), for scoring either truth.
const SimFaultKind* FindAnyFault(std::string_view name);

// The fault only a replay makes: after CLOSED a service reports SHIPPED again, with a higher
// event_version and prev_status CLOSED.
inline constexpr std::string_view kFaultStatusBackwards = "status_backwards";

// Parses --faults: "all", "none", or a comma-separated list of kinds, each optionally with its
// own share of orders ("calculator_hang:0.05"); those shares go to `rates` when given.
// kInvalidArgument names an unknown kind or a bad share. `known` are the kinds "all" means and
// the only ones accepted.
absl::StatusOr<std::vector<std::string>> ParseFaultList(
    std::string_view text, std::map<std::string, double>* rates = nullptr,
    const std::vector<SimFaultKind>& known = SimFaultKinds());

// The price calculation's SLA, in simulated time: the longest a real calculation takes.
inline constexpr double kPriceCalculationSlaSeconds = 30 * 60;

}  // namespace ordertrace::services::sim
