// The span, order and gap store: the interface every other part uses. The RocksDB
// implementation is behind OpenRocksStore (rocks_store.h). Implementations are thread-safe:
// every method may be called from any number of threads at once (RocksStore takes concurrent
// writers: RocksDB merges their batches into one log write), and reads never wait for a
// writer. What concurrent writers must keep to:
//  - Write: updates of one order come from one thread at a time, each with `before` equal to
//    what the store holds (ingest's writer thread), else the order's index entries go stale.
//    Pending-detail changes that decide bufferings come from one thread at a time too.
//  - ApplyRetention runs beside Write: an order updated while a pass removes it loses that
//    update (the pass read it before; what it left in the index is skipped by ListOrders).
//    A pass is several writes, each atomic; the pass as a whole is not.
//  - WriteGapRecords and the gap part of ApplyRetention are serialized by the store itself.
// Errors: kUnavailable when the store is out of disk space (a degraded mode: reads go on,
// writes are refused until there is room again, see IsOutOfSpace) or busy; kInternal for
// other I/O errors; kDataLoss for corruption. The store never answers kResourceExhausted,
// which callers keep for their own back-pressure. Messages name no file or path.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/ids.h"
#include "model/order_record.h"

namespace ordertrace::store {

// The spans of one trace from one export request, already encoded (OTLP TracesData).
// Grouping spans into blocks keeps per-span keys out of the write path.
struct SpanBlock {
  base::TraceId trace_id;
  uint64_t time_unix_nano = 0;  // decides the retention bucket
  std::string encoded;
};

// A new version of an order record; `before` is what the store held (to move its indexes).
struct OrderUpdate {
  std::optional<model::OrderRecord> before;
  model::OrderRecord after;
};

// Detail spans waiting for the tail sampler's decision, stored so that a restart finds them:
// one block per trace per request that buffered spans of it.
struct PendingBlock {
  uint64_t buffering = 0;  // the trace's buffering (the sampler's sequence): rising, never 0
  base::TraceId trace_id;
  uint32_t part = 0;  // the block's place within its buffering
  uint64_t deadline_unix_nano = 0;
  std::string encoded;  // TracesData
};

// How one write changes the pending detail.
struct PendingChanges {
  std::vector<PendingBlock> puts;
  // Bufferings decided keep: their spans are in the same write's `blocks`.
  std::vector<std::pair<uint64_t, base::TraceId>> kept;
  // Every buffering below this one is decided (kept or dropped); 0: no news. Their blocks go.
  uint64_t decided_below = 0;
  bool empty() const { return puts.empty() && kept.empty() && decided_below == 0; }
};

// Everything one ingest step writes, in one atomic write (all or nothing, also across a crash).
struct WriteSet {
  std::vector<SpanBlock> blocks;
  std::vector<OrderUpdate> orders;
  PendingChanges pending;
};

// One entry of the forward queue (store::RocksStoreOptions::forward_queue): a span block
// queued for the OTLP forward in the same write that stored it.
struct ForwardEntry {
  uint64_t seq = 0;  // the queue's order: rising with every block queued, never 0
  // TracesData, the stored block's bytes; empty when retention removed the block before it
  // was sent.
  std::string encoded;
  uint64_t bytes = 0;  // the block's size as queued (what ForwardQueueBytes counts)
};

struct OrderFilter {
  std::string status;      // current status; empty: any
  std::string partner_id;  // empty: any
  size_t limit = 100;
};

// A gap as the store keeps it: the fields it indexes and filters by, and the whole gap encoded
// by its owner (gaps/), opaque to the store.
struct GapRecord {
  std::string id;
  std::string order_id;  // empty for a gap about no one order (a silent source)
  std::string partner_id;
  std::string kind;
  std::string stage;
  bool open = false;
  uint64_t since_unix_nano = 0;
  std::string encoded;
  friend bool operator==(const GapRecord&, const GapRecord&) = default;
};

// A place in the newest-first order of gap records: since descending, then id ascending.
using GapPosition = std::pair<uint64_t, std::string>;  // since_unix_nano, id

struct GapRecordFilter {
  enum class State { kOpen, kResolved, kAll };
  State state = State::kAll;
  // Empty: any.
  std::string kind;
  std::string stage;
  std::string partner_id;
  std::string order_id;
  // Records whose since lies in [since_from, since_to]; 0: unbounded.
  uint64_t since_from_unix_nano = 0;
  uint64_t since_to_unix_nano = 0;
  // Only records strictly after this position; none: from the newest.
  std::optional<GapPosition> after;
  size_t limit = 100;
  // A listing stops after looking at this many index entries, so that a rare combination of
  // filters cannot walk the whole history in one call (it returns a resume position instead).
  size_t max_scanned = 200000;
};

struct GapRecordPage {
  std::vector<GapRecord> records;  // newest first
  // Set when there may be more: pass it back as GapRecordFilter::after. A page that stopped at
  // `max_scanned` may hold fewer than `limit` records (even none) and still have a resume.
  std::optional<GapPosition> resume_after;
};

// What one retention pass removed.
struct RetentionStats {
  uint64_t span_buckets_removed = 0;
  uint64_t span_blocks_removed = 0;
  uint64_t orders_removed = 0;
  uint64_t gaps_removed = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // Writes atomically; on OK the data is in the write-ahead log and survives a crash of the
  // process (and of the machine too when the store syncs its log).
  virtual absl::Status Write(const WriteSet& writes) = 0;

