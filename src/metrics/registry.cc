#include "metrics/registry.h"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cmath>
#include <map>

#include "absl/strings/string_view.h"

namespace ordertrace::metrics {
namespace {

constexpr std::string_view kOverflowKey = "otel_metric_overflow=\"true\"";

void AppendEscaped(std::string& out, std::string_view value) {
  // Fast path, the common case: nothing to escape.
  if (value.find_first_of("\\\"\n") == std::string_view::npos) {
    out.append(value);
    return;
  }
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

// HELP text escapes backslashes and newlines; OpenMetrics escapes double quotes too.
void AppendHelp(std::string& out, std::string_view help, Format format) {
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && format == Format::kOpenMetrics) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

std::string_view TrimTotal(std::string_view name) {
  constexpr std::string_view kTotal = "_total";
  if (name.size() > kTotal.size() && name.substr(name.size() - kTotal.size()) == kTotal) {
    name.remove_suffix(kTotal.size());
  }
  return name;
}

// Series appear in a stable order (sorted keys), which also keeps scrapes diffable.
template <typename Map>
std::vector<typename Map::const_pointer> Sorted(const Map& map) {
  std::vector<typename Map::const_pointer> out;
  out.reserve(map.size());
  for (const auto& entry : map) out.push_back(&entry);
  std::sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->first < b->first; });
  return out;
}

void AppendExemplar(std::string& out, const Exemplar& exemplar) {
  out += " # {trace_id=\"";
  out += exemplar.trace_id.ToHex();
  if (exemplar.span_id.IsValid()) {
    out += "\",span_id=\"";
    out += exemplar.span_id.ToHex();
  }
  out += "\"} ";
  out += FormatValue(exemplar.value);
  char stamp[40];
  std::snprintf(stamp, sizeof(stamp), " %.3f", static_cast<double>(exemplar.time_unix_nano) / 1e9);
  out += stamp;
}

}  // namespace

Format FormatForAccept(std::string_view accept_header) {
  return accept_header.find("application/openmetrics-text") != std::string_view::npos
             ? Format::kOpenMetrics
             : Format::kPrometheusText;
}

std::string_view ContentType(Format format) {
  return format == Format::kOpenMetrics
             ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
             : "text/plain; version=0.0.4; charset=utf-8";
}

std::string FormatValue(double value) {
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (std::isnan(value)) return "NaN";
  char buffer[32];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return ec == std::errc() ? std::string(buffer, end) : std::string("NaN");
}

Family::Family(FamilyOptions options, Registry& registry)
    : options_(std::move(options)), registry_(registry) {}

namespace {

void EncodeLabels(const std::vector<std::string>& names, std::span<const std::string_view> values,
                  std::string& out) {
  assert(values.size() == names.size());
  out.clear();
  for (size_t i = 0; i < values.size() && i < names.size(); ++i) {
    if (i > 0) out += ',';
    out += names[i];
    out += "=\"";
    AppendEscaped(out, values[i]);
    out += '"';
  }
}

// The inverse of EncodeLabels: `a="x",b="y\"z"` back to its pairs.
LabelPairs DecodeLabels(std::string_view key) {
  LabelPairs labels;
  size_t i = 0;
  while (i < key.size()) {
    size_t eq = key.find("=\"", i);
    if (eq == std::string_view::npos) break;
    std::string name(key.substr(i, eq - i));
    std::string value;
    size_t j = eq + 2;
    for (; j < key.size() && key[j] != '"'; ++j) {
      if (key[j] == '\\' && j + 1 < key.size()) {
        ++j;
        value += key[j] == 'n' ? '\n' : key[j];
      } else {
        value += key[j];
      }
    }
    labels.emplace_back(std::move(name), std::move(value));
    i = j + 1;                // past the closing quote
    if (i < key.size()) ++i;  // past the comma
  }
  return labels;
}

}  // namespace

std::optional<double> EstimateQuantile(const std::vector<double>& bounds,
                                       const std::vector<uint64_t>& cumulative, double q) {
  if (cumulative.empty() || cumulative.back() == 0 || bounds.empty()) return std::nullopt;
  const double rank = q * static_cast<double>(cumulative.back());
  size_t b = 0;
  while (b < cumulative.size() && static_cast<double>(cumulative[b]) < rank) ++b;
  if (b >= bounds.size()) return bounds.back();
  const double lower = b == 0 ? 0.0 : bounds[b - 1];
  const double below = b == 0 ? 0.0 : static_cast<double>(cumulative[b - 1]);
  const double in_bucket = static_cast<double>(cumulative[b]) - below;
  if (in_bucket <= 0) return bounds[b];
  return lower + (bounds[b] - lower) * (rank - below) / in_bucket;
}

