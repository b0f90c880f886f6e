// The RocksDB implementation of Store. Layout (one column family each):
//   span_blocks   bucket(8) seq(8) trace_id(16)  -> encoded TracesData (written in sequence:
//                                                   cheap memtable inserts, scans by time)
//   trace_index   trace_id(16) bucket(8) seq(8)  -> ""   (where a trace's blocks are)
//   orders        order_id                       -> encoded OrderRecord
//   order_index   'c' first_seen(8) order_id, 's' status 0 first_seen(8) order_id,
//                 'p' partner 0 first_seen(8) order_id -> ""
//   gaps          \x01 id -> meta + encoded gap; indexes: \x02 ~since(8) id -> meta (newest
//                 first), \x03 order_id \0 id -> "", \x04 id -> "" (open gaps). Rows of the
//                 first layout (bare gap id -> JSON) are moved into these on open.
//   sampler_pending  buffering(8) trace_id(16) part(4) -> deadline(8) + TracesData (detail
//                 waiting for the sampler); part ffffffff -> "" marks a buffering decided keep;
//                 \x00 -> decided_below(8). Bufferings below it go with one DeleteRange.
//   forward_queue seq(8) -> span_blocks key(32) size(4) (blocks queued for the OTLP forward,
//                 written with them; the block itself is not copied); \x00 -> deleted_below(8),
//                 where reading starts. Entries sent (or dropped) are deleted key by key.
// Column families are found by name. Disk space: writes are refused (kUnavailable) while the
// data folder's file system has less than `min_free_bytes` free, so that RocksDB itself never
// meets a full disk (RocksDB 7.8, built with assertions, aborts in WritableFileWriter::
// AssertFalseAndGetStatusForPrevError when it writes again to a log or manifest whose append
// failed: upstream stopped doing that in facebook/rocksdb#12448);
// when it does anyway (the space taken by someone else), the store resumes RocksDB once there
// is room. Opened on a file system below that reserve, the store opens read-only (reads
// served, writes refused) and reopens for writing once there is room.
// Integers are big-endian so keys sort by time. Retention drops whole buckets with
// DeleteRange.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "store/store.h"

namespace ordertrace::store {

struct RocksStoreOptions {
  std::string path;                // the folder; created when missing
  bool sync_writes = false;        // fsync the WAL on every write (power-loss safety)
  uint64_t bucket_seconds = 3600;  // span retention granularity
  size_t block_cache_bytes = 128 << 20;
  size_t write_buffer_bytes = 64 << 20;
  // Writes are refused below this much free space: room for the memtables' flushes and
  // compactions. Well above the memtables' sum (about 2.2x write_buffer_bytes).
  uint64_t min_free_bytes = 256 << 20;
  // Every span block written is also queued in forward_queue, in the same write, for the
  // OTLP forward (forward/otlp_forwarder.h). Off: nothing is queued, and what an earlier run
  // left queued is dropped when the store opens (with a log line).
  bool forward_queue = false;
};

absl::StatusOr<std::unique_ptr<Store>> OpenRocksStore(const RocksStoreOptions& options);

}  // namespace ordertrace::store
