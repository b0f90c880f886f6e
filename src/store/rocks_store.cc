#include "store/rocks_store.h"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <shared_mutex>

#include "store/order_record_codec.h"

namespace ordertrace::store {
namespace {

constexpr char kBlocksCf[] = "span_blocks";
constexpr char kTraceIndexCf[] = "trace_index";
// The first layout's span families (blocks keyed bucket, trace, seq; trace_buckets keyed trace,
// bucket): moved into the ones above when a store that has them is opened.
constexpr char kLegacyBlocksCf[] = "blocks";
constexpr char kLegacyTraceBucketsCf[] = "trace_buckets";
constexpr char kOrdersCf[] = "orders";
constexpr char kOrderIndexCf[] = "order_index";
constexpr char kGapsCf[] = "gaps";
constexpr char kPendingCf[] = "sampler_pending";
constexpr char kForwardCf[] = "forward_queue";

constexpr char kOutOfSpaceMessage[] = "the store is out of disk space; retry later";

// Scanning an index for a filter stops after this many entries, so a query with a rare
// combination of filters cannot walk a million orders.
constexpr size_t kMaxIndexScan = 200000;

void PutBigEndian(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

uint64_t GetBigEndian(std::string_view in) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = v << 8 | static_cast<uint8_t>(in[i]);
  return v;
}

bool IsNoSpace(const rocksdb::Status& s) {
  return s.IsNoSpace() || s.subcode() == rocksdb::Status::kSpaceLimit;
}

// RocksDB's messages name files: they go to the log, and callers (and so clients) get a
// generic one. Out of space is kUnavailable (503: retry later), apart from back-pressure
// (kResourceExhausted, which the store never answers) and other I/O errors (kInternal).
absl::Status ToStatus(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  if (IsNoSpace(s)) return absl::UnavailableError(kOutOfSpaceMessage);
  if (s.IsNotFound()) return absl::NotFoundError(std::string(what) + ": not found");
  spdlog::error("store: {} failed: {}", what, s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(std::string(what) + ": the store is corrupt");
  if (s.IsBusy() || s.IsTryAgain() || s.IsIncomplete()) {
    return absl::UnavailableError(std::string(what) + ": the store is busy; retry later");
  }
  return absl::InternalError(std::string(what) + ": store I/O error");
}

// Free bytes for an unprivileged writer on the file system of `path`; unknown: the most.
uint64_t FreeBytes(const std::string& path) {
  std::error_code ec;
  const std::filesystem::space_info space = std::filesystem::space(path, ec);
  return ec ? UINT64_MAX : space.available;
}

// The gaps family. Gap ids and order ids never start with (order ids never contain) a byte
// below 0x20, so these tags cannot collide with the first layout's keys (a bare gap id).
//   \x01 id                          -> meta, encoded   (the record)
//   \x02 ~since(8) id                -> meta            (time index: newest first, forwards)
//   \x03 order_id \0 id              -> ""              (an order's gaps; none for order "")
//   \x04 id                          -> ""              (the open ones)
// meta = open(1) since(8), then id, order_id, partner_id, kind, stage, each length(4) bytes.
constexpr char kGapRecordTag = '\x01';
constexpr char kGapTimeTag = '\x02';
constexpr char kGapOrderTag = '\x03';
constexpr char kGapOpenTag = '\x04';
// Keys from this byte on are gap rows of the first layout.
constexpr char kLegacyGapKeysFrom = '\x20';

std::string GapRecordKey(std::string_view id) { return kGapRecordTag + std::string(id); }

std::string GapTimeKey(uint64_t since, std::string_view id) {
  std::string key(1, kGapTimeTag);
  PutBigEndian(key, ~since);
  key.append(id);
  return key;
}

std::string GapOrderPrefix(std::string_view order_id) {
  std::string key(1, kGapOrderTag);
  key.append(order_id);
  key.push_back('\0');
  return key;
}

std::string GapOpenKey(std::string_view id) { return kGapOpenTag + std::string(id); }

// The index keys of a record: the time index, its order's (if any), the open index (if open).
std::vector<std::string> GapIndexKeys(const GapRecord& r) {
  std::vector<std::string> keys = {GapTimeKey(r.since_unix_nano, r.id)};
  if (!r.order_id.empty()) keys.push_back(GapOrderPrefix(r.order_id) + r.id);
  if (r.open) keys.push_back(GapOpenKey(r.id));
  return keys;
}

std::string EncodeGapMeta(const GapRecord& r) {
  std::string out(1, r.open ? '\x01' : '\x00');
  PutBigEndian(out, r.since_unix_nano);
  for (const std::string* field : {&r.id, &r.order_id, &r.partner_id, &r.kind, &r.stage}) {
    const uint32_t size = static_cast<uint32_t>(field->size());
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(size >> shift));
    out.append(*field);
  }
  return out;
}

// Reads the meta at the start of `in` into `out` (all but `encoded`); the number of bytes it
// took, or nullopt when `in` is not a meta.
std::optional<size_t> DecodeGapMeta(std::string_view in, GapRecord& out) {
  if (in.size() < 9) return std::nullopt;
  out.open = in[0] != '\0';
  out.since_unix_nano = GetBigEndian(in.substr(1));
  size_t pos = 9;
  for (std::string* field : {&out.id, &out.order_id, &out.partner_id, &out.kind, &out.stage}) {
    if (in.size() - pos < 4) return std::nullopt;
    uint32_t size = 0;
    for (size_t i = 0; i < 4; ++i) size = size << 8 | static_cast<uint8_t>(in[pos + i]);
    pos += 4;
    if (in.size() - pos < size) return std::nullopt;
    field->assign(in.substr(pos, size));
    pos += size;
  }
  return pos;
}

absl::StatusOr<GapRecord> DecodeGapRecord(std::string_view value) {
  GapRecord record;
  std::optional<size_t> meta = DecodeGapMeta(value, record);
  if (!meta) return absl::DataLossError("gap record: malformed meta");
  record.encoded.assign(value.substr(*meta));
  return record;
}

bool GapMatches(const GapRecord& r, const GapRecordFilter& f) {
  if (f.state == GapRecordFilter::State::kOpen && !r.open) return false;
  if (f.state == GapRecordFilter::State::kResolved && r.open) return false;
  if (!f.kind.empty() && r.kind != f.kind) return false;
  if (!f.stage.empty() && r.stage != f.stage) return false;
  if (!f.partner_id.empty() && r.partner_id != f.partner_id) return false;
  if (!f.order_id.empty() && r.order_id != f.order_id) return false;
  if (f.since_from_unix_nano != 0 && r.since_unix_nano < f.since_from_unix_nano) return false;
  if (f.since_to_unix_nano != 0 && r.since_unix_nano > f.since_to_unix_nano) return false;
  return true;
}

// Whether `a` comes before `b` newest first: since descending, then id ascending.
bool GapNewer(const GapPosition& a, const GapPosition& b) {
  return a.first != b.first ? a.first > b.first : a.second < b.second;
}

GapPosition PositionOf(const GapRecord& r) { return {r.since_unix_nano, r.id}; }

constexpr size_t kBlockKeySize = 32;
// Bytes of trace index memtable per hash bucket. An entry with its share of its bucket's own
// list takes roughly 60-100 bytes, so a full memtable has one or two entries per bucket, and
// the bucket array (8 bytes a bucket) takes 1/16 of it. A flush reads the memtable in key
// order, which this memtable sorts then; the ingest figures include that.
constexpr size_t kTraceIndexBytesPerBucket = 128;

// The sampler_pending family: buffering(8) trace_id(16) part(4); part kKeptPart marks a
// buffering decided keep. The decided-below mark sorts before every buffering (never 0).
constexpr size_t kPendingKeySize = 28;
constexpr uint32_t kKeptPart = 0xffffffff;
const std::string kDecidedBelowKey(1, '\0');

// The forward_queue family: seq(8) -> the span block's key(32) and its size(4). The entry
// points at the stored block rather than copying it: the spans are written once, and queuing
// costs ingest a 44-byte row per block. The deleted-below mark sorts before every entry (seqs
// start at 1).
constexpr size_t kForwardKeySize = 8;
constexpr size_t kForwardValueSize = 36;
const std::string kForwardDeletedBelowKey(1, '\0');

std::string ForwardKey(uint64_t seq) {
  std::string key;
  key.reserve(kForwardKeySize);
  PutBigEndian(key, seq);
  return key;
}

// The block size a forward entry records; 0 for a malformed entry.
uint64_t ForwardSizeOf(std::string_view value) {
  if (value.size() != kForwardValueSize) return 0;
  uint32_t size = 0;
  for (size_t i = 32; i < 36; ++i) size = size << 8 | static_cast<uint8_t>(value[i]);
  return size;
}

std::string PendingKey(uint64_t buffering, const base::TraceId& trace, uint32_t part) {
  std::string key;
  key.reserve(kPendingKeySize);
  PutBigEndian(key, buffering);
  key.append(trace.AsBytes());
  for (int shift = 24; shift >= 0; shift -= 8) key.push_back(static_cast<char>(part >> shift));
  return key;
}

uint32_t PendingPartOf(std::string_view key) {
  uint32_t part = 0;
  for (size_t i = 24; i < 28; ++i) part = part << 8 | static_cast<uint8_t>(key[i]);
  return part;
}

// A store's column families, found by name when it opens.
struct Families {
  rocksdb::ColumnFamilyHandle* blocks = nullptr;
  rocksdb::ColumnFamilyHandle* trace_index = nullptr;
  rocksdb::ColumnFamilyHandle* orders = nullptr;
  rocksdb::ColumnFamilyHandle* order_index = nullptr;
  rocksdb::ColumnFamilyHandle* gaps = nullptr;
  rocksdb::ColumnFamilyHandle* pending = nullptr;
  rocksdb::ColumnFamilyHandle* forward = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> all;  // every handle opened, to destroy
};

struct OpenedDb {
  std::unique_ptr<rocksdb::DB> db;
  Families families;
  bool read_only = false;
};

void CloseDb(OpenedDb& open) {
  if (open.db == nullptr) return;
  for (rocksdb::ColumnFamilyHandle* h : open.families.all) open.db->DestroyColumnFamilyHandle(h);
  open.families = Families{};
  open.db->Close();
  open.db.reset();
}

absl::StatusOr<OpenedDb> OpenDb(const RocksStoreOptions& options, bool read_only);

std::string BlockKey(uint64_t bucket, uint64_t seq, const base::TraceId& trace) {
  std::string key;
  key.reserve(kBlockKeySize);
  PutBigEndian(key, bucket);
  PutBigEndian(key, seq);
  key.append(trace.AsBytes());
  return key;
}

std::string TraceIndexKey(const base::TraceId& trace, uint64_t bucket, uint64_t seq) {
  std::string key;
  key.reserve(kBlockKeySize);
  key.append(trace.AsBytes());
  PutBigEndian(key, bucket);
  PutBigEndian(key, seq);
  return key;
}

// The trace index entry of a block key.
std::string TraceIndexKeyOf(std::string_view block_key) {
  std::string key;
  key.reserve(kBlockKeySize);
  key.append(block_key.substr(16, 16));
  key.append(block_key.substr(0, 16));
  return key;
}

// The index keys under which an order is listed.
std::vector<std::string> OrderIndexKeys(const model::OrderRecord& r) {
  std::vector<std::string> keys;
  std::string created;
  PutBigEndian(created, r.first_seen_unix_nano);
  keys.push_back("c" + created + r.order_id);
  if (const model::StatusReached* current = r.CurrentStatus()) {
    keys.push_back("s" + current->status + std::string(1, '\0') + created + r.order_id);
  }
  if (!r.partner_id.empty()) {
    keys.push_back("p" + r.partner_id + std::string(1, '\0') + created + r.order_id);
  }
  return keys;
}

// The part of an order index key before its time: 'c', or 's' status '\0', or 'p' partner
// '\0'. Keys under one such prefix arrive in about time order, so RocksDB keeps an insert
// hint per prefix and most index inserts land next to the previous one.
class OrderIndexPrefix final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "ordertrace.OrderIndexPrefix"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    if (key.empty() || key[0] == 'c') return rocksdb::Slice(key.data(), key.empty() ? 0 : 1);
    const void* end = std::memchr(key.data(), '\0', key.size());
    if (end == nullptr) return key;
    return rocksdb::Slice(key.data(), static_cast<const char*>(end) - key.data() + 1);
  }
  bool InDomain(const rocksdb::Slice& key) const override { return !key.empty(); }
};