SeriesKey::SeriesKey(const std::vector<std::string>& label_names,
                     std::span<const std::string_view> label_values) {
  EncodeLabels(label_names, label_values, text_);
}

std::string_view Family::KeyFor(std::span<const std::string_view> label_values) {
  EncodeLabels(options_.label_names, label_values, scratch_key_);
  return scratch_key_;
}

void Family::AppendLabels(std::string& out, std::string_view key) const {
  out += '{';
  out += key;
}

void Family::AppendClosedLabels(std::string& out, std::string_view key) const {
  if (key.empty()) return;
  out += '{';
  out += key;
  out += '}';
}

void Family::AppendHeader(std::string& out, Format format, std::string_view type) const {
  std::string_view name = options_.name;
  // OpenMetrics names a counter family without its _total suffix.
  if (format == Format::kOpenMetrics && type == "counter") name = TrimTotal(name);
  out += "# HELP ";
  out += name;
  out += ' ';
  AppendHelp(out, options_.help, format);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

// Finds the series of `label_values` in `map`, creating it while the family has room, else
// folding into the overflow series. Caller holds family.mu_.
template <typename Map, typename MakeValue>
typename Map::mapped_type& SeriesFor(Family& family, Map& map, std::string_view key,
                                     size_t max_series, size_t& series_count, const MakeValue& make,
                                     bool& overflowed) {
  overflowed = false;
  // Debian's Abseil has its own string_view type: look up with it.
  auto it = map.find(absl::string_view(key.data(), key.size()));
  if (it != map.end()) return it->second;
  if (series_count >= max_series) {
    overflowed = true;
    key = kOverflowKey;
    it = map.find(absl::string_view(key.data(), key.size()));
    if (it != map.end()) return it->second;
    return map.emplace(std::string(key), make()).first->second;
  }
  ++series_count;
  return map.emplace(std::string(key), make()).first->second;
}

void ScalarFamily::Apply(std::span<const std::string_view> label_values, double value, bool set) {
  bool overflowed = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    overflowed = ApplyLocked(KeyFor(label_values), value, set);
  }
  if (overflowed) registry_.CountOverflow(options_.name);
}

void ScalarFamily::Apply(const SeriesKey& key, double value, bool set) {
  bool overflowed = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    overflowed = ApplyLocked(key.text(), value, set);
  }
  if (overflowed) registry_.CountOverflow(options_.name);
}

void ScalarFamily::ApplyEach(std::span<const KeyedDelta> deltas) {
  uint64_t overflowed = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const KeyedDelta& d : deltas) {
      if (ApplyLocked(d.key->text(), d.delta, /*set=*/false)) overflowed += d.observations;
    }
  }
  if (overflowed != 0) registry_.CountOverflow(options_.name, overflowed);
}

bool ScalarFamily::ApplyLocked(std::string_view key, double value, bool set) {
  bool overflowed = false;
  double& slot = SeriesFor(
      *this, values_, key, options_.max_series, series_count_, [] { return 0.0; }, overflowed);
  slot = set ? value : slot + value;
  return overflowed;
}

void ScalarFamily::ReplaceAll(
    const std::vector<std::pair<std::vector<std::string>, double>>& values) {
  std::lock_guard<std::mutex> lock(mu_);
  values_.clear();
  series_count_ = 0;
  for (const auto& [labels, value] : values) {
    std::vector<std::string_view> views(labels.begin(), labels.end());
    ApplyLocked(KeyFor(views), value, /*set=*/false);
  }
}

std::vector<ScalarSample> ScalarFamily::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ScalarSample> samples;
  for (const auto* entry : Sorted(values_)) {
    samples.push_back(ScalarSample{DecodeLabels(entry->first), entry->second});
  }
  return samples;
}

void ScalarFamily::RenderValues(Format format, std::string_view type, std::string& out) const {
  std::lock_guard<std::mutex> lock(mu_);
  AppendHeader(out, format, type);
  for (const auto* entry : Sorted(values_)) {
    out += options_.name;
    AppendClosedLabels(out, entry->first);
    out += ' ';
    out += FormatValue(entry->second);
    out += '\n';
  }
}

