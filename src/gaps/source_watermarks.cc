#include "gaps/source_watermarks.h"

#include <algorithm>

#include "gaps/gap_rules.h"

namespace ordertrace::gaps {

std::string_view SourceStateName(SourceState state) {
  switch (state) {
    case SourceState::kLive:
      return "live";
    case SourceState::kCatchingUp:
      return "catching_up";
    case SourceState::kQuiet:
      return "quiet";
    case SourceState::kSilent:
      return "silent";
  }
  return "quiet";
}

SourceWatermarks::SourceWatermarks(SourceWatermarkOptions options, uint64_t late_after_nanos,
                                   uint64_t started_unix_nano)
    : options_(options), late_after_(late_after_nanos), started_(started_unix_nano) {}

int SourceWatermarks::Learn(std::string_view service, uint64_t now) {
  auto it = index_.find(std::string(service));
  if (it != index_.end()) return it->second;
  if (sources_.size() + 1 >= options_.max_sources && service != kOtherSources) {
    return Learn(kOtherSources, now);  // the last slot is the shared one
  }
  const int source = static_cast<int>(sources_.size());
  Source added;
  added.service = std::string(service);
  added.last_report = now;
  // Until it reports, it counts as catching up from nowhere: nothing it owes is judged before
  // it reports or goes quiet.
  added.lag = UINT64_MAX;
  sources_.push_back(std::move(added));
  index_.emplace(std::string(service), source);
  return source;
}

int SourceWatermarks::Report(std::string_view service, uint64_t max_end_unix_nano, uint64_t spans,
                             uint64_t late, uint64_t now) {
  const int index = Learn(service, now);
  Source& source = sources_[index];
  source.last_report = now;
  source.reported = true;
  source.spans += spans;
  source.late_spans += late;
  if (max_end_unix_nano > AddSaturating(now, options_.max_future_nanos)) {
    // A wrong clock: counted, but it moves nothing.
    return index;
  }
  source.watermark = std::max(source.watermark, max_end_unix_nano);
  // The lag of this report: a backlog flushed oldest first shows a large lag until it is
  // through, whatever the watermark already is.
  source.lag = now > max_end_unix_nano ? now - max_end_unix_nano : 0;
  return index;
}

uint64_t SourceWatermarks::LateBefore(std::string_view service) const {
  auto it = index_.find(std::string(service));
  if (it == index_.end()) return 0;
  const uint64_t watermark = sources_[it->second].watermark;
  return watermark > late_after_ ? watermark - late_after_ : 0;
}

bool SourceWatermarks::OthersReporting(int except, uint64_t now) const {
  for (int i = 0; i < static_cast<int>(sources_.size()); ++i) {
    if (i != except && AddSaturating(sources_[i].last_report, options_.idle_after_nanos) > now) {
      return true;
    }
  }
  return false;
}

SourceState SourceWatermarks::StateOf(int index, uint64_t now) const {
  const Source& source = sources_[index];
  const uint64_t quiet_for = now > source.last_report ? now - source.last_report : 0;
  const bool behind = source.lag > options_.live_lag_nanos;
  // A source behind the clock may pause between batches (an exporter backing off after a 429, a
  // collector retrying): it is quiet only after catch_up_idle_after.
  if (quiet_for >= (behind ? options_.catch_up_idle_after_nanos : options_.idle_after_nanos)) {
    // Silent only if it reported since the start: one known from stored orders that never
    // came back (renamed, retired) is quiet, not a signal.
    if (source.reported && quiet_for >= options_.silent_after_nanos &&
        OthersReporting(index, now)) {
      return SourceState::kSilent;
    }
    return SourceState::kQuiet;
  }
  return behind ? SourceState::kCatchingUp : SourceState::kLive;
}

bool SourceWatermarks::IsJudgedBy(int index, uint64_t deadline, uint64_t now) const {
  switch (StateOf(index, now)) {
    case SourceState::kLive:
    case SourceState::kQuiet:
      return now >= deadline;
    case SourceState::kCatchingUp:
      return sources_[index].watermark >= AddSaturating(deadline, options_.allowed_lateness_nanos);
    case SourceState::kSilent:
      return false;
  }
  return false;
}

bool SourceWatermarks::IsJudged(uint64_t deadline, absl::Span<const int> responsible,
                                uint64_t now) const {
  if (now < deadline) return false;
  if (!responsible.empty()) {
    // A silent source is left out while another can answer (a service renamed or retired);
    // when all are silent, the deadline waits for them.
    bool any = false;
    for (int source : responsible) {
      if (StateOf(source, now) == SourceState::kSilent) continue;
      any = true;
      if (!IsJudgedBy(source, deadline, now)) return false;
    }
    return any;
  }
  bool any = false;
  for (int i = 0; i < static_cast<int>(sources_.size()); ++i) {
    if (StateOf(i, now) == SourceState::kSilent) continue;
    any = true;
    if (!IsJudgedBy(i, deadline, now)) return false;
  }
  // No source has reported since start: give exporters idle_after to flush their queues.
  return any || now >= AddSaturating(started_, options_.idle_after_nanos);
}

bool SourceWatermarks::IsCaughtUp(absl::Span<const int> responsible, uint64_t now) const {
  bool any = false;
  auto caught_up = [&](int source) {
    const SourceState state = StateOf(source, now);
    if (state == SourceState::kSilent) return true;  // left out, as in IsJudged
    any = true;
    return state == SourceState::kLive || state == SourceState::kQuiet;
  };
  if (!responsible.empty()) {
    return std::all_of(responsible.begin(), responsible.end(), caught_up) && any;
  }
  for (int i = 0; i < static_cast<int>(sources_.size()); ++i) {
    if (!caught_up(i)) return false;
  }
  return any || now >= AddSaturating(started_, options_.idle_after_nanos);
}

std::vector<SourceStatus> SourceWatermarks::Snapshot(uint64_t now) const {
  std::vector<SourceStatus> out;
  out.reserve(sources_.size());
  for (int i = 0; i < static_cast<int>(sources_.size()); ++i) {
    const Source& source = sources_[i];
    SourceStatus status;
    status.service = source.service;
    status.state = StateOf(i, now);
    status.watermark_unix_nano = source.watermark;
    status.lag_nanos = source.lag == UINT64_MAX ? 0 : source.lag;
    status.last_report_unix_nano = source.last_report;
    if (status.state == SourceState::kQuiet || status.state == SourceState::kSilent) {
      const bool behind = source.lag > options_.live_lag_nanos;
      status.quiet_since_unix_nano =
          AddSaturating(source.last_report,
                        behind ? options_.catch_up_idle_after_nanos : options_.idle_after_nanos);
    }
    status.spans = source.spans;
    status.late_spans = source.late_spans;
    out.push_back(std::move(status));
  }
  std::sort(out.begin(), out.end(),
            [](const SourceStatus& a, const SourceStatus& b) { return a.service < b.service; });
  return out;
}

}  // namespace ordertrace::gaps
