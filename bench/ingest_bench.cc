// Ingest benchmark: OTLP/HTTP protobuf batches of realistic order spans sent over loopback to
// a real ordertrace process, beside a decode-only figure for the same payloads; then order
// lookups with many orders stored. Prints figures; asserts nothing (see docs/benchmarks.md).
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
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "bench/order_span_generator.h"
#include "bench/ordertrace_process.h"
#include "lifecycle/order_record_builder.h"
#include "otlp/proto_codec.h"
#include "store/rocks_store.h"

namespace {

using namespace ordertrace;
using namespace ordertrace::bench;
using Clock = std::chrono::steady_clock;

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct EndToEnd {
  double spans_per_second = 0;
  double server_cpu_us_per_span = 0;
  double client_cpu_us_per_span = 0;
  double cores_busy = 0;
  size_t failures = 0;
  size_t retries = 0;
};

// A real ordertrace process on `data_dir`; `clients` threads POST every payload to /v1/traces
// with keep-alive, retrying on 429/503 as SDKs do.
EndToEnd RunEndToEnd(const std::string& binary, const std::string& data_dir,
                     const std::string& config, const std::vector<std::string>& payloads,
                     int clients) {
  size_t spans = 0;
  for (const std::string& p : payloads) spans += otlp::DecodeProtobufRequest(p)->batch.SpanCount();
  RunningServer server = StartOrdertrace(binary, data_dir, config);
  std::atomic<size_t> next{0};
  std::atomic<size_t> failures{0}, retries{0};
  double server_cpu0 = ProcessCpuSeconds(server.pid);
  double client_cpu0 = ProcessCpuSeconds(getpid());
  auto e2e0 = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      httplib::Client client("127.0.0.1", server.otlp_http);
      client.set_keep_alive(true);
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
  double wall = std::chrono::duration<double>(Clock::now() - e2e0).count();
  double server_cpu = ProcessCpuSeconds(server.pid) - server_cpu0;
  double client_cpu = ProcessCpuSeconds(getpid()) - client_cpu0;
  StopOrdertrace(server);
  // The next run must not pay for this one's files (page cache, disk).
  std::filesystem::remove_all(data_dir);
  EndToEnd r;
  r.spans_per_second = spans / wall;
  r.server_cpu_us_per_span = server_cpu * 1e6 / spans;
  r.client_cpu_us_per_span = client_cpu * 1e6 / spans;
  r.cores_busy = (server_cpu + client_cpu) / wall;
  r.failures = failures.load();
  r.retries = retries.load();
  return r;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

void SeedOrders(const std::string& store_path, size_t orders) {
  store::RocksStoreOptions options;
  options.path = store_path;
  auto opened = store::OpenRocksStore(options);
  if (!opened.ok()) {
    std::fprintf(stderr, "%s\n", opened.status().ToString().c_str());
    std::exit(1);
  }
  bench::OrderSpanGenerator gen(7,
                                base::SystemClock().NowUnixNano() - 3600 * base::kNanosPerSecond);
  const size_t kSpansPerOrder = bench::OrderSpanGenerator::kSpansPerOrder;
  const size_t kOrdersPerWrite = 2000;
  for (size_t done = 0; done < orders; done += kOrdersPerWrite) {
    base::TraceBatch batch = gen.NextBatch(kSpansPerOrder * kOrdersPerWrite);
    std::map<std::string, store::OrderUpdate> updates;
    for (const auto& rs : batch.resource_spans) {
      for (const auto& ss : rs.scope_spans) {
        for (const auto& span : ss.spans) {
          auto id = lifecycle::OrderIdOf(span, rs.resource);
          auto& u = updates[*id];
          u.after.order_id = *id;
          lifecycle::ApplySpan(span, rs.resource, u.after);
        }
      }
    }
    store::WriteSet writes;
    for (auto& [id, u] : updates) writes.orders.push_back(std::move(u));
    absl::Status s = (*opened)->Write(writes);
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      std::exit(1);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ordertrace ingest and lookup benchmark (prints figures)"};
  std::string binary = "build/src/ordertrace";
  size_t total_spans = 1'000'000;
  size_t batch_spans = 512;
  int clients = 4;
  size_t orders = 1'000'000;
  size_t lookups = 20'000;
  app.add_option("--ordertrace", binary, "Path of the ordertrace binary");
  app.add_option("--spans", total_spans, "Spans to send end to end");
  app.add_option("--batch", batch_spans, "Spans per OTLP request");
  app.add_option("--clients", clients, "Concurrent OTLP/HTTP clients");
  int pairs = 3;
  app.add_option("--pairs", pairs, "End-to-end runs with metrics+sampling off then on")
      ->check(CLI::Range(1, 20));
  app.add_option("--orders", orders, "Orders stored for the lookup figure (0: skip)");
  app.add_option("--lookups", lookups, "Order lookups to time");
  std::string payload_file;
  app.add_option("--write-payload", payload_file,
                 "Write one request body to this file and exit (e.g. for fuzz seeds)");
  CLI11_PARSE(app, argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  // Payloads: distinct spans throughout, so nothing is a replay.
  bench::OrderSpanGenerator gen(42,
                                base::SystemClock().NowUnixNano() - 600 * base::kNanosPerSecond);
  std::vector<std::string> payloads;
  size_t bytes = 0;
  for (size_t sent = 0; sent < total_spans; sent += batch_spans) {
    payloads.push_back(otlp::EncodeProtobuf(gen.NextBatch(batch_spans)));
    bytes += payloads.back().size();
  }
  if (!payload_file.empty()) {
    std::ofstream(payload_file, std::ios::binary) << payloads.front();
    return 0;
  }
  size_t spans = payloads.size() * batch_spans;
  std::printf("payloads: %zu requests x %zu spans, %.0f bytes/span on the wire\n", payloads.size(),
              batch_spans, static_cast<double>(bytes) / spans);

  // Decode only: the same payloads through the receiver's decoder, one core.
  double cpu0 = ThreadCpuSeconds();
  auto t0 = Clock::now();
  size_t decoded_spans = 0;
  for (const std::string& p : payloads)
    decoded_spans += otlp::DecodeProtobufRequest(p)->batch.SpanCount();
  double decode_wall = std::chrono::duration<double>(Clock::now() - t0).count();
  double decode_cpu = ThreadCpuSeconds() - cpu0;
  double decode_rate = decoded_spans / decode_wall;
  std::printf("decode only (1 thread):  %10.0f spans/s  %6.2f CPU us/span\n", decode_rate,
              decode_cpu * 1e6 / decoded_spans);

  std::string dir =
      (std::filesystem::temp_directory_path() / ("ordertrace-bench-" + std::to_string(getpid())))
          .string();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);

  // End to end in the same run: ordertrace as shipped (trace metrics and tail sampling on), and
  // with both switched off, to price them.
  const std::string bare_config = dir + "/metrics-sampling-off.yaml";
  std::ofstream(bare_config) << "metrics:\n  enabled: false\nsampling:\n  enabled: false\n";
  auto print = [&](const char* what, const EndToEnd& r) {
    std::printf(
        "end to end, %s (%d clients): %10.0f spans/s  %6.2f server CPU us/span  "
        "(%zu failed, %zu retried requests)\n",
        what, clients, r.spans_per_second, r.server_cpu_us_per_span, r.failures, r.retries);
    // The clients share the machine with the server: what they burn is not the server's.
    std::printf("  clients (same machine): %6.2f CPU us/span, %.2f cores busy in all\n",
                r.client_cpu_us_per_span, r.cores_busy);
  };
  // Alternating pairs, so that a burst of load from other tenants of this shared machine hits
  // one pair rather than one side: each pair's ratio, then the median.
  std::vector<double> ratios;
  // Each run's throughput as a share of decode only: the median is the figure, single runs on
  // this shared machine swing by a fifth.
  std::vector<double> on_shares, off_shares;
  EndToEnd on;
  for (int pair = 0; pair < pairs; ++pair) {
    const std::string suffix = "-" + std::to_string(pair);
    // Which side runs first alternates too.
    EndToEnd off;
    if (pair % 2 == 0) {
      off = RunEndToEnd(binary, dir + "/ingest-off" + suffix, bare_config, payloads, clients);
      on = RunEndToEnd(binary, dir + "/ingest-on" + suffix, "", payloads, clients);
    } else {
      on = RunEndToEnd(binary, dir + "/ingest-on" + suffix, "", payloads, clients);
      off = RunEndToEnd(binary, dir + "/ingest-off" + suffix, bare_config, payloads, clients);
    }
    print("metrics+sampling off", off);
    print("metrics+sampling on ", on);
    ratios.push_back(on.server_cpu_us_per_span / off.server_cpu_us_per_span);
    on_shares.push_back(on.spans_per_second / decode_rate);
    off_shares.push_back(off.spans_per_second / decode_rate);
    std::printf("  pair %d: metrics+sampling cost %+.1f%% server CPU per span\n", pair + 1,
                100.0 * (ratios.back() - 1));
  }
  std::printf("metrics+sampling cost, median of %d pairs: %+.1f%% server CPU per span\n", pairs,
              100.0 * (Percentile(ratios, 0.5) - 1));
  auto print_shares = [&](const char* what, const std::vector<double>& shares) {
    std::printf("end to end (%s) / decode only:", what);
    for (double share : shares) std::printf(" %.0f%%", 100.0 * share);
    std::printf("; median %.0f%% of the throughput\n", 100.0 * Percentile(shares, 0.5));
  };
  print_shares("off", off_shares);
  print_shares("on", on_shares);

  if (orders > 0) {
    auto s0 = Clock::now();
    SeedOrders(dir + "/lookup/store", orders);
    std::printf("seeded %zu orders in %.1f s\n", orders,
                std::chrono::duration<double>(Clock::now() - s0).count());
    RunningServer lookup_server = StartOrdertrace(binary, dir + "/lookup");
    httplib::Client client("127.0.0.1", lookup_server.http);
    client.set_keep_alive(true);
    std::mt19937_64 rng(1);
    std::vector<double> latencies_ms;
    size_t not_found = 0;
    for (size_t i = 0; i < lookups; ++i) {
      std::string path = "/api/v1/orders/ord-" + std::to_string(rng() % orders);
      auto l0 = Clock::now();
      auto res = client.Get(path);
      latencies_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - l0).count());
      if (!res || res->status != 200) ++not_found;
    }
    StopOrdertrace(lookup_server);
    std::printf(
        "order lookup over HTTP (%zu orders stored, %zu lookups, %zu failed): "
        "p50 %.3f ms  p99 %.3f ms  max %.3f ms\n",
        orders, lookups, not_found, Percentile(latencies_ms, 0.5), Percentile(latencies_ms, 0.99),
        Percentile(latencies_ms, 1.0));
  }
  std::filesystem::remove_all(dir);
  return 0;
}
