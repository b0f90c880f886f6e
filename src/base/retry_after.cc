#include "base/retry_after.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <ctime>
#include <string>

namespace ordertrace::base {

std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view value,
                                                    std::chrono::system_clock::time_point now) {
  const int64_t max_seconds = kMaxRetryAfter.count();
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    int64_t seconds = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec == std::errc::result_out_of_range)
      seconds = max_seconds;
    else if (ec != std::errc() || end != value.data() + value.size())
      return std::nullopt;
    return std::chrono::seconds(std::min(seconds, max_seconds));
  }
  // IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT" (the form RFC 9110 says to send).
  std::string text(value);
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  auto at = std::chrono::system_clock::from_time_t(timegm(&tm));
  auto wait = std::chrono::ceil<std::chrono::seconds>(at - now);
  return std::clamp(wait, std::chrono::seconds(0), kMaxRetryAfter);
}

}  // namespace ordertrace::base
