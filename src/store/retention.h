// Applies the retention policy: spans are kept `span_retention`, order records and their gaps
// `order_retention` after their last span (gaps of no order: after their since). Runs once on
// demand (tests, start-up) or every `interval` on its own thread. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "absl/status/statusor.h"
#include "base/clock.h"
#include "store/store.h"

namespace ordertrace::store {

struct RetentionOptions {
  uint64_t span_retention_seconds = 14 * 24 * 3600;
  uint64_t order_retention_seconds = 90 * 24 * 3600;
  uint64_t interval_seconds = 600;
};

class RetentionRunner {
 public:
  RetentionRunner(Store& store, const base::Clock& clock, RetentionOptions options);
  ~RetentionRunner();
  RetentionRunner(const RetentionRunner&) = delete;
  RetentionRunner& operator=(const RetentionRunner&) = delete;

  // One pass with the clock's current time.
  absl::StatusOr<RetentionStats> RunOnce();

  // Starts the periodic pass on a thread of its own; Shutdown() stops it.
  void Start();
  void Shutdown();

 private:
  Store& store_;
  const base::Clock& clock_;
  const RetentionOptions options_;

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace ordertrace::store
