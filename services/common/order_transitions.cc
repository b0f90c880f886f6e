#include "services/common/order_transitions.h"

#include <cctype>
#include <string>

namespace ordertrace::services {

int LifecycleIndex(std::string_view status) {
  for (size_t i = 0; i < std::size(kDefaultLifecycle); ++i) {
    if (kDefaultLifecycle[i].status == status) return static_cast<int>(i);
  }
  return -1;
}

std::optional<LifecycleStep> FindStep(std::string_view status) {
  int index = LifecycleIndex(status);
  if (index < 0) return std::nullopt;
  return kDefaultLifecycle[index];
}

std::string_view PreviousStatus(std::string_view status) {
  int index = LifecycleIndex(status);
  if (index <= 0) return "";
  return kDefaultLifecycle[index - 1].status;
}

std::string StatusRoutingKey(std::string_view status) {
  std::string key = "status.";
  for (char c : status)
    key.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return key;
}

}  // namespace ordertrace::services