// A span block key's time bucket, for RocksDB's memtable insert hints. Only whole block keys
// are in its domain: RocksDB 7.8 shares one hint per prefix between a memtable's keys and its
// range deletions (facebook/rocksdb#5118), and retention's DeleteRange starts at an 8-byte key.
class BlockBucketPrefix final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "ordertrace.BlockBucketPrefix"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), std::min<size_t>(key.size(), 8));
  }
  bool InDomain(const rocksdb::Slice& key) const override { return key.size() == kBlockKeySize; }
};

class RocksStore final : public Store {
 public:
  RocksStore(RocksStoreOptions options, OpenedDb open)
      : options_(std::move(options)), open_(std::move(open)) {
    read_only_ = open_.read_only;
    out_of_space_ = open_.read_only;
    // Block sequence numbers only need to be unique and increasing; the clock gives a start
    // past every number an earlier run used (unless the clock went back by more than the
    // number of blocks written since).
    next_seq_ = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
    InitForwardQueue();
  }

  ~RocksStore() override { CloseDb(open_); }

  absl::Status Write(const WriteSet& writes) override {
    if (absl::Status room = MakeRoomForWrite(); !room.ok()) return room;
    std::shared_lock lock(open_mu_);
    std::vector<std::string> encoded_orders;
    encoded_orders.reserve(writes.orders.size());
    for (const OrderUpdate& update : writes.orders) {
      encoded_orders.push_back(EncodeOrderRecord(update.after));
    }
    // Sized up front: growing the batch by doubling copied and page-faulted it again.
    constexpr size_t kPerEntry = 16;  // tag, column family and lengths
    size_t bytes = 64;
    for (const SpanBlock& block : writes.blocks) {
      bytes += block.encoded.size() + 2 * (kBlockKeySize + kPerEntry);
    }
    for (const PendingBlock& block : writes.pending.puts) {
      bytes += block.encoded.size() + kPendingKeySize + 8 + kPerEntry;
    }
    // The forward queue takes the stored blocks' bytes as they are: no second encoding.
    const bool queue = options_.forward_queue && forward() != nullptr && !writes.blocks.empty();
    uint64_t queue_start = 0;
    uint64_t queue_bytes = 0;
    if (queue) {
      for (const SpanBlock& block : writes.blocks) queue_bytes += block.encoded.size();
      bytes += writes.blocks.size() * (kForwardKeySize + kForwardValueSize + kPerEntry);
      std::lock_guard<std::mutex> lock(forward_mu_);
      queue_start = forward_next_;
      forward_next_ += writes.blocks.size();
      forward_in_flight_.insert(queue_start);
    }
    for (size_t i = 0; i < writes.orders.size(); ++i) {
      const model::OrderRecord& r = writes.orders[i].after;
      // The record, and its index keys at most twice each (a delete and a put).
      bytes += encoded_orders[i].size() + r.order_id.size() + kPerEntry +
               6 * (r.order_id.size() + r.partner_id.size() + 48 + kPerEntry);
    }
    rocksdb::WriteBatch batch(bytes);
    if (!writes.blocks.empty()) {
      uint64_t seq = next_seq_.fetch_add(writes.blocks.size());
      uint64_t queued = queue_start;
      for (const SpanBlock& block : writes.blocks) {
        uint64_t bucket = BucketOf(block.time_unix_nano);
        std::string block_key = BlockKey(bucket, seq, block.trace_id);
        batch.Put(blocks(), block_key, block.encoded);
        batch.Put(trace_index(), TraceIndexKey(block.trace_id, bucket, seq), rocksdb::Slice());
        if (queue) {
          const uint32_t size = static_cast<uint32_t>(block.encoded.size());
          for (int shift = 24; shift >= 0; shift -= 8) {
            block_key.push_back(static_cast<char>(size >> shift));
          }
          batch.Put(forward(), ForwardKey(queued++), block_key);
        }
        ++seq;
      }
    }
    // Orders go in key order: a memtable insert starts its search where the previous one
    // ended, which saves most of the search for keys close to each other.
    std::vector<size_t> order_of(writes.orders.size());
    for (size_t i = 0; i < order_of.size(); ++i) order_of[i] = i;
    std::sort(order_of.begin(), order_of.end(), [&](size_t a, size_t b) {
      return writes.orders[a].after.order_id < writes.orders[b].after.order_id;
    });
    for (size_t i : order_of) {
      const OrderUpdate& update = writes.orders[i];
      // Only the index keys that changed are written: most updates move none of them.
      std::vector<std::string> new_keys = OrderIndexKeys(update.after);
      std::vector<std::string> old_keys;
      if (update.before) old_keys = OrderIndexKeys(*update.before);
      for (const std::string& old_key : old_keys) {
        if (std::find(new_keys.begin(), new_keys.end(), old_key) == new_keys.end()) {
          batch.Delete(order_index(), old_key);
        }
      }
      for (const std::string& key : new_keys) {
        if (std::find(old_keys.begin(), old_keys.end(), key) == old_keys.end()) {
          batch.Put(order_index(), key, rocksdb::Slice());
        }
      }
      batch.Put(orders(), update.after.order_id, encoded_orders[i]);
    }
    AddPendingChanges(writes.pending, batch);
    absl::Status written = Commit(batch, options_.sync_writes, "store write");
    if (written.ok() && writes.pending.decided_below > deleted_below_.load()) {
      deleted_below_ = writes.pending.decided_below;  // one writer decides (store.h)
    }
    if (queue) {
      std::lock_guard<std::mutex> lock(forward_mu_);
      forward_in_flight_.erase(queue_start);
      if (written.ok()) forward_bytes_ += queue_bytes;
    }
    return written;
  }

