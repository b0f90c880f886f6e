// The loop from gap detection back to sampling. The tail sampler (sampling/tail_sampler.h) drops
// most detail spans by policy; a stuck order is the one whose trace someone will open, so a gap
// on an order must keep its trace's detail spans even where the sampler would drop them.
//
// The loop, end to end:
//   1. ingest hands every order record it changed to the gap detector (ingest::OrderObserver),
//      on the ingest writer thread;
//   2. the detector opens a gap: a conflict at once, on that thread; a missed deadline when
//      FireDue judges it, on the detector's own thread; a gap still open, again at start
//      (GapDetector::Recover);
//   3. it announces the gap to its GapSink, a GapFanOut, which hands the gap's trace to the
//      StuckTraceKeeper and the gap to Alertmanager;
//   4. the keeper (the server wires it to TailSampler::ForceKeep) releases the trace's buffered
//      detail and keeps its later detail;
//   5. the ingest writer stores the released detail after its next commit or, when idle, within
//      its sampler tick (ingest::Ingester::kSamplerTick, 200 ms).
// Timing: buffered detail is rescued only while it is still buffered, i.e. when the gap opens
// within sampling.decision_wait (30 s) of the trace's first buffered span; later, the keep holds
// for the detail still to come (docs/sampling.md, "Stuck orders").
#pragma once

#include "base/ids.h"
#include "gaps/gap.h"

namespace ordertrace::gaps {

// Keeps the detail spans of a stuck order's trace. Called under the gap detector's mutex, from
// whichever thread opened the gap: implementations must be quick and thread-safe, and must not
// call the detector.
class StuckTraceKeeper {
 public:
  virtual ~StuckTraceKeeper() = default;
  virtual void KeepStuckTrace(const base::TraceId& trace_id) = 0;
};

// The detector's sink: the trace of every opened gap to `keeper`, then every gap to `alerts`.
// Both borrowed, may be null, must outlive it. Thread-safe as they are.
class GapFanOut final : public GapSink {
 public:
  GapFanOut(GapSink* alerts, StuckTraceKeeper* keeper) : alerts_(alerts), keeper_(keeper) {}

  void OnGapOpened(const Gap& gap) override {
    if (keeper_ != nullptr && gap.trace_id.IsValid()) keeper_->KeepStuckTrace(gap.trace_id);
    if (alerts_ != nullptr) alerts_->OnGapOpened(gap);
  }
  void OnGapResolved(const Gap& gap) override {
    if (alerts_ != nullptr) alerts_->OnGapResolved(gap);
  }

 private:
  GapSink* const alerts_;
  StuckTraceKeeper* const keeper_;
};

}  // namespace ordertrace::gaps