Histogram::Histogram(FamilyOptions options, Registry& registry, std::vector<double> bounds)
    : Family(std::move(options), registry), bounds_(std::move(bounds)) {}

void Histogram::Observe(std::span<const std::string_view> label_values, double value,
                        const Exemplar* exemplar) {
  if (std::isnan(value)) return;
  bool overflowed = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ObserveLocked(KeyFor(label_values), value, exemplar, overflowed, registry_.NowUnixNano());
  }
  if (overflowed) registry_.CountOverflow(options_.name);
}

void Histogram::Observe(const SeriesKey& key, double value, const Exemplar* exemplar) {
  if (std::isnan(value)) return;
  bool overflowed = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ObserveLocked(key.text(), value, exemplar, overflowed, registry_.NowUnixNano());
  }
  if (overflowed) registry_.CountOverflow(options_.name);
}

void Histogram::ObserveMany(const SeriesKey& key, std::span<const Exemplar> observations) {
  uint64_t overflowed = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t now = registry_.NowUnixNano();  // once: a clock read per span shows up
    Series* series = nullptr;  // looked up once, at the first observation to record
    bool folded = false;
    for (const Exemplar& observation : observations) {
      if (std::isnan(observation.value)) continue;
      if (series == nullptr) series = &SeriesLocked(key.text(), folded);
      RecordLocked(*series, observation.value, &observation, now);
      if (folded) ++overflowed;
    }
  }
  if (overflowed != 0) registry_.CountOverflow(options_.name, overflowed);
}

void Histogram::ObserveEach(std::span<const KeyedObservation> observations) {
  uint64_t overflowed = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t now = registry_.NowUnixNano();
    // A group's observations repeat a few keys: each key's series is looked up by its text
    // once, then by the key's address (forgotten when a new series may have moved the others).
    struct Found {
      Series* series;
      bool folded;
    };
    absl::flat_hash_map<const SeriesKey*, Found> found;
    for (const KeyedObservation& o : observations) {
      if (std::isnan(o.exemplar.value)) continue;
      auto it = found.find(o.key);
      if (it == found.end()) {
        const size_t series_before = series_.size();
        bool folded = false;
        Series& series = SeriesLocked(o.key->text(), folded);
        if (series_.size() != series_before) found.clear();
        it = found.emplace(o.key, Found{&series, folded}).first;
      }
      RecordLocked(*it->second.series, o.exemplar.value, &o.exemplar, now);
      if (it->second.folded) ++overflowed;
    }
  }
  if (overflowed != 0) registry_.CountOverflow(options_.name, overflowed);
}

void Histogram::ObserveLocked(std::string_view key, double value, const Exemplar* exemplar,
                              bool& overflowed, uint64_t now_unix_nano) {
  RecordLocked(SeriesLocked(key, overflowed), value, exemplar, now_unix_nano);
}

Histogram::Series& Histogram::SeriesLocked(std::string_view key, bool& overflowed) {
  size_t buckets = bounds_.size() + 1;
  return SeriesFor(
      *this, series_, key, options_.max_series, series_count_,
      [buckets] {
        Series s;
        s.counts.assign(buckets, 0);
        s.exemplars.resize(buckets);
        s.has_exemplar.assign(buckets, false);
        return s;
      },
      overflowed);
}

void Histogram::RecordLocked(Series& series, double value, const Exemplar* exemplar,
                             uint64_t now_unix_nano) const {
  size_t bucket = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  ++series.counts[bucket];
  series.sum += value;
  ++series.count;
  // The latest exemplar per bucket: the freshest trace to jump to.
  if (exemplar != nullptr) {
    series.exemplars[bucket] = *exemplar;
    series.exemplars[bucket].time_unix_nano = now_unix_nano;
    series.has_exemplar[bucket] = true;
  }
}

HistogramFigures Histogram::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  HistogramFigures figures;
  figures.label_names = options_.label_names;
  figures.bounds = bounds_;
  for (const auto* entry : Sorted(series_)) {
    const Series& series = entry->second;
    HistogramSample sample;
    sample.labels = DecodeLabels(entry->first);
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= bounds_.size(); ++b) {
      cumulative += series.counts[b];
      sample.cumulative.push_back(cumulative);
      sample.exemplars.push_back(series.has_exemplar[b] ? std::optional(series.exemplars[b])
                                                        : std::nullopt);
    }
    sample.sum = series.sum;
    sample.count = series.count;
    figures.series.push_back(std::move(sample));
  }
  return figures;
}

