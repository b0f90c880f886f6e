#include "ingest/ingester.h"

#include <pthread.h>

#include <algorithm>
#include <map>

#include "lifecycle/derived_attributes.h"
#include "lifecycle/order_record_builder.h"
#include "metrics/trace_metrics.h"
#include "otlp/proto_codec.h"
#include "sampling/tail_sampler.h"
#include "scrub/operator_id_hasher.h"
#include "scrub/pii_scrubber.h"

namespace ordertrace::ingest {

std::vector<store::SpanBlock> BlocksByTrace(const base::TraceBatch& batch, uint64_t now_unix_nano,
                                            const otlp::ReceivedBytes* received) {
  std::vector<store::SpanBlock> blocks;
  for (otlp::EncodedTrace& part : otlp::EncodeProtobufByTrace(batch, received)) {
    uint64_t time = part.latest_end_unix_nano == 0
                        ? now_unix_nano
                        : std::min(part.latest_end_unix_nano, now_unix_nano);
    blocks.push_back(store::SpanBlock{part.trace_id, time, std::move(part.encoded)});
  }
  return blocks;
}

store::PendingChanges PendingChangesOf(sampling::PendingDelta&& delta) {
  store::PendingChanges changes;
  changes.kept = std::move(delta.kept);
  changes.decided_below = delta.decided_below;
  if (delta.parts.empty()) return changes;
  const base::TraceBatch buffered = std::move(delta.buffered);
  const otlp::ReceivedBytes received = std::move(delta.received);
  std::sort(delta.parts.begin(), delta.parts.end(),
            [](const auto& a, const auto& b) { return a.trace_id < b.trace_id; });
  for (otlp::EncodedTrace& trace : otlp::EncodeProtobufByTrace(buffered, &received)) {
    auto part = std::lower_bound(
        delta.parts.begin(), delta.parts.end(), trace.trace_id,
        [](const sampling::BufferedPart& p, const base::TraceId& id) { return p.trace_id < id; });
    if (part == delta.parts.end() || part->trace_id != trace.trace_id) continue;
    changes.puts.push_back(store::PendingBlock{part->buffering, trace.trace_id, part->part,
                                               part->deadline_unix_nano, std::move(trace.encoded)});
  }
  return changes;
}

Ingester::Ingester(store::Store& store, const base::Clock& clock, IngesterOptions options,
                   IngestConsumers consumers)
    : store_(store), clock_(clock), options_(std::move(options)), consumers_(consumers) {
  writer_ = std::thread([this] { WriterLoop(); });
}

Ingester::~Ingester() { Shutdown(); }

absl::Status Ingester::Ingest(base::TraceBatch batch, RejectedSpans* rejected) {
  return Ingest(std::move(batch), otlp::ReceivedBytes(), rejected);
}

absl::Status Ingester::Ingest(base::TraceBatch batch, otlp::ReceivedBytes received,
                              RejectedSpans* rejected) {
  // First, so that nothing below (refusal messages, WAL, metric labels, sampler, records) ever
  // holds what the scrubber removes; the hash is added after, so that it is of a clean value.
  // The spans the scrubber changes are stored from the model, not from their received bytes.
  if (consumers_.scrubber != nullptr) {
    std::vector<scrub::SpanPosition> changed;
    consumers_.scrubber->Scrub(batch, &changed);
    for (const scrub::SpanPosition& at : changed) received.Forget(at.resource, at.scope, at.span);
  }
  if (consumers_.operator_hasher != nullptr) consumers_.operator_hasher->AddOperatorIdHashes(batch);
  RejectedSpans refused_here;
  const CheckedBatch checked = CheckSpans(batch, options_.limits, clock_.NowUnixNano(),
                                          rejected ? *rejected : refused_here, &received);
  auto pending = std::make_shared<Pending>();
  pending->span_count = checked.spans;
  pending->bytes = checked.bytes;
  std::future<absl::Status> folded = pending->folded.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < std::size(checked.refused); ++i) {
      stats_.spans_refused[i] += checked.refused[i];
    }
    if (pending->span_count == 0) return absl::OkStatus();
    if (shutting_down_ || writer_exited_) {
      return absl::UnavailableError("ordertrace is shutting down");
    }
    if (absl::Status room = MakeRoom(*pending); !room.ok()) return room;
    pending->batch = std::move(batch);
    pending->received = std::move(received);
    queue_.push_back(pending);
  }
  work_ready_.notify_one();
  // The writer touches the Pending until it signals; it leaves the spans to store in `batch`.
  absl::Status status = folded.get();
  // Taken out of the Pending, which the writer thread may be the last to let go: the spans are
  // freed here, by the thread that allocated them.
  const base::TraceBatch kept = std::move(pending->batch);
  const otlp::ReceivedBytes kept_received = std::move(pending->received);
  std::vector<base::Span>().swap(pending->dropped_spans);  // freed now, before the write
  if (!status.ok()) return status;
  // Span blocks are encoded and written on the caller's thread: RocksDB merges concurrent
  // writers into one log write, and the writer thread keeps only what must be serial. The
  // detail the sampler buffered goes in the same write, so what is acknowledged is stored.
  store::PendingChanges detail = PendingChangesOf(std::move(pending->pending_detail));
  if (kept.SpanCount() == 0 && detail.empty()) return absl::OkStatus();
  absl::Status written = store_.Write(store::WriteSet{
      BlocksByTrace(kept, clock_.NowUnixNano(), &kept_received), {}, std::move(detail)});
  if (!written.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.write_errors;
  }
  return written;
}