  absl::StatusOr<std::vector<ForwardEntry>> ReadForwardQueue(uint64_t from_seq, size_t max_entries,
                                                             size_t max_bytes) override {
    std::shared_lock lock(open_mu_);
    std::vector<ForwardEntry> out;
    if (forward() == nullptr || max_entries == 0) return out;
    const uint64_t limit = ForwardWrittenBelow();
    const uint64_t start = std::max({from_seq, forward_deleted_below_.load(), uint64_t{1}});
    if (start >= limit) return out;
    const std::string upper = ForwardKey(limit);
    const rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions read;
    read.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, forward()));
    size_t bytes = 0;
    for (it->Seek(ForwardKey(start)); it->Valid() && out.size() < max_entries; it->Next()) {
      std::string_view key = it->key().ToStringView();
      if (key.size() != kForwardKeySize) continue;
      const std::string_view value = it->value().ToStringView();
      const uint64_t size = ForwardSizeOf(value);
      if (!out.empty() && bytes + size > max_bytes) break;
      bytes += size;
      ForwardEntry entry{GetBigEndian(key), std::string(), size};
      if (size > 0) {
        // A block retention removed before it was sent reads as empty (NotFound).
        rocksdb::Status s =
            db_->Get(rocksdb::ReadOptions(), blocks(), value.substr(0, 32), &entry.encoded);
        if (!s.ok() && !s.IsNotFound()) return ToStatus(s, "forward queue block read");
      }
      out.push_back(std::move(entry));
    }
    if (!it->status().ok()) return ToStatus(it->status(), "forward queue read");
    return out;
  }

  absl::Status DeleteForwardQueue(uint64_t end_seq) override {
    std::shared_lock lock(open_mu_);
    if (forward() == nullptr) return absl::OkStatus();
    // Never past a write under way: its entries are not read yet.
    end_seq = std::min(end_seq, ForwardWrittenBelow());
    const uint64_t begin_seq = std::max<uint64_t>(forward_deleted_below_.load(), 1);
    if (end_seq <= begin_seq) return absl::OkStatus();
    const std::string begin = ForwardKey(begin_seq), end = ForwardKey(end_seq);
    // Point deletes of the keys there are, not a range: every reader of a memtable gathers its
    // range tombstones again, and a long-lived memtable would collect one per batch sent. The
    // scan also counts the bytes that go.
    rocksdb::WriteBatch batch;
    uint64_t removed = 0;
    {
      const rocksdb::Slice end_slice(end);
      rocksdb::ReadOptions read;
      read.iterate_upper_bound = &end_slice;
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, forward()));
      for (it->Seek(begin); it->Valid(); it->Next()) {
        if (it->key().size() != kForwardKeySize) continue;
        removed += ForwardSizeOf(it->value().ToStringView());
        batch.Delete(forward(), it->key());
      }
      if (!it->status().ok()) return ToStatus(it->status(), "forward queue scan");
    }
    batch.Put(forward(), kForwardDeletedBelowKey, end);
    absl::Status s = Commit(batch, false, "forward queue delete");
    if (!s.ok()) return s;
    forward_deleted_below_ = end_seq;
    std::lock_guard<std::mutex> bytes_lock(forward_mu_);
    forward_bytes_ -= std::min(removed, forward_bytes_);
    return absl::OkStatus();
  }

  uint64_t ForwardQueueBytes() const override {
    std::lock_guard<std::mutex> lock(forward_mu_);
    return forward_bytes_;
  }

  absl::StatusOr<std::vector<PendingBlock>> ReadPendingBlocks() override {
    std::shared_lock lock(open_mu_);
    if (pending() == nullptr) return std::vector<PendingBlock>();  // read-only, older store
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), pending()));
    uint64_t decided_below = 0;
    it->Seek(kDecidedBelowKey);
    if (it->Valid() && it->key() == kDecidedBelowKey && it->value().size() == 8) {
      decided_below = GetBigEndian(it->value().ToStringView());
    }
    std::vector<PendingBlock> out;
    size_t group_start = 0;  // the first block of the buffering being read
    std::string group_prefix;
    std::string from;
    PutBigEndian(from, std::max<uint64_t>(decided_below, 1));
    for (it->Seek(from); it->Valid(); it->Next()) {
      std::string_view key = it->key().ToStringView();
      if (key.size() != kPendingKeySize) continue;
      if (key.substr(0, 24) != group_prefix) {
        group_prefix.assign(key.substr(0, 24));
        group_start = out.size();
      }
      if (PendingPartOf(key) == kKeptPart) {  // decided keep: its spans are stored
        out.resize(group_start);
        continue;
      }
      std::string_view value = it->value().ToStringView();
      auto trace = base::TraceId::FromBytes(key.substr(8, 16));
      if (!trace || value.size() < 8) continue;
      out.push_back(PendingBlock{GetBigEndian(key), *trace, PendingPartOf(key), GetBigEndian(value),
                                 std::string(value.substr(8))});
    }
    if (!it->status().ok()) return ToStatus(it->status(), "pending detail scan");
    return out;
  }

  bool IsOutOfSpace() const override { return out_of_space_.load(std::memory_order_relaxed); }

  absl::StatusOr<std::vector<std::string>> ReadTrace(const base::TraceId& trace_id) override {
    std::shared_lock lock(open_mu_);
    std::vector<std::string> block_keys;
    {
      std::unique_ptr<rocksdb::Iterator> it(
          db_->NewIterator(rocksdb::ReadOptions(), trace_index()));
      std::string prefix(trace_id.AsBytes());
      for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
        std::string_view key = it->key().ToStringView();
        if (key.size() != kBlockKeySize) continue;
        std::string block_key(key.substr(16, 16));
        block_key.append(key.substr(0, 16));
        block_keys.push_back(std::move(block_key));
      }
      if (!it->status().ok()) return ToStatus(it->status(), "trace lookup");
    }
    // Index order is bucket, then sequence: oldest first.
    std::vector<std::string> out;
    out.reserve(block_keys.size());
    for (const std::string& key : block_keys) {
      std::string value;
      rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), blocks(), key, &value);
      if (s.IsNotFound()) continue;  // its bucket was just removed by retention
      if (!s.ok()) return ToStatus(s, "trace read");
      out.push_back(std::move(value));
    }
    return out;
  }

  absl::Status ScanBlocks(
      uint64_t from_unix_nano, uint64_t to_unix_nano,
      const std::function<bool(const base::TraceId&, std::string_view)>& visit) override {
    std::shared_lock lock(open_mu_);
    if (from_unix_nano > to_unix_nano) return absl::OkStatus();
    uint64_t first = BucketOf(from_unix_nano);
    uint64_t last = BucketOf(to_unix_nano);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), blocks()));
    // Keys sort by bucket, then by write sequence: walking backwards from the end of the last
    // bucket visits the newest first.
    std::string upper;
    PutBigEndian(upper, last + 1);
    if (last == UINT64_MAX) upper.assign(8, '\xff');
    for (it->SeekForPrev(upper); it->Valid(); it->Prev()) {
      std::string_view key = it->key().ToStringView();
      if (key.size() != kBlockKeySize) continue;
      const uint64_t bucket = GetBigEndian(key);
      if (bucket < first) break;
      if (bucket > last) continue;
      auto trace = base::TraceId::FromBytes(key.substr(16, 16));
      if (trace && !visit(*trace, it->value().ToStringView())) return absl::OkStatus();
    }
    return ToStatus(it->status(), "block scan");
  }

  absl::StatusOr<std::optional<model::OrderRecord>> GetOrder(const std::string& order_id) override {
    std::shared_lock lock(open_mu_);
    return ReadOrder(order_id);
  }

  absl::StatusOr<std::optional<model::OrderRecord>> ReadOrder(const std::string& order_id) {
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), orders(), order_id, &value);
    if (s.IsNotFound()) return std::optional<model::OrderRecord>();
    if (!s.ok()) return ToStatus(s, "order read");
    absl::StatusOr<model::OrderRecord> record = DecodeOrderRecord(value);
    if (!record.ok()) return record.status();
    return std::optional<model::OrderRecord>(std::move(*record));
  }

  absl::Status ScanOrders(const std::function<bool(const model::OrderRecord&)>& visit) override {
    std::shared_lock lock(open_mu_);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), orders()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      absl::StatusOr<model::OrderRecord> record =
          DecodeOrderRecord(std::string_view(it->value().data(), it->value().size()));
      if (!record.ok()) return record.status();
      if (!visit(*record)) break;
    }
    return ToStatus(it->status(), "order scan");
  }

  absl::Status WriteGapRecords(const std::vector<GapRecord>& puts,
                               const std::vector<std::string>& deletes) override {
    std::shared_lock open_lock(open_mu_);
    std::lock_guard<std::mutex> lock(gap_write_mu_);
    rocksdb::WriteBatch batch;
    // What this batch leaves of each id it touched, so that an id put twice, or put and then
    // deleted, moves the index entries the batch itself wrote.
    std::map<std::string, std::optional<GapRecord>> written;
    auto current = [&](const std::string& id) -> absl::StatusOr<std::optional<GapRecord>> {
      auto it = written.find(id);
      if (it != written.end()) return it->second;
      return GetGapRecordAt(rocksdb::ReadOptions(), id);
    };
    for (const GapRecord& record : puts) {
      absl::StatusOr<std::optional<GapRecord>> before = current(record.id);
      if (!before.ok()) return before.status();
      std::vector<std::string> new_keys = GapIndexKeys(record);
      if (before->has_value()) {
        for (const std::string& key : GapIndexKeys(**before)) {
          if (std::find(new_keys.begin(), new_keys.end(), key) == new_keys.end()) {
            batch.Delete(gaps(), key);
          }
        }
      }
      const std::string meta = EncodeGapMeta(record);
      for (const std::string& key : new_keys) {
        batch.Put(gaps(), key, key[0] == kGapTimeTag ? rocksdb::Slice(meta) : rocksdb::Slice());
      }
      batch.Put(gaps(), GapRecordKey(record.id), meta + record.encoded);
      GapRecord kept = record;
      kept.encoded.clear();
      written[record.id] = std::move(kept);
    }
    for (const std::string& id : deletes) {
      absl::StatusOr<std::optional<GapRecord>> before = current(id);
      if (!before.ok()) return before.status();
      if (!before->has_value()) continue;
      DeleteGap(**before, batch);
      written[id] = std::nullopt;
    }
    return Commit(batch, options_.sync_writes, "gap write");
  }

  absl::StatusOr<std::optional<GapRecord>> GetGapRecord(const std::string& id) override {
    std::shared_lock lock(open_mu_);
    return GetGapRecordAt(rocksdb::ReadOptions(), id);
  }

  absl::StatusOr<std::vector<GapRecord>> ReadOpenGapRecords() override {
    std::shared_lock lock(open_mu_);
    rocksdb::ManagedSnapshot snapshot(db_.get());
    rocksdb::ReadOptions read;
    read.snapshot = snapshot.snapshot();
    std::vector<GapRecord> out;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, gaps()));
    const std::string prefix(1, kGapOpenTag);
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      absl::StatusOr<std::optional<GapRecord>> record =
          GetGapRecordAt(read, std::string(it->key().ToStringView().substr(1)));
      if (!record.ok()) return record.status();
      if (record->has_value()) out.push_back(std::move(**record));
    }
    if (!it->status().ok()) return ToStatus(it->status(), "open gap scan");
    return out;
  }

  absl::StatusOr<GapRecordPage> ListGapRecords(const GapRecordFilter& filter) override {
    std::shared_lock lock(open_mu_);
    if (filter.limit == 0) return GapRecordPage{};
    // One snapshot for the index and the records: a gap moved meanwhile is seen once.
    rocksdb::ManagedSnapshot snapshot(db_.get());
    rocksdb::ReadOptions read;
    read.snapshot = snapshot.snapshot();
    if (!filter.order_id.empty()) return ListOrderGaps(read, filter);
    return ListGapsByTime(read, filter);
  }

  absl::StatusOr<std::vector<model::OrderRecord>> ListOrders(const OrderFilter& filter) override {
    std::shared_lock lock(open_mu_);
    std::string prefix;
    if (!filter.status.empty()) {
      prefix = "s" + filter.status + std::string(1, '\0');
    } else if (!filter.partner_id.empty()) {
      prefix = "p" + filter.partner_id + std::string(1, '\0');
    } else {
      prefix = "c";
    }
    std::string upper = prefix;
    upper.back() = static_cast<char>(upper.back() + 1);

    std::vector<model::OrderRecord> out;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), order_index()));
    size_t scanned = 0;
    for (it->SeekForPrev(upper); it->Valid() && it->key().starts_with(prefix) &&
                                 out.size() < filter.limit && scanned < kMaxIndexScan;
         it->Prev(), ++scanned) {
      std::string order_id(it->key().ToStringView().substr(prefix.size() + 8));
      absl::StatusOr<std::optional<model::OrderRecord>> record = ReadOrder(order_id);
      if (!record.ok()) return record.status();
      if (!record->has_value()) continue;
      const model::OrderRecord& r = **record;
      const model::StatusReached* current = r.CurrentStatus();
      if (!filter.status.empty() && (current == nullptr || current->status != filter.status)) {
        continue;
      }
      if (!filter.partner_id.empty() && r.partner_id != filter.partner_id) continue;
      out.push_back(std::move(**record));
    }
    if (!it->status().ok()) return ToStatus(it->status(), "order list");
    return out;
  }

  absl::StatusOr<RetentionStats> ApplyRetention(uint64_t span_cutoff_unix_nano,
                                                uint64_t order_cutoff_unix_nano) override {
    std::shared_lock lock(open_mu_);
    RetentionStats stats;
    // Spans: every bucket that ends before the cutoff goes whole, with the trace index entries
    // of its blocks (written in chunks as the scan goes: a bucket can hold millions).
    uint64_t cutoff_bucket = BucketOf(span_cutoff_unix_nano);
    {
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), blocks()));
      std::string end;
      PutBigEndian(end, cutoff_bucket);
      std::set<uint64_t> buckets;
      rocksdb::WriteBatch index_deletes;
      constexpr size_t kDeletesPerWrite = 10000;
      size_t pending = 0;
      for (it->SeekToFirst(); it->Valid() && it->key().compare(end) < 0; it->Next()) {
        std::string_view key = it->key().ToStringView();
        if (key.size() == kBlockKeySize) {
          index_deletes.Delete(trace_index(), TraceIndexKeyOf(key));
          ++pending;
        }
        buckets.insert(GetBigEndian(key));
        ++stats.span_blocks_removed;
        if (pending == kDeletesPerWrite) {
          absl::Status s = Commit(index_deletes, false, "retention");
          if (!s.ok()) return s;
          index_deletes.Clear();
          pending = 0;
        }
      }
      if (!it->status().ok()) return ToStatus(it->status(), "retention scan");
      if (!buckets.empty()) {
        std::string begin;
        PutBigEndian(begin, 0);
        index_deletes.DeleteRange(blocks(), begin, end);
        absl::Status s = Commit(index_deletes, false, "retention");
        if (!s.ok()) return s;
        stats.span_buckets_removed = buckets.size();
        rocksdb::Slice begin_slice(begin), end_slice(end);
        // Reclaims the space now rather than at the next natural compaction.
        db_->CompactRange(rocksdb::CompactRangeOptions(), blocks(), &begin_slice, &end_slice);
      }
    }
    // Orders: walk the creation index from the oldest; only orders created before the cutoff
    // can have ended before it.
    {
      std::unique_ptr<rocksdb::Iterator> it(
          db_->NewIterator(rocksdb::ReadOptions(), order_index()));
      rocksdb::WriteBatch batch;
      std::vector<std::string> removed_orders;
      for (it->Seek("c"); it->Valid() && it->key().starts_with("c"); it->Next()) {
        std::string_view key = it->key().ToStringView();
        if (GetBigEndian(key.substr(1)) >= order_cutoff_unix_nano) break;
        std::string order_id(key.substr(9));
        absl::StatusOr<std::optional<model::OrderRecord>> record = ReadOrder(order_id);
        if (!record.ok()) return record.status();
        if (!record->has_value() || (*record)->last_seen_unix_nano >= order_cutoff_unix_nano) {
          continue;
        }
        for (const std::string& k : OrderIndexKeys(**record)) batch.Delete(order_index(), k);
        batch.Delete(orders(), order_id);
        removed_orders.push_back(std::move(order_id));
        ++stats.orders_removed;
      }
      if (!it->status().ok()) return ToStatus(it->status(), "order retention scan");
      absl::Status s = Commit(batch, false, "order retention");
      if (!s.ok()) return s;
      // Their gaps go in a write of their own: the gap writer waits for this part only. A pass
      // interrupted in between leaves gaps without an order, which the next pass removes.
      s = RemoveExpiredGaps(removed_orders, order_cutoff_unix_nano, stats);
      if (!s.ok()) return s;
    }
    return stats;
  }

 private:
  void DeleteGap(const GapRecord& record, rocksdb::WriteBatch& batch) {
    for (const std::string& key : GapIndexKeys(record)) batch.Delete(gaps(), key);
    batch.Delete(gaps(), GapRecordKey(record.id));
  }

  absl::StatusOr<std::optional<GapRecord>> GetGapRecordAt(const rocksdb::ReadOptions& read,
                                                          const std::string& id) {
    std::string value;
    rocksdb::Status s = db_->Get(read, gaps(), GapRecordKey(id), &value);
    if (s.IsNotFound()) return std::optional<GapRecord>();
    if (!s.ok()) return ToStatus(s, "gap read");
    absl::StatusOr<GapRecord> record = DecodeGapRecord(value);
    if (!record.ok()) return record.status();
    return std::optional<GapRecord>(*std::move(record));
  }

  // An order has few gaps: all of them are read, then sorted and cut to the page.
  absl::StatusOr<GapRecordPage> ListOrderGaps(const rocksdb::ReadOptions& read,
                                              const GapRecordFilter& filter) {
    std::vector<GapRecord> matching;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, gaps()));
    const std::string prefix = GapOrderPrefix(filter.order_id);
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      absl::StatusOr<std::optional<GapRecord>> record =
          GetGapRecordAt(read, std::string(it->key().ToStringView().substr(prefix.size())));
      if (!record.ok()) return record.status();
      if (!record->has_value() || !GapMatches(**record, filter)) continue;
      if (filter.after && !GapNewer(*filter.after, PositionOf(**record))) continue;
      matching.push_back(std::move(**record));
    }
    if (!it->status().ok()) return ToStatus(it->status(), "order gap scan");
    std::sort(matching.begin(), matching.end(), [](const GapRecord& a, const GapRecord& b) {
      return GapNewer(PositionOf(a), PositionOf(b));
    });
    GapRecordPage page;
    if (matching.size() > filter.limit) {
      matching.resize(filter.limit);
      page.resume_after = PositionOf(matching.back());
    }
    page.records = std::move(matching);
    return page;
  }

  // Walks the time index from the newest place the filter allows, matching each entry's meta
  // and reading only the records that match.
  absl::StatusOr<GapRecordPage> ListGapsByTime(const rocksdb::ReadOptions& read,
                                               const GapRecordFilter& filter) {
    std::string start(1, kGapTimeTag);
    if (filter.since_to_unix_nano != 0) start = GapTimeKey(filter.since_to_unix_nano, "");
    std::string after_key;
    if (filter.after) {
      after_key = GapTimeKey(filter.after->first, filter.after->second);
      start = std::max(start, after_key);
    }
    GapRecordPage page;
    std::optional<GapPosition> last_scanned;
    size_t scanned = 0;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, gaps()));
    for (it->Seek(start); it->Valid(); it->Next()) {
      std::string_view key = it->key().ToStringView();
      if (key.size() < 9 || key[0] != kGapTimeTag) break;
      if (!after_key.empty() && key == after_key) continue;
      const uint64_t since = ~GetBigEndian(key.substr(1));
      if (filter.since_from_unix_nano != 0 && since < filter.since_from_unix_nano) break;
      GapPosition position{since, std::string(key.substr(9))};
      if (scanned == filter.max_scanned && last_scanned) {
        page.resume_after = last_scanned;
        break;
      }
      ++scanned;
      GapRecord meta;
      if (!DecodeGapMeta(it->value().ToStringView(), meta)) {
        return absl::DataLossError("gap time index: malformed meta for " + position.second);
      }
      if (GapMatches(meta, filter)) {
        if (page.records.size() == filter.limit) {
          page.resume_after = PositionOf(page.records.back());
          break;
        }
        absl::StatusOr<std::optional<GapRecord>> record = GetGapRecordAt(read, position.second);
        if (!record.ok()) return record.status();
        if (record->has_value()) page.records.push_back(std::move(**record));
      }
      last_scanned = std::move(position);
    }
    if (!it->status().ok()) return ToStatus(it->status(), "gap scan");
    return page;
  }

  // The gap part of retention: the gaps of `removed_orders`, then, walking the time index from
  // the oldest up to the cutoff, gaps with no order id or whose order is no longer stored (an
  // order removed by an earlier pass that was interrupted, or a gap written as it went).
  absl::Status RemoveExpiredGaps(const std::vector<std::string>& removed_orders,
                                 uint64_t order_cutoff_unix_nano, RetentionStats& stats) {
    std::lock_guard<std::mutex> lock(gap_write_mu_);
    rocksdb::WriteBatch batch;
    std::set<std::string> deleted;
    auto remove = [&](const GapRecord& record) {
      if (!deleted.insert(record.id).second) return;
      DeleteGap(record, batch);
      ++stats.gaps_removed;
    };
    rocksdb::ReadOptions read;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, gaps()));
    for (const std::string& order_id : removed_orders) {
      const std::string prefix = GapOrderPrefix(order_id);
      for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
        std::string id(it->key().ToStringView().substr(prefix.size()));
        absl::StatusOr<std::optional<GapRecord>> record = GetGapRecordAt(read, id);
        if (!record.ok()) return record.status();
        if (record->has_value()) {
          remove(**record);
        } else {
          batch.Delete(gaps(), it->key());  // an index entry left without its record
        }
      }
      if (!it->status().ok()) return ToStatus(it->status(), "gap retention scan");
    }
    if (order_cutoff_unix_nano != 0) {
      // The time index sorts newest first: the oldest entry is the last one.
      for (it->SeekForPrev(std::string(1, kGapOrderTag)); it->Valid(); it->Prev()) {
        std::string_view key = it->key().ToStringView();
        if (key.size() < 9 || key[0] != kGapTimeTag) break;
        if (~GetBigEndian(key.substr(1)) >= order_cutoff_unix_nano) break;
        GapRecord meta;
        if (!DecodeGapMeta(it->value().ToStringView(), meta)) continue;
        if (!meta.order_id.empty()) {
          std::string ignored;
          rocksdb::Status s = db_->Get(read, orders(), meta.order_id, &ignored);
          if (s.ok()) continue;
          if (!s.IsNotFound()) return ToStatus(s, "gap retention order read");
        }
        remove(meta);
      }
      if (!it->status().ok()) return ToStatus(it->status(), "gap retention scan");
    }
    return Commit(batch, false, "gap retention");
  }

  // Every forward entry below this seq is written (none is in a write under way).
  uint64_t ForwardWrittenBelow() const {
    std::lock_guard<std::mutex> lock(forward_mu_);
    return forward_in_flight_.empty() ? forward_next_ : *forward_in_flight_.begin();
  }

  // Finds where the forward queue stands (its next seq, what is deleted, its bytes). A store
  // opened without a forward queue drops what an earlier run queued: the forward is off now,
  // and nothing else would ever remove it.
  void InitForwardQueue() {
    if (forward() == nullptr) return;
    uint64_t deleted_below = 0;
    std::string mark;
    if (db_->Get(rocksdb::ReadOptions(), forward(), kForwardDeletedBelowKey, &mark).ok() &&
        mark.size() == 8) {
      deleted_below = GetBigEndian(mark);
    }
    uint64_t last = 0, entries = 0, bytes = 0;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), forward()));
    for (it->Seek(ForwardKey(std::max<uint64_t>(deleted_below, 1))); it->Valid(); it->Next()) {
      if (it->key().size() != kForwardKeySize) continue;
      last = GetBigEndian(it->key().ToStringView());
      bytes += ForwardSizeOf(it->value().ToStringView());
      ++entries;
    }
    if (!it->status().ok()) {
      spdlog::error("store: forward queue unreadable: {}", it->status().ToString());
    }
    it.reset();
    forward_next_ = std::max({last + 1, deleted_below, uint64_t{1}});
    forward_deleted_below_ = deleted_below;
    forward_bytes_ = bytes;
    if (entries == 0) return;
    if (options_.forward_queue || open_.read_only) {
      spdlog::info("store: {} span blocks ({} KiB) queued for the forward by an earlier run",
                   entries, bytes >> 10);
      return;
    }
    rocksdb::WriteBatch batch;
    batch.DeleteRange(forward(), ForwardKey(std::max<uint64_t>(deleted_below, 1)),
                      ForwardKey(forward_next_));
    batch.Put(forward(), kForwardDeletedBelowKey, ForwardKey(forward_next_));
    rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), &batch);
    if (!s.ok()) {
      spdlog::error("store: cannot drop the forward queue: {}", s.ToString());
      return;
    }
    forward_deleted_below_ = forward_next_;
    forward_bytes_ = 0;
    spdlog::warn(
        "store: the forward is off: dropped {} span blocks ({} KiB) an earlier run had queued "
        "for it",
        entries, bytes >> 10);
  }

  uint64_t BucketOf(uint64_t unix_nano) const {
    return unix_nano / (options_.bucket_seconds * 1'000'000'000ULL);
  }
  // The pending detail's part of a write: new blocks, keep marks, and the decided bufferings'
  // blocks dropped in one range.
  void AddPendingChanges(const PendingChanges& changes, rocksdb::WriteBatch& batch) {
    for (const PendingBlock& block : changes.puts) {
      // In two parts: the block is not copied to put its deadline in front.
      std::string deadline;
      PutBigEndian(deadline, block.deadline_unix_nano);
      const std::string key = PendingKey(block.buffering, block.trace_id, block.part);
      const rocksdb::Slice key_part(key), value_parts[2] = {deadline, block.encoded};
      batch.Put(pending(), rocksdb::SliceParts(&key_part, 1), rocksdb::SliceParts(value_parts, 2));
    }
    for (const auto& [buffering, trace] : changes.kept) {
      batch.Put(pending(), PendingKey(buffering, trace, kKeptPart), rocksdb::Slice());
    }
    if (changes.decided_below != 0) {
      // From where the last one ended, so that range tombstones do not pile up on each other;
      // the first after opening starts at 0 and takes blocks whose write lost a race with their
      // buffering's decision (ReadPendingBlocks skips them meanwhile).
      std::string begin, end;
      PutBigEndian(begin, std::min(deleted_below_.load(), changes.decided_below));
      PutBigEndian(end, changes.decided_below);
      batch.DeleteRange(pending(), begin, end);
      batch.Put(pending(), kDecidedBelowKey, end);
    }
  }

  // Writes a batch; requires open_mu_ (shared). Out of space switches to the degraded mode.
  absl::Status Commit(rocksdb::WriteBatch& batch, bool sync, std::string_view what) {
    if (open_.read_only) return absl::UnavailableError(kOutOfSpaceMessage);
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    rocksdb::Status s = db_->Write(wo, &batch);
    if (IsNoSpace(s)) EnterOutOfSpace(s.ToString());
    return ToStatus(s, what);
  }

  // OK when a write may go ahead: the file system has the reserve free and, if the store was
  // out of space, it has left that mode (RocksDB resumed, or reopened for writing).
  absl::Status MakeRoomForWrite() {
    const uint64_t free = FreeBytes(options_.path);
    if (free < options_.min_free_bytes) {
      EnterOutOfSpace(std::to_string(free >> 20) + " MiB free, below the " +
                      std::to_string(options_.min_free_bytes >> 20) + " MiB reserve");
      return absl::UnavailableError(kOutOfSpaceMessage);
    }
    if (!out_of_space_.load(std::memory_order_relaxed)) return absl::OkStatus();
    return LeaveOutOfSpace();
  }

  void EnterOutOfSpace(const std::string& detail) {
    if (out_of_space_.exchange(true)) return;
    spdlog::error(
        "store: out of disk space in {} ({}); ingest answers 503 and reads go on until there "
        "is room again",
        options_.path, detail);
  }

  absl::Status LeaveOutOfSpace() {
    std::lock_guard<std::mutex> leaving(leave_mu_);
    if (!out_of_space_.load()) return absl::OkStatus();
    rocksdb::Status s;
    if (read_only_) {
      s = ReopenForWriting();
    } else {
      std::shared_lock lock(open_mu_);
      s = db_->Resume();  // clears a background error RocksDB stopped writes for
    }
    if (!s.ok()) {
      spdlog::warn("store: still cannot write after space was freed: {}", s.ToString());
      return absl::UnavailableError(kOutOfSpaceMessage);
    }
    out_of_space_ = false;
    spdlog::info("store: there is room again in {}; ingest resumes", options_.path);
    return absl::OkStatus();
  }

  // A store opened read-only (no room at start) becomes writable. Waits for operations under
  // way; requires leave_mu_.
  rocksdb::Status ReopenForWriting() {
    std::unique_lock lock(open_mu_);
    CloseDb(open_);
    absl::StatusOr<OpenedDb> reopened = OpenDb(options_, /*read_only=*/false);
    if (!reopened.ok()) {
      // Back to reading, so that the API goes on serving.
      absl::StatusOr<OpenedDb> again = OpenDb(options_, /*read_only=*/true);
      if (again.ok()) open_ = std::move(*again);
      return rocksdb::Status::IOError(std::string(reopened.status().message()));
    }
    open_ = std::move(*reopened);
    read_only_ = false;
    return rocksdb::Status::OK();
  }

  // Require open_mu_ (shared or unique).
  rocksdb::ColumnFamilyHandle* blocks() const { return open_.families.blocks; }
  rocksdb::ColumnFamilyHandle* trace_index() const { return open_.families.trace_index; }
  rocksdb::ColumnFamilyHandle* orders() const { return open_.families.orders; }
  rocksdb::ColumnFamilyHandle* order_index() const { return open_.families.order_index; }
  rocksdb::ColumnFamilyHandle* gaps() const { return open_.families.gaps; }
  rocksdb::ColumnFamilyHandle* pending() const { return open_.families.pending; }
  rocksdb::ColumnFamilyHandle* forward() const { return open_.families.forward; }

  // Constant after construction.
  const RocksStoreOptions options_;

  // Replaced only when a store opened read-only reopens for writing: every method holds it
  // shared while it uses the database (never twice in one thread), the reopen holds it alone.
  mutable std::shared_mutex open_mu_;
  OpenedDb open_;
  std::unique_ptr<rocksdb::DB>& db_ = open_.db;  // guarded by open_mu_
  std::atomic<bool> out_of_space_{false};
  // Pending blocks below this buffering are deleted (since this store opened).
  std::atomic<uint64_t> deleted_below_{0};
  std::atomic<bool> read_only_{false};  // written under leave_mu_ and open_mu_
  std::mutex leave_mu_;                 // one thread leaves the out-of-space mode

  std::atomic<uint64_t> next_seq_;
  // Held while gap records are written (each write reads the records it replaces).
  std::mutex gap_write_mu_;

  // The forward queue: seqs are handed out here, and a write's first seq stays in
  // forward_in_flight_ until the write is done, so that readers stop before it.
  mutable std::mutex forward_mu_;
  uint64_t forward_next_ = 1;                       // guarded by forward_mu_
  std::set<uint64_t> forward_in_flight_;            // guarded by forward_mu_
  uint64_t forward_bytes_ = 0;                      // guarded by forward_mu_
  std::atomic<uint64_t> forward_deleted_below_{0};  // written by the one deleting thread
};

}  // namespace

