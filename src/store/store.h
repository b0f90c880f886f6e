// The span and order store: the interface every other part uses. The RocksDB implementation
// is behind OpenRocksStore (rocks_store.h). Implementations are thread-safe: one writer and
// any number of readers may call concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/ids.h"
#include "model/order_record.h"

namespace ordertrace::store {

// The spans of one trace from one export request, already encoded (OTLP TracesData).
// Grouping spans into blocks keeps per-span keys out of the write path.
struct SpanBlock {
  model::TraceId trace_id;
  uint64_t time_unix_nano = 0;  // decides the retention bucket
  std::string encoded;
};

// A new version of an order record; `before` is what the store held (to move its indexes).
struct OrderUpdate {
  std::optional<model::OrderRecord> before;
  model::OrderRecord after;
};

// Everything one ingest step writes, atomically.
struct WriteSet {
  std::vector<SpanBlock> blocks;
  std::vector<OrderUpdate> orders;
};

struct OrderFilter {
  std::string status;      // current status; empty: any
  std::string partner_id;  // empty: any
  size_t limit = 100;
};

// What one retention pass removed.
struct RetentionStats {
  uint64_t span_buckets_removed = 0;
  uint64_t span_blocks_removed = 0;
  uint64_t orders_removed = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // Writes atomically; on OK the data is in the write-ahead log and survives a crash of the
  // process (and of the machine too when the store syncs its log).
  virtual absl::Status Write(const WriteSet& writes) = 0;

  // The encoded blocks of a trace, oldest bucket first; empty when unknown.
  virtual absl::StatusOr<std::vector<std::string>> ReadTrace(const model::TraceId& trace_id) = 0;

  // Calls `visit(trace_id, encoded)` for the blocks of every time bucket that overlaps
  // [from_unix_nano, to_unix_nano] (whole buckets: callers filter finer), newest bucket
  // first and, within a bucket, the latest written first, until it returns false.
  virtual absl::Status ScanBlocks(
      uint64_t from_unix_nano, uint64_t to_unix_nano,
      const std::function<bool(const model::TraceId&, std::string_view)>& visit) = 0;

  virtual absl::StatusOr<std::optional<model::OrderRecord>> GetOrder(
      const std::string& order_id) = 0;

  // Calls `visit` for every order record, in order id order, until it returns false (the gap
  // detector rebuilds its deadlines this way after a restart).
  virtual absl::Status ScanOrders(const std::function<bool(const model::OrderRecord&)>& visit) = 0;

  // Gap records, opaque to the store (gaps/ encodes them): kept until retention drops them with
  // their order.
  virtual absl::Status PutGapRecord(const std::string& gap_id, const std::string& encoded) = 0;
  virtual absl::StatusOr<std::vector<std::string>> ReadGapRecords() = 0;

  // Orders matching `filter`, newest (by first span) first.
  virtual absl::StatusOr<std::vector<model::OrderRecord>> ListOrders(const OrderFilter& filter) = 0;

  // Removes span blocks older than `span_cutoff_unix_nano`, whole time buckets at a time,
  // and orders whose last span ended before `order_cutoff_unix_nano`.
  virtual absl::StatusOr<RetentionStats> ApplyRetention(uint64_t span_cutoff_unix_nano,
                                                        uint64_t order_cutoff_unix_nano) = 0;
};

}  // namespace ordertrace::store
