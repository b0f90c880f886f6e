#include "ingest/ingester.h"

#include <pthread.h>

#include <map>
#include <unordered_map>

#include "lifecycle/order_record_builder.h"
#include "otlp/proto_codec.h"

namespace ordertrace::ingest {

std::vector<store::SpanBlock> BlocksByTrace(const model::TraceBatch& batch,
                                            uint64_t now_unix_nano) {
  std::vector<store::SpanBlock> blocks;
  for (otlp::EncodedTrace& part : otlp::EncodeProtobufByTrace(batch)) {
    uint64_t time = part.latest_end_unix_nano == 0
                        ? now_unix_nano
                        : std::min(part.latest_end_unix_nano, now_unix_nano);
    blocks.push_back(store::SpanBlock{part.trace_id, time, std::move(part.encoded)});
  }
  return blocks;
}

Ingester::Ingester(store::Store& store, const model::Clock& clock, IngesterOptions options,
                   OrderObserver* observer)
    : store_(store), clock_(clock), options_(options), observer_(observer) {
  writer_ = std::thread([this] { WriterLoop(); });
}

Ingester::~Ingester() { Shutdown(); }

absl::Status Ingester::Ingest(model::TraceBatch batch) {
  auto pending = std::make_unique<Pending>();
  pending->span_count = batch.SpanCount();
  if (pending->span_count == 0) return absl::OkStatus();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutting_down_) return absl::UnavailableError("ordertrace is shutting down");
    if (queued_spans_ + pending->span_count > options_.max_queued_spans) {
      ++stats_.requests_refused_full;
      return absl::ResourceExhaustedError("ingest queue is full; retry later");
    }
    queued_spans_ += pending->span_count;
  }
  // Span blocks are written on the caller's thread: RocksDB merges concurrent writers into
  // one log write, and the single writer thread is left with what must be serial, the order
  // records.
  absl::Status blocks_written =
      store_.Write(store::WriteSet{BlocksByTrace(batch, clock_.NowUnixNano()), {}});
  if (!blocks_written.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    queued_spans_ -= pending->span_count;
    ++stats_.write_errors;
    return blocks_written;
  }
  pending->batch = std::move(batch);
  std::future<absl::Status> done = pending->done.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (writer_exited_) {
      queued_spans_ -= pending->span_count;
      return absl::UnavailableError("ordertrace is shutting down");
    }
    queue_.push_back(std::move(pending));
  }
  work_ready_.notify_one();
  return done.get();
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
  return s;
}

void Ingester::WriterLoop() {
  pthread_setname_np(pthread_self(), "ot-writer");
  for (;;) {
    std::vector<std::unique_ptr<Pending>> group;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_ready_.wait(lock, [this] { return shutting_down_ || !queue_.empty(); });
      if (queue_.empty()) {
        // A caller still encoding will see this and answer kUnavailable itself.
        writer_exited_ = true;
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
    Commit(group);
  }
}

absl::StatusOr<std::optional<model::OrderRecord>> Ingester::LoadOrder(const std::string& order_id) {
  auto cached = order_cache_.find(order_id);
  if (cached != order_cache_.end()) return std::optional<model::OrderRecord>(cached->second);
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

void Ingester::Commit(std::vector<std::unique_ptr<Pending>>& group) {
  store::WriteSet writes;
  std::unordered_map<std::string, store::OrderUpdate> orders;
  absl::Status status = absl::OkStatus();
  for (auto& pending : group) {
    for (const model::ResourceSpans& rs : pending->batch.resource_spans) {
      for (const model::ScopeSpans& ss : rs.scope_spans) {
        for (const model::Span& span : ss.spans) {
          std::optional<std::string> order_id = lifecycle::OrderIdOf(span, rs.resource);
          if (!order_id) continue;
          auto it = orders.find(*order_id);
          if (it == orders.end()) {
            absl::StatusOr<std::optional<model::OrderRecord>> stored = LoadOrder(*order_id);
            if (!stored.ok()) {
              status = stored.status();
              break;
            }
            store::OrderUpdate update;
            update.before = std::move(*stored);
            if (update.before) {
              update.after = *update.before;
            } else {
              update.after.order_id = *order_id;
            }
            it = orders.emplace(*order_id, std::move(update)).first;
          }
          lifecycle::ApplySpan(span, rs.resource, it->second.after);
        }
      }
    }
  }
  size_t spans = 0;
  for (const auto& pending : group) spans += pending->span_count;
  if (status.ok()) {
    writes.orders.reserve(orders.size());
    for (auto& [id, update] : orders) {
      // A replayed span leaves the record as it was: nothing to write.
      if (!update.before || !(*update.before == update.after)) {
        writes.orders.push_back(std::move(update));
      }
    }
    status = store_.Write(writes);
    if (status.ok()) {
      for (store::OrderUpdate& update : writes.orders) {
        if (observer_ != nullptr) observer_->OnOrderUpdated(update.after);
        CacheOrder(std::move(update.after));
      }
    } else {
      // The cache must not run ahead of the store.
      for (const store::OrderUpdate& update : writes.orders) {
        order_cache_.erase(update.after.order_id);
      }
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    queued_spans_ -= spans;
    if (status.ok()) {
      stats_.spans_written += spans;
      stats_.requests_written += group.size();
      stats_.orders_updated += writes.orders.size();
    } else {
      ++stats_.write_errors;
    }
  }
  for (auto& pending : group) pending->done.set_value(status);
}

}  // namespace ordertrace::ingest
