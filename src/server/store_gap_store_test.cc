#include "server/store_gap_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gaps/memory_gap_store.h"
#include "store/rocks_store.h"
#include "tests/support/temp_dir.h"

namespace ordertrace::server {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr uint64_t kSecond = 1'000'000'000;
constexpr uint64_t kT0 = 1'780'000'000 * kSecond;

gaps::Gap MakeGap(std::string order_id, std::string kind, std::string stage, uint64_t since,
                  std::string partner = "partner-a") {
  gaps::Gap gap;
  gap.id = gaps::GapId(order_id, kind, stage);
  gap.order_id = std::move(order_id);
  gap.partner_id = std::move(partner);
  gap.kind = std::move(kind);
  gap.stage = std::move(stage);
  gap.expected = {"APPROVED"};
  gap.service = "crm-api";
  gap.detail = "stuck";
  gap.since_unix_nano = since;
  gap.deadline_unix_nano = since + 60 * kSecond;
  gap.detected_at_unix_nano = since + 61 * kSecond;
  gap.paged = true;
  return gap;
}

gaps::Gap Resolved(gaps::Gap gap, std::string by = "APPROVED") {
  gap.resolved_by = std::move(by);
  gap.resolved_at_unix_nano = gap.since_unix_nano + 90 * kSecond;
  return gap;
}

class StoreGapStoreTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    Open();
  }

  void Open() {
    gap_store_.reset();
    store_.reset();
    store::RocksStoreOptions options;
    options.path = dir_.path() + "/store";
    options.block_cache_bytes = 8 << 20;
    options.write_buffer_bytes = 4 << 20;
    absl::StatusOr<std::unique_ptr<store::Store>> store = store::OpenRocksStore(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    gap_store_ = std::make_unique<StoreGapStore>(*store_);
  }

  std::vector<std::string> Ids(const gaps::GapHistoryQuery& query) {
    absl::StatusOr<gaps::GapPage> page = gap_store_->Query(query);
    EXPECT_TRUE(page.ok()) << page.status();
    std::vector<std::string> ids;
    if (page.ok()) {
      for (const gaps::Gap& gap : page->gaps) ids.push_back(gap.id);
    }
    return ids;
  }

  test_support::TempDir dir_{"ordertrace_store_gap_store_test"};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<StoreGapStore> gap_store_;
};

TEST_F(StoreGapStoreTest, GapsRoundTripWithEveryField) {
  gaps::Gap gap = MakeGap("ord-1", "message_not_consumed", "SUBMITTED", kT0);
  gap.queue = "crm.price_requests";
  gap.message_id = "msg-1";
  gap.trace_id.bytes[3] = 7;
  model::Operation last;
  last.span_name = "SubmitOrder";
  last.service = "shop-api";
  last.at_unix_nano = kT0 - 5;
  last.trace_id = gap.trace_id;
  gap.last_success = last;
  gaps::Gap resolved = Resolved(MakeGap("ord-2", "missing_transition", "APPROVED", kT0 + 1));
  resolved.paged = false;
  ASSERT_TRUE(gap_store_->Apply({gap, resolved}, {}).ok());
  Open();  // and across a reopen
  absl::StatusOr<std::optional<gaps::Gap>> got = gap_store_->Get(gap.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, gap);
  got = gap_store_->Get(resolved.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, resolved);
  got = gap_store_->Get("ord-3/missing_transition/APPROVED");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, std::nullopt);
}

TEST_F(StoreGapStoreTest, LoadOpenReadsOnlyTheOpenGaps) {
  gaps::Gap a = MakeGap("ord-1", "missing_transition", "SUBMITTED", kT0);
  gaps::Gap b = MakeGap("ord-2", "missing_transition", "SUBMITTED", kT0 + 1);
  gaps::Gap c = Resolved(MakeGap("ord-3", "missing_transition", "SUBMITTED", kT0 + 2));
  ASSERT_TRUE(gap_store_->Apply({a, b, c}, {}).ok());
  ASSERT_TRUE(gap_store_->Apply({Resolved(b)}, {}).ok());
  absl::StatusOr<std::vector<gaps::Gap>> open = gap_store_->LoadOpen();
  ASSERT_TRUE(open.ok()) << open.status();
  EXPECT_THAT(*open, ElementsAre(a));
  ASSERT_TRUE(gap_store_->Apply({}, {a.id}).ok());
  open = gap_store_->LoadOpen();
  ASSERT_TRUE(open.ok());
  EXPECT_THAT(*open, IsEmpty());
}

