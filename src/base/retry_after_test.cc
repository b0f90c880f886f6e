#include "base/retry_after.h"

#include <gtest/gtest.h>

namespace ordertrace::base {
namespace {

TEST(ParseRetryAfterTest, SecondsAndHttpDates) {
  auto now = std::chrono::system_clock::from_time_t(784111777);  // Sun, 06 Nov 1994 08:49:37 GMT
  EXPECT_EQ(ParseRetryAfter("120", now), std::chrono::seconds(120));
  EXPECT_EQ(ParseRetryAfter(" 5 ", now), std::chrono::seconds(5));
  EXPECT_EQ(ParseRetryAfter("0", now), std::chrono::seconds(0));
  EXPECT_EQ(ParseRetryAfter("99999999999999999999999", now), std::chrono::seconds(86400));
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:50:07 GMT", now), std::chrono::seconds(30));
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:00:00 GMT", now), std::chrono::seconds(0));
  for (const char* bad : {"", "-1", "1.5", "soon", "Sun, 06 Nov 1994 08:50:07", "5s"}) {
    EXPECT_EQ(ParseRetryAfter(bad, now), std::nullopt) << bad;
  }
}

}  // namespace
}  // namespace ordertrace::base
