#include "sdk/batch_span_processor.h"

#include <algorithm>
#include <iterator>
#include <utility>
#include <vector>

#include "spdlog/spdlog.h"

namespace ordertrace::sdk {
namespace {

BatchSpanProcessorOptions Sanitized(BatchSpanProcessorOptions options) {
  options.max_queue_size = std::max<size_t>(options.max_queue_size, 1);
  options.max_export_batch_size =
      std::clamp<size_t>(options.max_export_batch_size, 1, options.max_queue_size);
  options.schedule_delay = std::max(options.schedule_delay, std::chrono::milliseconds(1));
  return options;
}

}  // namespace

BatchSpanProcessor::BatchSpanProcessor(std::unique_ptr<SpanExporter> exporter,
                                       BatchSpanProcessorOptions options)
    : exporter_(std::move(exporter)), options_(Sanitized(options)) {
  worker_ = std::thread([this] { Run(); });
}

BatchSpanProcessor::~BatchSpanProcessor() { Shutdown(std::chrono::seconds(5)).IgnoreError(); }

void BatchSpanProcessor::OnEnd(SpanData&& span) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutdown_requested_ || queue_.size() >= options_.max_queue_size) {
      ++stats_.spans_dropped;
      return;
    }
    queue_.push_back(std::move(span));
    ++stats_.spans_queued;
    wake = queue_.size() == options_.max_export_batch_size;
  }
  if (wake) work_cv_.notify_one();
}

absl::Status BatchSpanProcessor::ForceFlush(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (worker_finished_) return absl::FailedPreconditionError("span processor is shut down");
  uint64_t generation = ++flush_requested_;
  work_cv_.notify_one();
  bool done = done_cv_.wait_for(lock, timeout,
                                [&] { return flush_done_ >= generation || worker_finished_; });
  if (!done) return absl::DeadlineExceededError("span flush timed out");
  return absl::OkStatus();
}

absl::Status BatchSpanProcessor::Shutdown(std::chrono::milliseconds timeout) {
  bool drained;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (shut_down_) return absl::OkStatus();
    shut_down_ = true;
    shutdown_requested_ = true;
    work_cv_.notify_one();
    drained = done_cv_.wait_for(lock, timeout, [&] { return worker_finished_; });
  }
  // Stops retries of an export still running, so that the join below is prompt.
  exporter_->Shutdown();
  worker_.join();
  if (!drained) return absl::DeadlineExceededError("span processor shutdown timed out");
  return absl::OkStatus();
}

BatchSpanProcessorStats BatchSpanProcessor::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void BatchSpanProcessor::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    work_cv_.wait_for(lock, options_.schedule_delay, [&] {
      return shutdown_requested_ || flush_requested_ > flush_done_ ||
             queue_.size() >= options_.max_export_batch_size;
    });
    // A flush or shutdown drains the queue as it stands; otherwise one batch (full, or what
    // the delay has gathered) goes out per wake-up.
    bool drain = shutdown_requested_ || flush_requested_ > flush_done_;
    uint64_t flush_generation = flush_requested_;
    do {
      ExportOneBatch(lock);
    } while (drain && !queue_.empty());
    LogNewDrops();
    if (drain) {
      flush_done_ = flush_generation;
      done_cv_.notify_all();
    }
    if (shutdown_requested_ && queue_.empty()) break;
  }
  worker_finished_ = true;
  done_cv_.notify_all();
}

void BatchSpanProcessor::ExportOneBatch(std::unique_lock<std::mutex>& lock) {
  if (queue_.empty()) return;
  size_t n = std::min(queue_.size(), options_.max_export_batch_size);
  std::vector<SpanData> batch(std::make_move_iterator(queue_.begin()),
                              std::make_move_iterator(queue_.begin() + n));
  queue_.erase(queue_.begin(), queue_.begin() + n);
  lock.unlock();
  absl::Status status = exporter_->Export(batch);
  if (!status.ok()) {
    spdlog::warn("ordertrace sdk: export of {} spans failed: {}", batch.size(), status.ToString());
  }
  batch.clear();  // free the spans before taking the lock again
  lock.lock();
  (status.ok() ? stats_.spans_exported : stats_.spans_export_failed) += n;
}

void BatchSpanProcessor::LogNewDrops() {
  // Logged from the worker, once per wake-up, so that a flood of drops costs OnEnd nothing.
  if (stats_.spans_dropped == drops_logged_) return;
  spdlog::warn("ordertrace sdk: span queue full ({} spans), dropped {} spans ({} in total)",
               options_.max_queue_size, stats_.spans_dropped - drops_logged_, stats_.spans_dropped);
  drops_logged_ = stats_.spans_dropped;
}

}  // namespace ordertrace::sdk
