#include "sdk/batch_span_processor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <vector>

namespace ordertrace::sdk {
namespace {

using ::testing::ElementsAreArray;
using ::testing::SizeIs;

constexpr auto kBound = std::chrono::seconds(10);  // the longest any wait in these tests may take

// What the fake exporter saw; lives in the test, outliving the processor that owns the exporter.
struct ExportLog {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<size_t> batch_sizes;
  std::vector<std::string> names;  // span names in export order
  bool gate_open = true;           // while false, Export blocks
  int exports_started = 0;
  bool shut_down = false;
  absl::Status result = absl::OkStatus();

  // Waits (bounded) until `n` exports have started.
  bool WaitForExportsStarted(int n) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, kBound, [&] { return exports_started >= n; });
  }
  void OpenGate() {
    std::lock_guard<std::mutex> lock(mu);
    gate_open = true;
    cv.notify_all();
  }
};

// A slow exporter: blocks in Export while the gate is closed (or until Shutdown).
class GatedExporter final : public SpanExporter {
 public:
  explicit GatedExporter(ExportLog* log) : log_(log) {}
  absl::Status Export(std::span<const SpanData> spans) override {
    std::unique_lock<std::mutex> lock(log_->mu);
    ++log_->exports_started;
    log_->cv.notify_all();
    log_->cv.wait(lock, [&] { return log_->gate_open || log_->shut_down; });
    log_->batch_sizes.push_back(spans.size());
    for (const SpanData& d : spans) log_->names.push_back(d.span.name);
    return log_->shut_down ? absl::CancelledError("shut down") : log_->result;
  }
  void Shutdown() override {
    std::lock_guard<std::mutex> lock(log_->mu);
    log_->shut_down = true;
    log_->cv.notify_all();
  }

 private:
  ExportLog* const log_;
};

SpanData Named(std::string name) {
  SpanData data;
  data.span.name = std::move(name);
  return data;
}

std::vector<std::string> Names(int from, int to) {
  std::vector<std::string> names;
  for (int i = from; i < to; ++i) names.push_back("s" + std::to_string(i));
  return names;
}

TEST(BatchSpanProcessorTest, OverloadDropsAndCountsWithoutBlockingTheCaller) {
  ExportLog log;
  log.gate_open = false;
  BatchSpanProcessorOptions options;
  options.max_queue_size = 8;
  options.max_export_batch_size = 4;
  options.schedule_delay = std::chrono::hours(1);  // only full batches and flushes export
  BatchSpanProcessor processor(std::make_unique<GatedExporter>(&log), options);

  // A full batch wakes the worker, which then blocks in the slow exporter.
  for (int i = 0; i < 4; ++i) processor.OnEnd(Named("s" + std::to_string(i)));
  ASSERT_TRUE(log.WaitForExportsStarted(1));

  // With the exporter stuck, 8 spans fill the queue and 5 more are dropped. Run on another
  // thread so that a blocking OnEnd fails the test instead of hanging it.
  std::future<void> producer = std::async(std::launch::async, [&] {
    for (int i = 4; i < 17; ++i) processor.OnEnd(Named("s" + std::to_string(i)));
  });
  bool returned = producer.wait_for(kBound) == std::future_status::ready;
  EXPECT_TRUE(returned) << "OnEnd blocked while the exporter was busy";
  BatchSpanProcessorStats during = processor.stats();
  log.OpenGate();
  producer.wait();

  EXPECT_EQ(during.spans_dropped, 5u);
  EXPECT_EQ(during.spans_queued, 12u);
  EXPECT_EQ(during.spans_exported, 0u);

  ASSERT_TRUE(processor.ForceFlush(kBound).ok());
  BatchSpanProcessorStats after = processor.stats();
  EXPECT_EQ(after.spans_exported, 12u);
  EXPECT_EQ(after.spans_dropped, 5u);
  std::lock_guard<std::mutex> lock(log.mu);
  // The first 12 spans arrive, in order, in batches no larger than 4; the overflow never does.
  EXPECT_THAT(log.names, ElementsAreArray(Names(0, 12)));
  EXPECT_THAT(log.batch_sizes, ElementsAreArray({4u, 4u, 4u}));
}

