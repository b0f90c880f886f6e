#include "store/rocks_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <stdlib.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/clock.h"

namespace ordertrace::store {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr uint64_t kSecond = base::kNanosPerSecond;
constexpr uint64_t kMinute = 60 * kSecond;
constexpr uint64_t kHour = 3600 * kSecond;
// An hour boundary in November 2023, so that Hour(h) starts bucket h exactly.
constexpr uint64_t kEpochHours = 472'222;

uint64_t Hour(uint64_t h) { return (kEpochHours + h) * kHour; }

base::TraceId TraceIdOf(uint8_t n) {
  base::TraceId id;
  id.bytes[0] = 0x7a;
  id.bytes[15] = n;
  return id;
}

// A folder of its own under the test's temporary directory, removed afterwards.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = testing::TempDir() + "ordertrace_store_test_XXXXXX";
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class RocksStoreTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty()) << "mkdtemp failed";
    Open();
  }

  void Open(bool forward_queue = false) {
    RocksStoreOptions options;
    options.path = dir_.path() + "/data";  // a folder that does not exist yet
    options.bucket_seconds = 3600;
    options.block_cache_bytes = 8 << 20;
    options.write_buffer_bytes = 4 << 20;
    options.forward_queue = forward_queue;
    absl::StatusOr<std::unique_ptr<Store>> store = OpenRocksStore(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  void WriteBlocks(std::vector<SpanBlock> blocks) {
    WriteSet writes;
    writes.blocks = std::move(blocks);
    ASSERT_TRUE(store_->Write(writes).ok());
  }

  void WriteOrder(const model::OrderRecord& after,
                  std::optional<model::OrderRecord> before = std::nullopt) {
    WriteSet writes;
    writes.orders.push_back(OrderUpdate{std::move(before), after});
    ASSERT_TRUE(store_->Write(writes).ok());
  }

  std::vector<std::string> Read(const base::TraceId& trace) {
    absl::StatusOr<std::vector<std::string>> blocks = store_->ReadTrace(trace);
    EXPECT_TRUE(blocks.ok()) << blocks.status();
    return blocks.ok() ? *blocks : std::vector<std::string>{"<error>"};
  }

  std::vector<std::string> List(OrderFilter filter) {
    absl::StatusOr<std::vector<model::OrderRecord>> orders = store_->ListOrders(filter);
    EXPECT_TRUE(orders.ok()) << orders.status();
    std::vector<std::string> ids;
    if (orders.ok()) {
      for (const model::OrderRecord& r : *orders) ids.push_back(r.order_id);
    }
    return ids;
  }

  // Encoded blocks in the order ScanBlocks visits them, with their trace's number.
  std::vector<std::string> Scan(uint64_t from, uint64_t to, size_t stop_after = SIZE_MAX) {
    std::vector<std::string> seen;
    absl::Status s =
        store_->ScanBlocks(from, to, [&](const base::TraceId& trace, std::string_view encoded) {
          seen.push_back(std::string(encoded) + "@" + std::to_string(trace.bytes[15]));
          return seen.size() < stop_after;
        });
    EXPECT_TRUE(s.ok()) << s;
    return seen;
  }

  std::optional<model::OrderRecord> Get(const std::string& order_id) {
    absl::StatusOr<std::optional<model::OrderRecord>> r = store_->GetOrder(order_id);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : std::nullopt;
  }

  ScratchDir dir_;
  std::unique_ptr<Store> store_;
};

OrderFilter Filter(std::string status, std::string partner_id = "", size_t limit = 100) {
  OrderFilter filter;
  filter.status = std::move(status);
  filter.partner_id = std::move(partner_id);
  filter.limit = limit;
  return filter;
}

model::OrderRecord Order(std::string id, uint64_t first_seen, std::string status,
                         std::string partner, uint64_t last_seen = 0) {
  model::OrderRecord r;
  r.order_id = std::move(id);
  r.trace_id = TraceIdOf(1);
  r.trace_ids = {r.trace_id};
  r.partner_id = std::move(partner);
  r.first_seen_unix_nano = first_seen;
  r.last_seen_unix_nano = last_seen == 0 ? first_seen + kMinute : last_seen;
  if (!status.empty()) {
    model::StatusReached s;
    s.status = std::move(status);
    s.at_unix_nano = first_seen;
    s.event_version = 1;
    r.statuses.push_back(std::move(s));
  }
  return r;
}

model::OrderRecord FullOrder() {
  model::OrderRecord r;
  r.order_id = "ord-full";
  r.trace_id = TraceIdOf(3);
  r.trace_ids = {TraceIdOf(3), TraceIdOf(9)};
  r.partner_id = "partner-42";
  r.first_seen_unix_nano = Hour(1);
  r.last_seen_unix_nano = Hour(2) + 17;
  model::StatusReached initiated;
  initiated.status = "INITIATED";
  initiated.at_unix_nano = Hour(1) + 5;
  initiated.service = "shop-api";
  initiated.span_name = "POST /orders";
  initiated.span_id.bytes = {1, 2, 3, 4, 5, 6, 7, 8};
  model::StatusReached submitted = initiated;
  submitted.status = "SUBMITTED";
  submitted.prev_status = "INITIATED";
  submitted.at_unix_nano = Hour(1) + 9;
  submitted.event_version = 2;
  r.statuses = {initiated, submitted};
  r.last_success = model::Operation{"SubmitOrder",     "shop-api", Hour(1) + 9, TraceIdOf(3),
                                    initiated.span_id, "",         ""};
  r.last_error = model::Operation{"CalculatePrice",     "crm-api",         Hour(2),
                                  TraceIdOf(9),         submitted.span_id, "PRICE_TIMEOUT",
                                  "pricing engine down"};
  r.messages = {model::MessageHop{"msg-1", "crm.price_requests", Hour(1) + 10, Hour(1) + 20, 2},
                model::MessageHop{"msg-2", "mes.approvals", Hour(2), 0, 0}};
  return r;
}

TEST_F(RocksStoreTest, ReadTraceReturnsItsBlocksFromEveryBucketOldestFirst) {
  WriteBlocks({{TraceIdOf(1), Hour(12) + 5 * kMinute, "a-12"}, {TraceIdOf(2), Hour(11), "b-11"}});
  WriteBlocks({{TraceIdOf(1), Hour(10) + 59 * kMinute, "a-10"}});
  WriteBlocks({{TraceIdOf(1), Hour(11) + 30 * kMinute, "a-11-first"},
               {TraceIdOf(1), Hour(11) + 31 * kMinute, "a-11-second"}});

  EXPECT_THAT(Read(TraceIdOf(1)), ElementsAre("a-10", "a-11-first", "a-11-second", "a-12"));
  EXPECT_THAT(Read(TraceIdOf(2)), ElementsAre("b-11"));
  EXPECT_THAT(Read(TraceIdOf(3)), IsEmpty());
}

TEST_F(RocksStoreTest, BlocksWithBinaryContentAreKeptExactly) {
  std::string encoded("\x00\x0a\xff\x00 spans", 10);
  WriteBlocks({{TraceIdOf(5), Hour(3), encoded}});
  EXPECT_THAT(Read(TraceIdOf(5)), ElementsAre(encoded));
}

TEST_F(RocksStoreTest, OrderRecordsRoundTrip) {
  const model::OrderRecord full = FullOrder();
  WriteOrder(full);
  EXPECT_EQ(Get("ord-full"), full);
  EXPECT_EQ(Get("ord-unknown"), std::nullopt);

  const model::OrderRecord bare = Order("ord-bare", Hour(1), "", "");
  WriteOrder(bare);
  EXPECT_EQ(Get("ord-bare"), bare);
}

class RocksStoreListTest : public RocksStoreTest {
 protected:
  void SetUp() override {
    RocksStoreTest::SetUp();
    WriteOrder(Order("o1", Hour(1), "SUBMITTED", "partner-a"));
    WriteOrder(Order("o2", Hour(2), "PRICE_CALCULATED", "partner-b"));
    WriteOrder(Order("o3", Hour(3), "SUBMITTED", "partner-b"));
    WriteOrder(Order("o4", Hour(4), "SUBMITTED", ""));
    WriteOrder(Order("o5", Hour(5), "", "partner-a"));
  }
};

TEST_F(RocksStoreListTest, ListsNewestFirst) {
  EXPECT_THAT(List({}), ElementsAre("o5", "o4", "o3", "o2", "o1"));
}

TEST_F(RocksStoreListTest, FiltersByStatusAndPartner) {
  EXPECT_THAT(List(Filter("SUBMITTED")), ElementsAre("o4", "o3", "o1"));
  EXPECT_THAT(List(Filter("PRICE_CALCULATED")), ElementsAre("o2"));
  EXPECT_THAT(List(Filter("CLOSED")), IsEmpty());
  EXPECT_THAT(List(Filter("", "partner-b")), ElementsAre("o3", "o2"));
  EXPECT_THAT(List(Filter("", "partner-a")), ElementsAre("o5", "o1"));
  EXPECT_THAT(List(Filter("", "partner-z")), IsEmpty());
  EXPECT_THAT(List(Filter("SUBMITTED", "partner-b")), ElementsAre("o3"));
}

TEST_F(RocksStoreListTest, StatusThatIsAPrefixOfAnotherDoesNotMatchIt) {
  WriteOrder(Order("o6", Hour(6), "SUBMITTED_AGAIN", ""));
  EXPECT_THAT(List(Filter("SUBMITTED")), ElementsAre("o4", "o3", "o1"));
  EXPECT_THAT(List(Filter("SUBMITTED_AGAIN")), ElementsAre("o6"));
}

TEST_F(RocksStoreListTest, HonoursTheLimit) {
  EXPECT_THAT(List(Filter("", "", 2)), ElementsAre("o5", "o4"));
  EXPECT_THAT(List(Filter("SUBMITTED", "", 1)), ElementsAre("o4"));
  EXPECT_THAT(List(Filter("", "", 0)), IsEmpty());
}

TEST_F(RocksStoreListTest, ChangedStatusMovesTheOrderToItsNewStatus) {
  const model::OrderRecord before = *Get("o3");
  model::OrderRecord after = before;
  model::StatusReached priced;
  priced.status = "PRICE_CALCULATED";
  priced.prev_status = "SUBMITTED";
  priced.at_unix_nano = Hour(3) + kMinute;
  priced.event_version = 2;
  after.statuses.push_back(priced);
  WriteOrder(after, before);

  EXPECT_THAT(List(Filter("SUBMITTED")), ElementsAre("o4", "o1"));
  EXPECT_THAT(List(Filter("PRICE_CALCULATED")), ElementsAre("o3", "o2"));
  EXPECT_THAT(List({}), ElementsAre("o5", "o4", "o3", "o2", "o1"));
  EXPECT_EQ(Get("o3"), after);
}

TEST_F(RocksStoreListTest, EarlierFirstSpanMovesTheOrderAndListsItOnce) {
  const model::OrderRecord before = *Get("o5");
  model::OrderRecord after = before;
  after.first_seen_unix_nano = Hour(0) + 30 * kMinute;
  after.partner_id = "partner-b";
  WriteOrder(after, before);

  EXPECT_THAT(List({}), ElementsAre("o4", "o3", "o2", "o1", "o5"));
  EXPECT_THAT(List(Filter("", "partner-a")), ElementsAre("o1"));
  EXPECT_THAT(List(Filter("", "partner-b")), ElementsAre("o3", "o2", "o5"));
}

class RocksStoreScanTest : public RocksStoreTest {
 protected:
  void SetUp() override {
    RocksStoreTest::SetUp();
    WriteBlocks({{TraceIdOf(1), Hour(1) + 10 * kMinute, "a1"},
                 {TraceIdOf(2), Hour(2) + 5 * kMinute, "b2"},
                 {TraceIdOf(4), Hour(3) + 1 * kMinute, "d3"}});
    WriteBlocks({{TraceIdOf(3), Hour(3) + 50 * kMinute, "c3"},
                 {TraceIdOf(1), Hour(5) + 20 * kMinute, "a5"}});
  }
};

TEST_F(RocksStoreScanTest, VisitsTheRangeNewestBucketFirst) {
  EXPECT_THAT(Scan(Hour(2), Hour(3) + 59 * kMinute), ElementsAre("c3@3", "d3@4", "b2@2"));
  EXPECT_THAT(Scan(0, std::numeric_limits<uint64_t>::max()),
              ElementsAre("a5@1", "c3@3", "d3@4", "b2@2", "a1@1"));
  EXPECT_THAT(Scan(Hour(1), Hour(1) + 59 * kMinute), ElementsAre("a1@1"));
}

// Store::ScanBlocks works in whole buckets (callers filter finer): a range inside one
// bucket visits all of that bucket and nothing of its neighbours.
TEST_F(RocksStoreScanTest, ARangeInsideABucketVisitsThatWholeBucketOnly) {
  // d3 was written for 3h01 and c3 for 3h50; the range covers only 3h30 to 3h55.
  EXPECT_THAT(Scan(Hour(3) + 30 * kMinute, Hour(3) + 55 * kMinute), ElementsAre("c3@3", "d3@4"));
}

TEST_F(RocksStoreScanTest, RangesWithoutBlocksVisitNothing) {
  EXPECT_THAT(Scan(Hour(4), Hour(4) + 59 * kMinute), IsEmpty());
  EXPECT_THAT(Scan(Hour(6), Hour(100)), IsEmpty());
  EXPECT_THAT(Scan(0, Hour(0) + 59 * kMinute), IsEmpty());
  EXPECT_THAT(Scan(Hour(3), Hour(2)), IsEmpty()) << "from after to";
}

TEST_F(RocksStoreScanTest, StopsWhenTheVisitorSaysSo) {
  EXPECT_THAT(Scan(0, Hour(10), 1), ElementsAre("a5@1"));
  EXPECT_THAT(Scan(0, Hour(10), 3), ElementsAre("a5@1", "c3@3", "d3@4"));
}

PendingBlock PendingOf(uint64_t buffering, uint8_t trace, uint32_t part, std::string encoded) {
  return PendingBlock{buffering, TraceIdOf(trace), part, Hour(1), std::move(encoded)};
}

std::vector<std::string> PendingContents(Store& store) {
  absl::StatusOr<std::vector<PendingBlock>> blocks = store.ReadPendingBlocks();
  EXPECT_TRUE(blocks.ok()) << blocks.status();
  std::vector<std::string> out;
  if (blocks.ok()) {
    for (const PendingBlock& b : *blocks) out.push_back(b.encoded);
  }
  return out;
}

TEST_F(RocksStoreTest, PendingBlocksSurviveAReopenInBufferingOrderWithTheirDeadline) {
  WriteSet writes;
  writes.pending.puts = {PendingOf(20, 2, 0, "b0"), PendingOf(10, 1, 0, "a0"),
                         PendingOf(10, 1, 1, "a1")};
  ASSERT_TRUE(store_->Write(writes).ok());
  store_.reset();
  Open();
  absl::StatusOr<std::vector<PendingBlock>> blocks = store_->ReadPendingBlocks();
  ASSERT_TRUE(blocks.ok()) << blocks.status();
  ASSERT_EQ(blocks->size(), 3u);
  EXPECT_EQ((*blocks)[0].buffering, 10u);
  EXPECT_EQ((*blocks)[0].trace_id, TraceIdOf(1));
  EXPECT_EQ((*blocks)[1].part, 1u);
  EXPECT_EQ((*blocks)[2].deadline_unix_nano, Hour(1));
  EXPECT_THAT(PendingContents(*store_), ElementsAre("a0", "a1", "b0"));
}

TEST_F(RocksStoreTest, PendingBlocksOfAKeptBufferingAreNotReadAgainEvenIfWrittenLater) {
  WriteSet keep;
  keep.pending.kept = {{10, TraceIdOf(1)}};
  ASSERT_TRUE(store_->Write(keep).ok());
  WriteSet late;  // a block whose write raced with the keep decision
  late.pending.puts = {PendingOf(10, 1, 0, "a0"), PendingOf(11, 2, 0, "b0")};
  ASSERT_TRUE(store_->Write(late).ok());
  EXPECT_THAT(PendingContents(*store_), ElementsAre("b0"));
}

TEST_F(RocksStoreTest, DecidedBelowRemovesEarlierBufferingsAndHidesOnesWrittenAfter) {
  WriteSet writes;
  writes.pending.puts = {PendingOf(10, 1, 0, "a0"), PendingOf(20, 2, 0, "b0"),
                         PendingOf(30, 3, 0, "c0")};
  ASSERT_TRUE(store_->Write(writes).ok());
  WriteSet decided;
  decided.pending.decided_below = 30;
  ASSERT_TRUE(store_->Write(decided).ok());
  WriteSet late;
  late.pending.puts = {PendingOf(15, 4, 0, "late")};
  ASSERT_TRUE(store_->Write(late).ok());
  EXPECT_THAT(PendingContents(*store_), ElementsAre("c0"));
  store_.reset();
  Open();
  EXPECT_THAT(PendingContents(*store_), ElementsAre("c0"));
}

TEST_F(RocksStoreTest, SuccessiveDecidedBelowMarksEachRemoveTheirOwnRange) {
  WriteSet writes;
  writes.pending.puts = {PendingOf(10, 1, 0, "a0"), PendingOf(20, 2, 0, "b0"),
                         PendingOf(30, 3, 0, "c0")};
  ASSERT_TRUE(store_->Write(writes).ok());
  for (uint64_t below : {15, 25}) {
    WriteSet decided;
    decided.pending.decided_below = below;
    ASSERT_TRUE(store_->Write(decided).ok());
  }
  EXPECT_THAT(PendingContents(*store_), ElementsAre("c0"));
  store_.reset();
  Open();
  EXPECT_THAT(PendingContents(*store_), ElementsAre("c0"));
}

TEST_F(RocksStoreTest, SpanBlocksAndPendingChangesAreWrittenTogether) {
  WriteSet writes;
  writes.blocks = {SpanBlock{TraceIdOf(1), Hour(0), "released"}};
  writes.pending.kept = {{10, TraceIdOf(1)}};
  writes.pending.puts = {PendingOf(11, 2, 0, "waiting")};
  ASSERT_TRUE(store_->Write(writes).ok());
  absl::StatusOr<std::vector<std::string>> trace = store_->ReadTrace(TraceIdOf(1));
  ASSERT_TRUE(trace.ok());
  EXPECT_THAT(*trace, ElementsAre("released"));
  EXPECT_THAT(PendingContents(*store_), ElementsAre("waiting"));
}

// A store whose reserve cannot be met: the degraded mode without filling a disk.
RocksStoreOptions NoRoomOptions(const std::string& path) {
  RocksStoreOptions options;
  options.path = path;
  options.block_cache_bytes = 8 << 20;
  options.write_buffer_bytes = 4 << 20;
  options.min_free_bytes = uint64_t{1} << 62;
  return options;
}

TEST_F(RocksStoreTest, WithoutTheReserveFreeWritesAreRefusedAsUnavailableWithoutAPath) {
  WriteBlocks({SpanBlock{TraceIdOf(1), Hour(0), "before"}});
  store_.reset();
  const std::string path = dir_.path() + "/data";
  absl::StatusOr<std::unique_ptr<Store>> full = OpenRocksStore(NoRoomOptions(path));
  ASSERT_TRUE(full.ok()) << full.status();  // opens (read-only) rather than failing
  EXPECT_TRUE((*full)->IsOutOfSpace());
  WriteSet writes;
  writes.blocks = {SpanBlock{TraceIdOf(2), Hour(0), "after"}};
  absl::Status refused = (*full)->Write(writes);
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(refused.message().find(path), std::string::npos) << refused.message();
  EXPECT_EQ(refused.message().find('/'), std::string::npos) << refused.message();
  absl::StatusOr<std::vector<std::string>> trace = (*full)->ReadTrace(TraceIdOf(1));
  ASSERT_TRUE(trace.ok()) << trace.status();
  EXPECT_THAT(*trace, ElementsAre("before"));
  full->reset();
  Open();  // with room again, writable, nothing lost
  EXPECT_FALSE(store_->IsOutOfSpace());
  WriteBlocks({SpanBlock{TraceIdOf(2), Hour(0), "after"}});
  absl::StatusOr<std::vector<std::string>> both = store_->ReadTrace(TraceIdOf(1));
  ASSERT_TRUE(both.ok());
  EXPECT_THAT(*both, ElementsAre("before"));
}

TEST_F(RocksStoreTest, ReopeningKeepsEverything) {
  WriteBlocks({{TraceIdOf(1), Hour(1), "a1"}, {TraceIdOf(1), Hour(2), "a2"}});
  const model::OrderRecord full = FullOrder();
  WriteOrder(full);

  store_.reset();
  Open();

  EXPECT_THAT(Read(TraceIdOf(1)), ElementsAre("a1", "a2"));
  EXPECT_EQ(Get("ord-full"), full);
  EXPECT_THAT(List(Filter("SUBMITTED")), ElementsAre("ord-full"));
  EXPECT_THAT(List(Filter("", "partner-42")), ElementsAre("ord-full"));
  EXPECT_THAT(Scan(0, Hour(10)), ElementsAre("a2@1", "a1@1"));

  // A block written after reopening joins the earlier ones instead of replacing one.
  WriteBlocks({{TraceIdOf(1), Hour(1) + kMinute, "a1-later"}});
  EXPECT_THAT(Read(TraceIdOf(1)), UnorderedElementsAre("a1", "a1-later", "a2"));
}

// The trace index memtable is hashed by trace id: traces whose ids differ in one byte only,
// and thousands of random ones, read back exactly their own blocks from the memtable, from
// files after a reopen, and from both at once.
TEST_F(RocksStoreTest, EveryTraceReadsBackItsOwnBlocksFromMemtableAndFiles) {
  std::mt19937_64 rng(7);
  std::vector<base::TraceId> traces;
  for (int i = 0; i < 3000; ++i) {
    base::TraceId id;
    for (uint8_t& b : id.bytes) b = static_cast<uint8_t>(rng());
    traces.push_back(id);
  }
  // Neighbours: the same id but for its first or its last byte.
  base::TraceId first_byte = traces[0], last_byte = traces[0];
  first_byte.bytes[0] ^= 1;
  last_byte.bytes[15] ^= 1;
  traces.push_back(first_byte);
  traces.push_back(last_byte);
  auto block = [](size_t trace, int n) {
    return "trace-" + std::to_string(trace) + "-block-" + std::to_string(n);
  };
  auto write_round = [&](int n) {
    std::vector<SpanBlock> blocks;
    for (size_t t = 0; t < traces.size(); ++t) {
      blocks.push_back({traces[t], Hour(n), block(t, n)});
      if (blocks.size() == 500) WriteBlocks(std::exchange(blocks, {}));
    }
    WriteBlocks(std::move(blocks));
  };
  auto expect_all = [&](int rounds) {
    for (size_t t = 0; t < traces.size(); ++t) {
      std::vector<std::string> expected;
      for (int n = 1; n <= rounds; ++n) expected.push_back(block(t, n));
      ASSERT_EQ(Read(traces[t]), expected) << "trace " << t << " after " << rounds << " rounds";
    }
  };

  write_round(1);
  expect_all(1);  // memtable
  store_.reset();
  Open();
  expect_all(1);  // files
  write_round(2);
  expect_all(2);  // both
  base::TraceId unknown = traces[1];
  unknown.bytes[7] ^= 0x80;
  EXPECT_THAT(Read(unknown), IsEmpty());
}

// Retention drops a bucket's blocks with their trace index entries: a trace read afterwards
// finds only what is left, and blocks written later into a removed bucket's range are found.
TEST_F(RocksStoreTest, TraceIndexFollowsRetention) {
  WriteBlocks({{TraceIdOf(1), Hour(1), "a1"}, {TraceIdOf(1), Hour(3), "a3"}});
  ASSERT_TRUE(store_->ApplyRetention(Hour(2), 0).ok());
  EXPECT_THAT(Read(TraceIdOf(1)), ElementsAre("a3"));
  WriteBlocks({{TraceIdOf(1), Hour(1), "a1-again"}});
  EXPECT_THAT(Read(TraceIdOf(1)), ElementsAre("a1-again", "a3"));
}

// Retention's range deletion and blocks of the first bucket share a memtable (and, in RocksDB
// 7.8, would share an insert hint if the range's start key were in the hint's domain).
TEST_F(RocksStoreTest, BlocksOfTheFirstBucketSurviveRetentionAroundThem) {
  constexpr uint64_t kBucket0 = 10 * kMinute;  // a span clock counting from 0, not the epoch
  WriteBlocks({{TraceIdOf(1), kBucket0, "early"}, {TraceIdOf(2), Hour(3), "kept"}});
  absl::StatusOr<RetentionStats> first = store_->ApplyRetention(Hour(1), 0);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->span_blocks_removed, 1u);
  EXPECT_THAT(Read(TraceIdOf(1)), IsEmpty());
  WriteBlocks({{TraceIdOf(1), kBucket0 + kMinute, "late"}, {TraceIdOf(3), Hour(4), "new"}});
  EXPECT_THAT(Read(TraceIdOf(1)), ElementsAre("late"));
  EXPECT_THAT(Read(TraceIdOf(2)), ElementsAre("kept"));
  EXPECT_THAT(Read(TraceIdOf(3)), ElementsAre("new"));
  EXPECT_THAT(Scan(0, Hour(10)), ElementsAre("new@3", "kept@2", "late@1"));
  // Reopened (the memtables replayed from the log and flushed), the same.
  store_.reset();
  Open();
  EXPECT_THAT(Scan(0, Hour(10)), ElementsAre("new@3", "kept@2", "late@1"));
  absl::StatusOr<RetentionStats> second = store_->ApplyRetention(Hour(1), 0);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->span_blocks_removed, 1u);
  EXPECT_THAT(Scan(0, Hour(10)), ElementsAre("new@3", "kept@2"));
}

