#include "gaps/source_watermarks.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace ordertrace::gaps {
namespace {

constexpr uint64_t kSecond = 1'000'000'000ULL;
constexpr uint64_t kMinute = 60 * kSecond;
constexpr uint64_t kHour = 60 * kMinute;
constexpr uint64_t kStart = 1'704'067'200ULL * kSecond;  // 2024-01-01T00:00Z
constexpr uint64_t kGrace = 5 * kSecond;

// Defaults: idle after 5 s, silent after 120 s, live within 30 s, lateness 1 h.
class SourceWatermarksTest : public testing::Test {
 protected:
  SourceWatermarkOptions options_;
  SourceWatermarks sources_{options_, kGrace, kStart};
};

TEST_F(SourceWatermarksTest, LiveSourceIsJudgedAtTheDeadlineOnTheWallClock) {
  const uint64_t deadline = kStart + kMinute;
  // Reports every second, its spans a second behind the wall clock.
  int source = -1;
  for (uint64_t now = kStart; now < deadline; now += kSecond) {
    source = sources_.Report("shop-api", now - kSecond, 10, 0, now);
  }
  const uint64_t now = deadline - kSecond;
  EXPECT_EQ(sources_.StateOf(source, now), SourceState::kLive);
  EXPECT_FALSE(sources_.IsJudged(deadline, {source}, deadline - 1));
  EXPECT_TRUE(sources_.IsJudged(deadline, {source}, deadline));
  EXPECT_TRUE(sources_.IsJudged(deadline, {}, deadline));
}

TEST_F(SourceWatermarksTest, CatchingUpSourceIsJudgedOnceItsWatermarkPassesTheLateness) {
  const uint64_t now = kStart + kHour;
  const uint64_t deadline = kStart - 3 * kHour;
  // A backlog flushed oldest first: spans from four hours ago.
  const int source = sources_.Report("mes", kStart - 4 * kHour, 100, 0, now);
  EXPECT_EQ(sources_.StateOf(source, now), SourceState::kCatchingUp);
  // Long past on the wall clock, but the missing event may still be in the backlog.
  EXPECT_FALSE(sources_.IsJudged(deadline, {source}, now));
  sources_.Report("mes", deadline + options_.allowed_lateness_nanos - 1, 100, 0, now + kSecond);
  EXPECT_EQ(sources_.StateOf(source, now + kSecond), SourceState::kCatchingUp);
  EXPECT_FALSE(sources_.IsJudged(deadline, {source}, now + kSecond));
  sources_.Report("mes", deadline + options_.allowed_lateness_nanos, 100, 0, now + 2 * kSecond);
  EXPECT_TRUE(sources_.IsJudged(deadline, {source}, now + 2 * kSecond));
  // A later deadline is not: the watermark has not passed it by the lateness.
  EXPECT_FALSE(sources_.IsJudged(deadline + kSecond, {source}, now + 2 * kSecond));
}

TEST_F(SourceWatermarksTest, ReplayThatEndsGoesQuietAndIsJudgedOnTheWallClock) {
  const uint64_t now = kStart + kHour;
  const uint64_t deadline = kStart + 50 * kMinute;
  const int source = sources_.Report("replay", kStart + 10 * kMinute, 100, 0, now);
  EXPECT_EQ(sources_.StateOf(source, now), SourceState::kCatchingUp);
  // A pause shorter than catch_up_idle_after (an exporter backing off) is not the end.
  const uint64_t idle = options_.catch_up_idle_after_nanos;
  EXPECT_EQ(sources_.StateOf(source, now + options_.idle_after_nanos), SourceState::kCatchingUp);
  EXPECT_FALSE(sources_.IsJudged(deadline, {source}, now + idle - 1));
  // Nothing for catch_up_idle_after: nothing more is on its way.
  EXPECT_EQ(sources_.StateOf(source, now + idle), SourceState::kQuiet);
  EXPECT_TRUE(sources_.IsJudged(deadline, {source}, now + idle));
  // Quiet, a deadline still ahead on the wall clock is not judged.
  EXPECT_FALSE(sources_.IsJudged(now + kMinute, {source}, now + idle));
  std::vector<SourceStatus> snapshot = sources_.Snapshot(now + idle);
  ASSERT_EQ(snapshot.size(), 1u);
  EXPECT_EQ(snapshot[0].state, SourceState::kQuiet);
  EXPECT_EQ(snapshot[0].quiet_since_unix_nano, now + idle);
  EXPECT_EQ(snapshot[0].watermark_unix_nano, kStart + 10 * kMinute);
}

TEST_F(SourceWatermarksTest, OneSourceSilentWhileAnotherReportsIsHeld) {
  const int mes = sources_.Report("mes", kStart, 1, 0, kStart);
  const int shop = sources_.Report("shop-api", kStart, 1, 0, kStart);
  const uint64_t deadline = kStart + kMinute;
  uint64_t now = kStart;
  while (now < kStart + options_.silent_after_nanos) {
    now += kSecond;
    sources_.Report("shop-api", now, 1, 0, now);
  }
  EXPECT_EQ(sources_.StateOf(mes, now - kSecond), SourceState::kQuiet);
  EXPECT_EQ(sources_.StateOf(mes, now), SourceState::kSilent);
  EXPECT_EQ(sources_.StateOf(shop, now), SourceState::kLive);
  EXPECT_FALSE(sources_.IsJudged(deadline, {mes}, now));
  // Not responsible for it: judged by the sources that are not silent.
  EXPECT_TRUE(sources_.IsJudged(deadline, {shop}, now));
  EXPECT_TRUE(sources_.IsJudged(deadline, {}, now));

  // Alone, a source that stops is quiet, not silent: nobody else goes on.
  SourceWatermarks alone(options_, kGrace, kStart);
  const int only = alone.Report("mes", kStart, 1, 0, kStart);
  EXPECT_EQ(alone.StateOf(only, kStart + kHour), SourceState::kQuiet);
}

TEST_F(SourceWatermarksTest, ClockSkewWithinTheGraceWaitsForTheSlowSource) {
  // shop-api's clock is right; mes's is 3 s behind. The deadline comes from shop-api's clock.
  const uint64_t deadline = kStart + kMinute;
  const int shop = sources_.Report("shop-api", deadline - kSecond, 1, 0, deadline - kSecond);
  // mes is known (an order's status came from it) but has not reported since.
  const int mes = sources_.Learn("mes", deadline - kSecond);
  EXPECT_EQ(sources_.StateOf(mes, deadline), SourceState::kCatchingUp);
  EXPECT_FALSE(sources_.IsJudged(deadline, {mes}, deadline));
  EXPECT_FALSE(sources_.IsJudged(deadline, {shop, mes}, deadline));
  // mes reports, its spans 3 s behind: live within live_lag, judged on the wall clock.
  sources_.Report("mes", deadline - 3 * kSecond, 1, 0, deadline);
  EXPECT_EQ(sources_.StateOf(mes, deadline), SourceState::kLive);
  EXPECT_FALSE(sources_.IsJudged(deadline, {mes}, deadline - 1));
  EXPECT_TRUE(sources_.IsJudged(deadline, {mes}, deadline));
  EXPECT_TRUE(sources_.IsJudged(deadline, {}, deadline));
  // Its spans 3 s behind the watermark are within the grace: not late.
  EXPECT_EQ(sources_.LateBefore("mes"), deadline - 3 * kSecond - kGrace);
}

TEST_F(SourceWatermarksTest, TimestampNearTheEndOfTimeDoesNotMoveTheWatermark) {
  const uint64_t now = kStart + kMinute;
  const int source = sources_.Report("shop-api", now - kSecond, 1, 0, now);
  sources_.Report("shop-api", UINT64_MAX - 1, 1, 0, now + kSecond);
  std::vector<SourceStatus> snapshot = sources_.Snapshot(now + kSecond);
  ASSERT_EQ(snapshot.size(), 1u);
  EXPECT_EQ(snapshot[0].watermark_unix_nano, now - kSecond);
  EXPECT_EQ(snapshot[0].spans, 2u);
  EXPECT_FALSE(sources_.IsJudged(UINT64_MAX - kHour, {source}, now + kSecond));
  EXPECT_EQ(sources_.LateBefore("shop-api"), now - kSecond - kGrace);
  // Nor does one just past max_future.
  sources_.Report("shop-api", now + kSecond + options_.max_future_nanos + 1, 1, 0, now + kSecond);
  EXPECT_EQ(sources_.Snapshot(now + kSecond)[0].watermark_unix_nano, now - kSecond);
}

TEST_F(SourceWatermarksTest, NothingIsJudgedOnTheWallClockDuringTheStartupHold) {
  const uint64_t deadline = kStart - kHour;  // passed while ordertrace was down
  const uint64_t hold_ends = kStart + options_.idle_after_nanos;
  // No source yet.
  EXPECT_FALSE(sources_.IsJudged(deadline, {}, kStart));
  EXPECT_FALSE(sources_.IsJudged(deadline, {}, hold_ends - 1));
  EXPECT_TRUE(sources_.IsJudged(deadline, {}, hold_ends));
}

// A source that reported live spans since the start has flushed what it queued (exporters send
// oldest first): it is judged on its own state at once. One ordertrace knows of from before the
// restart but that has not reported counts as catching up until it reports or goes quiet.
TEST_F(SourceWatermarksTest, AfterAStartALiveSourceIsJudgedAndAKnownSilentOneWaits) {
  const uint64_t deadline = kStart - kHour;
  const int known = sources_.Learn("mes-api", kStart);
  EXPECT_EQ(sources_.StateOf(known, kStart + kSecond), SourceState::kCatchingUp);
  EXPECT_FALSE(sources_.IsJudged(deadline, {known}, kStart + kSecond));
  const int live = sources_.Report("shop-api", kStart, 1, 0, kStart + kSecond);
  EXPECT_EQ(sources_.StateOf(live, kStart + kSecond), SourceState::kLive);
  EXPECT_TRUE(sources_.IsJudged(deadline, {live}, kStart + kSecond));
  EXPECT_FALSE(sources_.IsJudged(deadline, {}, kStart + kSecond));  // mes-api may carry it
  // Known from stored orders only: quiet after catch_up_idle_after, never silent.
  const uint64_t quiet = kStart + options_.catch_up_idle_after_nanos;
  EXPECT_EQ(sources_.StateOf(known, quiet), SourceState::kQuiet);
  const uint64_t later = kStart + options_.silent_after_nanos + kSecond;
  sources_.Report("shop-api", later, 1, 0, later);  // others go on
  EXPECT_EQ(sources_.StateOf(known, later), SourceState::kQuiet);
  EXPECT_TRUE(sources_.IsJudged(deadline, {known}, quiet));
}

TEST_F(SourceWatermarksTest, WithoutResponsibleSourcesEveryNonSilentSourceMustAgree) {
  const uint64_t now = kStart + kHour;
  const uint64_t deadline = now - 90 * kMinute;
  const int live = sources_.Report("shop-api", now, 1, 0, now);
  const int backlog = sources_.Report("mes", kStart, 1, 0, now);  // an hour behind
  EXPECT_TRUE(sources_.IsJudged(deadline, {live}, now));
  EXPECT_FALSE(sources_.IsJudged(deadline, {backlog}, now));
  EXPECT_FALSE(sources_.IsJudged(deadline, {}, now));  // mes may still carry it
  sources_.Report("mes", deadline + options_.allowed_lateness_nanos, 1, 0, now);  // 30 min ago
  EXPECT_TRUE(sources_.IsJudged(deadline, {}, now));
}

TEST_F(SourceWatermarksTest, LateSpansAreCountedPerSource) {
  const uint64_t now = kStart + kMinute;
  EXPECT_EQ(sources_.LateBefore("unknown"), 0u);
  sources_.Report("shop-api", now, 10, 0, now);
  sources_.Report("shop-api", now - kMinute, 4, 3, now + kSecond);
  std::vector<SourceStatus> snapshot = sources_.Snapshot(now + kSecond);
  ASSERT_EQ(snapshot.size(), 1u);
  EXPECT_EQ(snapshot[0].service, "shop-api");
  EXPECT_EQ(snapshot[0].spans, 14u);
  EXPECT_EQ(snapshot[0].late_spans, 3u);
  EXPECT_EQ(snapshot[0].watermark_unix_nano, now);  // never moves back
  EXPECT_EQ(SourceStateName(SourceState::kCatchingUp), "catching_up");
}

// A client inventing service names cannot grow the table (or the time every judgement takes)
// without bound: past max_sources they share one source.
TEST_F(SourceWatermarksTest, ServicesPastTheBoundShareOneSource) {
  SourceWatermarkOptions options;
  options.max_sources = 4;
  SourceWatermarks sources(options, 5 * kSecond, kStart);
  for (int i = 0; i < 100; ++i) {
    sources.Report("svc-" + std::to_string(i), kStart, 1, 0, kStart + kSecond);
  }
  EXPECT_EQ(sources.size(), 4u);
  const int other = sources.Learn("svc-99", kStart + kSecond);
  EXPECT_EQ(sources.ServiceOf(other), kOtherSources);
  EXPECT_EQ(sources.Snapshot(kStart + kSecond).size(), 4u);
}

}  // namespace
}  // namespace ordertrace::gaps
