// Metric families (counters, gauges, histograms with exemplars) and their exposition in the
// Prometheus text format 0.0.4 and in OpenMetrics 1.0 (exemplars appear only in OpenMetrics).
//
// Written here rather than taken from prometheus-cpp (the one C++ Prometheus library Debian
// packages): it has no exemplars, and exemplars carrying the trace id are the point of these
// metrics (a jump from a slow bucket to the trace behind it).
//
// Every family bounds its series: past `max_series` label sets, observations fold into one
// overflow series labelled otel_metric_overflow="true" (the OpenTelemetry SDKs' and the
// Collector's convention) and the registry's ordertrace_metric_series_overflow_total counts them.
//
// Thread-safe: each family has its own mutex; Render may run while others observe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "base/clock.h"
#include "base/ids.h"

namespace ordertrace::metrics {

enum class Format { kPrometheusText, kOpenMetrics };

// OpenMetrics when the scraper's Accept header offers it (Prometheus 2.42 always does, and keeps
// the exemplars when run with --enable-feature=exemplar-storage), Prometheus text otherwise.
Format FormatForAccept(std::string_view accept_header);
std::string_view ContentType(Format format);

// A trace that produced an observation. Its timestamp is the moment it was observed (the
// registry's clock), not the span's: spans arrive out of order, and Prometheus refuses an
// exemplar older than the last one it stored for the series.
struct Exemplar {
  base::TraceId trace_id;
  base::SpanId span_id;  // optional
  double value = 0;
  uint64_t time_unix_nano = 0;  // set by Histogram::Observe
};

struct FamilyOptions {
  std::string name;  // counters end in _total
  std::string help;
  std::vector<std::string> label_names;
  size_t max_series = 2000;
};

class Registry;
class SeriesKey;

// A series' labels as name/value pairs, in the family's label order (the overflow series has
// the one label otel_metric_overflow="true").
using LabelPairs = std::vector<std::pair<std::string, std::string>>;

// A counter's or gauge's series, copied out (Registry::ScalarSnapshot).
struct ScalarSample {
  LabelPairs labels;
  double value = 0;
};

// A histogram's series, copied out (Registry::HistogramSnapshot).
struct HistogramSample {
  LabelPairs labels;
  std::vector<uint64_t> cumulative;  // per bucket of HistogramFigures::bounds, then +Inf
  std::vector<std::optional<Exemplar>> exemplars;  // the latest per bucket
  double sum = 0;
  uint64_t count = 0;
};

struct HistogramFigures {
  std::vector<std::string> label_names;
  std::vector<double> bounds;  // ascending upper bounds, +Inf implied
  std::vector<HistogramSample> series;
};

// The value under which a share `q` (0..1) of a histogram's observations fall, interpolated
// linearly inside the bucket as Prometheus' histogram_quantile does; nullopt without
// observations; the highest finite bound when it falls in the +Inf bucket.
std::optional<double> EstimateQuantile(const std::vector<double>& bounds,
                                       const std::vector<uint64_t>& cumulative, double q);

// A series' change among several applied together (Counter::AddEach, Gauge::AddEach).
struct KeyedDelta {
  const SeriesKey* key;
  double delta;
  // The observations summed into `delta`: what the overflow counter counts when the series
  // folds into the overflow series.
  uint64_t observations = 1;
};

// A series' observation among several applied together (Histogram::ObserveEach): the value
// is the exemplar's.
struct KeyedObservation {
  const SeriesKey* key;
  Exemplar exemplar;
};

// A series' label values, encoded once: families with the same label names (a counter and a
// histogram over the same spans) can share it instead of encoding the labels twice.
class SeriesKey {
 public:
  SeriesKey(const std::vector<std::string>& label_names,
            std::span<const std::string_view> label_values);
  std::string_view text() const { return text_; }

 private:
  std::string text_;
};

// What the families share: name, labels, the series map with its bound.
class Family {
 public:
  virtual ~Family() = default;
  const std::string& name() const { return options_.name; }
  const std::vector<std::string>& label_names() const { return options_.label_names; }

 protected:
  Family(FamilyOptions options, Registry& registry);
  // The series' key for `label_values` (one per label name). Caller holds mu_.
  std::string_view KeyFor(std::span<const std::string_view> label_values);
  // `{a="x",b="y"` for a stored key (no closing brace, so callers can append `le`).
  void AppendLabels(std::string& out, std::string_view key) const;
  // The label block, closed: `{a="x"}`, or nothing when the family has no labels.
  void AppendClosedLabels(std::string& out, std::string_view key) const;
  void AppendHeader(std::string& out, Format format, std::string_view type) const;
  virtual void Render(Format format, std::string& out) const = 0;

  FamilyOptions options_;
  Registry& registry_;
  mutable std::mutex mu_;
  size_t series_count_ = 0;  // guarded by mu_
  std::string scratch_key_;  // guarded by mu_

  friend class Registry;
};

// What counters and gauges share: one value per series.
class ScalarFamily : public Family {
 public:
  // Sets the whole family from a snapshot of another part's figures (series missing from
  // `values` disappear).
  void ReplaceAll(const std::vector<std::pair<std::vector<std::string>, double>>& values);

 protected:
  using Family::Family;
  // Adds `value` to the series (or sets it, when `set`), creating it within the bound.
  void Apply(std::span<const std::string_view> label_values, double value, bool set);
  void Apply(const SeriesKey& key, double value, bool set);
  // Adds each delta, in order, under one lock.
  void ApplyEach(std::span<const KeyedDelta> deltas);
  void RenderValues(Format format, std::string_view type, std::string& out) const;
  std::vector<ScalarSample> Snapshot() const;

