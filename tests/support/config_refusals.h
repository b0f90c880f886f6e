// What tests of configuration errors share: the refusal of a config, failing the test when the
// config was accepted instead.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/config.h"

namespace ordertrace::test_support {

// The message with which loading `yaml` was refused; fails the test when it loaded.
inline std::string LoadRefusal(const absl::StatusOr<server::ServerConfig>& loaded,
                               const std::string& yaml) {
  if (loaded.ok()) {
    ADD_FAILURE() << "loaded:\n" << yaml;
    return "";
  }
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument) << loaded.status();
  return std::string(loaded.status().message());
}

// Validate's refusal of `yaml`, which loaded; fails the test (and returns OK) when it did not
// load or Validate accepted it.
inline absl::Status ValidateRefusal(const absl::StatusOr<server::ServerConfig>& loaded,
                                    const std::string& yaml) {
  if (!loaded.ok()) {
    ADD_FAILURE() << loaded.status() << " for:\n" << yaml;
    return absl::OkStatus();
  }
  absl::Status status = server::Validate(*loaded);
  if (status.ok()) {
    ADD_FAILURE() << "Validate accepted:\n" << yaml;
    return status;
  }
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  return status;
}

}  // namespace ordertrace::test_support
