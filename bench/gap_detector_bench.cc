// Gap detector benchmark: prints figures, asserts nothing (see
// docs/benchmarks.md).
//
// memory:   --orders open orders (36-character UUID ids, spread over every stage of the default
//           lifecycle, deadlines in the future) handed to GapDetector::OnOrderChanged as new
//           orders; the process's resident set (VmRSS, after malloc_trim) before and after, per
//           order; then again after every order moved on one stage (OnOrderChanged with the
//           record before and after; orders at the last watched stage re-armed in place: the
//           superseded timers wait in the heap for its compaction). Target: 1,000,000 orders in
//           at most 256 MiB.
// lateness: with those orders still tracked, the detector's own thread (Start) and the real
//           clock, orders fed at --rate per second for --seconds, each with a deadline between
//           --lead-ms and --lead-ms + --spread-ms ahead, so that deadlines fall due at --rate
//           per second. A deadline is judged only when its evidence is in: every --report-ms the
//           feeding thread hands the detector a one-span batch from each service (span end: now)
//           through OnSpansArrived, so that the sources are live and a deadline is judged when
//           the wall clock passes it (a quiet source would wait idle_after, 5 s, first). For
//           idle_after after the detector starts nothing is judged on the wall clock: the
//           bench waits that out before feeding. A GapSink records detected_at - deadline of every
//           gap; the lookup returns the order's record from an in-memory map; gaps go to a
//           MemoryGapStore through the detector's writer thread. Target: p99 under 100 ms.
//           --per-second and --worst show when the late gaps were detected.
#include <malloc.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/span.h"
#include "bench/ordertrace_process.h"
#include "gaps/gap.h"
#include "gaps/gap_detector.h"
#include "gaps/memory_gap_store.h"
#include "gaps/stage_model.h"
#include "model/order_record.h"

