#include "store/retention.h"

#include <spdlog/spdlog.h>

namespace ordertrace::store {

RetentionRunner::RetentionRunner(Store& store, const base::Clock& clock, RetentionOptions options)
    : store_(store), clock_(clock), options_(options) {}

RetentionRunner::~RetentionRunner() { Shutdown(); }

absl::StatusOr<RetentionStats> RetentionRunner::RunOnce() {
  uint64_t now = clock_.NowUnixNano();
  auto cutoff = [now](uint64_t seconds) {
    uint64_t span = seconds * base::kNanosPerSecond;
    return now > span ? now - span : 0;
  };
  return store_.ApplyRetention(cutoff(options_.span_retention_seconds),
                               cutoff(options_.order_retention_seconds));
}

void RetentionRunner::Start() {
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      lock.unlock();
      absl::StatusOr<RetentionStats> stats = RunOnce();
      if (!stats.ok()) {
        spdlog::warn("retention pass failed: {}", stats.status().ToString());
      } else if (stats->span_blocks_removed > 0 || stats->orders_removed > 0 ||
                 stats->gaps_removed > 0) {
        spdlog::info("retention removed {} span blocks in {} buckets, {} orders and {} gaps",
                     stats->span_blocks_removed, stats->span_buckets_removed, stats->orders_removed,
                     stats->gaps_removed);
      }
      lock.lock();
      wake_.wait_for(lock, std::chrono::seconds(options_.interval_seconds),
                     [this] { return stopping_; });
    }
  });
}

void RetentionRunner::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace ordertrace::store
