// A fixed set of threads running tasks from a bounded queue. A full queue refuses the task
// (TryPost returns false) instead of blocking the caller: the server answers 503 then.
//
// Thread-safe. Shutdown (and the destructor) finishes the running tasks, drops the queued ones
// and joins the threads.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ordertrace::http {

class WorkerPool {
 public:
  WorkerPool(size_t threads, size_t max_queued);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`; false when the queue is full or the pool is shut down.
  bool TryPost(std::function<void()> task);
  void Shutdown();

  size_t queued() const;
  size_t busy() const;

 private:
  void Run();

  const size_t max_queued_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  size_t busy_ = 0;                          // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace ordertrace::http