std::string BigEndian(uint64_t v) {
  std::string out;
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
  return out;
}

// A store written by the first layout (blocks keyed bucket, trace, seq; trace_buckets) keeps
// its spans: opening it moves them, and the old families are gone afterwards.
TEST(RocksStoreLayoutTest, SpansOfTheFirstLayoutAreMovedWhenOpened) {
  ScratchDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.path() + "/data";
  const uint64_t bucket1 = kEpochHours + 1;
  const uint64_t bucket3 = kEpochHours + 3;
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, {}}, {"blocks", {}}, {"trace_buckets", {}}};
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, path, families, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    auto put_block = [&](uint64_t bucket, const base::TraceId& trace, uint64_t seq,
                         const std::string& value) {
      std::string key = BigEndian(bucket) + std::string(trace.AsBytes()) + BigEndian(seq);
      ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[1], key, value).ok());
      ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[2],
                          std::string(trace.AsBytes()) + BigEndian(bucket), "")
                      .ok());
    };
    put_block(bucket1, TraceIdOf(1), 10, "old-a1");
    put_block(bucket3, TraceIdOf(1), 11, "old-a3");
    put_block(bucket3, TraceIdOf(2), 12, "old-b3");
    for (rocksdb::ColumnFamilyHandle* h : handles) db->DestroyColumnFamilyHandle(h);
  }

  RocksStoreOptions options;
  options.path = path;
  options.bucket_seconds = 3600;
  {
    absl::StatusOr<std::unique_ptr<Store>> store = OpenRocksStore(options);
    ASSERT_TRUE(store.ok()) << store.status();
    absl::StatusOr<std::vector<std::string>> a = (*store)->ReadTrace(TraceIdOf(1));
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_THAT(*a, ElementsAre("old-a1", "old-a3"));
    absl::StatusOr<std::vector<std::string>> b = (*store)->ReadTrace(TraceIdOf(2));
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_THAT(*b, ElementsAre("old-b3"));
    std::vector<std::string> scanned;
    ASSERT_TRUE((*store)
                    ->ScanBlocks(0, Hour(10),
                                 [&](const base::TraceId&, std::string_view encoded) {
                                   scanned.emplace_back(encoded);
                                   return true;
                                 })
                    .ok());
    EXPECT_THAT(scanned, ElementsAre("old-b3", "old-a3", "old-a1"));
  }
  std::vector<std::string> families;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &families).ok());
  EXPECT_THAT(families, ::testing::Not(::testing::Contains("blocks")));
  EXPECT_THAT(families, ::testing::Not(::testing::Contains("trace_buckets")));

  absl::StatusOr<std::unique_ptr<Store>> reopened = OpenRocksStore(options);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  absl::StatusOr<std::vector<std::string>> a = (*reopened)->ReadTrace(TraceIdOf(1));
  ASSERT_TRUE(a.ok());
  EXPECT_THAT(*a, ElementsAre("old-a1", "old-a3"));
}