namespace {

using namespace ordertrace;
using SteadyClock = std::chrono::steady_clock;

constexpr uint64_t kNanosPerMs = 1'000'000;

uint64_t TrimmedRss() {
  malloc_trim(0);
  return bench::ProcStatusBytes(getpid(), "VmRSS");
}

double MiB(uint64_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

// A random version-4 UUID, 36 characters, as the shop issues order ids.
std::string Uuid(std::mt19937_64& rng) {
  uint64_t hi = rng(), lo = rng();
  hi = (hi & ~0xf000ULL) | 0x4000ULL;        // version 4
  lo = (lo & ~(3ULL << 62)) | (2ULL << 62);  // variant 10
  char out[37];
  std::snprintf(out, sizeof out, "%08llx-%04llx-%04llx-%04llx-%012llx",
                static_cast<unsigned long long>(hi >> 32),
                static_cast<unsigned long long>((hi >> 16) & 0xffff),
                static_cast<unsigned long long>(hi & 0xffff),
                static_cast<unsigned long long>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return out;
}

// One order record per watched stage of the model, its statuses from the first one up to that
// stage as the services report them; order_id, partner and the current time are set per use.
struct StageTemplate {
  const gaps::StageRule* rule;
  model::OrderRecord record;
};

std::vector<StageTemplate> StageTemplates(const gaps::StageModel& model) {
  std::vector<StageTemplate> out;
  const std::vector<std::string>& statuses = model.statuses();
  for (size_t stage = 0; stage < statuses.size(); ++stage) {
    const gaps::StageRule* rule = model.RuleFor(statuses[stage]);
    if (rule == nullptr) continue;
    StageTemplate t{rule, {}};
    t.record.trace_id.bytes[0] = 0x42;
    t.record.trace_id.bytes[15] = static_cast<uint8_t>(stage + 1);
    t.record.trace_ids = {t.record.trace_id};
    for (size_t i = 0; i <= stage; ++i) {
      model::StatusReached reached;
      reached.status = statuses[i];
      reached.prev_status = i == 0 ? "" : statuses[i - 1];
      reached.event_version = static_cast<int64_t>(i + 1);
      reached.service = i < 3 ? "shop-api" : "mes-api";
      reached.span_name = "transition." + statuses[i];
      reached.span_id.bytes[0] = static_cast<uint8_t>(i + 1);
      t.record.statuses.push_back(std::move(reached));
    }
    model::Operation op;
    op.span_name = t.record.statuses.back().span_name;
    op.service = t.record.statuses.back().service;
    op.trace_id = t.record.trace_id;
    t.record.last_success = op;
    out.push_back(std::move(t));
  }
  return out;
}

// Sets `t.record` to order `order_id`, in its stage since `at` (earlier statuses 1 s apart).
const model::OrderRecord& Fill(StageTemplate& t, std::string order_id, std::string partner_id,
                               uint64_t at) {
  model::OrderRecord& r = t.record;
  r.order_id = std::move(order_id);
  r.partner_id = std::move(partner_id);
  const size_t n = r.statuses.size();
  for (size_t i = 0; i < n; ++i) {
    r.statuses[i].at_unix_nano = at - (n - 1 - i) * base::kNanosPerSecond;
  }
  r.first_seen_unix_nano = r.statuses.front().at_unix_nano;
  r.last_seen_unix_nano = at;
  r.last_success->at_unix_nano = at;
  return r;
}

// Sets `next` to the order of `before` one status further on: the statuses `before` has, at
// their times, then `next`'s own last status at `at`.
const model::OrderRecord& MoveOn(StageTemplate& next, const model::OrderRecord& before,
                                 uint64_t at) {
  model::OrderRecord& r = next.record;
  r.order_id = before.order_id;
  r.partner_id = before.partner_id;
  const size_t n = r.statuses.size();
  for (size_t i = 0; i + 1 < n && i < before.statuses.size(); ++i) {
    r.statuses[i].at_unix_nano = before.statuses[i].at_unix_nano;
  }
  r.statuses.back().at_unix_nano = at;
  r.first_seen_unix_nano = r.statuses.front().at_unix_nano;
  r.last_seen_unix_nano = at;
  r.last_success->at_unix_nano = at;
  return r;
}

// One span from each service that reports the templates' statuses, ending `now`: what a live
// exporter's request tells the detector's source watermarks.
base::TraceBatch LiveReport(uint64_t now) {
  base::TraceBatch batch;
  for (const char* service : {"shop-api", "mes-api"}) {
    base::ResourceSpans rs;
    rs.resource.attributes.push_back({"service.name", base::AnyValue::String(service)});
    base::ScopeSpans ss;
    base::Span span;
    span.name = "heartbeat";
    span.start_time_unix_nano = now - 1'000'000;
    span.end_time_unix_nano = now;
    ss.spans.push_back(std::move(span));
    rs.scope_spans.push_back(std::move(ss));
    batch.resource_spans.push_back(std::move(rs));
  }
  return batch;
}

std::string Partner(std::mt19937_64& rng) {
  uint64_t n = rng() % 50;
  return n < 10 ? std::string() : "partner-" + std::to_string(n);  // a fifth are direct orders
}

// The orders the lateness phase feeds, for the detector's lookup.
class RecordMap {
 public:
  // Sized up front, so that the lookup never waits for this map's own rehash.
  void Reserve(size_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    records_.reserve(n);
  }
  void Put(const model::OrderRecord& record) {
    std::lock_guard<std::mutex> lock(mu_);
    records_[record.order_id] = record;
  }
  absl::StatusOr<std::optional<model::OrderRecord>> Get(const std::string& order_id) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = records_.find(order_id);
    if (it == records_.end()) return std::optional<model::OrderRecord>();
    return std::optional<model::OrderRecord>(it->second);
  }

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, model::OrderRecord> records_;
};

// Records detected_at - deadline of every gap opened.
class LatenessSink final : public gaps::GapSink {
 public:
  void OnGapOpened(const gaps::Gap& gap) override {
    std::lock_guard<std::mutex> lock(mu_);
    lateness_ns_.push_back(static_cast<int64_t>(gap.detected_at_unix_nano) -
                           static_cast<int64_t>(gap.deadline_unix_nano));
    detected_at_.push_back(gap.detected_at_unix_nano);
  }
  void OnGapResolved(const gaps::Gap&) override {}

  size_t Count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return lateness_ns_.size();
  }
  // Lateness in nanoseconds and detection time of each gap, in the order they were opened.
  std::pair<std::vector<int64_t>, std::vector<uint64_t>> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    return {std::move(lateness_ns_), std::move(detected_at_)};
  }

 private:
  mutable std::mutex mu_;
  std::vector<int64_t> lateness_ns_;
  std::vector<uint64_t> detected_at_;
};