 private:
  // Caller holds mu_; tells whether the value went to the overflow series.
  bool ApplyLocked(std::string_view key, double value, bool set);

  absl::flat_hash_map<std::string, double> values_;  // guarded by mu_
  friend class Registry;
};

class Counter final : public ScalarFamily {
 public:
  void Add(std::span<const std::string_view> label_values, double value = 1) {
    Apply(label_values, value, /*set=*/false);
  }
  void Add(std::initializer_list<std::string_view> label_values, double value = 1) {
    Add(std::span<const std::string_view>(label_values.begin(), label_values.size()), value);
  }
  // `key` built for this family's label names.
  void Add(const SeriesKey& key, double value = 1) { Apply(key, value, /*set=*/false); }
  // Several series' increments, in order, under one lock (keys built for this family).
  void AddEach(std::span<const KeyedDelta> increments) { ApplyEach(increments); }

 private:
  using ScalarFamily::ScalarFamily;
  void Render(Format format, std::string& out) const override {
    RenderValues(format, "counter", out);
  }
  friend class Registry;
};

class Gauge final : public ScalarFamily {
 public:
  void Set(std::span<const std::string_view> label_values, double value) {
    Apply(label_values, value, /*set=*/true);
  }
  void Set(std::initializer_list<std::string_view> label_values, double value) {
    Set(std::span<const std::string_view>(label_values.begin(), label_values.size()), value);
  }
  void Add(std::span<const std::string_view> label_values, double delta) {
    Apply(label_values, delta, /*set=*/false);
  }
  void Add(std::initializer_list<std::string_view> label_values, double delta) {
    Add(std::span<const std::string_view>(label_values.begin(), label_values.size()), delta);
  }
  // `key` built for this family's label names.
  void Add(const SeriesKey& key, double delta) { Apply(key, delta, /*set=*/false); }
  // Several series' changes, in order, under one lock (keys built for this family).
  void AddEach(std::span<const KeyedDelta> deltas) { ApplyEach(deltas); }

 private:
  using ScalarFamily::ScalarFamily;
  void Render(Format format, std::string& out) const override {
    RenderValues(format, "gauge", out);
  }
  friend class Registry;
};

class Histogram final : public Family {
 public:
  void Observe(std::span<const std::string_view> label_values, double value,
               const Exemplar* exemplar = nullptr);
  void Observe(std::initializer_list<std::string_view> label_values, double value,
               const Exemplar* exemplar = nullptr) {
    Observe(std::span<const std::string_view>(label_values.begin(), label_values.size()), value,
            exemplar);
  }
  // `key` built for this family's label names.
  void Observe(const SeriesKey& key, double value, const Exemplar* exemplar = nullptr);
  // Several observations of one series under one lock, each with its exemplar.
  void ObserveMany(const SeriesKey& key, std::span<const Exemplar> observations);
  // Observations of several series, in order, under one lock (keys built for this family).
  void ObserveEach(std::span<const KeyedObservation> observations);

 private:
  struct Series {
    std::vector<uint64_t> counts;  // per bucket (not cumulative); the last is +Inf
    std::vector<Exemplar> exemplars;
    std::vector<bool> has_exemplar;
    double sum = 0;
    uint64_t count = 0;
  };
  Histogram(FamilyOptions options, Registry& registry, std::vector<double> bounds);
  void Render(Format format, std::string& out) const override;
  HistogramFigures Snapshot() const;

  const std::vector<double> bounds_;  // ascending upper bounds, +Inf implied
  void ObserveLocked(std::string_view key, double value, const Exemplar* exemplar, bool& overflowed,
                     uint64_t now_unix_nano);
  // The series of `key`, created (or the overflow series) if need be. Caller holds mu_.
  Series& SeriesLocked(std::string_view key, bool& overflowed);
  void RecordLocked(Series& series, double value, const Exemplar* exemplar,
                    uint64_t now_unix_nano) const;

  absl::flat_hash_map<std::string, Series> series_;  // guarded by mu_
  friend class Registry;
};

class Registry {
 public:
  // `clock` (borrowed) stamps exemplars.
  explicit Registry(const base::Clock& clock = DefaultClock());
  static const base::Clock& DefaultClock();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // The returned references live as long as the registry. Names must be unique.
  Counter& AddCounter(FamilyOptions options);
  Gauge& AddGauge(FamilyOptions options);
  Histogram& AddHistogram(FamilyOptions options, std::vector<double> bucket_bounds);
  // Run before every Render, to copy other parts' statistics into families.
  void AddScrapeHook(std::function<void()> hook);

  std::string Render(Format format) const;

  // Runs the scrape hooks, as Render does: call before the snapshots to read current figures.
  void RunScrapeHooks() const;
  // A copy of one family's series, for views that read the figures instead of a scraper (the
  // console's charts); nullopt when no family of that kind has the name.
  std::optional<std::vector<ScalarSample>> ScalarSnapshot(std::string_view name) const;
  std::optional<HistogramFigures> HistogramSnapshot(std::string_view name) const;

  // Observations folded into an overflow series, by family (tests and /metrics).
  uint64_t OverflowCount(std::string_view family) const;

  // Called by the families when `observations` fold into their overflow series.
  void CountOverflow(const std::string& family, uint64_t observations = 1);
  uint64_t NowUnixNano() const { return clock_.NowUnixNano(); }

 private:
  const base::Clock& clock_;
  std::vector<std::unique_ptr<Family>> families_;  // fixed once serving starts
  std::vector<std::function<void()>> hooks_;
  Counter* overflow_ = nullptr;
};

// Formats a sample value as both formats accept it ("+Inf", "0.25", "3").
std::string FormatValue(double value);

}  // namespace ordertrace::metrics
