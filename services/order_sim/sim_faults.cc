#include "services/order_sim/sim_faults.h"

#include <cstdlib>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "services/common/fault_switch.h"
#include "services/common/order_transitions.h"

namespace ordertrace::services::sim {

const std::vector<SimFaultKind>& SimFaultKinds() {
  // Stages are the statuses of order_transitions.h; the names of the service faults are
  // fault_switch.h's, plus operator_no_show, which needs no switch.
  static const std::vector<SimFaultKind> kinds = {
      {kFaultLostStatusEvent, kPriceCalculated, FaultEvidence::kStopsAtStage, "mes",
       "the PRICE_CALCULATED status event is published and never delivered", "message_not_consumed",
       ""},
      {kFaultLostPriceRequest, kSubmitted, FaultEvidence::kStopsAtStage, "shop",
       "the price request is published and never delivered", "message_not_consumed", kSubmitted},
      {kFaultCalculatorHang, kPriceCalculationStarted, FaultEvidence::kStopsAtStage, "mes",
       "the price calculator hangs", "calculation_overdue", kPriceCalculationStarted},
      {kFaultCalculatorSlow, kPriceCalculationStarted, FaultEvidence::kSlowStage, "mes",
       "the price calculation runs past its SLA, then finishes", "calculation_overdue",
       kPriceCalculationStarted},
      {"operator_no_show", kManufacturingApproved, FaultEvidence::kStopsAtStage, "",
       "an approved order that no operator takes", "missing_transition", kManufacturingApproved},
      {kFaultConsumerCrash, kSubmitted, FaultEvidence::kRedelivery, "mes",
       "the price consumer crashes mid-message; RabbitMQ delivers it again", "", ""},
      {kFaultMissedStatusWrite, kPriceCalculated, FaultEvidence::kStopsAtStage, "crm",
       "CRM misses the PRICE_CALCULATED write; services disagree and approval is refused",
       "status_disagreement", kPriceCalculated},
      {kFaultSkippedStatus, kPackaging, FaultEvidence::kSkippedStatus, "mes",
       "SHIPPED without PACKAGING", "skipped_status", kPackaging},
      {kFaultPartnerOrderDropped, kInitiated, FaultEvidence::kStopsAtStage, "shop",
       "a partner order accepted by the shop and then dropped inside it", "missing_transition",
       kInitiated},
  };
  return kinds;
}

const SimFaultKind* FindSimFault(std::string_view name) {
  for (const SimFaultKind& kind : SimFaultKinds()) {
    if (kind.name == name) return &kind;
  }
  return nullptr;
}

const std::vector<SimFaultKind>& ReplayFaultKinds() {
  static const std::vector<SimFaultKind> kinds = [] {
    std::vector<SimFaultKind> all = SimFaultKinds();
    all.push_back({kFaultStatusBackwards, kShipped, FaultEvidence::kWentBack, "mes",
                   "after CLOSED, MES reports SHIPPED again (a newer event_version, prev_status "
                   "CLOSED)",
                   "status_backwards", kShipped});
    return all;
  }();
  return kinds;
}

const SimFaultKind* FindAnyFault(std::string_view name) {
  for (const SimFaultKind& kind : ReplayFaultKinds()) {
    if (kind.name == name) return &kind;
  }
  return nullptr;
}

absl::StatusOr<std::vector<std::string>> ParseFaultList(std::string_view text,
                                                        std::map<std::string, double>* rates,
                                                        const std::vector<SimFaultKind>& known) {
  auto find = [&known](std::string_view name) -> const SimFaultKind* {
    for (const SimFaultKind& kind : known) {
      if (kind.name == name) return &kind;
    }
    return nullptr;
  };
  std::vector<std::string> kinds;
  if (text == "none" || text.empty()) return kinds;
  if (text == "all") {
    for (const SimFaultKind& kind : known) kinds.emplace_back(kind.name);
    return kinds;
  }
  for (absl::string_view piece :
       absl::StrSplit(absl::string_view(text.data(), text.size()), ',', absl::SkipWhitespace())) {
    piece = absl::StripAsciiWhitespace(piece);
    std::string_view name(piece.data(), piece.size());
    std::optional<double> rate;
    if (size_t colon = name.find(':'); colon != std::string_view::npos) {
      std::string share(name.substr(colon + 1));
      char* end = nullptr;
      double value = std::strtod(share.c_str(), &end);
      if (share.empty() || end != share.c_str() + share.size() || !(value > 0) || value > 1) {
        return absl::InvalidArgumentError("fault share '" + share + "' in '" + std::string(name) +
                                          "' must be a number in (0, 1]");
      }
      rate = value;
      name = name.substr(0, colon);
    }
    if (find(name) == nullptr) {
      std::string names;
      for (const SimFaultKind& kind : known) {
        names += (names.empty() ? "" : ", ") + std::string(kind.name);
      }
      return absl::InvalidArgumentError("unknown fault kind '" + std::string(name) +
                                        "'; known: " + names + ", all, none");
    }
    kinds.emplace_back(name);
    if (rate.has_value() && rates != nullptr) (*rates)[std::string(name)] = *rate;
  }
  return kinds;
}

}  // namespace ordertrace::services::sim
