// The ingest path from decoded OTLP to the store. A single writer thread folds each request's
// spans into their orders' records (several requests per store write: group commit), feeds
// every span and record change to the trace metrics, adds the derived attributes to the spans
// and passes them through the tail sampler; the caller's thread then encodes what the sampler
// kept into one block per trace and writes it. Callers block until both writes are durable.
// Detail spans the sampler buffers and later releases (a trace turned slow or stuck) are
// written by the writer thread. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/status.h"
#include "base/clock.h"
#include "base/span.h"
#include "ingest/span_limits.h"
#include "otlp/received_bytes.h"
#include "sampling/tail_sampler.h"
#include "store/store.h"

namespace ordertrace::metrics {
class TraceMetrics;
}  // namespace ordertrace::metrics
namespace ordertrace::sampling {
class TailSampler;
}  // namespace ordertrace::sampling
namespace ordertrace::scrub {
class PiiScrubber;
class OperatorIdHasher;
}  // namespace ordertrace::scrub

namespace ordertrace::ingest {

struct IngesterOptions {
  // Spans accepted but not yet written; past it, Ingest answers kResourceExhausted at once.
  size_t max_queued_spans = 200'000;
  // The same bound in bytes of decoded spans (about what they hold in memory).
  size_t max_queued_bytes = size_t{128} << 20;
  // Upper bound of spans the writer commits in one store write.
  size_t max_spans_per_write = 20'000;
  // Order records kept in memory by the writer, so that an active order is not read back
  // and decoded from the store for every request that touches it.
  size_t cached_orders = 100'000;
  // The span whose duration becomes the `calc_duration` attribute.
  std::string price_calc_span = "mes.price.calc";
  // What is refused span by span (timestamps, order id and attribute lengths).
  SpanLimits limits;
};

// Told of every order record ingest changed, and then of the spans that changed them, once
// they are durable (the gap detector). Called on the ingest writer thread, in arrival order:
// implementations must be quick and thread-safe.
class OrderObserver {
 public:
  virtual ~OrderObserver() = default;
  // The record of an order changed from `before` (nullptr: a new order) to `after`.
  virtual void OnOrderUpdated(const model::OrderRecord* before,
                              const model::OrderRecord& after) = 0;
  // A request's spans, after OnOrderUpdated for every record the group they came in changed.
  virtual void OnSpansArrived(const base::TraceBatch& batch) = 0;
};

// What ingest feeds besides the store; each borrowed, may be null, must outlive the ingester.
struct IngestConsumers {
  OrderObserver* observer = nullptr;
  // Span and business metrics, from every span before sampling.
  metrics::TraceMetrics* metrics = nullptr;
  // Decides which spans are stored; without it every span is.
  sampling::TailSampler* sampler = nullptr;
  // Applied to every request first, on the caller's thread, before the span checks, the
  // store, the metrics (whose labels come from span names), the sampler and the order records:
  // PII removed (`scrubber`), then `operator_id.hash` added beside each `operator_id`
  // (`operator_hasher`). Both must be thread-safe (they are); null: that step is skipped.
  const scrub::PiiScrubber* scrubber = nullptr;
  const scrub::OperatorIdHasher* operator_hasher = nullptr;
};

struct IngesterStats {
  uint64_t spans_written = 0;
  uint64_t requests_written = 0;
  uint64_t requests_refused_full = 0;   // the span count was reached
  uint64_t requests_refused_bytes = 0;  // the byte bound was reached
  // Spans refused one by one (partial_success), by RefusalReason.
  uint64_t spans_refused[static_cast<size_t>(RefusalReason::kCount)] = {};
  uint64_t write_errors = 0;
  uint64_t orders_updated = 0;
  uint64_t released_spans_written = 0;  // detail the sampler released after its request
  size_t queued_spans = 0;
  size_t queued_bytes = 0;
};

class Ingester {
 public:
  Ingester(store::Store& store, const base::Clock& clock, IngesterOptions options = {},
           IngestConsumers consumers = {});
  ~Ingester();
  Ingester(const Ingester&) = delete;
  Ingester& operator=(const Ingester&) = delete;

  // Stores `batch` and updates the records of the orders its spans carry. Returns once the
  // spans are durable. kResourceExhausted: the queue is full, in spans or bytes (retry later);
  // kUnavailable: shutting down; other errors come from the store. Spans that break
  // `options.limits` are refused alone, before queuing: counted and described in `rejected`
  // (for partial_success; may be null), the others stored.
  absl::Status Ingest(base::TraceBatch batch, RejectedSpans* rejected = nullptr);
  // The same for a batch decoded from protobuf with its body kept: `received` says where its
  // spans' bytes are, so that storing them copies those bytes instead of encoding again.
  absl::Status Ingest(base::TraceBatch batch, otlp::ReceivedBytes received,
                      RejectedSpans* rejected = nullptr);

  // Finishes queued work, then refuses new work. Idempotent.
  void Shutdown();

  IngesterStats Stats() const;