// Moves span blocks stored by the first layout (blocks: bucket, trace, seq; trace_buckets) into
// span_blocks and trace_index, then drops the old families. Idempotent: an interrupted move
// starts again from what is left and rewrites the same keys.
rocksdb::Status MoveLegacySpans(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* legacy_blocks,
                                rocksdb::ColumnFamilyHandle* legacy_trace_buckets,
                                rocksdb::ColumnFamilyHandle* blocks,
                                rocksdb::ColumnFamilyHandle* trace_index) {
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), legacy_blocks));
  rocksdb::WriteBatch batch;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view key = it->key().ToStringView();
    if (key.size() != kBlockKeySize) continue;
    const uint64_t bucket = GetBigEndian(key.substr(0, 8));
    const uint64_t seq = GetBigEndian(key.substr(24, 8));
    auto trace = base::TraceId::FromBytes(key.substr(8, 16));
    if (!trace) continue;
    batch.Put(blocks, BlockKey(bucket, seq, *trace), it->value());
    batch.Put(trace_index, TraceIndexKey(*trace, bucket, seq), rocksdb::Slice());
    if (batch.GetDataSize() > (8 << 20)) {
      rocksdb::Status s = db.Write(rocksdb::WriteOptions(), &batch);
      if (!s.ok()) return s;
      batch.Clear();
    }
  }
  if (!it->status().ok()) return it->status();
  it.reset();
  rocksdb::WriteOptions sync;
  sync.sync = true;  // the old families go next: what moved must be on disk first
  rocksdb::Status s = db.Write(sync, &batch);
  if (s.ok()) s = db.DropColumnFamily(legacy_trace_buckets);
  if (s.ok()) s = db.DropColumnFamily(legacy_blocks);
  return s;
}

