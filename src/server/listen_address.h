// "HOST:PORT" and "[IPV6]:PORT" listen addresses.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace ordertrace::server {

struct ListenAddress {
  std::string host;  // without brackets
  int port = 0;      // 0: any free port

  std::string ToString() const;
};

absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& text);

}  // namespace ordertrace::server
