// A span processor that queues ended spans and exports them in batches from its own thread,
// as opentelemetry-cpp's BatchSpanProcessor. The queue is bounded: when it is full, OnEnd drops
// the span and counts it; the caller never waits for an export.
//
// Thread-safe. The exporter is called from the worker thread only (and Shutdown from the thread
// that calls Shutdown).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "sdk/span_exporter.h"
#include "sdk/span_processor.h"

namespace ordertrace::sdk {

struct BatchSpanProcessorOptions {
  // Spans waiting for export; past this OnEnd drops.
  size_t max_queue_size = 2048;
  // Spans per Export call; a full batch is exported without waiting for the delay.
  size_t max_export_batch_size = 512;
  // The longest a span waits in the queue before an export is started.
  std::chrono::milliseconds schedule_delay = std::chrono::seconds(1);
};

// Counters since construction; what operators see as metrics.
struct BatchSpanProcessorStats {
  uint64_t spans_queued = 0;
  uint64_t spans_dropped = 0;  // queue full, or ended after Shutdown
  uint64_t spans_exported = 0;
  uint64_t spans_export_failed = 0;
};

class BatchSpanProcessor final : public SpanProcessor {
 public:
  // Starts the worker thread. Sizes of zero are raised to one, and the batch size is capped at
  // the queue size.
  BatchSpanProcessor(std::unique_ptr<SpanExporter> exporter, BatchSpanProcessorOptions options);
  BatchSpanProcessor(const BatchSpanProcessor&) = delete;
  BatchSpanProcessor& operator=(const BatchSpanProcessor&) = delete;
  // Shuts down (5 s timeout) unless Shutdown was called.
  ~BatchSpanProcessor() override;

  // Queues the span, or drops and counts it when the queue is full. Holds the queue's mutex
  // only for the push; never waits for the exporter.
  void OnEnd(SpanData&& span) override;

  // Waits until everything queued before the call has been exported (or failed).
  absl::Status ForceFlush(std::chrono::milliseconds timeout) override;

  // Drains the queue, stops the worker and shuts the exporter down. When the drain takes longer
  // than `timeout` the exporter is told to give up. Later calls return OK.
  absl::Status Shutdown(std::chrono::milliseconds timeout) override;

  BatchSpanProcessorStats stats() const;

 private:
  void Run();
  // Exports up to one batch from the front of the queue; called with the lock held, releases it
  // around the export.
  void ExportOneBatch(std::unique_lock<std::mutex>& lock);
  void LogNewDrops();

  // Constant after construction.
  const std::unique_ptr<SpanExporter> exporter_;
  const BatchSpanProcessorOptions options_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // wakes the worker
  std::condition_variable done_cv_;  // wakes ForceFlush and Shutdown callers
  std::deque<SpanData> queue_;       // guarded by mu_
  bool shutdown_requested_ = false;  // guarded by mu_
  bool worker_finished_ = false;     // guarded by mu_
  bool shut_down_ = false;           // guarded by mu_; Shutdown has run
  uint64_t flush_requested_ = 0;     // guarded by mu_; ForceFlush generations asked for
  uint64_t flush_done_ = 0;          // guarded by mu_; generations completed
  BatchSpanProcessorStats stats_;    // guarded by mu_
  uint64_t drops_logged_ = 0;        // worker thread only

  std::thread worker_;
};

}  // namespace ordertrace::sdk