// Moves gap rows of the first layout (key: the gap id, value: the gap's JSON) into the indexed
// layout, keeping the JSON as the record (gaps/ still decodes it). The store reads only the
// fields it indexes, by the names gaps/gap_codec writes; the alternative, dropping the rows,
// would lose users' gap history and re-announce their open gaps. A row that is not a JSON
// object with an id is dropped with a warning. Idempotent: a move cut short starts again from
// the rows left, and the new keys are rewritten the same.
rocksdb::Status MoveLegacyGaps(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* gaps) {
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), gaps));
  rocksdb::WriteBatch batch;
  size_t moved = 0;
  size_t dropped = 0;
  auto flush = [&]() {
    rocksdb::WriteOptions sync;
    sync.sync = true;
    rocksdb::Status s = db.Write(sync, &batch);
    batch.Clear();
    return s;
  };
  for (it->Seek(std::string(1, kLegacyGapKeysFrom)); it->Valid(); it->Next()) {
    using nlohmann::json;
    const std::string value = it->value().ToString();
    json document = json::parse(value, nullptr, /*allow_exceptions=*/false);
    GapRecord record;
    bool readable = document.is_object();
    if (readable) {
      try {
        record.id = document.value("id", "");
        record.order_id = document.value("order_id", "");
        record.partner_id = document.value("partner_id", "");
        record.kind = document.value("kind", "");
        record.stage = document.value("stage", "");
        record.since_unix_nano = document.value("since", uint64_t{0});
        // As gaps/ decodes it: open while neither a resolver nor a resolution time is set.
        record.open = document.value("resolved_by", "").empty() &&
                      document.value("resolved_at", uint64_t{0}) == 0;
      } catch (const json::exception&) {
        readable = false;
      }
    }
    readable = readable && !record.id.empty();
    if (readable) {
      const std::string meta = EncodeGapMeta(record);
      for (const std::string& key : GapIndexKeys(record)) {
        batch.Put(gaps, key, key[0] == kGapTimeTag ? rocksdb::Slice(meta) : rocksdb::Slice());
      }
      batch.Put(gaps, GapRecordKey(record.id), meta + value);
      ++moved;
    } else {
      spdlog::warn("dropping an unreadable gap row of the earlier layout (key '{}')",
                   it->key().ToString());
      ++dropped;
    }
    batch.Delete(gaps, it->key());
    if (batch.GetDataSize() > (8 << 20)) {
      rocksdb::Status s = flush();
      if (!s.ok()) return s;
    }
  }
  if (!it->status().ok()) return it->status();
  if (moved + dropped == 0) return rocksdb::Status::OK();
  rocksdb::Status s = flush();
  if (s.ok()) spdlog::info("moved {} gap records into the indexed layout", moved);
  return s;
}