void Histogram::Render(Format format, std::string& out) const {
  std::lock_guard<std::mutex> lock(mu_);
  AppendHeader(out, format, "histogram");
  for (const auto* entry : Sorted(series_)) {
    const Series& series = entry->second;
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= bounds_.size(); ++b) {
      cumulative += series.counts[b];
      out += options_.name;
      out += "_bucket";
      AppendLabels(out, entry->first);
      if (!entry->first.empty()) out += ',';
      out += "le=\"";
      out += b < bounds_.size() ? FormatValue(bounds_[b]) : std::string("+Inf");
      out += "\"} ";
      out += std::to_string(cumulative);
      if (format == Format::kOpenMetrics && series.has_exemplar[b]) {
        AppendExemplar(out, series.exemplars[b]);
      }
      out += '\n';
    }
    out += options_.name;
    out += "_sum";
    AppendClosedLabels(out, entry->first);
    out += ' ';
    out += FormatValue(series.sum);
    out += '\n';
    out += options_.name;
    out += "_count";
    AppendClosedLabels(out, entry->first);
    out += ' ';
    out += std::to_string(series.count);
    out += '\n';
  }
}

const base::Clock& Registry::DefaultClock() {
  static const base::SystemClock clock;
  return clock;
}

Registry::Registry(const base::Clock& clock) : clock_(clock) {
  overflow_ = &AddCounter({"ordertrace_metric_series_overflow_total",
                           "Observations folded into a family's overflow series because the "
                           "family reached its series bound.",
                           {"metric"},
                           1000});
}

Counter& Registry::AddCounter(FamilyOptions options) {
  auto family = std::unique_ptr<Counter>(new Counter(std::move(options), *this));
  Counter& ref = *family;
  families_.push_back(std::move(family));
  return ref;
}

Gauge& Registry::AddGauge(FamilyOptions options) {
  auto family = std::unique_ptr<Gauge>(new Gauge(std::move(options), *this));
  Gauge& ref = *family;
  families_.push_back(std::move(family));
  return ref;
}

Histogram& Registry::AddHistogram(FamilyOptions options, std::vector<double> bucket_bounds) {
  std::sort(bucket_bounds.begin(), bucket_bounds.end());
  bucket_bounds.erase(std::unique(bucket_bounds.begin(), bucket_bounds.end()), bucket_bounds.end());
  auto family = std::unique_ptr<Histogram>(
      new Histogram(std::move(options), *this, std::move(bucket_bounds)));
  Histogram& ref = *family;
  families_.push_back(std::move(family));
  return ref;
}

void Registry::AddScrapeHook(std::function<void()> hook) { hooks_.push_back(std::move(hook)); }

void Registry::CountOverflow(const std::string& family, uint64_t observations) {
  // The overflow counter cannot count itself (it is bounded far above the number of families).
  if (family != overflow_->name()) overflow_->Add({family}, static_cast<double>(observations));
}

uint64_t Registry::OverflowCount(std::string_view family) const {
  std::string key = "metric=\"";
  AppendEscaped(key, family);
  key += '"';
  std::lock_guard<std::mutex> lock(overflow_->mu_);
  auto it = overflow_->values_.find(key);
  return it == overflow_->values_.end() ? 0 : static_cast<uint64_t>(it->second);
}

void Registry::RunScrapeHooks() const {
  for (const auto& hook : hooks_) hook();
}

std::optional<std::vector<ScalarSample>> Registry::ScalarSnapshot(std::string_view name) const {
  for (const auto& family : families_) {
    const auto* scalar = dynamic_cast<const ScalarFamily*>(family.get());
    if (scalar != nullptr && family->name() == name) return scalar->Snapshot();
  }
  return std::nullopt;
}

std::optional<HistogramFigures> Registry::HistogramSnapshot(std::string_view name) const {
  for (const auto& family : families_) {
    const auto* histogram = dynamic_cast<const Histogram*>(family.get());
    if (histogram != nullptr && family->name() == name) return histogram->Snapshot();
  }
  return std::nullopt;
}

std::string Registry::Render(Format format) const {
  RunScrapeHooks();
  std::string out;
  out.reserve(16 * 1024);
  for (const auto& family : families_) family->Render(format, out);
  if (format == Format::kOpenMetrics) out += "# EOF\n";
  return out;
}

}  // namespace ordertrace::metrics