absl::Status Ingester::MakeRoom(const Pending& pending) {
  if (queued_spans_ + pending.span_count > options_.max_queued_spans) {
    ++stats_.requests_refused_full;
    return absl::ResourceExhaustedError("ingest queue is full; retry later");
  }
  // A request larger than the whole bound is let in alone, so that it is not refused forever.
  if (queued_bytes_ > 0 && queued_bytes_ + pending.bytes > options_.max_queued_bytes) {
    ++stats_.requests_refused_bytes;
    return absl::ResourceExhaustedError(
        "ingest queue is full (ingest.max_queued_mb of spans waiting); retry later");
  }
  queued_spans_ += pending.span_count;
  queued_bytes_ += pending.bytes;
  return absl::OkStatus();
}

void Ingester::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutting_down_ = true;
  }
  work_ready_.notify_all();
  if (writer_.joinable()) writer_.join();
}

IngesterStats Ingester::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  IngesterStats s = stats_;
  s.queued_spans = queued_spans_;
  s.queued_bytes = queued_bytes_;
  return s;
}

void Ingester::WriterLoop() {
  pthread_setname_np(pthread_self(), "ot-writer");
  for (;;) {
    std::vector<std::shared_ptr<Pending>> group;
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto has_work = [this] { return shutting_down_ || !queue_.empty(); };
      if (consumers_.sampler == nullptr) {
        work_ready_.wait(lock, has_work);
      } else {
        // Wake for the sampler too: buffered detail whose decision time has come, and detail
        // a stuck order released, are written from here.
        work_ready_.wait_for(lock, kSamplerTick, has_work);
      }
      if (queue_.empty() && shutting_down_) {
        writer_exited_ = true;
        lock.unlock();
        WriteReleased();
        return;
      }
      size_t spans = 0;
      while (!queue_.empty() && (group.empty() || spans + queue_.front()->span_count <=
                                                      options_.max_spans_per_write)) {
        spans += queue_.front()->span_count;
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (!group.empty()) Commit(group);
    WriteReleased();
  }
}

void Ingester::WriteReleased() {
  if (consumers_.sampler == nullptr) return;
  consumers_.sampler->ExpirePending();
  sampling::PendingDelta delta;
  base::TraceBatch released = consumers_.sampler->TakeReleased(&delta);
  size_t spans = released.SpanCount();
  if (spans == 0 && delta.empty()) return;
  absl::Status written = store_.Write(store::WriteSet{
      BlocksByTrace(released, clock_.NowUnixNano()), {}, PendingChangesOf(std::move(delta))});
  std::lock_guard<std::mutex> lock(mu_);
  if (written.ok()) {
    stats_.released_spans_written += spans;
  } else {
    // Accepted long ago and acknowledged: nothing to report to; counted and logged by callers
    // of Stats().
    ++stats_.write_errors;
  }
}

absl::StatusOr<std::optional<model::OrderRecord>> Ingester::TakeOrder(const std::string& order_id) {
  auto cached = order_cache_.find(order_id);
  if (cached != order_cache_.end()) {
    // Moved, not copied: the commit puts the record's new (or unchanged) version back.
    return std::optional<model::OrderRecord>(std::move(cached->second));
  }
  return store_.GetOrder(order_id);
}

void Ingester::CacheOrder(model::OrderRecord&& record) {
  if (options_.cached_orders == 0) return;
  std::string order_id = record.order_id;
  auto [it, inserted] = order_cache_.insert_or_assign(order_id, std::move(record));
  if (!inserted) return;
  order_cache_fifo_.push_back(std::move(order_id));
  while (order_cache_.size() > options_.cached_orders) {
    order_cache_.erase(order_cache_fifo_.front());
    order_cache_fifo_.pop_front();
  }
}

void Ingester::Commit(Group& group) {
  GroupFold fold;
  absl::Status status = FoldGroup(group, fold);
  if (status.ok()) status = WriteOrders(fold);
  if (status.ok()) {
    NotifyOrders(group, fold);
    Process(group, fold.span_orders);
    CacheFolded(fold);
  } else {
    RollBack(fold);
  }
  Finish(group, status, fold.writes.orders.size());
}

absl::Status Ingester::FoldGroup(const Group& group, GroupFold& fold) {
  for (const auto& pending : group) {
    fold.span_orders.reserve(fold.span_orders.size() + pending->span_count);
    for (const base::ResourceSpans& rs : pending->batch.resource_spans) {
      for (const base::ScopeSpans& ss : rs.scope_spans) {
        for (const base::Span& span : ss.spans) {
          absl::StatusOr<GroupOrder*> order = FoldedOrder(span, rs.resource, fold);
          if (!order.ok()) return order.status();
          fold.span_orders.push_back(*order);
          if (*order != nullptr) lifecycle::ApplySpan(span, rs.resource, (*order)->update.after);
        }
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Ingester::GroupOrder*> Ingester::FoldedOrder(const base::Span& span,
                                                            const base::Resource& resource,
                                                            GroupFold& fold) {
  std::optional<std::string> order_id = lifecycle::OrderIdOf(span, resource);
  if (!order_id) return nullptr;
  auto it = fold.orders.find(*order_id);
  if (it != fold.orders.end()) return &it->second;
  absl::StatusOr<std::optional<model::OrderRecord>> stored = TakeOrder(*order_id);
  if (!stored.ok()) return stored.status();
  GroupOrder order;
  order.update.before = std::move(*stored);
  if (order.update.before) {
    order.update.after = *order.update.before;
  } else {
    order.update.after.order_id = *order_id;
  }
  return &fold.orders.emplace(*std::move(order_id), std::move(order)).first->second;
}

void Ingester::DiffOrders(GroupFold& fold) {
  for (auto& [id, order] : fold.orders) {
    const store::OrderUpdate& update = order.update;
    // A replayed span leaves the record as it was: nothing to write.
    if (!update.before || !(*update.before == update.after)) {
      fold.changed.push_back(&order);
    } else {
      fold.unchanged.push_back(&order);
    }
  }
  // In order id order: the hash map's order differs from run to run, and this order is the
  // order in which the metrics and the gap detector hear of the changes.
  std::sort(fold.changed.begin(), fold.changed.end(), [](const GroupOrder* a, const GroupOrder* b) {
    return a->update.after.order_id < b->update.after.order_id;
  });
  fold.writes.orders.reserve(fold.changed.size());
  for (GroupOrder* order : fold.changed) fold.writes.orders.push_back(std::move(order->update));
}

absl::Status Ingester::WriteOrders(GroupFold& fold) {
  DiffOrders(fold);
  absl::Status status = store_.Write(fold.writes);
  if (!status.ok()) return status;
  for (GroupOrder* order : fold.unchanged) order->current = &*order->update.before;
  for (size_t i = 0; i < fold.changed.size(); ++i) {
    fold.changed[i]->current = &fold.writes.orders[i].after;
  }
  return status;
}

void Ingester::NotifyOrders(const Group& group, const GroupFold& fold) {
  std::vector<metrics::TraceMetrics::OrderChange> changes;
  changes.reserve(fold.writes.orders.size());
  for (const store::OrderUpdate& update : fold.writes.orders) {
    const model::OrderRecord* before = update.before ? &*update.before : nullptr;
    changes.push_back({before, &update.after});
    if (consumers_.observer != nullptr) consumers_.observer->OnOrderUpdated(before, update.after);
  }
  if (consumers_.observer != nullptr) {
    for (const auto& pending : group) consumers_.observer->OnSpansArrived(pending->batch);
  }
  if (consumers_.metrics != nullptr) consumers_.metrics->OnOrdersChanged(changes);
}

void Ingester::CacheFolded(GroupFold& fold) {
  for (store::OrderUpdate& update : fold.writes.orders) CacheOrder(std::move(update.after));
  // Unchanged records go back as they were.
  for (GroupOrder* order : fold.unchanged) {
    auto cached = order_cache_.find(order->update.before->order_id);
    if (cached != order_cache_.end()) cached->second = std::move(*order->update.before);
  }
}

void Ingester::RollBack(GroupFold& fold) {
  // The cache must neither run ahead of the store nor keep a moved-from record.
  auto put_back = [this](std::optional<model::OrderRecord>& before) {
    if (!before) return;
    auto cached = order_cache_.find(before->order_id);
    if (cached != order_cache_.end()) cached->second = std::move(*before);
  };
  if (fold.writes.orders.empty() && fold.unchanged.empty()) {
    // Failed before DiffOrders: every update is still in its order.
    for (auto& [id, order] : fold.orders) put_back(order.update.before);
    return;
  }
  for (store::OrderUpdate& update : fold.writes.orders) put_back(update.before);
  for (GroupOrder* order : fold.unchanged) put_back(order->update.before);
}

void Ingester::Finish(Group& group, const absl::Status& status, size_t orders_updated) {
  size_t spans = 0, bytes = 0;
  for (const auto& pending : group) {
    spans += pending->span_count;
    bytes += pending->bytes;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    queued_spans_ -= spans;
    queued_bytes_ -= bytes;
    if (status.ok()) {
      stats_.spans_written += spans;
      stats_.requests_written += group.size();
      stats_.orders_updated += orders_updated;
    } else {
      ++stats_.write_errors;
    }
  }
  for (auto& pending : group) pending->folded.set_value(status);
}

void Ingester::Process(Group& group, const std::vector<const GroupOrder*>& span_orders) {
  size_t next_span = 0;
  for (auto& pending : group) {
    for (base::ResourceSpans& rs : pending->batch.resource_spans) {
      for (base::ScopeSpans& ss : rs.scope_spans) {
        if (consumers_.metrics != nullptr) consumers_.metrics->OnSpans(rs.resource, ss);
        for (base::Span& span : ss.spans) {
          const GroupOrder* order = span_orders[next_span++];
          if (order == nullptr || order->current == nullptr) continue;
          if (!lifecycle::MayDeriveAttributes(span, options_.price_calc_span)) continue;
          lifecycle::AddDerivedAttributes(span, *order->current, options_.price_calc_span);
        }
      }
    }
    if (consumers_.sampler != nullptr) {
      pending->batch = consumers_.sampler->Admit(std::move(pending->batch), &pending->dropped_spans,
                                                 &pending->pending_detail, &pending->received);
    }
  }
}

}  // namespace ordertrace::ingest