TEST_F(StoreGapStoreTest, PagesFollowCursorsAndABadCursorIsInvalidArgument) {
  std::vector<gaps::Gap> puts;
  for (int i = 0; i < 25; ++i) {
    puts.push_back(MakeGap("ord-" + std::to_string(i), "missing_transition", "SUBMITTED",
                           kT0 + (i / 2) * kSecond));
  }
  ASSERT_TRUE(gap_store_->Apply(puts, {}).ok());
  gaps::GapHistoryQuery query;
  query.limit = 10;
  std::vector<std::string> seen;
  int pages = 0;
  do {
    absl::StatusOr<gaps::GapPage> page = gap_store_->Query(query);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const gaps::Gap& gap : page->gaps) seen.push_back(gap.id);
    query.cursor = page->next_cursor;
    ++pages;
  } while (!query.cursor.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(seen.size(), 25u);
  EXPECT_EQ(seen.front(), "ord-24/missing_transition/SUBMITTED");
  EXPECT_EQ(seen[1], "ord-22/missing_transition/SUBMITTED") << "same since: by id";

  for (const char* bad : {"nonsense", ":ord-1", "12:", "x1:ord-1", "-1:ord-1"}) {
    query.cursor = bad;
    absl::StatusOr<gaps::GapPage> page = gap_store_->Query(query);
    EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  query.cursor.clear();
  query.limit = 0;
  EXPECT_EQ(gap_store_->Query(query).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(StoreGapStoreTest, FiltersBySinceRangeAndOrder) {
  gaps::Gap a = MakeGap("ord-1", "missing_transition", "SUBMITTED", kT0);
  gaps::Gap b = MakeGap("ord-1", "status_backwards", "APPROVED", kT0 + 10 * kSecond);
  gaps::Gap c = MakeGap("", std::string(gaps::kSourceSilent), "", kT0 + 20 * kSecond, "");
  ASSERT_TRUE(gap_store_->Apply({a, b, c}, {}).ok());
  gaps::GapHistoryQuery query;
  query.state = gaps::GapHistoryQuery::State::kAll;
  query.since_from_unix_nano = kT0 + 10 * kSecond;
  EXPECT_THAT(Ids(query), ElementsAre(c.id, b.id));
  query.since_to_unix_nano = kT0 + 10 * kSecond;
  EXPECT_THAT(Ids(query), ElementsAre(b.id));
  query = {};
  query.order_id = "ord-1";
  EXPECT_THAT(Ids(query), ElementsAre(b.id, a.id));
}

// The same random puts and deletes applied to this store and to MemoryGapStore: every query
// (each filter, each state, several limits, following every cursor) answers the same.
TEST_F(StoreGapStoreTest, AnswersLikeTheMemoryStore) {
  gaps::MemoryGapStore memory;
  std::mt19937 random(20261224);
  const std::vector<std::string> orders = {"ord-1", "ord-2", "ord-3", "ord-4", ""};
  const std::vector<std::string> kinds = {"missing_transition", "status_backwards",
                                          "message_not_consumed"};
  const std::vector<std::string> stages = {"SUBMITTED", "APPROVED", "IN_PRODUCTION"};
  const std::vector<std::string> partners = {"p1", "p2", ""};
  auto pick = [&](const std::vector<std::string>& from) { return from[random() % from.size()]; };
  std::vector<std::string> ids;
  for (int round = 0; round < 40; ++round) {
    std::vector<gaps::Gap> puts;
    std::vector<std::string> deletes;
    for (int i = 0; i < 8; ++i) {
      std::string order = pick(orders);
      gaps::Gap gap = MakeGap(order, order.empty() ? std::string(gaps::kSourceSilent) : pick(kinds),
                              pick(stages), kT0 + (random() % 30) * kSecond, pick(partners));
      if (random() % 3 == 0) gap = Resolved(gap);
      ids.push_back(gap.id);
      puts.push_back(std::move(gap));
    }
    for (int i = 0; i < 2 && !ids.empty(); ++i) deletes.push_back(ids[random() % ids.size()]);
    ASSERT_TRUE(memory.Apply(puts, deletes).ok());
    ASSERT_TRUE(gap_store_->Apply(puts, deletes).ok());
  }
  absl::StatusOr<std::vector<gaps::Gap>> memory_open = memory.LoadOpen();
  absl::StatusOr<std::vector<gaps::Gap>> store_open = gap_store_->LoadOpen();
  ASSERT_TRUE(memory_open.ok() && store_open.ok());
  EXPECT_THAT(*store_open, ::testing::UnorderedElementsAreArray(*memory_open));

  int queries = 0;
  for (int i = 0; i < 300; ++i) {
    gaps::GapHistoryQuery query;
    query.state = static_cast<gaps::GapHistoryQuery::State>(random() % 3);
    if (random() % 3 == 0) query.kind = pick(kinds);
    if (random() % 3 == 0) query.stage = pick(stages);
    if (random() % 3 == 0) query.partner_id = pick(partners);
    if (random() % 3 == 0) query.order_id = pick(orders);
    if (random() % 3 == 0) query.since_from_unix_nano = kT0 + (random() % 30) * kSecond;
    if (random() % 3 == 0) query.since_to_unix_nano = kT0 + (random() % 30) * kSecond;
    query.limit = 1 + random() % 12;
    for (int pages = 0; pages < 100; ++pages) {
      absl::StatusOr<gaps::GapPage> expected = memory.Query(query);
      absl::StatusOr<gaps::GapPage> actual = gap_store_->Query(query);
      ASSERT_TRUE(expected.ok() && actual.ok()) << actual.status();
      ++queries;
      ASSERT_EQ(actual->gaps, expected->gaps) << "query " << i << " page " << pages;
      ASSERT_EQ(actual->next_cursor, expected->next_cursor) << "query " << i;
      if (expected->next_cursor.empty()) break;
      query.cursor = expected->next_cursor;
    }
  }
  EXPECT_GT(queries, 300);
}

}  // namespace
}  // namespace ordertrace::server