// A move interrupted between dropping the two old families leaves only one of them: the store
// still opens, and finishes the move.
TEST(RocksStoreLayoutTest, AMoveInterruptedBetweenTheDropsIsFinished) {
  ScratchDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.path() + "/data";
  for (const char* left : {"blocks", "trace_buckets"}) {
    std::filesystem::remove_all(path);
    {
      rocksdb::Options options;
      options.create_if_missing = true;
      options.create_missing_column_families = true;
      std::vector<rocksdb::ColumnFamilyDescriptor> families = {
          {rocksdb::kDefaultColumnFamilyName, {}},
          {"span_blocks", {}},
          {"trace_index", {}},
          {"orders", {}},
          {"order_index", {}},
          {"gaps", {}},
          {left, {}}};
      std::vector<rocksdb::ColumnFamilyHandle*> handles;
      rocksdb::DB* raw = nullptr;
      ASSERT_TRUE(rocksdb::DB::Open(options, path, families, &handles, &raw).ok());
      std::unique_ptr<rocksdb::DB> db(raw);
      for (rocksdb::ColumnFamilyHandle* h : handles) db->DestroyColumnFamilyHandle(h);
    }
    RocksStoreOptions options;
    options.path = path;
    absl::StatusOr<std::unique_ptr<Store>> store = OpenRocksStore(options);
    ASSERT_TRUE(store.ok()) << left << " left: " << store.status();
    store->reset();
    std::vector<std::string> families;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &families).ok());
    EXPECT_THAT(families, ::testing::Not(::testing::Contains("blocks"))) << left;
    EXPECT_THAT(families, ::testing::Not(::testing::Contains("trace_buckets"))) << left;
  }
}

