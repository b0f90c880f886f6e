// Reads the polygon count of a 3D model uploaded as a binary STL file: an 80-byte header, a
// little-endian uint32 triangle count, then 50 bytes per triangle. Pure; thread-safe.
#pragma once

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"

namespace ordertrace::services::shop {

// The triangle count, after checking that the file is exactly as long as the count says.
// kOutOfRange with the reason for anything else (too short, ASCII STL, a count that does not
// match the size).
absl::StatusOr<int64_t> ReadStlTriangleCount(std::string_view file);

}  // namespace ordertrace::services::shop
