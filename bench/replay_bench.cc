// Replay benchmark (docs/benchmarks.md): a business day of order spans, all in the past, sent
// over OTLP/HTTP protobuf to a real ordertrace twice per round: once in event-time order and
// once shuffled across requests. Prints each run's spans/s, the shuffled / in-order ratio of
// each round and its median, and the server's peak resident set. Asserts nothing (see
// docs/benchmarks.md).
//
// The day: --orders orders of bench/order_span_generator (19 spans each, every status of the
// default lifecycle), started evenly over --day-hours ending --end-ago-seconds ago, each order's
// steps --step-seconds apart (within every SLA: a fault-free day, so any gap is a false alarm).
// Its spans, ordered by end time (the event-time stream), are cut into requests the way
// exporters send them: each service fills a batch of its own and sends it at --batch spans (one
// ResourceSpans per request). Shuffled, the stream is first shuffled within consecutive windows
// of --window spans (several exporters flushing a backlog). The payloads are encoded before
// anything is timed.
//
// Each run: a fresh data directory and a fresh ordertrace on free loopback ports; --clients
// threads POST the requests in plan order with keep-alive (retrying 429/503 as SDKs do). The
// rate is spans over the time from the first request to the last acknowledgement. Then the
// server's VmHWM and CPU, and its gap figures from /metrics. The two deliveries alternate
// which goes first, --pairs rounds.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "bench/order_span_generator.h"
#include "bench/ordertrace_process.h"
#include "otlp/proto_codec.h"