 private:
  struct Pending {
    base::TraceBatch batch;        // in: as received; out: what the sampler keeps for the store
    otlp::ReceivedBytes received;  // where `batch`'s spans sit in their request body
    // The spans the sampler did not keep: destroyed by the receiving thread, which allocated
    // them (see TailSampler::Admit).
    std::vector<base::Span> dropped_spans;
    // The detail the sampler buffered (stored with `batch`, so that a restart finds it).
    sampling::PendingDelta pending_detail;
    size_t span_count = 0;
    size_t bytes = 0;
    std::promise<absl::Status> folded;  // the order records are durable
  };

  // One order a group's spans touch.
  struct GroupOrder {
    store::OrderUpdate update;
    // The record as it stands once the group is durable: the written `after` (moved into the
    // write set) or, when the spans changed nothing, `before`.
    const model::OrderRecord* current = nullptr;
  };

  // What Commit folds a group into.
  struct GroupFold {
    // Node-based: span_orders, changed and unchanged point into it.
    absl::node_hash_map<std::string, GroupOrder> orders;
    // Each span's order (null: none), in the order of the group's spans.
    std::vector<const GroupOrder*> span_orders;
    std::vector<GroupOrder*> changed;    // their updates move into writes.orders, in this order
    std::vector<GroupOrder*> unchanged;  // their records need no write
    store::WriteSet writes;
  };
  using Group = std::vector<std::shared_ptr<Pending>>;

  // Counts `pending` into the queue's bounds, or says why it does not fit. Under mu_.
  absl::Status MakeRoom(const Pending& pending);
  void WriterLoop();
  // Folds a group's spans into their orders' records, writes the records, then tells the
  // consumers, in named steps below. Writer thread only.
  void Commit(Group& group);
  // Applies every span to its order's record, reading each record on first use. Stops at the
  // first failed read: then the whole group fails and nothing is written.
  absl::Status FoldGroup(const Group& group, GroupFold& fold);
  // The group's record of the order `span` carries (null: none), read on first use.
  absl::StatusOr<GroupOrder*> FoldedOrder(const base::Span& span, const base::Resource& resource,
                                          GroupFold& fold);
  // Moves the changed records' updates into fold.writes, in order id order.
  static void DiffOrders(GroupFold& fold);
  // Writes the changed records; once durable, each order's `current` is set.
  absl::Status WriteOrders(GroupFold& fold);
  // Tells the observer and the metrics of the changed records, then the observer of the spans.
  void NotifyOrders(const Group& group, const GroupFold& fold);
  // Puts the records TakeOrder moved out of the cache back as they now stand.
  void CacheFolded(GroupFold& fold);
  // After a failure nothing was written: puts the records back as they were.
  void RollBack(GroupFold& fold);
  // Releases the group's share of the queue, counts the outcome, and wakes its callers.
  void Finish(Group& group, const absl::Status& status, size_t orders_updated);
  // Metrics, derived attributes and sampling for a group whose records are durable.
  // `span_orders`: each span's order (null: none), in the order of the group's spans.
  void Process(Group& group, const std::vector<const GroupOrder*>& span_orders);
  // Writes the detail spans the sampler released since the last call. Writer thread only.
  void WriteReleased();
  // The stored record of `order_id`: moved out of the cache (the caller puts a version back or
  // erases the entry), else read from the store. Writer thread only.
  absl::StatusOr<std::optional<model::OrderRecord>> TakeOrder(const std::string& order_id);
  void CacheOrder(model::OrderRecord&& record);

  // Constant after construction.
  store::Store& store_;
  const base::Clock& clock_;
  const IngesterOptions options_;
  const IngestConsumers consumers_;

  mutable std::mutex mu_;
  std::condition_variable work_ready_;
  std::deque<std::shared_ptr<Pending>> queue_;  // guarded by mu_
  size_t queued_spans_ = 0;                     // guarded by mu_
  size_t queued_bytes_ = 0;                     // guarded by mu_
  bool shutting_down_ = false;                  // guarded by mu_
  bool writer_exited_ = false;                  // guarded by mu_
  IngesterStats stats_;                         // guarded by mu_

  // Touched by the writer thread only. Evicts first-in, first-out: simple, and an order's
  // requests cluster in time.
  absl::node_hash_map<std::string, model::OrderRecord> order_cache_;
  std::deque<std::string> order_cache_fifo_;

  std::thread writer_;

  // How often the writer thread looks at the sampler's buffered detail when idle: detail whose
  // decision came due, or that a stuck order released (the loop in gaps/stuck_trace_keeper.h),
  // is stored or dropped within one tick even when no request arrives.
  static constexpr std::chrono::milliseconds kSamplerTick{200};
};

// Splits a batch into one encoded block per trace (keeping resource and scope), each timed by
// its latest span end, clamped to `now` (a clock running ahead must not dodge retention).
// `received` (may be null): the batch's received bytes, copied rather than encoded again.
std::vector<store::SpanBlock> BlocksByTrace(const base::TraceBatch& batch, uint64_t now_unix_nano,
                                            const otlp::ReceivedBytes* received = nullptr);

// The store's form of what the sampler reported (its buffered spans encoded one block per
// trace); the buffered spans are freed by the calling thread.
store::PendingChanges PendingChangesOf(sampling::PendingDelta&& delta);

}  // namespace ordertrace::ingest
