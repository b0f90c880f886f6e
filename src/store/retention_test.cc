#include "store/retention.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "base/clock.h"
#include "store/rocks_store.h"

namespace ordertrace::store {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr uint64_t kSecond = base::kNanosPerSecond;
constexpr uint64_t kHour = 3600 * kSecond;
constexpr uint64_t kDay = 24 * kHour;
// Midnight UTC, 2024-01-01: day boundaries are bucket boundaries.
constexpr uint64_t kNow = 19'723 * kDay;

base::TraceId TraceIdOf(uint8_t n) {
  base::TraceId id;
  id.bytes[0] = 0x3c;
  id.bytes[15] = n;
  return id;
}

model::OrderRecord Order(std::string id, uint64_t first_seen, uint64_t last_seen) {
  model::OrderRecord r;
  r.order_id = std::move(id);
  r.trace_id = TraceIdOf(1);
  r.first_seen_unix_nano = first_seen;
  r.last_seen_unix_nano = last_seen;
  return r;
}

class RetentionRunnerTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = testing::TempDir() + "ordertrace_retention_test_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    RocksStoreOptions options;
    options.path = dir_;
    options.block_cache_bytes = 8 << 20;
    options.write_buffer_bytes = 4 << 20;
    absl::StatusOr<std::unique_ptr<Store>> store = OpenRocksStore(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);

    WriteSet writes;
    writes.blocks = {{TraceIdOf(1), kNow - 20 * kDay, "20-days-old"},
                     {TraceIdOf(2), kNow - 14 * kDay - kHour, "14-days-1-hour-old"},
                     {TraceIdOf(3), kNow - 13 * kDay, "13-days-old"},
                     {TraceIdOf(4), kNow - kHour, "1-hour-old"}};
    writes.orders = {
        {std::nullopt, Order("closed-100-days-ago", kNow - 120 * kDay, kNow - 100 * kDay)},
        {std::nullopt, Order("closed-30-days-ago", kNow - 40 * kDay, kNow - 30 * kDay)},
        {std::nullopt, Order("active", kNow - 200 * kDay, kNow - kHour)}};
    ASSERT_TRUE(store_->Write(writes).ok());
  }

  void TearDown() override {
    store_.reset();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  bool HasTrace(uint8_t n) {
    absl::StatusOr<std::vector<std::string>> blocks = store_->ReadTrace(TraceIdOf(n));
    EXPECT_TRUE(blocks.ok()) << blocks.status();
    return blocks.ok() && !blocks->empty();
  }

  bool HasOrder(const std::string& id) {
    absl::StatusOr<std::optional<model::OrderRecord>> r = store_->GetOrder(id);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() && r->has_value();
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
};

TEST(RetentionOptionsTest, DefaultsKeepSpansTwoWeeksAndOrdersNinetyDays) {
  RetentionOptions options;
  EXPECT_EQ(options.span_retention_seconds, 14u * 24 * 3600);
  EXPECT_EQ(options.order_retention_seconds, 90u * 24 * 3600);
}

TEST_F(RetentionRunnerTest, DefaultPolicyRemovesOnlyWhatIsTooOld) {
  base::ManualClock clock(kNow);
  RetentionRunner runner(*store_, clock, RetentionOptions{});

  absl::StatusOr<RetentionStats> stats = runner.RunOnce();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->span_blocks_removed, 2u);
  EXPECT_EQ(stats->orders_removed, 1u);
  EXPECT_FALSE(HasTrace(1));
  EXPECT_FALSE(HasTrace(2));
  EXPECT_TRUE(HasTrace(3));
  EXPECT_TRUE(HasTrace(4));
  EXPECT_FALSE(HasOrder("closed-100-days-ago"));
  EXPECT_TRUE(HasOrder("closed-30-days-ago"));
  EXPECT_TRUE(HasOrder("active"));
}

