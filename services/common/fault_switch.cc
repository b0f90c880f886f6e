#include "services/common/fault_switch.h"

#include <algorithm>

namespace ordertrace::services {

bool IsServiceFaultKind(std::string_view kind) {
  for (std::string_view known :
       {kFaultLostStatusEvent, kFaultLostPriceRequest, kFaultCalculatorHang, kFaultCalculatorSlow,
        kFaultConsumerCrash, kFaultMissedStatusWrite, kFaultSkippedStatus,
        kFaultPartnerOrderDropped}) {
    if (kind == known) return true;
  }
  return false;
}

void FaultSwitch::Arm(ArmedFault fault) {
  std::lock_guard<std::mutex> lock(mu_);
  if (armed_.size() >= kMaxArmed) {
    auto oldest = std::min_element(armed_.begin(), armed_.end(), [](const auto& a, const auto& b) {
      return a.second.second < b.second.second;
    });
    armed_.erase(oldest);
  }
  armed_[{std::move(fault.key), std::move(fault.kind)}] = {std::move(fault.param),
                                                           next_sequence_++};
}

std::optional<std::string> FaultSwitch::Take(std::string_view key, std::string_view kind,
                                             std::string_view param) {
  std::lock_guard<std::mutex> lock(mu_);
  if (armed_.empty()) return std::nullopt;
  auto it = armed_.find({std::string(key), std::string(kind)});
  if (it == armed_.end()) return std::nullopt;
  if (!param.empty() && !it->second.first.empty() && it->second.first != param) {
    return std::nullopt;
  }
  std::string armed_param = std::move(it->second.first);
  armed_.erase(it);
  return armed_param;
}

std::vector<ArmedFault> FaultSwitch::Armed() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ArmedFault> faults;
  for (const auto& [key, value] : armed_) faults.push_back({key.first, key.second, value.first});
  return faults;
}

}  // namespace ordertrace::services
