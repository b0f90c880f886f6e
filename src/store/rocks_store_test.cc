#include "store/rocks_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "model/clock.h"

namespace ordertrace::store {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr uint64_t kSecond = model::kNanosPerSecond;
constexpr uint64_t kMinute = 60 * kSecond;
constexpr uint64_t kHour = 3600 * kSecond;
// An hour boundary in November 2023, so that Hour(h) starts bucket h exactly.
constexpr uint64_t kEpochHours = 472'222;

uint64_t Hour(uint64_t h) { return (kEpochHours + h) * kHour; }

model::TraceId TraceIdOf(uint8_t n) {
  model::TraceId id;
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

  void Open() {
    RocksStoreOptions options;
    options.path = dir_.path() + "/data";  // a folder that does not exist yet
    options.bucket_seconds = 3600;
    options.block_cache_bytes = 8 << 20;
    options.write_buffer_bytes = 4 << 20;
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

  std::vector<std::string> Read(const model::TraceId& trace) {
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
        store_->ScanBlocks(from, to, [&](const model::TraceId& trace, std::string_view encoded) {
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
  std::vector<model::TraceId> traces;
  for (int i = 0; i < 3000; ++i) {
    model::TraceId id;
    for (uint8_t& b : id.bytes) b = static_cast<uint8_t>(rng());
    traces.push_back(id);
  }
  // Neighbours: the same id but for its first or its last byte.
  model::TraceId first_byte = traces[0], last_byte = traces[0];
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
  model::TraceId unknown = traces[1];
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
    auto put_block = [&](uint64_t bucket, const model::TraceId& trace, uint64_t seq,
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
                                 [&](const model::TraceId&, std::string_view encoded) {
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

}  // namespace
}  // namespace ordertrace::store