namespace {

using namespace ordertrace;
using namespace ordertrace::bench;
using SteadyClock = std::chrono::steady_clock;

double MiB(uint64_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

// Spans of one service, about to become one request.
struct ServiceBatch {
  std::string service;
  std::vector<base::Span> spans;
};

// Cuts a stream of spans into requests: each service fills its own batch and it is encoded when
// it holds `batch_spans` spans; Finish() encodes the partial ones.
class RequestCutter {
 public:
  explicit RequestCutter(size_t batch_spans) : batch_spans_(batch_spans) {}

  void Add(const std::string& service, base::Span span) {
    std::vector<base::Span>& spans = filling_[service];
    spans.push_back(std::move(span));
    if (spans.size() >= batch_spans_) Cut(service, spans);
  }
  void Finish() {
    for (auto& [service, spans] : filling_) {
      if (!spans.empty()) Cut(service, spans);
    }
  }
  std::vector<std::string>& payloads() { return payloads_; }
  size_t spans() const { return spans_; }
  // Over every request: how many distinct orders each had spans of.
  size_t orders_touched() const { return orders_touched_; }

 private:
  void Cut(const std::string& service, std::vector<base::Span>& spans) {
    base::TraceBatch batch;
    base::ResourceSpans rs;
    // The resource and scope the generator's services export under.
    rs.resource.attributes.push_back({"service.name", base::AnyValue::String(service)});
    rs.resource.attributes.push_back({"service.version", base::AnyValue::String("1.4.2")});
    rs.resource.attributes.push_back(
        {"deployment.environment", base::AnyValue::String("production")});
    base::ScopeSpans ss;
    ss.scope.name = "alexandrite.tracing";
    ss.scope.version = "0.1.0";
    ss.spans = std::move(spans);
    spans_ += ss.spans.size();
    // Each order a request touches is a record read, folded and written.
    std::vector<std::string_view> orders;
    for (const base::Span& span : ss.spans) {
      if (!span.attributes.empty()) orders.push_back(span.attributes.front().value.string_value);
    }
    std::sort(orders.begin(), orders.end());
    orders_touched_ += std::unique(orders.begin(), orders.end()) - orders.begin();
    rs.scope_spans.push_back(std::move(ss));
    batch.resource_spans.push_back(std::move(rs));
    payloads_.push_back(otlp::EncodeProtobuf(batch));
    spans.clear();
  }

  const size_t batch_spans_;
  std::map<std::string, std::vector<base::Span>> filling_;
  std::vector<std::string> payloads_;
  size_t spans_ = 0;
  size_t orders_touched_ = 0;
};

// The shuffled delivery: the stream shuffled within consecutive windows, then cut.
class WindowShuffler {
 public:
  WindowShuffler(size_t window_spans, uint64_t seed, RequestCutter& cutter)
      : window_spans_(std::max<size_t>(window_spans, 1)), rng_(seed), cutter_(cutter) {}

  void Add(const std::string& service, const base::Span& span) {
    window_.emplace_back(service, span);
    if (window_.size() >= window_spans_) Flush();
  }
  void Flush() {
    std::shuffle(window_.begin(), window_.end(), rng_);
    for (auto& [service, span] : window_) cutter_.Add(service, std::move(span));
    window_.clear();
  }

 private:
  const size_t window_spans_;
  std::mt19937_64 rng_;
  RequestCutter& cutter_;
  std::vector<std::pair<std::string, base::Span>> window_;
};

struct Day {
  std::vector<std::string> in_order;
  std::vector<std::string> shuffled;
  size_t spans = 0;
  size_t bytes = 0;
  size_t in_order_orders_touched = 0;
  size_t shuffled_orders_touched = 0;
  uint64_t first_end = 0;
  uint64_t last_end = 0;
};

// The day's spans by end time, cut into both deliveries' requests.
Day MakeDay(size_t orders, uint64_t base, bench::OrderTiming timing, size_t window, size_t batch,
            uint64_t seed) {
  bench::OrderSpanGenerator gen(seed, base, timing);
  RequestCutter in_order(batch), shuffled_cutter(batch);
  WindowShuffler shuffler(window, seed + 1, shuffled_cutter);
  struct Pending {
    uint64_t end;
    uint64_t seq;  // ties keep generation order
    std::string service;
    base::Span span;
  };
  auto later = [](const Pending* a, const Pending* b) {
    return a->end != b->end ? a->end > b->end : a->seq > b->seq;
  };
  // Orders overlap in time (each lasts 18 steps): merge them into one stream by end time.
  std::priority_queue<Pending*, std::vector<Pending*>, decltype(later)> heap(later);
  uint64_t seq = 0;
  Day day;
  day.first_end = UINT64_MAX;
  auto emit_until = [&](uint64_t bound) {
    while (!heap.empty() && heap.top()->end <= bound) {
      std::unique_ptr<Pending> p(heap.top());
      heap.pop();
      day.first_end = std::min(day.first_end, p->end);
      day.last_end = std::max(day.last_end, p->end);
      shuffler.Add(p->service, p->span);
      in_order.Add(p->service, std::move(p->span));
    }
  };
  for (size_t order = 0; order < orders; ++order) {
    for (size_t step = 0; step < bench::OrderSpanGenerator::kSpansPerOrder; ++step) {
      auto p = std::make_unique<Pending>();
      p->span = gen.NextSpan(p->service);
      p->end = p->span.end_time_unix_nano;
      p->seq = seq++;
      heap.push(p.release());
    }
    // No span still to come ends before the next order starts.
    emit_until(gen.NextOrderStart());
  }
  emit_until(UINT64_MAX);
  shuffler.Flush();
  in_order.Finish();
  shuffled_cutter.Finish();
  day.spans = in_order.spans();
  day.in_order_orders_touched = in_order.orders_touched();
  day.shuffled_orders_touched = shuffled_cutter.orders_touched();
  day.in_order = std::move(in_order.payloads());
  day.shuffled = std::move(shuffled_cutter.payloads());
  for (const std::string& p : day.in_order) day.bytes += p.size();
  return day;
}

// The sum of every sample of `family` in a Prometheus text exposition (0 if none).
double MetricSum(const std::string& text, const std::string& family) {
  double sum = 0;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(family, 0) != 0) continue;
    const char next = line.size() > family.size() ? line[family.size()] : '\0';
    if (next != ' ' && next != '{') continue;
    const size_t space = line.rfind(' ');
    if (space == std::string::npos) continue;
    sum += std::strtod(line.c_str() + space + 1, nullptr);
  }
  return sum;
}

struct Run {
  double seconds = 0;
  double spans_per_second = 0;
  double server_cpu_us_per_span = 0;
  uint64_t peak_rss = 0;
  size_t failures = 0;
  size_t retries = 0;
  // From /metrics once every request is acknowledged.
  double gaps_detected = 0;        // paged
  double gaps_found_resolved = 0;  // recorded without paging
  double gaps_held = 0;
  double gaps_withdrawn = 0;
  double late_spans = 0;
};

