// How far each source of spans (a service, by its service.name) has reported in event time, and
// so whether the evidence for a deadline is in: the Dataflow model's watermarks, with Flink's
// bounded out-of-orderness for backlogs and idleness for sources that stop.
//
// A source is, at any moment, one of:
// - live: its newest spans are close to the wall clock (within live_lag). Exporters deliver
//   what happened within the lifecycle's grace, so a deadline is judged when the wall clock
//   passes it (a gap within a second of its deadline);
// - catching up: its newest spans are further behind (a backlog flushed after an outage, a
//   replay, ordertrace catching up after a restart). A deadline is judged once the source has
//   reported allowed_lateness past it in event time: until then the missing event may still be
//   in the backlog;
// - quiet: it has sent nothing for idle_after (catch_up_idle_after if it was catching up).
//   Nothing more is on its way; a deadline is judged when the wall clock passes it;
// - silent: it reported since the start, then went quiet for silent_after while another
//   source is reporting. Its deadlines are held
//   (it may be down, and its orders are not stuck one by one); the detector reports the
//   source itself instead (a source_silent gap).
// Deadlines whose responsible source is not known are judged against every source that is not
// silent. A source ordertrace knows of but that has not reported since start counts as
// catching up until it reports or goes quiet, and with no source at all nothing is judged for
// idle_after after start: exporters flush what they queued while ordertrace was down.
//
// Thread-compatible: the GapDetector guards it with its own mutex.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"

namespace ordertrace::gaps {

struct SourceWatermarkOptions {
  // A source with no spans for this long is quiet.
  uint64_t idle_after_nanos = 5'000'000'000ULL;
  // A source quiet for this long while another reports is silent.
  uint64_t silent_after_nanos = 120'000'000'000ULL;
  // A source whose newest spans are further behind the wall clock than this is catching up.
  uint64_t live_lag_nanos = 30'000'000'000ULL;
  // A catching-up source with no spans for this long is quiet (an exporter flushing a backlog
  // may pause between batches, e.g. backing off after a 429).
  uint64_t catch_up_idle_after_nanos = 30'000'000'000ULL;
  // How far out of event-time order a catching-up source's spans may arrive.
  uint64_t allowed_lateness_nanos = 3'600'000'000'000ULL;
  // Spans ending further ahead of the wall clock than this do not move a watermark (a wrong
  // clock, or a hostile timestamp near 2^64, must not judge every deadline at once).
  uint64_t max_future_nanos = 300'000'000'000ULL;
  // Services tracked one by one; spans of further services (a client inventing service names)
  // all count as one source, kOtherSources.
  size_t max_sources = 256;
};

// The source that stands for every service past max_sources.
inline constexpr std::string_view kOtherSources = "(other services)";

enum class SourceState { kLive, kCatchingUp, kQuiet, kSilent };
std::string_view SourceStateName(SourceState state);

struct SourceStatus {
  std::string service;
  SourceState state = SourceState::kQuiet;
  uint64_t watermark_unix_nano = 0;    // the latest span end reported (event time)
  uint64_t lag_nanos = 0;              // wall clock minus the newest span of the last report
  uint64_t last_report_unix_nano = 0;  // wall clock
  uint64_t quiet_since_unix_nano = 0;  // when it went quiet (last report + idle_after); 0: not
  uint64_t spans = 0;
  uint64_t late_spans = 0;  // spans further behind the watermark than the grace (see Report)
};

class SourceWatermarks {
 public:
  // `late_after_nanos`: a span ending more than this before its source's watermark counts as
  // late (the lifecycle's grace: what a live exporter may lag).
  SourceWatermarks(SourceWatermarkOptions options, uint64_t late_after_nanos,
                   uint64_t started_unix_nano);

  // `service` reported `spans` spans at wall time `now`, the latest ending at `max_end` and
  // `late` of them ending before LateBefore(). Returns the source's index.
  int Report(std::string_view service, uint64_t max_end_unix_nano, uint64_t spans, uint64_t late,
             uint64_t now);
  // A span from `service` ending before this is late (0: none is).
  uint64_t LateBefore(std::string_view service) const;
  // The index of `service`, registering it (as just reported) when new; past max_sources, the
  // index of kOtherSources.
  int Learn(std::string_view service, uint64_t now);

  // Whether the evidence for `deadline` is in at wall time `now`, when the missing event would
  // come from one of `responsible` (indexes; empty: not known).
  bool IsJudged(uint64_t deadline_unix_nano, absl::Span<const int> responsible, uint64_t now) const;

  // Whether what has arrived reaches the present: every source in `responsible` (empty: every
  // source) that is not silent is live or quiet. Until then a gap
  // may still be answered by spans on their way, so it is recorded but not paged.
  bool IsCaughtUp(absl::Span<const int> responsible, uint64_t now) const;

  SourceState StateOf(int source, uint64_t now) const;
  size_t size() const { return sources_.size(); }
  const std::string& ServiceOf(int source) const { return sources_[source].service; }
  uint64_t LastReportOf(int source) const { return sources_[source].last_report; }
  std::vector<SourceStatus> Snapshot(uint64_t now) const;
  const SourceWatermarkOptions& options() const { return options_; }

 private:
  struct Source {
    std::string service;
    uint64_t watermark = 0;
    uint64_t lag = 0;
    uint64_t last_report = 0;
    uint64_t spans = 0;
    uint64_t late_spans = 0;
    bool reported = false;  // since the start (else only known from stored orders)
  };

  bool IsJudgedBy(int source, uint64_t deadline, uint64_t now) const;
  // Whether any source but `except` reported within idle_after of `now`.
  bool OthersReporting(int except, uint64_t now) const;

  const SourceWatermarkOptions options_;
  const uint64_t late_after_;
  const uint64_t started_;
  std::vector<Source> sources_;
  absl::flat_hash_map<std::string, int> index_;
};

}  // namespace ordertrace::gaps
