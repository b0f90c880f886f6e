// Faults made on purpose inside the services, for the order simulator's demos and for measuring
// ordertrace's detection. The switch exists only when a service runs with
// `--demo-faults on`; then order-sim arms a fault for one order through
// `POST /api/demo/faults`, and the service's own code misbehaves at that point, exactly once:
// spans are never edited, they show what really happened.
//
// Thread-safe.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ordertrace::services {

// The faults the services can make, by their names in the API and in order-sim.
inline constexpr std::string_view kFaultLostStatusEvent = "lost_status_event";  // param: status
inline constexpr std::string_view kFaultLostPriceRequest = "lost_price_request";
inline constexpr std::string_view kFaultCalculatorHang = "calculator_hang";
inline constexpr std::string_view kFaultCalculatorSlow = "calculator_slow";         // param: factor
inline constexpr std::string_view kFaultConsumerCrash = "consumer_crash";           // param: queue
inline constexpr std::string_view kFaultMissedStatusWrite = "missed_status_write";  // param: status
inline constexpr std::string_view kFaultSkippedStatus = "skipped_status";           // param: status
inline constexpr std::string_view kFaultPartnerOrderDropped =
    "partner_order_dropped";  // key: customer_id

// True for the names above.
bool IsServiceFaultKind(std::string_view kind);

struct ArmedFault {
  std::string key;  // the order id (the customer id for partner_order_dropped)
  std::string kind;
  std::string param;
};

class FaultSwitch {
 public:
  // Armed faults kept at most; arming more drops the oldest.
  static constexpr size_t kMaxArmed = 100000;

  void Arm(ArmedFault fault);
  // Takes the fault `kind` armed for `key` when its param matches `param` (an empty `param`
  // matches any), so it fires once. Returns the fault's param.
  std::optional<std::string> Take(std::string_view key, std::string_view kind,
                                  std::string_view param = "");
  std::vector<ArmedFault> Armed() const;

 private:
  mutable std::mutex mu_;
  // (key, kind) -> param, with the arming order for eviction; guarded by mu_.
  std::map<std::pair<std::string, std::string>, std::pair<std::string, uint64_t>> armed_;
  uint64_t next_sequence_ = 0;  // guarded by mu_
};

}  // namespace ordertrace::services