GapRecord GapRec(std::string id, std::string order_id, uint64_t since, bool open = true,
                 std::string kind = "missing_transition", std::string stage = "SUBMITTED",
                 std::string partner = "partner-a") {
  GapRecord r;
  r.id = std::move(id);
  r.order_id = std::move(order_id);
  r.partner_id = std::move(partner);
  r.kind = std::move(kind);
  r.stage = std::move(stage);
  r.open = open;
  r.since_unix_nano = since;
  r.encoded = "{\"gap\":\"" + r.id + "\",\"open\":" + (open ? "true" : "false") + "}";
  return r;
}

class RocksStoreGapTest : public RocksStoreTest {
 protected:
  void Put(std::vector<GapRecord> puts, std::vector<std::string> deletes = {}) {
    absl::Status s = store_->WriteGapRecords(puts, deletes);
    ASSERT_TRUE(s.ok()) << s;
  }

  std::optional<GapRecord> GetGap(const std::string& id) {
    absl::StatusOr<std::optional<GapRecord>> r = store_->GetGapRecord(id);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : std::nullopt;
  }

  std::vector<std::string> OpenIds() {
    absl::StatusOr<std::vector<GapRecord>> open = store_->ReadOpenGapRecords();
    EXPECT_TRUE(open.ok()) << open.status();
    std::vector<std::string> ids;
    if (open.ok()) {
      for (const GapRecord& r : *open) ids.push_back(r.id);
    }
    return ids;
  }

