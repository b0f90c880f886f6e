#include "ingest/ingester.h"

#include <map>
#include <unordered_map>

#include "lifecycle/order_record_builder.h"
#include "otlp/proto_codec.h"

namespace ordertrace::ingest {

std::vector<store::SpanBlock> BlocksByTrace(const model::TraceBatch& batch,
                                            uint64_t now_unix_nano) {
  struct Group {
    model::TraceBatch batch;
    uint64_t latest_end = 0;
  };
  std::map<model::TraceId, Group> groups;
  // Every trace with spans under a resource and scope gets its own copy of them.
  for (const model::ResourceSpans& rs : batch.resource_spans) {
    std::map<model::TraceId, model::ResourceSpans*> rs_of_trace;
    for (const model::ScopeSpans& ss : rs.scope_spans) {
      std::map<model::TraceId, model::ScopeSpans*> ss_of_trace;
      for (const model::Span& span : ss.spans) {
        Group& g = groups[span.trace_id];
        g.latest_end = std::max(g.latest_end, span.end_time_unix_nano);
        model::ResourceSpans*& rs_out = rs_of_trace[span.trace_id];
        if (rs_out == nullptr) {
          g.batch.resource_spans.push_back(
              model::ResourceSpans{rs.resource, rs.schema_url, {}});
          rs_out = &g.batch.resource_spans.back();
        }
        model::ScopeSpans*& ss_out = ss_of_trace[span.trace_id];
        if (ss_out == nullptr) {
          rs_out->scope_spans.push_back(model::ScopeSpans{ss.scope, ss.schema_url, {}});
          ss_out = &rs_out->scope_spans.back();
        }
        ss_out->spans.push_back(span);
      }
    }
  }

  std::vector<store::SpanBlock> blocks;
  blocks.reserve(groups.size());
  for (auto& [trace_id, group] : groups) {
    uint64_t time = group.latest_end == 0 ? now_unix_nano
                                          : std::min(group.latest_end, now_unix_nano);
    blocks.push_back(store::SpanBlock{trace_id, time, otlp::EncodeProtobuf(group.batch)});
  }
  return blocks;
}

Ingester::Ingester(store::Store& store, const model::Clock& clock, IngesterOptions options)
    : store_(store), clock_(clock), options_(options) {
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
  // Encoding happens on the caller's thread, so that several receivers encode in parallel.
  pending->blocks = BlocksByTrace(batch, clock_.NowUnixNano());
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
      while (!queue_.empty() &&
             (group.empty() || spans + queue_.front()->span_count <= options_.max_spans_per_write)) {
        spans += queue_.front()->span_count;
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    Commit(group);
  }
}

void Ingester::Commit(std::vector<std::unique_ptr<Pending>>& group) {
  store::WriteSet writes;
  std::unordered_map<std::string, store::OrderUpdate> orders;
  absl::Status status = absl::OkStatus();
  for (auto& pending : group) {
    for (store::SpanBlock& block : pending->blocks) writes.blocks.push_back(std::move(block));
    for (const model::ResourceSpans& rs : pending->batch.resource_spans) {
      for (const model::ScopeSpans& ss : rs.scope_spans) {
        for (const model::Span& span : ss.spans) {
          std::optional<std::string> order_id = lifecycle::OrderIdOf(span, rs.resource);
          if (!order_id) continue;
          auto it = orders.find(*order_id);
          if (it == orders.end()) {
            absl::StatusOr<std::optional<model::OrderRecord>> stored = store_.GetOrder(*order_id);
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
    for (auto& [id, update] : orders) {
      // A replayed span leaves the record as it was: nothing to write.
      if (!update.before || !(*update.before == update.after)) {
        writes.orders.push_back(std::move(update));
      }
    }
    status = store_.Write(writes);
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