namespace {

rocksdb::Options DbOptions() {
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.IncreaseParallelism(2);
  db_options.max_background_jobs = 2;
  db_options.keep_log_file_num = 5;
  // Span blocks and order records are written from several threads at once.
  db_options.enable_pipelined_write = true;
  // One thread inserts a write group into the memtables, which lets span blocks use insert
  // hints (below); concurrent inserts ignore hints and cost more per key in CPU.
  db_options.allow_concurrent_memtable_write = false;
  return db_options;
}

// What every column family shares: `cache`, compression by level, XXH3 checksums, and a bloom
// filter when asked for.
rocksdb::ColumnFamilyOptions BaseFamilyOptions(const std::shared_ptr<rocksdb::Cache>& cache,
                                               bool bloom, size_t write_buffer) {
  rocksdb::ColumnFamilyOptions cf;
  cf.write_buffer_size = write_buffer;
  cf.compression = rocksdb::kLZ4Compression;
  // Levels 0 and 1 stay uncompressed: every flush writes level 0 and its data soon moves on,
  // so compressing there costs ingest CPU (LZ4 was about 4% of it) for little space. From
  // level 2 on LZ4; LZ4 at the bottom too: ZSTD there cost ~10% of ingest CPU in compactions.
  cf.compression_per_level = {rocksdb::kNoCompression,  rocksdb::kNoCompression,
                              rocksdb::kLZ4Compression, rocksdb::kLZ4Compression,
                              rocksdb::kLZ4Compression, rocksdb::kLZ4Compression,
                              rocksdb::kLZ4Compression};
  cf.bottommost_compression = rocksdb::kLZ4Compression;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  // RocksDB as Debian builds it computes CRC32C in software; XXH3 is several times cheaper.
  table.checksum = rocksdb::kXXH3;
  if (bloom) table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return cf;
}

// Every column family of the current layout, each tuned for how it is written and read.
std::vector<rocksdb::ColumnFamilyDescriptor> FamilyDescriptors(
    const RocksStoreOptions& options, const std::shared_ptr<rocksdb::Cache>& cache) {
  const size_t buffer = options.write_buffer_bytes;
  rocksdb::ColumnFamilyOptions blocks_cf = BaseFamilyOptions(cache, false, buffer);
  // Block keys start with the time bucket and then a rising sequence: a hint per bucket makes
  // each insert land next to the previous one instead of searching the memtable.
  blocks_cf.memtable_insert_with_hint_prefix_extractor = std::make_shared<BlockBucketPrefix>();
  rocksdb::ColumnFamilyOptions order_index_cf = BaseFamilyOptions(cache, false, buffer / 4);
  order_index_cf.memtable_insert_with_hint_prefix_extractor = std::make_shared<OrderIndexPrefix>();
  // Trace index keys start with a random trace id, so in a skip list memtable every insert
  // searched the whole list (the larger part of ingest's memtable time). A memtable hashed by
  // trace id puts each key in a short list of its own trace; the index is only ever read by
  // trace id (ReadTrace seeks within one id) or deleted by exact key.
  rocksdb::ColumnFamilyOptions trace_index_cf = BaseFamilyOptions(cache, false, buffer / 4);
  trace_index_cf.prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(16));
  trace_index_cf.memtable_factory.reset(rocksdb::NewHashSkipListRepFactory(
      std::max<size_t>(buffer / 4 / kTraceIndexBytesPerBucket, 64)));
  // Ingest looks up every order it has not cached, and an order's first span finds nothing: a
  // bloom filter on the memtables answers those misses without searching them.
  rocksdb::ColumnFamilyOptions orders_cf = BaseFamilyOptions(cache, true, buffer / 2);
  orders_cf.memtable_whole_key_filtering = true;
  orders_cf.memtable_prefix_bloom_size_ratio = 0.02;
  // Pending detail is written, then range-deleted, and read only at start: a vector memtable
  // appends (a skip list searched for every insert), and sorts once when flushed or read.
  // Most detail is decided (and its range deleted) while still in the memtable, which a flush
  // then leaves out: room for a decision wait's worth keeps it off the disk.
  rocksdb::ColumnFamilyOptions pending_cf = BaseFamilyOptions(cache, false, buffer / 2);
  pending_cf.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();
  // The forward queue is appended at its end and read from its start, mostly while still in
  // the memtable: a skip list (a vector memtable sorts itself for every reader).
  rocksdb::ColumnFamilyOptions forward_cf = BaseFamilyOptions(cache, false, buffer / 4);
  return {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
      {kBlocksCf, blocks_cf},
      {kTraceIndexCf, trace_index_cf},
      {kOrdersCf, orders_cf},
      {kOrderIndexCf, order_index_cf},
      {kGapsCf, BaseFamilyOptions(cache, false, 4 << 20)},
      {kPendingCf, pending_cf},
      {kForwardCf, forward_cf},
  };
}

