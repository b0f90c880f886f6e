// Trace and span identifiers as OpenTelemetry defines them: 16 and 8 opaque bytes,
// all-zero meaning "invalid". Plain values, freely copyable, thread-compatible.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace ordertrace::base {

template <size_t N>
struct Id {
  std::array<uint8_t, N> bytes{};

  static constexpr size_t kSize = N;

  // True when any byte is non-zero; the all-zero id is invalid in OTLP and W3C.
  bool IsValid() const {
    for (uint8_t b : bytes) {
      if (b != 0) return true;
    }
    return false;
  }
  // Lower-case hex, 2*N characters.
  std::string ToHex() const;
  // Parses exactly 2*N hex digits (either case); nullopt otherwise.
  static std::optional<Id> FromHex(std::string_view hex);
  // Copies exactly N raw bytes; nullopt when the length differs.
  static std::optional<Id> FromBytes(std::string_view raw);
  std::string_view AsBytes() const {
    return std::string_view(reinterpret_cast<const char*>(bytes.data()), N);
  }

  // memcmp of a constant size compared with zero compiles to a few word compares; the
  // defaulted comparison called memcmp, a visible cost in the hash maps keyed by trace id.
  friend bool operator==(const Id& a, const Id& b) {
    return std::memcmp(a.bytes.data(), b.bytes.data(), N) == 0;
  }
  friend auto operator<=>(const Id&, const Id&) = default;
};

using TraceId = Id<16>;
using SpanId = Id<8>;

extern template struct Id<16>;
extern template struct Id<8>;

}  // namespace ordertrace::base