TEST_F(RetentionRunnerTest, GapsFollowTheirOrders) {
  auto gap = [](std::string id, std::string order_id, uint64_t since) {
    GapRecord r;
    r.id = std::move(id);
    r.order_id = std::move(order_id);
    r.kind = r.order_id.empty() ? "source_silent" : "missing_transition";
    r.open = true;
    r.since_unix_nano = since;
    r.encoded = "{}";
    return r;
  };
  ASSERT_TRUE(store_
                  ->WriteGapRecords({gap("old", "closed-100-days-ago", kNow - 110 * kDay),
                                     gap("recent", "closed-30-days-ago", kNow - 35 * kDay),
                                     gap("active", "active", kNow - 150 * kDay),
                                     gap("silent-old", "", kNow - 91 * kDay),
                                     gap("silent-new", "", kNow - 89 * kDay)},
                                    {})
                  .ok());
  base::ManualClock clock(kNow);
  RetentionRunner runner(*store_, clock, RetentionOptions{});
  absl::StatusOr<RetentionStats> stats = runner.RunOnce();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->gaps_removed, 2u);
  absl::StatusOr<std::vector<GapRecord>> open = store_->ReadOpenGapRecords();
  ASSERT_TRUE(open.ok()) << open.status();
  std::vector<std::string> ids;
  for (const GapRecord& r : *open) ids.push_back(r.id);
  EXPECT_THAT(ids, ::testing::UnorderedElementsAre("recent", "active", "silent-new"));
}

TEST_F(RetentionRunnerTest, AdvancingTheClockAgesDataOut) {
  base::ManualClock clock(kNow);
  RetentionRunner runner(*store_, clock, RetentionOptions{});
  ASSERT_TRUE(runner.RunOnce().ok());

  // The 13-day-old span opens the bucket the cutoff now falls in: that bucket stays whole.
  clock.Advance(kDay);
  ASSERT_TRUE(runner.RunOnce().ok());
  EXPECT_TRUE(HasTrace(3));

  clock.Advance(kHour);
  ASSERT_TRUE(runner.RunOnce().ok());
  EXPECT_FALSE(HasTrace(3));
  EXPECT_TRUE(HasTrace(4));

  clock.Set(kNow + 14 * kDay - kHour);
  absl::StatusOr<RetentionStats> stats = runner.RunOnce();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->span_blocks_removed, 0u);
  EXPECT_TRUE(HasTrace(4));

  clock.Set(kNow + 14 * kDay);
  stats = runner.RunOnce();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->span_blocks_removed, 1u);
  EXPECT_FALSE(HasTrace(4));
  EXPECT_TRUE(HasOrder("closed-30-days-ago"));

  clock.Set(kNow + 61 * kDay);  // the order closed 30 days ago has now been closed for 91
  stats = runner.RunOnce();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->orders_removed, 1u);
  EXPECT_FALSE(HasOrder("closed-30-days-ago"));
  EXPECT_TRUE(HasOrder("active"));

  absl::StatusOr<std::vector<model::OrderRecord>> listed = store_->ListOrders({});
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].order_id, "active");
}

TEST_F(RetentionRunnerTest, ShorterRetentionFromOptions) {
  base::ManualClock clock(kNow);
  RetentionOptions options;
  options.span_retention_seconds = 2 * 3600;
  options.order_retention_seconds = 35 * 24 * 3600;
  RetentionRunner runner(*store_, clock, options);

  absl::StatusOr<RetentionStats> stats = runner.RunOnce();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->span_blocks_removed, 3u);
  EXPECT_EQ(stats->orders_removed, 1u);
  EXPECT_TRUE(HasTrace(4));
  EXPECT_FALSE(HasTrace(3));
  EXPECT_TRUE(HasOrder("closed-30-days-ago"));
  EXPECT_FALSE(HasOrder("closed-100-days-ago"));
}

TEST_F(RetentionRunnerTest, ClockBeforeTheRetentionPeriodRemovesNothing) {
  // Early in the epoch the cutoff would be negative; it must not wrap around.
  base::ManualClock clock(5 * kDay);
  RetentionRunner runner(*store_, clock, RetentionOptions{});
  absl::StatusOr<RetentionStats> stats = runner.RunOnce();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->span_blocks_removed, 0u);
  EXPECT_EQ(stats->orders_removed, 0u);
  EXPECT_TRUE(HasTrace(1));
  EXPECT_TRUE(HasOrder("closed-100-days-ago"));
}

}  // namespace
}  // namespace ordertrace::store
