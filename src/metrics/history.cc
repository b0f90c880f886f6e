#include "metrics/history.h"

#include <chrono>

namespace ordertrace::metrics {
namespace {

double SumOf(const std::vector<ScalarSample>& samples) {
  double sum = 0;
  for (const ScalarSample& s : samples) sum += s.value;
  return sum;
}

}  // namespace

MetricHistory::MetricHistory(const Registry& registry, MetricHistoryOptions options)
    : registry_(registry), options_(std::move(options)) {}

MetricHistory::~MetricHistory() { Stop(); }

void MetricHistory::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

void MetricHistory::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void MetricHistory::Run() {
  Sample();  // at once, so that the first step has a base to count increases from
  std::unique_lock<std::mutex> lock(mu_);
  while (!wake_.wait_for(lock, std::chrono::seconds(options_.step_seconds),
                         [this] { return stopping_; })) {
    lock.unlock();
    Sample();
    lock.lock();
  }
}

void MetricHistory::Sample() {
  registry_.RunScrapeHooks();
  HistoryPoint point;
  point.at_unix_nano = registry_.NowUnixNano();
  std::map<std::string, double> totals;
  for (const WatchedFigure& figure : options_.figures) {
    std::optional<std::vector<ScalarSample>> samples = registry_.ScalarSnapshot(figure.family);
    totals[figure.name] = samples ? SumOf(*samples) : 0;
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const WatchedFigure& figure : options_.figures) {
    const double total = totals[figure.name];
    if (!figure.counter) {
      point.values[figure.name] = total;
      continue;
    }
    auto last = last_totals_.find(figure.name);
    // A counter never goes down; were it to (a family replaced from a snapshot), count from it.
    point.values[figure.name] =
        last == last_totals_.end() || total < last->second ? 0 : total - last->second;
    last_totals_[figure.name] = total;
  }
  points_.push_back(std::move(point));
  while (points_.size() > options_.points) points_.pop_front();
}

std::vector<HistoryPoint> MetricHistory::Points() const {
  std::lock_guard<std::mutex> lock(mu_);
  return std::vector<HistoryPoint>(points_.begin(), points_.end());
}

MetricHistoryOptions ConsoleHistoryOptions() {
  MetricHistoryOptions options;
  options.figures = {{"gaps_detected", "gap_detected_total", true},
                     {"open_gaps", "open_gaps", false},
                     {"order_errors", "order_errors_total", true},
                     {"transitions", "status_transitions_total", true}};
  return options;
}

}  // namespace ordertrace::metrics