  GapRecordPage Page(const GapRecordFilter& filter) {
    absl::StatusOr<GapRecordPage> page = store_->ListGapRecords(filter);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? *page : GapRecordPage{};
  }

  // The ids of every record matching `filter`, following resume positions page by page.
  std::vector<std::string> ListAll(GapRecordFilter filter, size_t* pages = nullptr) {
    std::vector<std::string> ids;
    size_t count = 0;
    for (;;) {
      GapRecordPage page = Page(filter);
      ++count;
      for (const GapRecord& r : page.records) ids.push_back(r.id);
      if (!page.resume_after || count > 10000) break;
      filter.after = page.resume_after;
    }
    if (pages != nullptr) *pages = count;
    return ids;
  }

  std::vector<std::string> Ids(const GapRecordFilter& filter) {
    std::vector<std::string> ids;
    for (const GapRecord& r : Page(filter).records) ids.push_back(r.id);
    return ids;
  }
};

GapRecordFilter AllGaps(size_t limit = 100) {
  GapRecordFilter filter;
  filter.state = GapRecordFilter::State::kAll;
  filter.limit = limit;
  return filter;
}

TEST_F(RocksStoreGapTest, RecordsRoundTripAndUnknownIdsAreEmpty) {
  const GapRecord gap = GapRec("ord-1/missing_transition/SUBMITTED", "ord-1", Hour(1));
  Put({gap});
  EXPECT_EQ(GetGap(gap.id), gap);
  EXPECT_EQ(GetGap("ord-2/missing_transition/SUBMITTED"), std::nullopt);
  // Binary content and empty fields are kept exactly.
  GapRecord odd = GapRec(std::string("odd\0id", 6), "", 0, false, "", "", "");
  odd.encoded = std::string("\0\xff\x01", 3);
  Put({odd});
  EXPECT_EQ(GetGap(odd.id), odd);
}

TEST_F(RocksStoreGapTest, ResolvingAGapTakesItOutOfTheOpenIndex) {
  Put({GapRec("a", "ord-1", Hour(1)), GapRec("b", "ord-2", Hour(2)),
       GapRec("c", "ord-3", Hour(3), /*open=*/false)});
  EXPECT_THAT(OpenIds(), UnorderedElementsAre("a", "b"));
  Put({GapRec("a", "ord-1", Hour(1), /*open=*/false)});
  EXPECT_THAT(OpenIds(), ElementsAre("b"));
  GapRecordFilter open = AllGaps();
  open.state = GapRecordFilter::State::kOpen;
  EXPECT_THAT(Ids(open), ElementsAre("b"));
  GapRecordFilter resolved = AllGaps();
  resolved.state = GapRecordFilter::State::kResolved;
  EXPECT_THAT(Ids(resolved), ElementsAre("c", "a"));
  // Reopened (late spans took back the resolving status).
  Put({GapRec("c", "ord-3", Hour(3))});
  EXPECT_THAT(OpenIds(), UnorderedElementsAre("b", "c"));
}

TEST_F(RocksStoreGapTest, ASinceChangeMovesTheGapInTheTimeIndex) {
  Put({GapRec("a", "ord-1", Hour(1)), GapRec("b", "ord-2", Hour(2))});
  EXPECT_THAT(Ids(AllGaps()), ElementsAre("b", "a"));
  Put({GapRec("a", "ord-1", Hour(3))});
  EXPECT_THAT(Ids(AllGaps()), ElementsAre("a", "b")) << "listed once, at its new since";
  GapRecordFilter early = AllGaps();
  early.since_to_unix_nano = Hour(1) + kMinute;
  EXPECT_THAT(Ids(early), IsEmpty());
}

TEST_F(RocksStoreGapTest, DeletesRemoveTheRecordAndEveryIndexEntry) {
  Put({GapRec("a", "ord-1", Hour(1)), GapRec("b", "ord-1", Hour(2))});
  Put({}, {"a", "never-was"});
  EXPECT_EQ(GetGap("a"), std::nullopt);
  EXPECT_THAT(OpenIds(), ElementsAre("b"));
  EXPECT_THAT(Ids(AllGaps()), ElementsAre("b"));
  GapRecordFilter of_order = AllGaps();
  of_order.order_id = "ord-1";
  EXPECT_THAT(Ids(of_order), ElementsAre("b"));
}

TEST_F(RocksStoreGapTest, OneWriteThatPutsAnIdTwiceOrPutsAndDeletesItLeavesOneState) {
  Put({GapRec("a", "ord-1", Hour(1)), GapRec("a", "ord-9", Hour(5), /*open=*/false)});
  EXPECT_EQ(GetGap("a"), GapRec("a", "ord-9", Hour(5), false));
  EXPECT_THAT(OpenIds(), IsEmpty());
  EXPECT_THAT(Ids(AllGaps()), ElementsAre("a"));
  GapRecordFilter first_order = AllGaps();
  first_order.order_id = "ord-1";
  EXPECT_THAT(Ids(first_order), IsEmpty());

  Put({GapRec("b", "ord-2", Hour(2))}, {"b"});
  EXPECT_EQ(GetGap("b"), std::nullopt);
  EXPECT_THAT(OpenIds(), IsEmpty());
  EXPECT_THAT(Ids(AllGaps()), ElementsAre("a"));
}