  // The pending detail blocks of every buffering not decided yet, in buffering order, then
  // part order. Read once at start, before any Write.
  virtual absl::StatusOr<std::vector<PendingBlock>> ReadPendingBlocks() = 0;

  // True while writes are refused for want of disk space.
  virtual bool IsOutOfSpace() const = 0;

  // The encoded blocks of a trace, oldest bucket first; empty when unknown.
  virtual absl::StatusOr<std::vector<std::string>> ReadTrace(const base::TraceId& trace_id) = 0;

  // Calls `visit(trace_id, encoded)` for the blocks of every time bucket that overlaps
  // [from_unix_nano, to_unix_nano] (whole buckets: callers filter finer), newest bucket
  // first and, within a bucket, the latest written first, until it returns false.
  virtual absl::Status ScanBlocks(
      uint64_t from_unix_nano, uint64_t to_unix_nano,
      const std::function<bool(const base::TraceId&, std::string_view)>& visit) = 0;

  virtual absl::StatusOr<std::optional<model::OrderRecord>> GetOrder(
      const std::string& order_id) = 0;

  // Calls `visit` for every order record, in order id order, until it returns false (the gap
  // detector rebuilds its deadlines this way after a restart).
  virtual absl::Status ScanOrders(const std::function<bool(const model::OrderRecord&)>& visit) = 0;

  // Puts (replacing the record of the same id) and then deletes gap records, atomically, with
  // their index entries. Deleting an unknown id is not an error.
  virtual absl::Status WriteGapRecords(const std::vector<GapRecord>& puts,
                                       const std::vector<std::string>& deletes) = 0;
  virtual absl::StatusOr<std::optional<GapRecord>> GetGapRecord(const std::string& id) = 0;
  // Every open gap record, read through an index of the open ones (not the whole history).
  virtual absl::StatusOr<std::vector<GapRecord>> ReadOpenGapRecords() = 0;
  // Up to `filter.limit` records matching `filter`, newest first. With an order id it reads
  // that order's index; otherwise it walks the time index from `after` (or `since_to`).
  virtual absl::StatusOr<GapRecordPage> ListGapRecords(const GapRecordFilter& filter) = 0;

  // Orders matching `filter`, newest (by first span) first.
  virtual absl::StatusOr<std::vector<model::OrderRecord>> ListOrders(const OrderFilter& filter) = 0;

  // The forward queue. A store opened with a forward queue queues every span block it writes,
  // in the same atomic write. Without one (the defaults below), the queue stays empty.
  // Up to `max_entries` queued entries from `from_seq` on (0: from the oldest), in queue order,
  // and no more than `max_bytes` of them unless the first alone is larger. Only entries whose
  // every predecessor is written too: a write still under way holds back what follows it, so
  // that a reader moving a cursor past what it read never skips an entry written late.
  virtual absl::StatusOr<std::vector<ForwardEntry>> ReadForwardQueue(uint64_t from_seq,
                                                                     size_t max_entries,
                                                                     size_t max_bytes) {
    return std::vector<ForwardEntry>();
  }
  // Removes every entry below `end_seq` (acknowledged, or dropped). One thread at a time.
  virtual absl::Status DeleteForwardQueue(uint64_t end_seq) { return absl::OkStatus(); }
  // Bytes of the blocks the queued entries stand for.
  virtual uint64_t ForwardQueueBytes() const { return 0; }

  // Removes span blocks older than `span_cutoff_unix_nano`, whole time buckets at a time,
  // orders whose last span ended before `order_cutoff_unix_nano` with their gap records, and
  // gap records whose since is before that cutoff and whose order id is empty or not stored.
  virtual absl::StatusOr<RetentionStats> ApplyRetention(uint64_t span_cutoff_unix_nano,
                                                        uint64_t order_cutoff_unix_nano) = 0;
};

}  // namespace ordertrace::store
