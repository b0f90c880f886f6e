// "HOST:PORT" and "[IPV6]:PORT" listen addresses.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace ordertrace::base {

struct ListenAddress {
  std::string host;  // without brackets
  int port = 0;      // 0: any free port

  std::string ToString() const;
};

absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& text);

// True for hosts only this machine can reach: "localhost", 127.0.0.0/8, ::1 and
// ::ffff:127.0.0.0/104. Case-insensitive; without brackets or port.
bool IsLoopbackHost(std::string_view host);

}  // namespace ordertrace::base