TEST_F(RocksStoreGapTest, EveryFilterSelectsItsGaps) {
  Put({GapRec("a", "ord-1", Hour(1), true, "missing_transition", "SUBMITTED", "p1"),
       GapRec("b", "ord-1", Hour(2), false, "status_backwards", "SUBMITTED", "p1"),
       GapRec("c", "ord-2", Hour(3), true, "missing_transition", "APPROVED", "p2"),
       GapRec("d", "", Hour(4), true, "source_silent", "", ""),
       GapRec("e", "ord-3", Hour(5), false, "missing_transition", "SUBMITTED", "p2")});
  GapRecordFilter f = AllGaps();
  EXPECT_THAT(Ids(f), ElementsAre("e", "d", "c", "b", "a"));
  f.kind = "missing_transition";
  EXPECT_THAT(Ids(f), ElementsAre("e", "c", "a"));
  f.stage = "SUBMITTED";
  EXPECT_THAT(Ids(f), ElementsAre("e", "a"));
  f.partner_id = "p1";
  EXPECT_THAT(Ids(f), ElementsAre("a"));
  f = AllGaps();
  f.partner_id = "p2";
  EXPECT_THAT(Ids(f), ElementsAre("e", "c"));
  f = AllGaps();
  f.kind = "source_silent";
  EXPECT_THAT(Ids(f), ElementsAre("d"));
  f = AllGaps();
  f.since_from_unix_nano = Hour(2);
  f.since_to_unix_nano = Hour(4);
  EXPECT_THAT(Ids(f), ElementsAre("d", "c", "b")) << "both bounds are inclusive";
  f.since_to_unix_nano = 0;
  EXPECT_THAT(Ids(f), ElementsAre("e", "d", "c", "b"));
  f.state = GapRecordFilter::State::kOpen;
  EXPECT_THAT(Ids(f), ElementsAre("d", "c"));
  f = AllGaps();
  f.order_id = "ord-1";
  EXPECT_THAT(Ids(f), ElementsAre("b", "a"));
  f.state = GapRecordFilter::State::kOpen;
  EXPECT_THAT(Ids(f), ElementsAre("a"));
  f = AllGaps();
  f.order_id = "ord-1";
  f.since_from_unix_nano = Hour(2);
  EXPECT_THAT(Ids(f), ElementsAre("b"));
  f.order_id = "ord";  // a prefix of other order ids matches none of them
  f.since_from_unix_nano = 0;
  EXPECT_THAT(Ids(f), IsEmpty());
}

// Many gaps, several with the same since: paging returns each exactly once, newest first
// (ties by id), across pages, with and without filters, and for one order's gaps too.
TEST_F(RocksStoreGapTest, PagesReturnEveryGapOnceNewestFirst) {
  std::vector<GapRecord> puts;
  std::vector<std::pair<uint64_t, std::string>> expected;
  for (int i = 0; i < 250; ++i) {
    std::string id = "ord-" + std::to_string(i % 7) + "/k/" + std::to_string(i);
    GapRecord r = GapRec(id, "ord-" + std::to_string(i % 7), Hour(1) + (i / 3) * kSecond,
                         /*open=*/i % 2 == 0);
    expected.emplace_back(r.since_unix_nano, r.id);
    puts.push_back(std::move(r));
  }
  Put(puts);
  std::sort(expected.begin(), expected.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::vector<std::string> expected_ids;
  for (const auto& [since, id] : expected) expected_ids.push_back(id);

  for (size_t limit : {1u, 7u, 100u, 250u, 1000u}) {
    size_t pages = 0;
    EXPECT_EQ(ListAll(AllGaps(limit), &pages), expected_ids) << "limit " << limit;
    EXPECT_EQ(pages, (250 + limit - 1) / limit) << "no empty last page, limit " << limit;
  }
  GapRecordFilter open = AllGaps(9);
  open.state = GapRecordFilter::State::kOpen;
  std::vector<std::string> open_ids = ListAll(open);
  EXPECT_EQ(open_ids.size(), 125u);
  GapRecordFilter of_order = AllGaps(4);
  of_order.order_id = "ord-3";
  std::vector<std::string> order_ids;
  for (const std::string& id : expected_ids) {
    if (id.starts_with("ord-3/")) order_ids.push_back(id);
  }
  EXPECT_EQ(ListAll(of_order), order_ids);

  // A walk cut short by max_scanned hands back where to go on, and still misses nothing.
  GapRecordFilter rare = AllGaps(100);
  rare.partner_id = "partner-a";
  rare.max_scanned = 30;
  size_t pages = 0;
  EXPECT_EQ(ListAll(rare, &pages), expected_ids);
  EXPECT_GE(pages, 250u / 30);
  rare.partner_id = "nobody";
  GapRecordPage first = Page(rare);
  EXPECT_THAT(first.records, IsEmpty());
  EXPECT_TRUE(first.resume_after.has_value()) << "an empty page that stopped early resumes";
  EXPECT_THAT(ListAll(rare), IsEmpty());
}

TEST_F(RocksStoreGapTest, ReopeningKeepsGapsAndTheirIndexes) {
  Put({GapRec("a", "ord-1", Hour(1)), GapRec("b", "ord-2", Hour(2), false),
       GapRec("c", "", Hour(3))});
  store_.reset();
  Open();
  EXPECT_EQ(GetGap("b"), GapRec("b", "ord-2", Hour(2), false));
  EXPECT_THAT(OpenIds(), UnorderedElementsAre("a", "c"));
  EXPECT_THAT(Ids(AllGaps()), ElementsAre("c", "b", "a"));
  GapRecordFilter of_order = AllGaps();
  of_order.order_id = "ord-2";
  EXPECT_THAT(Ids(of_order), ElementsAre("b"));
}

// Gap rows of the first layout (the gap id -> its JSON) are moved into the indexed layout
// when the store is opened; the JSON is kept as the record.
TEST(RocksStoreLayoutTest, GapsOfTheFirstLayoutAreMovedWhenOpened) {
  ScratchDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.path() + "/data";
  const std::string open_json =
      R"({"id":"ord-1/missing_transition/SUBMITTED","order_id":"ord-1","partner_id":"p1",)"
      R"("kind":"missing_transition","stage":"SUBMITTED","since":100,"resolved_at":0})";
  const std::string resolved_json =
      R"({"id":"ord-2/status_backwards/APPROVED","order_id":"ord-2","kind":"status_backwards",)"
      R"("stage":"APPROVED","since":200,"resolved_at":250})";
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, {}}, {"gaps", {}}};
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, path, families, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    rocksdb::WriteOptions wo;
    ASSERT_TRUE(db->Put(wo, handles[1], "ord-1/missing_transition/SUBMITTED", open_json).ok());
    ASSERT_TRUE(db->Put(wo, handles[1], "ord-2/status_backwards/APPROVED", resolved_json).ok());
    ASSERT_TRUE(db->Put(wo, handles[1], "not-json", "{{{").ok());
    for (rocksdb::ColumnFamilyHandle* h : handles) db->DestroyColumnFamilyHandle(h);
  }
  RocksStoreOptions options;
  options.path = path;
  for (int round = 0; round < 2; ++round) {  // the second open finds nothing left to move
    absl::StatusOr<std::unique_ptr<Store>> store = OpenRocksStore(options);
    ASSERT_TRUE(store.ok()) << store.status();
    absl::StatusOr<std::optional<GapRecord>> open =
        (*store)->GetGapRecord("ord-1/missing_transition/SUBMITTED");
    ASSERT_TRUE(open.ok() && open->has_value());
    EXPECT_EQ((*open)->encoded, open_json);
    EXPECT_EQ((*open)->partner_id, "p1");
    EXPECT_EQ((*open)->since_unix_nano, 100u);
    EXPECT_TRUE((*open)->open);
    absl::StatusOr<std::vector<GapRecord>> open_ones = (*store)->ReadOpenGapRecords();
    ASSERT_TRUE(open_ones.ok());
    ASSERT_EQ(open_ones->size(), 1u);
    EXPECT_EQ(open_ones->front().id, "ord-1/missing_transition/SUBMITTED");
    absl::StatusOr<GapRecordPage> all = (*store)->ListGapRecords(GapRecordFilter{});
    ASSERT_TRUE(all.ok());
    ASSERT_EQ(all->records.size(), 2u) << "the unreadable row was dropped";
    EXPECT_EQ(all->records[0].id, "ord-2/status_backwards/APPROVED");
    EXPECT_FALSE(all->records[0].open);
    GapRecordFilter of_order;
    of_order.order_id = "ord-2";
    absl::StatusOr<GapRecordPage> two = (*store)->ListGapRecords(of_order);
    ASSERT_TRUE(two.ok());
    EXPECT_EQ(two->records.size(), 1u);
  }
}