// The families a store already has (none for a new one), and whether either family of the
// first span layout is among them: a move to finish (a crash may have come between the two
// drops; a missing one is created empty by the open).
struct ExistingLayout {
  std::vector<std::string> families;
  bool legacy = false;
};

ExistingLayout ReadExistingLayout(const rocksdb::Options& db_options, const std::string& path) {
  ExistingLayout layout;
  const bool listed =
      rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(db_options), path, &layout.families).ok();
  auto has = [&](const char* name) {
    return std::find(layout.families.begin(), layout.families.end(), name) != layout.families.end();
  };
  layout.legacy = listed && (has(kLegacyBlocksCf) || has(kLegacyTraceBucketsCf));
  return layout;
}

// Opens `families`; a lock held by another process is named as such.
absl::StatusOr<OpenedDb> OpenFamilies(const rocksdb::Options& db_options, const std::string& path,
                                      const std::vector<rocksdb::ColumnFamilyDescriptor>& families,
                                      bool read_only) {
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  const rocksdb::DBOptions options(db_options);
  rocksdb::Status s = read_only
                          ? rocksdb::DB::OpenForReadOnly(options, path, families, &handles, &raw)
                          : rocksdb::DB::Open(options, path, families, &handles, &raw);
  if (!s.ok()) {
    if (s.ToString().find("LOCK") != std::string::npos) {
      return absl::FailedPreconditionError("the store in " + path +
                                           " is in use by another ordertrace process");
    }
    return absl::FailedPreconditionError("cannot open store in " + path + ": " + s.ToString());
  }
  OpenedDb open;
  open.db.reset(raw);
  open.read_only = read_only;
  open.families.all = handles;
  return open;
}

