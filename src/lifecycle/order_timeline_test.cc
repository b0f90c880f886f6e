#include "lifecycle/order_timeline.h"

#include <gtest/gtest.h>

#include <string>

#include "base/clock.h"
#include "lifecycle/order_record_builder.h"

namespace ordertrace::lifecycle {
namespace {

constexpr uint64_t kBase = 1'700'000'000ULL * base::kNanosPerSecond;
constexpr uint64_t kSecond = base::kNanosPerSecond;

model::StatusReached Reached(std::string status, uint64_t at, int64_t version = -1) {
  model::StatusReached s;
  s.status = std::move(status);
  s.at_unix_nano = at;
  s.event_version = version;
  return s;
}

TEST(OrderTimelineTest, NoStatusesNoStages) {
  model::OrderRecord record;
  record.order_id = "ord-1";
  EXPECT_TRUE(Timeline(record, kBase).empty());
}

TEST(OrderTimelineTest, StagesLastUntilTheNextStatusAndTheCurrentUntilNow) {
  model::OrderRecord record;
  record.statuses = {Reached("INITIATED", kBase + 10 * kSecond),
                     Reached("SUBMITTED", kBase + 25 * kSecond),
                     Reached("PRICE_CALCULATED", kBase + 70 * kSecond)};
  const uint64_t now = kBase + 100 * kSecond;

  std::vector<Stage> stages = Timeline(record, now);

  ASSERT_EQ(stages.size(), 3u);
  EXPECT_EQ(stages[0].status, "INITIATED");
  EXPECT_EQ(stages[0].reached_at_unix_nano, kBase + 10 * kSecond);
  EXPECT_EQ(stages[0].left_at_unix_nano, kBase + 25 * kSecond);
  EXPECT_EQ(stages[0].duration_nanos, 15 * kSecond);
  EXPECT_FALSE(stages[0].current);

  EXPECT_EQ(stages[1].status, "SUBMITTED");
  EXPECT_EQ(stages[1].left_at_unix_nano, kBase + 70 * kSecond);
  EXPECT_EQ(stages[1].duration_nanos, 45 * kSecond);
  EXPECT_FALSE(stages[1].current);

  EXPECT_EQ(stages[2].status, "PRICE_CALCULATED");
  EXPECT_EQ(stages[2].left_at_unix_nano, 0u);
  EXPECT_EQ(stages[2].duration_nanos, 30 * kSecond);
  EXPECT_TRUE(stages[2].current);

  for (size_t i = 0; i < stages.size(); ++i) {
    EXPECT_EQ(stages[i].transition, &record.statuses[i]);
  }
}

TEST(OrderTimelineTest, CurrentStageGrowsWithNow) {
  model::OrderRecord record;
  record.statuses = {Reached("INITIATED", kBase)};
  base::ManualClock clock(kBase + 5 * kSecond);
  EXPECT_EQ(Timeline(record, clock.NowUnixNano())[0].duration_nanos, 5 * kSecond);
  clock.Advance(3600 * kSecond);
  EXPECT_EQ(Timeline(record, clock.NowUnixNano())[0].duration_nanos, 3605 * kSecond);
}

TEST(OrderTimelineTest, SkewedClocksNeverGiveNegativeDurations) {
  // MES's clock runs behind CRM's: the later status (by event_version) carries an earlier
  // time, and "now" on this host is earlier still.
  model::OrderRecord record;
  record.statuses = {Reached("PRICE_CALCULATED", kBase + 10 * kSecond, 5),
                     Reached("MANUFACTURING_APPROVED", kBase + 8 * kSecond, 6)};

  std::vector<Stage> stages = Timeline(record, kBase + 7 * kSecond);

  ASSERT_EQ(stages.size(), 2u);
  EXPECT_EQ(stages[0].duration_nanos, 0u);
  EXPECT_EQ(stages[0].left_at_unix_nano, kBase + 8 * kSecond);
  EXPECT_EQ(stages[1].duration_nanos, 0u);
  EXPECT_TRUE(stages[1].current);
}

TEST(OrderTimelineTest, FollowsTheRecordTheBuilderMakes) {
  model::OrderRecord record;
  record.order_id = "ord-7";
  base::Resource shop;
  shop.attributes = {{"service.name", base::AnyValue::String("shop-api")}};
  auto transition = [&](uint8_t id, const char* status, uint64_t end) {
    base::Span span;
    span.trace_id.bytes[0] = 1;
    span.span_id.bytes[0] = id;
    span.name = status;
    span.start_time_unix_nano = end - kSecond;
    span.end_time_unix_nano = end;
    span.attributes = {{"order_id", base::AnyValue::String("ord-7")},
                       {"new_status", base::AnyValue::String(status)},
                       {"event_version", base::AnyValue::Int(id)}};
    ApplySpan(span, shop, record);
  };
  transition(2, "SUBMITTED", kBase + 60 * kSecond);
  transition(1, "INITIATED", kBase + 20 * kSecond);

  std::vector<Stage> stages = Timeline(record, kBase + 90 * kSecond);
  ASSERT_EQ(stages.size(), 2u);
  EXPECT_EQ(stages[0].status, "INITIATED");
  EXPECT_EQ(stages[0].duration_nanos, 40 * kSecond);
  EXPECT_EQ(stages[1].status, "SUBMITTED");
  EXPECT_EQ(stages[1].duration_nanos, 30 * kSecond);
  EXPECT_EQ(stages[1].transition->service, "shop-api");
}

}  // namespace
}  // namespace ordertrace::lifecycle
