// Time as a dependency: production code reads SystemClock, tests set a ManualClock.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace ordertrace::base {

inline constexpr uint64_t kNanosPerSecond = 1'000'000'000ULL;

// Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual uint64_t NowUnixNano() const = 0;
};

class SystemClock final : public Clock {
 public:
  uint64_t NowUnixNano() const override {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  }
};

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(uint64_t now_unix_nano) : now_(now_unix_nano) {}
  uint64_t NowUnixNano() const override { return now_.load(); }
  void Set(uint64_t now_unix_nano) { now_.store(now_unix_nano); }
  void Advance(uint64_t nanos) { now_.fetch_add(nanos); }

 private:
  std::atomic<uint64_t> now_;
};

}  // namespace ordertrace::base