class RocksStoreRetentionTest : public RocksStoreTest {
 protected:
  void SetUp() override {
    RocksStoreTest::SetUp();
    WriteBlocks({{TraceIdOf(1), Hour(10) + 5 * kMinute, "x10"},
                 {TraceIdOf(2), Hour(10) + 20 * kMinute, "y10"},
                 {TraceIdOf(2), Hour(12), "y12"},
                 {TraceIdOf(3), Hour(11) + 59 * kMinute, "z11"},
                 {TraceIdOf(3), Hour(13), "z13"}});
  }
};

TEST_F(RocksStoreRetentionTest, RemovesWholeBucketsBeforeTheCutoffBucket) {
  // The cutoff falls inside bucket 12: buckets 10 and 11 go, bucket 12 stays whole.
  absl::StatusOr<RetentionStats> stats = store_->ApplyRetention(Hour(12) + 30 * kMinute, 0);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->span_buckets_removed, 2u);
  EXPECT_EQ(stats->span_blocks_removed, 3u);
  EXPECT_EQ(stats->orders_removed, 0u);

  EXPECT_THAT(Read(TraceIdOf(1)), IsEmpty());
  EXPECT_THAT(Read(TraceIdOf(2)), ElementsAre("y12"));
  EXPECT_THAT(Read(TraceIdOf(3)), ElementsAre("z13"));
  EXPECT_THAT(Scan(0, Hour(20)), ElementsAre("z13@3", "y12@2"));

  absl::StatusOr<RetentionStats> again = store_->ApplyRetention(Hour(12) + 30 * kMinute, 0);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->span_buckets_removed, 0u);
  EXPECT_EQ(again->span_blocks_removed, 0u);

  store_.reset();
  Open();
  EXPECT_THAT(Read(TraceIdOf(1)), IsEmpty());
  EXPECT_THAT(Read(TraceIdOf(2)), ElementsAre("y12"));
}

TEST_F(RocksStoreRetentionTest, CutoffAtABucketStartKeepsThatBucket) {
  absl::StatusOr<RetentionStats> stats = store_->ApplyRetention(Hour(11), 0);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->span_buckets_removed, 1u);
  EXPECT_EQ(stats->span_blocks_removed, 2u);
  EXPECT_THAT(Read(TraceIdOf(3)), ElementsAre("z11", "z13"));
  EXPECT_THAT(Read(TraceIdOf(2)), ElementsAre("y12"));
}

TEST_F(RocksStoreRetentionTest, RemovesOrdersThatEndedBeforeTheOrderCutoff) {
  WriteOrder(Order("old", Hour(1), "CLOSED", "partner-a", Hour(2)));
  WriteOrder(Order("long-running", Hour(1), "SUBMITTED", "partner-a", Hour(13)));
  WriteOrder(Order("edge", Hour(5), "SUBMITTED", "", Hour(12)));
  WriteOrder(Order("recent", Hour(12) + kMinute, "SUBMITTED", "partner-a", Hour(13)));

  absl::StatusOr<RetentionStats> stats = store_->ApplyRetention(0, Hour(12));
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->orders_removed, 1u);
  EXPECT_EQ(stats->span_blocks_removed, 0u);

  EXPECT_EQ(Get("old"), std::nullopt);
  EXPECT_NE(Get("long-running"), std::nullopt);
  EXPECT_NE(Get("edge"), std::nullopt) << "an order that ended exactly at the cutoff stays";
  EXPECT_NE(Get("recent"), std::nullopt);
  EXPECT_THAT(List({}), ElementsAre("recent", "edge", "long-running"));
  EXPECT_THAT(List(Filter("CLOSED")), IsEmpty());
  EXPECT_THAT(List(Filter("", "partner-a")), ElementsAre("recent", "long-running"));
  EXPECT_THAT(Read(TraceIdOf(1)), ElementsAre("x10")) << "a span cutoff of 0 keeps every span";
}

TEST_F(RocksStoreRetentionTest, RemovesTheGapsOfRemovedOrdersAndOldGapsOfNoOrder) {
  WriteOrder(Order("old", Hour(1), "CLOSED", "partner-a", Hour(2)));
  WriteOrder(Order("long-running", Hour(1), "SUBMITTED", "partner-a", Hour(13)));
  const std::vector<GapRecord> gaps = {
      GapRec("old/a", "old", Hour(1)),
      GapRec("old/b", "old", Hour(12) + kMinute, /*open=*/false),  // removed with its order
      GapRec("long-running/a", "long-running", Hour(1)),           // its order stays
      GapRec("silent/old", "", Hour(11), true, "source_silent", "", ""),
      GapRec("silent/new", "", Hour(12), true, "source_silent", "", ""),  // at the cutoff
      GapRec("gone/a", "gone", Hour(3)),  // an order an earlier pass removed
      GapRec("gone/late", "gone", Hour(12) + kMinute),
  };
  ASSERT_TRUE(store_->WriteGapRecords(gaps, {}).ok());

  absl::StatusOr<RetentionStats> stats = store_->ApplyRetention(0, Hour(12));
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->orders_removed, 1u);
  EXPECT_EQ(stats->gaps_removed, 4u);

  auto ids = [&](GapRecordFilter filter) {
    absl::StatusOr<GapRecordPage> page = store_->ListGapRecords(filter);
    EXPECT_TRUE(page.ok()) << page.status();
    std::vector<std::string> out;
    if (page.ok()) {
      for (const GapRecord& r : page->records) out.push_back(r.id);
    }
    return out;
  };
  EXPECT_THAT(ids(GapRecordFilter{}), ElementsAre("gone/late", "silent/new", "long-running/a"));
  GapRecordFilter of_old;
  of_old.order_id = "old";
  EXPECT_THAT(ids(of_old), IsEmpty());
  absl::StatusOr<std::vector<GapRecord>> open = store_->ReadOpenGapRecords();
  ASSERT_TRUE(open.ok());
  std::vector<std::string> open_ids;
  for (const GapRecord& r : *open) open_ids.push_back(r.id);
  EXPECT_THAT(open_ids, UnorderedElementsAre("gone/late", "long-running/a", "silent/new"));
  absl::StatusOr<std::optional<GapRecord>> removed = store_->GetGapRecord("old/a");
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, std::nullopt);

  absl::StatusOr<RetentionStats> again = store_->ApplyRetention(0, Hour(12));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->gaps_removed, 0u);
  store_.reset();
  Open();
  EXPECT_THAT(ids(GapRecordFilter{}), ElementsAre("gone/late", "silent/new", "long-running/a"));
}

// The forward queue's contents from `from` on, as "encoded" strings.
std::vector<std::string> ForwardContents(Store& store, uint64_t from = 0) {
  absl::StatusOr<std::vector<ForwardEntry>> entries = store.ReadForwardQueue(from, 1000, 1 << 30);
  EXPECT_TRUE(entries.ok()) << entries.status();
  std::vector<std::string> out;
  if (entries.ok()) {
    for (const ForwardEntry& e : *entries) out.push_back(e.encoded);
  }
  return out;
}

