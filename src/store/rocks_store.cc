#include "store/rocks_store.h"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <set>

#include "store/order_record_codec.h"

namespace ordertrace::store {
namespace {

constexpr char kBlocksCf[] = "blocks";
constexpr char kTraceBucketsCf[] = "trace_buckets";
constexpr char kOrdersCf[] = "orders";
constexpr char kOrderIndexCf[] = "order_index";
constexpr char kGapsCf[] = "gaps";

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

absl::Status ToStatus(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = std::string(what) + ": " + s.ToString();
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsBusy() || s.IsTryAgain() || s.IsIncomplete()) return absl::UnavailableError(msg);
  if (s.IsIOError() && s.subcode() == rocksdb::Status::kNoSpace) {
    return absl::ResourceExhaustedError(msg);
  }
  return absl::InternalError(msg);
}

std::string BlockKey(uint64_t bucket, const model::TraceId& trace, uint64_t seq) {
  std::string key;
  key.reserve(32);
  PutBigEndian(key, bucket);
  key.append(trace.AsBytes());
  PutBigEndian(key, seq);
  return key;
}

std::string TraceBucketKey(const model::TraceId& trace, uint64_t bucket) {
  std::string key(trace.AsBytes());
  PutBigEndian(key, bucket);
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

class RocksStore final : public Store {
 public:
  RocksStore(RocksStoreOptions options, std::unique_ptr<rocksdb::DB> db,
             std::vector<rocksdb::ColumnFamilyHandle*> handles)
      : options_(std::move(options)), handles_(std::move(handles)), db_(std::move(db)) {
    // Block sequence numbers only need to be unique and increasing; the clock gives a start
    // past every number an earlier run used (unless the clock went back by more than the
    // number of blocks written since).
    next_seq_ = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
  }

  ~RocksStore() override {
    for (rocksdb::ColumnFamilyHandle* h : handles_) db_->DestroyColumnFamilyHandle(h);
    db_->Close();
  }

  absl::Status Write(const WriteSet& writes) override {
    rocksdb::WriteBatch batch;
    for (const SpanBlock& block : writes.blocks) {
      uint64_t bucket = BucketOf(block.time_unix_nano);
      uint64_t seq = next_seq_.fetch_add(1);
      batch.Put(blocks(), BlockKey(bucket, block.trace_id, seq), block.encoded);
      batch.Put(trace_buckets(), TraceBucketKey(block.trace_id, bucket), rocksdb::Slice());
    }
    for (const OrderUpdate& update : writes.orders) {
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
      batch.Put(orders(), update.after.order_id, EncodeOrderRecord(update.after));
    }
    rocksdb::WriteOptions wo;
    wo.sync = options_.sync_writes;
    return ToStatus(db_->Write(wo, &batch), "store write");
  }

  absl::StatusOr<std::vector<std::string>> ReadTrace(const model::TraceId& trace_id) override {
    std::vector<uint64_t> buckets;
    {
      std::unique_ptr<rocksdb::Iterator> it(
          db_->NewIterator(rocksdb::ReadOptions(), trace_buckets()));
      std::string prefix(trace_id.AsBytes());
      for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
        buckets.push_back(GetBigEndian(it->key().ToStringView().substr(16)));
      }
      if (!it->status().ok()) return ToStatus(it->status(), "trace lookup");
    }
    std::vector<std::string> out;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), blocks()));
    for (uint64_t bucket : buckets) {
      std::string prefix;
      PutBigEndian(prefix, bucket);
      prefix.append(trace_id.AsBytes());
      for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
        out.push_back(it->value().ToString());
      }
    }
    if (!it->status().ok()) return ToStatus(it->status(), "trace read");
    return out;
  }

  absl::Status ScanBlocks(
      uint64_t from_unix_nano, uint64_t to_unix_nano,
      const std::function<bool(const model::TraceId&, std::string_view)>& visit) override {
    if (from_unix_nano > to_unix_nano) return absl::OkStatus();
    uint64_t first = BucketOf(from_unix_nano);
    uint64_t last = BucketOf(to_unix_nano);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), blocks()));
    // Walk buckets newest first; skip empty stretches by seeking backwards.
    std::string upper;
    PutBigEndian(upper, last + 1);
    it->SeekForPrev(upper);
    while (it->Valid()) {
      uint64_t bucket = GetBigEndian(it->key().ToStringView());
      if (bucket < first) break;
      if (bucket > last) {
        it->Prev();
        continue;
      }
      std::string prefix;
      PutBigEndian(prefix, bucket);
      for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
        auto trace = model::TraceId::FromBytes(it->key().ToStringView().substr(8, 16));
        if (trace && !visit(*trace, it->value().ToStringView())) return absl::OkStatus();
      }
      if (bucket == 0) break;
      it->SeekForPrev(prefix);
    }
    return ToStatus(it->status(), "block scan");
  }

  absl::StatusOr<std::optional<model::OrderRecord>> GetOrder(const std::string& order_id) override {
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), orders(), order_id, &value);
    if (s.IsNotFound()) return std::optional<model::OrderRecord>();
    if (!s.ok()) return ToStatus(s, "order read");
    absl::StatusOr<model::OrderRecord> record = DecodeOrderRecord(value);
    if (!record.ok()) return record.status();
    return std::optional<model::OrderRecord>(std::move(*record));
  }

  absl::Status ScanOrders(const std::function<bool(const model::OrderRecord&)>& visit) override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), orders()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      absl::StatusOr<model::OrderRecord> record =
          DecodeOrderRecord(std::string_view(it->value().data(), it->value().size()));
      if (!record.ok()) return record.status();
      if (!visit(*record)) break;
    }
    return ToStatus(it->status(), "order scan");
  }

  absl::Status PutGapRecord(const std::string& gap_id, const std::string& encoded) override {
    return ToStatus(db_->Put(rocksdb::WriteOptions(), gaps(), gap_id, encoded), "gap write");
  }

  absl::StatusOr<std::vector<std::string>> ReadGapRecords() override {
    std::vector<std::string> records;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), gaps()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) records.push_back(it->value().ToString());
    absl::Status status = ToStatus(it->status(), "gap scan");
    if (!status.ok()) return status;
    return records;
  }

  absl::StatusOr<std::vector<model::OrderRecord>> ListOrders(const OrderFilter& filter) override {
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
      absl::StatusOr<std::optional<model::OrderRecord>> record = GetOrder(order_id);
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
    RetentionStats stats;
    // Spans: every bucket that ends before the cutoff goes whole.
    uint64_t cutoff_bucket = BucketOf(span_cutoff_unix_nano);
    {
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), blocks()));
      rocksdb::WriteBatch batch;
      std::set<uint64_t> buckets;
      std::set<std::string> trace_bucket_keys;
      std::string end;
      PutBigEndian(end, cutoff_bucket);
      for (it->SeekToFirst(); it->Valid() && it->key().compare(end) < 0; it->Next()) {
        std::string_view key = it->key().ToStringView();
        uint64_t bucket = GetBigEndian(key);
        buckets.insert(bucket);
        auto trace = model::TraceId::FromBytes(key.substr(8, 16));
        if (trace) trace_bucket_keys.insert(TraceBucketKey(*trace, bucket));
        ++stats.span_blocks_removed;
      }
      if (!it->status().ok()) return ToStatus(it->status(), "retention scan");
      if (!buckets.empty()) {
        for (const std::string& key : trace_bucket_keys) batch.Delete(trace_buckets(), key);
        std::string begin;
        PutBigEndian(begin, 0);
        batch.DeleteRange(blocks(), begin, end);
        absl::Status s = ToStatus(db_->Write(rocksdb::WriteOptions(), &batch), "retention");
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
      for (it->Seek("c"); it->Valid() && it->key().starts_with("c"); it->Next()) {
        std::string_view key = it->key().ToStringView();
        if (GetBigEndian(key.substr(1)) >= order_cutoff_unix_nano) break;
        std::string order_id(key.substr(9));
        absl::StatusOr<std::optional<model::OrderRecord>> record = GetOrder(order_id);
        if (!record.ok()) return record.status();
        if (!record->has_value() || (*record)->last_seen_unix_nano >= order_cutoff_unix_nano) {
          continue;
        }
        for (const std::string& k : OrderIndexKeys(**record)) batch.Delete(order_index(), k);
        batch.Delete(orders(), order_id);
        ++stats.orders_removed;
      }
      if (!it->status().ok()) return ToStatus(it->status(), "order retention scan");
      absl::Status s = ToStatus(db_->Write(rocksdb::WriteOptions(), &batch), "order retention");
      if (!s.ok()) return s;
    }
    return stats;
  }

 private:
  uint64_t BucketOf(uint64_t unix_nano) const {
    return unix_nano / (options_.bucket_seconds * 1'000'000'000ULL);
  }
  rocksdb::ColumnFamilyHandle* blocks() const { return handles_[1]; }
  rocksdb::ColumnFamilyHandle* trace_buckets() const { return handles_[2]; }
  rocksdb::ColumnFamilyHandle* orders() const { return handles_[3]; }
  rocksdb::ColumnFamilyHandle* order_index() const { return handles_[4]; }
  rocksdb::ColumnFamilyHandle* gaps() const { return handles_[5]; }

  // Constant after construction.
  const RocksStoreOptions options_;
  const std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  const std::unique_ptr<rocksdb::DB> db_;

  std::atomic<uint64_t> next_seq_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenRocksStore(const RocksStoreOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec) {
    return absl::FailedPreconditionError("cannot create data folder " + options.path + ": " +
                                         ec.message());
  }
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.IncreaseParallelism(2);
  db_options.max_background_jobs = 2;
  db_options.keep_log_file_num = 5;
  // Span blocks and order records are written from several threads at once.
  db_options.enable_pipelined_write = true;

  std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  auto cf_options = [&](bool bloom, size_t write_buffer) {
    rocksdb::ColumnFamilyOptions cf;
    cf.write_buffer_size = write_buffer;
    cf.compression = rocksdb::kLZ4Compression;
    // LZ4 on every level: ZSTD at the bottom cost ~10% of ingest CPU in compactions.
    cf.bottommost_compression = rocksdb::kLZ4Compression;
    rocksdb::BlockBasedTableOptions table;
    table.block_cache = cache;
    if (bloom) table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    return cf;
  };
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
      {kBlocksCf, cf_options(false, options.write_buffer_bytes)},
      {kTraceBucketsCf, cf_options(true, options.write_buffer_bytes / 4)},
      {kOrdersCf, cf_options(true, options.write_buffer_bytes / 2)},
      {kOrderIndexCf, cf_options(false, options.write_buffer_bytes / 4)},
      {kGapsCf, cf_options(false, 4 << 20)},
  };
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s =
      rocksdb::DB::Open(rocksdb::DBOptions(db_options), options.path, families, &handles, &raw);
  if (!s.ok()) {
    if (s.ToString().find("LOCK") != std::string::npos) {
      return absl::FailedPreconditionError("the store in " + options.path +
                                           " is in use by another ordertrace process");
    }
    return absl::FailedPreconditionError("cannot open store in " + options.path + ": " +
                                         s.ToString());
  }
  return std::unique_ptr<Store>(
      new RocksStore(options, std::unique_ptr<rocksdb::DB>(raw), std::move(handles)));
}

}  // namespace ordertrace::store