// The first span layout's families, while a store still has them.
struct LegacyFamilies {
  rocksdb::ColumnFamilyHandle* blocks = nullptr;
  rocksdb::ColumnFamilyHandle* trace_buckets = nullptr;
};

// Finds each handle of `open` by its family's name.
LegacyFamilies AssignFamilies(OpenedDb& open) {
  LegacyFamilies legacy;
  const std::map<std::string, rocksdb::ColumnFamilyHandle**> by_name = {
      {kBlocksCf, &open.families.blocks},
      {kTraceIndexCf, &open.families.trace_index},
      {kOrdersCf, &open.families.orders},
      {kOrderIndexCf, &open.families.order_index},
      {kGapsCf, &open.families.gaps},
      {kPendingCf, &open.families.pending},
      {kForwardCf, &open.families.forward},
      {kLegacyBlocksCf, &legacy.blocks},
      {kLegacyTraceBucketsCf, &legacy.trace_buckets},
  };
  for (rocksdb::ColumnFamilyHandle* h : open.families.all) {
    auto slot = by_name.find(h->GetName());
    if (slot != by_name.end()) *slot->second = h;
  }
  return legacy;
}

// Moves what earlier layouts left (span families, gap rows) into the current one.
absl::Status FinishLegacyMoves(OpenedDb& open, LegacyFamilies legacy, const std::string& path) {
  const Families& f = open.families;
  if (legacy.blocks != nullptr && legacy.trace_buckets != nullptr) {
    rocksdb::Status s =
        MoveLegacySpans(*open.db, legacy.blocks, legacy.trace_buckets, f.blocks, f.trace_index);
    std::erase_if(open.families.all, [&](rocksdb::ColumnFamilyHandle* h) {
      return h == legacy.blocks || h == legacy.trace_buckets;
    });
    open.db->DestroyColumnFamilyHandle(legacy.blocks);
    open.db->DestroyColumnFamilyHandle(legacy.trace_buckets);
    if (!s.ok()) {
      return absl::FailedPreconditionError("cannot move spans of the earlier layout in " + path +
                                           ": " + s.ToString());
    }
  }
  rocksdb::Status s = MoveLegacyGaps(*open.db, open.families.gaps);
  if (!s.ok()) {
    return absl::FailedPreconditionError("cannot move gaps of the earlier layout in " + path +
                                         ": " + s.ToString());
  }
  return absl::OkStatus();
}

// Opens the database with every column family, found by name. Read-only: nothing is written
// (no log, no manifest, no moves of earlier layouts), for a file system without room.
absl::StatusOr<OpenedDb> OpenDb(const RocksStoreOptions& options, bool read_only) {
  const rocksdb::Options db_options = DbOptions();
  const std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  std::vector<rocksdb::ColumnFamilyDescriptor> families = FamilyDescriptors(options, cache);
  const ExistingLayout existing = ReadExistingLayout(db_options, options.path);
  if (existing.legacy) {
    families.push_back(
        {kLegacyBlocksCf, BaseFamilyOptions(cache, false, options.write_buffer_bytes)});
    families.push_back(
        {kLegacyTraceBucketsCf, BaseFamilyOptions(cache, false, options.write_buffer_bytes)});
  }
  if (read_only) {
    // A read-only open creates nothing: a family this store never had (sampler_pending in a
    // store of an earlier version) stays unopened, and reads of it find nothing.
    std::erase_if(families, [&](const rocksdb::ColumnFamilyDescriptor& d) {
      return std::find(existing.families.begin(), existing.families.end(), d.name) ==
             existing.families.end();
    });
  }
  absl::StatusOr<OpenedDb> open = OpenFamilies(db_options, options.path, families, read_only);
  if (!open.ok()) return open.status();
  const LegacyFamilies legacy_families = AssignFamilies(*open);
  const Families& f = open->families;
  if (f.blocks == nullptr || f.trace_index == nullptr || f.orders == nullptr ||
      f.order_index == nullptr || f.gaps == nullptr) {
    CloseDb(*open);
    return absl::FailedPreconditionError("cannot open store in " + options.path +
                                         " read-only: a column family is missing");
  }
  if (read_only) return open;
  if (absl::Status moved = FinishLegacyMoves(*open, legacy_families, options.path); !moved.ok()) {
    CloseDb(*open);
    return moved;
  }
  return open;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenRocksStore(const RocksStoreOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec) {
    return absl::FailedPreconditionError("cannot create data folder " + options.path + ": " +
                                         ec.message());
  }
  // Opening for writing writes a new log and manifest (and RocksDB 7.8 aborts on an assertion
  // when that fails for want of space): without the reserve free, the store opens read-only.
  const bool no_room = FreeBytes(options.path) < options.min_free_bytes;
  absl::StatusOr<OpenedDb> open = OpenDb(options, /*read_only=*/no_room);
  if (!open.ok()) return open.status();
  if (no_room) {
    spdlog::error(
        "store: less than the {} MiB reserve is free in {}: opened read-only; reads are "
        "served, ingest answers 503 until there is room",
        options.min_free_bytes >> 20, options.path);
  }
  return std::unique_ptr<Store>(new RocksStore(options, std::move(*open)));
}

}  // namespace ordertrace::store
