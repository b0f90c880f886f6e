#include "services/shop/stl_model.h"

#include <string>

namespace ordertrace::services::shop {
namespace {

constexpr size_t kHeaderBytes = 80;
constexpr size_t kCountBytes = 4;
constexpr size_t kTriangleBytes = 50;  // normal + 3 vertices (12 floats) + attribute count

}  // namespace

absl::StatusOr<int64_t> ReadStlTriangleCount(std::string_view file) {
  if (file.size() < kHeaderBytes + kCountBytes) {
    if (file.substr(0, 5) == "solid") {
      return absl::OutOfRangeError("ASCII STL is not accepted; upload a binary STL");
    }
    return absl::OutOfRangeError("not a binary STL: " + std::to_string(file.size()) +
                                 " bytes, shorter than the 84-byte header");
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(file.data());
  uint64_t count = static_cast<uint64_t>(bytes[80]) | static_cast<uint64_t>(bytes[81]) << 8 |
                   static_cast<uint64_t>(bytes[82]) << 16 | static_cast<uint64_t>(bytes[83]) << 24;
  uint64_t expected = kHeaderBytes + kCountBytes + count * kTriangleBytes;
  if (expected != file.size()) {
    if (file.substr(0, 5) == "solid") {
      return absl::OutOfRangeError("ASCII STL is not accepted; upload a binary STL");
    }
    return absl::OutOfRangeError("not a binary STL: the header says " + std::to_string(count) +
                                 " triangles (" + std::to_string(expected) +
                                 " bytes) but the file has " + std::to_string(file.size()) +
                                 " bytes");
  }
  if (count == 0) return absl::OutOfRangeError("the model has no triangles");
  return static_cast<int64_t>(count);
}

}  // namespace ordertrace::services::shop