Run RunReplay(const std::string& binary, const std::string& data_dir, const std::string& config,
              const std::vector<std::string>& payloads, size_t spans, int clients,
              const std::string& perf_out) {
  std::filesystem::remove_all(data_dir);
  std::filesystem::create_directories(data_dir);
  RunningServer server = StartOrdertrace(binary, data_dir, config);
  pid_t perf = -1;
  if (!perf_out.empty()) {
    // A profile of the server while it ingests (perf record --call-graph dwarf is too heavy
    // for a run of millions of spans: frame pointers suffice for the ordertrace frames).
    perf = fork();
    if (perf == 0) {
      const std::string pid = std::to_string(server.pid);
      execlp("perf", "perf", "record", "-q", "-g", "-F", "499", "-o", perf_out.c_str(), "-p",
             pid.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  std::atomic<size_t> next{0}, failures{0}, retries{0};
  const double cpu0 = ProcessCpuSeconds(server.pid);
  const auto t0 = SteadyClock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      httplib::Client client("127.0.0.1", server.otlp_http);
      client.set_keep_alive(true);
      client.set_read_timeout(120, 0);
      for (size_t i; (i = next.fetch_add(1)) < payloads.size();) {
        for (int attempt = 0;; ++attempt) {
          auto res = client.Post("/v1/traces", payloads[i], "application/x-protobuf");
          if (res && res->status == 200) break;
          if (res && (res->status == 429 || res->status == 503) && attempt < 100) {
            ++retries;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            continue;
          }
          ++failures;
          break;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  Run r;
  r.seconds = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  const double cpu = ProcessCpuSeconds(server.pid) - cpu0;
  if (perf > 0) {
    kill(perf, SIGINT);
    int status = 0;
    waitpid(perf, &status, 0);
  }
  r.peak_rss = ProcStatusBytes(server.pid, "VmHWM");
  httplib::Client api("127.0.0.1", server.http);
  if (auto res = api.Get("/metrics"); res && res->status == 200) {
    r.gaps_detected = MetricSum(res->body, "gap_detected_total");
    r.gaps_found_resolved = MetricSum(res->body, "gap_found_resolved_total");
    r.gaps_held = MetricSum(res->body, "ordertrace_gaps_held");
    r.gaps_withdrawn = MetricSum(res->body, "ordertrace_gaps_withdrawn_total");
    r.late_spans = MetricSum(res->body, "ordertrace_source_out_of_order_spans_total");
  }
  StopOrdertrace(server);
  // The next run must not pay for this one's files.
  std::filesystem::remove_all(data_dir);
  r.spans_per_second = static_cast<double>(spans) / r.seconds;
  r.server_cpu_us_per_span = cpu * 1e6 / static_cast<double>(spans);
  r.failures = failures.load();
  r.retries = retries.load();
  return r;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ordertrace replay benchmark: a day of orders in event-time order and shuffled"};
  std::string binary = "build/src/ordertrace";
  std::string config;
  size_t orders = 100'000;
  size_t window = 5000;
  size_t batch = 512;
  int pairs = 3;
  int clients = 4;
  double day_hours = 24;
  uint64_t end_ago_seconds = 3600;
  uint64_t step_seconds = 60;
  uint64_t seed = 14;
  std::string perf_dir;
  bool plan_only = false;
  app.add_option("--ordertrace", binary, "Path of the ordertrace binary");
  app.add_option("--config", config, "A YAML config for ordertrace (default: as shipped)");
  app.add_option("--orders", orders, "Orders in the day (19 spans each)")
      ->check(CLI::Range(size_t{1}, size_t{10'000'000}));
  app.add_option("--window", window, "Shuffled: spans shuffled within windows of this many");
  app.add_option("--batch", batch, "Spans per request (per service)")
      ->check(CLI::Range(size_t{1}, size_t{100'000}));
  app.add_option("--pairs", pairs, "Rounds of one in-order and one shuffled run")
      ->check(CLI::Range(1, 20));
  app.add_option("--clients", clients, "Concurrent OTLP/HTTP clients")->check(CLI::Range(1, 64));
  app.add_option("--day-hours", day_hours, "The orders start evenly over this many hours");
  app.add_option("--end-ago-seconds", end_ago_seconds,
                 "The last order starts this long before now (spans must be in the past)");
  app.add_option("--step-seconds", step_seconds,
                 "An order's spans this far apart (60: 18 minutes an order, within every SLA)");
  app.add_option("--seed", seed, "Random seed (spans and shuffle)");
  app.add_option("--perf", perf_dir,
                 "Record a perf profile of the server in each run into this directory");
  app.add_flag("--plan-only", plan_only, "Make the day's requests, describe them and stop");
  CLI11_PARSE(app, argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::printf("load average at start: %s\n", LoadAverage().c_str());

  const uint64_t now = base::SystemClock().NowUnixNano();
  const uint64_t day = static_cast<uint64_t>(day_hours * 3600e9);
  bench::OrderTiming timing;
  timing.order_interval_nanos = std::max<uint64_t>(day / orders, 1);
  timing.step_interval_nanos = step_seconds * base::kNanosPerSecond;
  const uint64_t base =
      now - end_ago_seconds * base::kNanosPerSecond - orders * timing.order_interval_nanos;
  const auto g0 = SteadyClock::now();
  const Day replay = MakeDay(orders, base, timing, window, batch, seed);
  const double lead_out =
      static_cast<double>(base::SystemClock().NowUnixNano() - replay.last_end) / 1e9;
  std::printf(
      "day: %zu orders, %zu spans (%.0f bytes/span on the wire), event time %.2f h, the last "
      "span %.0f s ago; requests: %zu in order, %zu shuffled (window %zu, batch %zu); made in "
      "%.1f s\n",
      orders, replay.spans, static_cast<double>(replay.bytes) / replay.spans,
      static_cast<double>(replay.last_end - replay.first_end) / 3600e9, lead_out,
      replay.in_order.size(), replay.shuffled.size(), window, batch,
      std::chrono::duration<double>(SteadyClock::now() - g0).count());
  std::printf("  orders per request: %.1f in order, %.1f shuffled (spans per request: %.1f)\n",
              static_cast<double>(replay.in_order_orders_touched) / replay.in_order.size(),
              static_cast<double>(replay.shuffled_orders_touched) / replay.shuffled.size(),
              static_cast<double>(replay.spans) / replay.in_order.size());
  if (plan_only) return 0;

  const std::string dir =
      (std::filesystem::temp_directory_path() / ("ordertrace-replay-" + std::to_string(getpid())))
          .string();
  if (!perf_dir.empty()) std::filesystem::create_directories(perf_dir);
  auto print = [&](const char* what, int pair, const Run& r) {
    std::printf(
        "  %-9s %9.0f spans/s (%.1f s), %5.2f server CPU us/span, server peak RSS (VmHWM) "
        "%.0f MiB; %zu failed, %zu retried requests; gaps detected %.0f, found resolved %.0f, "
        "held %.0f, withdrawn %.0f; late spans %.0f\n",
        what, r.spans_per_second, r.seconds, r.server_cpu_us_per_span, MiB(r.peak_rss), r.failures,
        r.retries, r.gaps_detected, r.gaps_found_resolved, r.gaps_held, r.gaps_withdrawn,
        r.late_spans);
  };
  std::vector<double> ratios, in_order_rates, shuffled_rates;
  for (int pair = 0; pair < pairs; ++pair) {
    std::printf("pair %d (%s first):\n", pair + 1, pair % 2 == 0 ? "in order" : "shuffled");
    auto run = [&](bool shuffled) {
      const std::string name =
          std::string(shuffled ? "shuffled" : "in-order") + "-" + std::to_string(pair + 1);
      const std::string perf_out = perf_dir.empty() ? "" : perf_dir + "/" + name + ".data";
      Run r =
          RunReplay(binary, dir + "/" + name, config, shuffled ? replay.shuffled : replay.in_order,
                    replay.spans, clients, perf_out);
      print(shuffled ? "shuffled" : "in order", pair, r);
      return r;
    };
    Run in_order, shuffled;
    if (pair % 2 == 0) {
      in_order = run(false);
      shuffled = run(true);
    } else {
      shuffled = run(true);
      in_order = run(false);
    }
    ratios.push_back(shuffled.spans_per_second / in_order.spans_per_second);
    in_order_rates.push_back(in_order.spans_per_second);
    shuffled_rates.push_back(shuffled.spans_per_second);
    std::printf("  pair %d: shuffled / in order = %.0f%%\n", pair + 1, 100.0 * ratios.back());
  }
  std::printf("in order: median %.0f spans/s; shuffled: median %.0f spans/s\n",
              Median(in_order_rates), Median(shuffled_rates));
  std::printf("shuffled / in order:");
  for (double ratio : ratios) std::printf(" %.0f%%", 100.0 * ratio);
  std::printf("; median of %d pairs %.0f%% (target >= 80%%)\n", pairs, 100.0 * Median(ratios));
  std::printf("load average at end: %s\n", LoadAverage().c_str());
  std::filesystem::remove_all(dir);
  return 0;
}
