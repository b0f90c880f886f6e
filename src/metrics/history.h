// A short memory of a few figures over time, so the console can draw "gaps and errors over
// time" from ordertrace itself, without a Prometheus. Every `step` it sums each watched family
// over its series: a gauge keeps its value, a counter its increase since the previous sample.
// Holds `points` samples (by default an hour of 10 s steps) and forgets the oldest.
//
// Thread-safe. Sampled by its own thread (Start/Stop) or by the caller (Sample, in tests).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "metrics/registry.h"

namespace ordertrace::metrics {

struct WatchedFigure {
  std::string name;     // as the points name it
  std::string family;   // a counter or gauge of the registry
  bool counter = true;  // counters give increases per step, gauges their value
};

struct MetricHistoryOptions {
  uint64_t step_seconds = 10;
  size_t points = 360;
  std::vector<WatchedFigure> figures;
};

struct HistoryPoint {
  uint64_t at_unix_nano = 0;
  std::map<std::string, double> values;  // by WatchedFigure::name
};

class MetricHistory {
 public:
  // `registry` is borrowed and must outlive this.
  MetricHistory(const Registry& registry, MetricHistoryOptions options);
  ~MetricHistory();

  // Samples at once, then every step, on a thread of its own until Stop. Sampling runs the
  // registry's scrape hooks: start it once every part has added its hooks.
  void Start();
  void Stop();

  // Takes one sample now (the thread calls this). The first sample of a counter gives no
  // increase (there is nothing before it): it records 0.
  void Sample();

  std::vector<HistoryPoint> Points() const;
  uint64_t step_seconds() const { return options_.step_seconds; }

 private:
  void Run();

  const Registry& registry_;
  const MetricHistoryOptions options_;
  mutable std::mutex mu_;
  std::deque<HistoryPoint> points_;            // guarded by mu_
  std::map<std::string, double> last_totals_;  // guarded by mu_: counters at the last sample
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

// The figures the console draws over time: gaps that paged, gaps open, order errors, status
// transitions.
MetricHistoryOptions ConsoleHistoryOptions();

}  // namespace ordertrace::metrics
