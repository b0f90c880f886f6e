// The Retry-After header (RFC 9110, 10.2.3), as the clients that send OTLP read it: the SDK's
// exporter and the server's forward both wait as their receiver asks.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace ordertrace::base {

// The longest wait a Retry-After value can ask for; longer ones are cut to it.
inline constexpr std::chrono::seconds kMaxRetryAfter{86400};

// The wait a Retry-After header value asks for: delay-seconds, or an HTTP-date (IMF-fixdate)
// relative to `now` (a date in the past is zero), at most kMaxRetryAfter. nullopt when the
// value is neither.
std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view value,
                                                    std::chrono::system_clock::time_point now);

}  // namespace ordertrace::base