TEST_F(RocksStoreTest, ForwardQueueHoldsTheStoredBlocksInWriteOrderAcrossAReopen) {
  store_.reset();  // SetUp opened it without a forward queue
  Open(/*forward_queue=*/true);
  WriteBlocks({{TraceIdOf(1), Hour(1), "a"}, {TraceIdOf(2), Hour(1), "bb"}});
  WriteBlocks({{TraceIdOf(1), Hour(2), "ccc"}});
  EXPECT_THAT(ForwardContents(*store_), ElementsAre("a", "bb", "ccc"));
  EXPECT_EQ(store_->ForwardQueueBytes(), 6u);
  EXPECT_THAT(Read(TraceIdOf(1)), ElementsAre("a", "ccc"));  // stored as well
  store_.reset();
  Open(/*forward_queue=*/true);
  EXPECT_THAT(ForwardContents(*store_), ElementsAre("a", "bb", "ccc"));
  EXPECT_EQ(store_->ForwardQueueBytes(), 6u);
}

TEST_F(RocksStoreTest, ForwardQueueDeletesBelowASeqForGoodAndLaterEntriesFollow) {
  store_.reset();  // SetUp opened it without a forward queue
  Open(/*forward_queue=*/true);
  WriteBlocks({{TraceIdOf(1), Hour(1), "a"}, {TraceIdOf(2), Hour(1), "bb"}});
  absl::StatusOr<std::vector<ForwardEntry>> first = store_->ReadForwardQueue(0, 1, 1 << 20);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 1u);
  ASSERT_TRUE(store_->DeleteForwardQueue(first->front().seq + 1).ok());
  EXPECT_THAT(ForwardContents(*store_), ElementsAre("bb"));
  EXPECT_EQ(store_->ForwardQueueBytes(), 2u);
  ASSERT_TRUE(store_->DeleteForwardQueue(first->front().seq + 2).ok());
  EXPECT_THAT(ForwardContents(*store_), IsEmpty());
  EXPECT_EQ(store_->ForwardQueueBytes(), 0u);
  store_.reset();
  Open(/*forward_queue=*/true);
  // A new entry after a restart with an empty queue gets a seq past the deleted range.
  WriteBlocks({{TraceIdOf(3), Hour(1), "new"}});
  EXPECT_THAT(ForwardContents(*store_), ElementsAre("new"));
  EXPECT_EQ(store_->ForwardQueueBytes(), 3u);
}

TEST_F(RocksStoreTest, ForwardQueueReadsStopAtTheEntryAndByteBoundsButTakeOneLargeEntry) {
  store_.reset();  // SetUp opened it without a forward queue
  Open(/*forward_queue=*/true);
  WriteBlocks({{TraceIdOf(1), Hour(1), std::string(100, 'a')},
               {TraceIdOf(2), Hour(1), std::string(10, 'b')},
               {TraceIdOf(3), Hour(1), std::string(10, 'c')}});
  absl::StatusOr<std::vector<ForwardEntry>> one = store_->ReadForwardQueue(0, 10, 50);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);  // larger than the bound alone: still read
  absl::StatusOr<std::vector<ForwardEntry>> two = store_->ReadForwardQueue(0, 2, 1 << 20);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->size(), 2u);
  absl::StatusOr<std::vector<ForwardEntry>> rest =
      store_->ReadForwardQueue(one->front().seq + 1, 10, 15);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 1u);
  EXPECT_EQ(rest->front().encoded, std::string(10, 'b'));
}

TEST_F(RocksStoreTest, AQueuedBlockThatRetentionRemovedReadsAsEmptyAndStillCounts) {
  store_.reset();
  Open(/*forward_queue=*/true);
  WriteBlocks({{TraceIdOf(1), Hour(1), "old"}});
  WriteBlocks({{TraceIdOf(2), Hour(5), "new"}});
  ASSERT_TRUE(store_->ApplyRetention(Hour(3), 0).ok());
  EXPECT_THAT(ForwardContents(*store_), ElementsAre("", "new"));
  EXPECT_EQ(store_->ForwardQueueBytes(), 6u);  // until the entry is deleted
  absl::StatusOr<std::vector<ForwardEntry>> entries = store_->ReadForwardQueue(0, 10, 1 << 20);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].bytes, 3u);  // as queued, though the block is gone
  ASSERT_TRUE(store_->DeleteForwardQueue(entries->back().seq + 1).ok());
  EXPECT_EQ(store_->ForwardQueueBytes(), 0u);
}

TEST_F(RocksStoreTest, WithoutTheForwardNothingIsQueuedAndAnEarlierQueueIsDropped) {
  WriteBlocks({{TraceIdOf(1), Hour(1), "a"}});
  EXPECT_THAT(ForwardContents(*store_), IsEmpty());
  store_.reset();
  Open(/*forward_queue=*/true);
  WriteBlocks({{TraceIdOf(2), Hour(1), "b"}});
  EXPECT_THAT(ForwardContents(*store_), ElementsAre("b"));
  store_.reset();
  Open(/*forward_queue=*/false);
  EXPECT_THAT(ForwardContents(*store_), IsEmpty());
  EXPECT_EQ(store_->ForwardQueueBytes(), 0u);
  EXPECT_THAT(Read(TraceIdOf(2)), ElementsAre("b"));  // the spans themselves stay
  store_.reset();
  Open(/*forward_queue=*/true);
  EXPECT_THAT(ForwardContents(*store_), IsEmpty());
}

// Writers race; a reader that moves its cursor past what it read must still see every entry
// exactly once (a write under way holds back the entries after it).
TEST_F(RocksStoreTest, AForwardQueueReaderWithACursorSeesEveryEntryOfConcurrentWritersOnce) {
  store_.reset();  // SetUp opened it without a forward queue
  Open(/*forward_queue=*/true);
  constexpr int kWriters = 4;
  constexpr int kWritesEach = 300;
  std::atomic<int> done{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kWritesEach; ++i) {
        WriteSet writes;
        writes.blocks.push_back({TraceIdOf(static_cast<uint8_t>(w)), Hour(1),
                                 std::to_string(w) + ":" + std::to_string(i)});
        EXPECT_TRUE(store_->Write(writes).ok());
      }
      ++done;
    });
  }
  std::set<std::string> seen;
  size_t duplicates = 0;
  uint64_t cursor = 0;
  // Reads up to 64 entries past the cursor and deletes them; false when there were none.
  auto drain = [&] {
    absl::StatusOr<std::vector<ForwardEntry>> entries =
        store_->ReadForwardQueue(cursor, 64, 1 << 20);
    EXPECT_TRUE(entries.ok());
    if (!entries.ok()) return false;
    for (const ForwardEntry& e : *entries) {
      EXPECT_GE(e.seq, cursor);
      duplicates += seen.insert(e.encoded).second ? 0 : 1;
      cursor = e.seq + 1;
    }
    if (entries->empty()) return false;
    EXPECT_TRUE(store_->DeleteForwardQueue(cursor).ok());
    return true;
  };
  while (done.load() < kWriters) drain();
  for (std::thread& t : writers) t.join();
  while (drain()) {
  }
  EXPECT_EQ(seen.size(), size_t{kWriters * kWritesEach});
  EXPECT_EQ(duplicates, 0u);
  EXPECT_EQ(store_->ForwardQueueBytes(), 0u);
}

}  // namespace
}  // namespace ordertrace::store