TEST(BatchSpanProcessorTest, ScheduleDelayExportsAPartialBatch) {
  ExportLog log;
  BatchSpanProcessorOptions options;
  options.max_export_batch_size = 100;
  options.schedule_delay = std::chrono::milliseconds(20);
  BatchSpanProcessor processor(std::make_unique<GatedExporter>(&log), options);
  processor.OnEnd(Named("alone"));
  // No flush: only the timer can start this export.
  ASSERT_TRUE(log.WaitForExportsStarted(1));
  std::lock_guard<std::mutex> lock(log.mu);
  EXPECT_THAT(log.names, ElementsAreArray({"alone"}));
}

TEST(BatchSpanProcessorTest, ForceFlushTimesOutWhileTheExporterIsStuck) {
  ExportLog log;
  log.gate_open = false;
  BatchSpanProcessorOptions options;
  options.schedule_delay = std::chrono::hours(1);
  BatchSpanProcessor processor(std::make_unique<GatedExporter>(&log), options);
  processor.OnEnd(Named("stuck"));
  EXPECT_EQ(processor.ForceFlush(std::chrono::milliseconds(50)).code(),
            absl::StatusCode::kDeadlineExceeded);
  log.OpenGate();
  EXPECT_TRUE(processor.ForceFlush(kBound).ok());
  EXPECT_EQ(processor.stats().spans_exported, 1u);
}

TEST(BatchSpanProcessorTest, FailedExportsAreCounted) {
  ExportLog log;
  log.result = absl::UnavailableError("collector down");
  BatchSpanProcessor processor(std::make_unique<GatedExporter>(&log), {});
  for (int i = 0; i < 3; ++i) processor.OnEnd(Named("s"));
  ASSERT_TRUE(processor.ForceFlush(kBound).ok());
  BatchSpanProcessorStats stats = processor.stats();
  EXPECT_EQ(stats.spans_export_failed, 3u);
  EXPECT_EQ(stats.spans_exported, 0u);
}

TEST(BatchSpanProcessorTest, ShutdownDrainsTheQueueThenDropsLaterSpans) {
  ExportLog log;
  BatchSpanProcessorOptions options;
  options.schedule_delay = std::chrono::hours(1);
  BatchSpanProcessor processor(std::make_unique<GatedExporter>(&log), options);
  for (int i = 0; i < 5; ++i) processor.OnEnd(Named("s" + std::to_string(i)));
  ASSERT_TRUE(processor.Shutdown(kBound).ok());
  {
    std::lock_guard<std::mutex> lock(log.mu);
    EXPECT_THAT(log.names, ElementsAreArray(Names(0, 5)));
    EXPECT_TRUE(log.shut_down);
  }
  processor.OnEnd(Named("late"));
  EXPECT_EQ(processor.stats().spans_dropped, 1u);
  EXPECT_TRUE(processor.Shutdown(kBound).ok());  // a second call is harmless
  EXPECT_EQ(processor.ForceFlush(kBound).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(BatchSpanProcessorTest, ShutdownWithAStuckExporterIsBoundedByItsTimeout) {
  ExportLog log;
  log.gate_open = false;
  BatchSpanProcessorOptions options;
  options.schedule_delay = std::chrono::milliseconds(1);
  BatchSpanProcessor processor(std::make_unique<GatedExporter>(&log), options);
  processor.OnEnd(Named("stuck"));
  ASSERT_TRUE(log.WaitForExportsStarted(1));
  // The drain cannot finish; Shutdown gives up after its timeout and shuts the exporter down,
  // which releases the export.
  EXPECT_EQ(processor.Shutdown(std::chrono::milliseconds(50)).code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(processor.stats().spans_export_failed, 1u);
}

TEST(BatchSpanProcessorTest, ManyThreadsLoseNothingWhenTheQueueIsLargeEnough) {
  ExportLog log;
  BatchSpanProcessorOptions options;
  options.max_queue_size = 4000;
  options.max_export_batch_size = 64;
  BatchSpanProcessor processor(std::make_unique<GatedExporter>(&log), options);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) processor.OnEnd(Named("s"));
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(processor.ForceFlush(kBound).ok());
  BatchSpanProcessorStats stats = processor.stats();
  EXPECT_EQ(stats.spans_queued + stats.spans_dropped, 4000u);
  EXPECT_EQ(stats.spans_exported, stats.spans_queued);
  std::lock_guard<std::mutex> lock(log.mu);
  EXPECT_THAT(log.names, SizeIs(stats.spans_exported));
  for (size_t size : log.batch_sizes) EXPECT_LE(size, 64u);
}

}  // namespace
}  // namespace ordertrace::sdk
