#include "server/listen_address.h"

#include <charconv>

namespace ordertrace::server {

std::string ListenAddress::ToString() const {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& text) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 == text.size()) {
    return absl::InvalidArgumentError("listen address '" + text + "' must be HOST:PORT");
  }
  ListenAddress out;
  out.host = text.substr(0, colon);
  if (out.host.size() >= 2 && out.host.front() == '[' && out.host.back() == ']') {
    out.host = out.host.substr(1, out.host.size() - 2);
  } else if (out.host.find(':') != std::string::npos) {
    return absl::InvalidArgumentError("listen address '" + text +
                                      "': write IPv6 hosts in brackets, as [::1]:4318");
  }
  if (out.host.empty()) {
    return absl::InvalidArgumentError("listen address '" + text + "' has no host");
  }
  std::string_view port = std::string_view(text).substr(colon + 1);
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), out.port);
  if (ec != std::errc() || p != port.data() + port.size() || out.port < 0 || out.port > 65535) {
    return absl::InvalidArgumentError("listen address '" + text + "' has an invalid port");
  }
  return out;
}

}  // namespace ordertrace::server