double PercentileMs(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t i = std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()));
  return static_cast<double>(sorted[i]) / kNanosPerMs;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ordertrace gap detector benchmark: memory per open order, timer lateness"};
  size_t orders = 1'000'000;
  size_t rate = 10'000;
  size_t seconds = 20;
  uint64_t lead_ms = 200;
  uint64_t spread_ms = 1800;
  uint64_t seed = 5;
  size_t worst = 0;
  bool per_second = false;
  uint64_t report_ms = 5;
  app.add_option("--orders", orders, "Open orders tracked (memory figure; 0: none)");
  app.add_option("--rate", rate, "Deadlines falling due per second (lateness figure)");
  app.add_option("--seconds", seconds, "How long deadlines fall due (0: skip lateness)");
  app.add_option("--lead-ms", lead_ms, "Each fed order's deadline is at least this far ahead");
  app.add_option("--spread-ms", spread_ms, "... plus a uniform random part of up to this");
  app.add_option("--seed", seed, "Random seed");
  app.add_option("--worst", worst, "Also list the N latest gaps (when, how many opened before)");
  app.add_flag("--per-second", per_second, "Also print gaps and max lateness per second");
  app.add_option("--report-ms", report_ms,
                 "Lateness: each service reports a span this often (keeps its source live)")
      ->check(CLI::Range(1, 1000));
  CLI11_PARSE(app, argc, argv);
  std::printf("load average at start: %s\n", bench::LoadAverage().c_str());

  absl::StatusOr<gaps::StageModel> model =
      gaps::StageModel::Create(gaps::DefaultStageModelOptions());
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.status().ToString().c_str());
    return 1;
  }
  base::SystemClock clock;
  RecordMap records;
  LatenessSink sink;
  // The lateness phase's orders: a stream apart from the memory phase's ids (seed) and
  // partners and times (seed + 1), so that no order id comes twice.
  std::mt19937_64 rng(seed + 2);
  std::vector<StageTemplate> templates = StageTemplates(*model);

  const uint64_t rss_before = TrimmedRss();
  gaps::MemoryGapStore store;
  gaps::GapDetector detector(
      *model, clock, [&records](const std::string& id) { return records.Get(id); }, &store, &sink);
  const auto detector_created = SteadyClock::now();

  // Memory: open orders at every stage, each somewhere in the first half of its SLA. Ids,
  // partners and times come from generators of their own, so that the second pass names the
  // same orders and knows the record each was given.
  auto open_order = [&](size_t i, std::mt19937_64& ids,
                        std::mt19937_64& attrs) -> const model::OrderRecord& {
    StageTemplate& t = templates[i % templates.size()];
    std::string partner = Partner(attrs);
    const uint64_t sla = model->SlaNanos(*t.rule, partner);
    const uint64_t at = clock.NowUnixNano() - attrs() % (sla / 2);
    return Fill(t, Uuid(ids), std::move(partner), at);
  };
  auto started = SteadyClock::now();
  {
    std::mt19937_64 ids(seed), attrs(seed + 1);
    for (size_t i = 0; i < orders; ++i) detector.OnOrderChanged(nullptr, open_order(i, ids, attrs));
  }
  const double feed_seconds = std::chrono::duration<double>(SteadyClock::now() - started).count();
  const uint64_t rss_after = TrimmedRss();
  gaps::GapDetectorStats stats = detector.Stats();
  if (orders > 0) {
    const uint64_t growth = rss_after > rss_before ? rss_after - rss_before : 0;
    std::printf("memory: %llu orders tracked (%llu timers pending), %zu stages\n",
                static_cast<unsigned long long>(stats.tracked_orders),
                static_cast<unsigned long long>(stats.pending_timers), templates.size());
    std::printf(
        "  VmRSS before %.1f MiB, after %.1f MiB (malloc_trim), growth %.1f MiB = %.0f "
        "bytes/order; VmHWM %.1f MiB\n",
        MiB(rss_before), MiB(rss_after), MiB(growth),
        static_cast<double>(growth) / static_cast<double>(orders),
        MiB(bench::ProcStatusBytes(getpid(), "VmHWM")));
    std::printf("  OnOrderChanged(new order), 1 thread, ids generated on the fly: %.2f us/order\n",
                feed_seconds * 1e6 / static_cast<double>(orders));
    // Every order moved on once: the record it was given, then the same with its next status
    // (the last watched stage: its status reported again, re-armed in place). Each new deadline
    // is in the future, and each stage was left within its SLA, so no gap is implied. The
    // superseded timers stay in the heap until it is compacted.
    std::mt19937_64 ids(seed), attrs(seed + 1);
    model::OrderRecord before;
    started = SteadyClock::now();
    for (size_t i = 0; i < orders; ++i) {
      before = open_order(i, ids, attrs);
      const size_t stage = i % templates.size();
      const uint64_t left_at = before.statuses.back().at_unix_nano + base::kNanosPerSecond;
      if (stage + 1 == templates.size()) {
        // Its current status reported again a second later: re-armed, same stage.
        detector.OnOrderChanged(&before, MoveOn(templates[stage], before, left_at));
        continue;
      }
      // The next status within the first half of the next SLA, and before now: the stage was
      // left within its SLA (it began at most half of it ago).
      StageTemplate& next = templates[stage + 1];
      const uint64_t next_sla = model->SlaNanos(*next.rule, before.partner_id);
      const uint64_t at = std::max(left_at, clock.NowUnixNano() - attrs() % (next_sla / 2));
      detector.OnOrderChanged(&before, MoveOn(next, before, at));
    }
    const double move_seconds = std::chrono::duration<double>(SteadyClock::now() - started).count();
    detector.Flush();  // gaps are counted by the writer thread
    const uint64_t rss_moved = TrimmedRss();
    stats = detector.Stats();
    const uint64_t moved_growth = rss_moved > rss_before ? rss_moved - rss_before : 0;
    std::printf(
        "  after every order moved on once: %llu tracked, %llu timers pending, growth "
        "%.1f MiB = %.0f bytes/order; VmHWM %.1f MiB\n",
        static_cast<unsigned long long>(stats.tracked_orders),
        static_cast<unsigned long long>(stats.pending_timers), MiB(moved_growth),
        static_cast<double>(moved_growth) / static_cast<double>(orders),
        MiB(bench::ProcStatusBytes(getpid(), "VmHWM")));
    std::printf("  OnOrderChanged(before, after), 1 thread: %.2f us/order (record copy included)\n",
                move_seconds * 1e6 / static_cast<double>(orders));
    uint64_t detected = 0;
    for (const auto& [key, count] : stats.detected_total) detected += count;
    std::printf("  gaps found meanwhile: %llu (expected 0)\n",
                static_cast<unsigned long long>(detected));
  }
  if (seconds == 0 || rate == 0) {
    std::printf("load average at end: %s\n", bench::LoadAverage().c_str());
    return 0;
  }

  // Lateness. For idle_after after it starts, the detector judges nothing on the wall clock
  // (exporters flush what they queued while it was down): wait that out, reporting.
  const auto hold = std::chrono::nanoseconds(gaps::SourceWatermarkOptions().idle_after_nanos);
  const auto report_every = std::chrono::milliseconds(report_ms);
  while (SteadyClock::now() < detector_created + hold) {
    detector.OnSpansArrived(LiveReport(clock.NowUnixNano()));
    std::this_thread::sleep_for(report_every);
  }
  // Feed at `rate` per second, each order due lead..lead+spread ahead; the services report
  // every report_ms meanwhile (from the feeding thread, as ingest's writer does).
  detector.Start();
  const size_t total = rate * seconds;
  records.Reserve(total);
  const double cpu_before = bench::ThreadCpuSeconds(getpid(), "ot-gaps");
  const double writer_cpu_before = bench::ThreadCpuSeconds(getpid(), "ot-gap-writer");
  std::uniform_int_distribution<uint64_t> spread(0, spread_ms * kNanosPerMs);
  size_t reports = 0;
  started = SteadyClock::now();
  auto next_report = started;
  auto report_if_due = [&] {
    const auto now = SteadyClock::now();
    if (now < next_report) return;
    detector.OnSpansArrived(LiveReport(clock.NowUnixNano()));
    ++reports;
    next_report = now + report_every;
  };
  for (size_t i = 0; i < total; ++i) {
    const auto due = started + std::chrono::nanoseconds(i * 1'000'000'000ULL / rate);
    report_if_due();
    if (due > SteadyClock::now() + std::chrono::milliseconds(1)) std::this_thread::sleep_until(due);
    StageTemplate& t = templates[i % templates.size()];
    std::string partner = Partner(rng);
    const uint64_t deadline = clock.NowUnixNano() + lead_ms * kNanosPerMs + spread(rng);
    const uint64_t at = deadline - model->SlaNanos(*t.rule, partner) - model->GraceNanos();
    const model::OrderRecord& record = Fill(t, Uuid(rng), std::move(partner), at);
    records.Put(record);
    detector.OnOrderChanged(nullptr, record);
  }
  const double fed_in = std::chrono::duration<double>(SteadyClock::now() - started).count();
  const auto wait_until =
      SteadyClock::now() + std::chrono::milliseconds(lead_ms + spread_ms + 10'000);
  while (sink.Count() < total && SteadyClock::now() < wait_until) {
    report_if_due();
    std::this_thread::sleep_for(report_every);
  }
  const double cpu = bench::ThreadCpuSeconds(getpid(), "ot-gaps") - cpu_before;
  const double writer_cpu = bench::ThreadCpuSeconds(getpid(), "ot-gap-writer") - writer_cpu_before;
  detector.Flush();
  stats = detector.Stats();
  detector.Shutdown();

  auto [lateness, detected_at] = sink.Take();
  if (worst > 0) {
    std::vector<size_t> order(lateness.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return std::tie(lateness[a], a) > std::tie(lateness[b], b);
    });
    for (size_t k = 0; k < std::min(worst, order.size()); ++k) {
      size_t i = order[k];
      std::printf("  late: %.2f ms, gap #%zu, %.3f s after the first gap\n",
                  static_cast<double>(lateness[i]) / kNanosPerMs, i,
                  static_cast<double>(detected_at[i] - detected_at.front()) / 1e9);
    }
  }
  if (per_second && !detected_at.empty()) {
    std::vector<std::pair<size_t, int64_t>> seconds_seen;  // (gaps, max lateness) per second
    for (size_t i = 0; i < detected_at.size(); ++i) {
      size_t second = (detected_at[i] - detected_at.front()) / base::kNanosPerSecond;
      if (seconds_seen.size() <= second) seconds_seen.resize(second + 1);
      ++seconds_seen[second].first;
      seconds_seen[second].second = std::max(seconds_seen[second].second, lateness[i]);
    }
    for (size_t second = 0; second < seconds_seen.size(); ++second) {
      std::printf("  second %3zu: %6zu gaps (%7zu before), max lateness %8.2f ms\n", second,
                  seconds_seen[second].first,
                  static_cast<size_t>(
                      std::lower_bound(detected_at.begin(), detected_at.end(),
                                       detected_at.front() + second * base::kNanosPerSecond) -
                      detected_at.begin()),
                  static_cast<double>(seconds_seen[second].second) / kNanosPerMs);
    }
  }
  std::sort(lateness.begin(), lateness.end());
  size_t over_100ms = static_cast<size_t>(
      lateness.end() -
      std::upper_bound(lateness.begin(), lateness.end(), static_cast<int64_t>(100 * kNanosPerMs)));
  std::printf("lateness: %zu deadlines fed in %.1f s (%.0f/s), %zu gaps opened%s\n", total, fed_in,
              static_cast<double>(total) / fed_in, lateness.size(),
              lateness.size() == total ? "" : " (SOME MISSING)");
  if (!lateness.empty()) {
    std::printf(
        "  detected_at - deadline: min %.2f ms, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, "
        "max %.2f ms; %zu over 100 ms\n",
        static_cast<double>(lateness.front()) / kNanosPerMs, PercentileMs(lateness, 0.5),
        PercentileMs(lateness, 0.99), PercentileMs(lateness, 0.999),
        static_cast<double>(lateness.back()) / kNanosPerMs, over_100ms);
  }
  std::printf("  detector thread CPU: %.2f s (%.1f us per gap); %llu orders tracked meanwhile\n",
              cpu, lateness.empty() ? 0.0 : cpu * 1e6 / static_cast<double>(lateness.size()),
              static_cast<unsigned long long>(stats.tracked_orders));
  std::printf("  gap writer thread CPU: %.2f s (%.1f us per gap); %zu gaps in the store\n",
              writer_cpu,
              lateness.empty() ? 0.0 : writer_cpu * 1e6 / static_cast<double>(lateness.size()),
              store.Snapshot().size());
  std::map<std::string, size_t> by_kind;
  for (const auto& [id, gap] : store.Snapshot())
    ++by_kind[gap.kind + (gap.IsOpen() ? "" : " (resolved)")];
  std::printf("  stored gaps by kind:");
  for (const auto& [kind, count] : by_kind) std::printf(" %s %zu;", kind.c_str(), count);
  std::printf("\n");
  std::printf("  live reports: %zu (every %llu ms), %llu held at the end, %llu lookup errors\n",
              reports, static_cast<unsigned long long>(report_ms),
              static_cast<unsigned long long>(stats.held),
              static_cast<unsigned long long>(stats.lookup_errors));
  std::printf("load average at end: %s\n", bench::LoadAverage().c_str());
  return 0;
}
