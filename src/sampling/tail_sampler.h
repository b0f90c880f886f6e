// The adaptive tail sampler: which spans the store keeps. Lifecycle spans (status transitions,
// messaging hops, errors, roots) are always kept, since order records, timelines and gap
// detection rest on them. The other ("detail") spans are kept per trace: every trace with a
// slow or failed span, a fixed share of the rest chosen from the trace id, and the traces of
// orders flagged stuck. A trace's detail waits in a bounded buffer until its trace is decided or
// its decision wait passes; decisions are remembered (bounded) so that late spans follow them.
// The buffer is bounded in spans and in bytes; past either bound the oldest traces are decided
// drop early (counted), so a flood never blocks ingest nor grows memory.
//
// Durability: a caller that passes a PendingDelta to Admit and TakeReleased is told, for each
// call, which detail it buffered and which bufferings it decided, to store in the same atomic
// write as the spans the call returns; at start, RestorePending gives the sampler back what was
// stored and not decided, with the original deadlines. Then an acknowledged detail span is
// stored or dropped by the policy as if no crash or restart had happened.
//
// Thread-safe: one internal mutex. Admit runs on the ingest writer, ForceKeep on the gap
// detector's thread, Stats on the HTTP thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "base/clock.h"
#include "base/ids.h"
#include "base/span.h"
#include "otlp/received_bytes.h"

namespace ordertrace::sampling {

struct SamplingOptions {
  // Off: Admit keeps every span and buffers nothing.
  bool enabled = true;
  // The share of traces, neither slow nor failed, whose detail is kept; in [0, 1].
  double ratio = 0.10;
  // A span lasting longer than this keeps its whole trace.
  uint64_t slow_threshold_nanos = 5 * base::kNanosPerSecond;
  // How long a trace's detail waits for a keep decision, from its first buffered span.
  uint64_t decision_wait_nanos = 30 * base::kNanosPerSecond;
  // Buffered detail spans over all traces; past it the oldest traces are dropped early.
  size_t max_pending_spans = 100'000;
  // The same in bytes (encoded spans and their bookkeeping), checked before a span is held.
  size_t max_pending_bytes = size_t{128} << 20;
  // Trace decisions remembered for late spans; the oldest is forgotten first.
  size_t max_remembered_traces = 200'000;
};

struct SamplingStats {
  // Traces, counted when first decided. A dropped trace turned to kept later is counted again
  // in `upgrades` (by a late slow or failed span) or `traces_forced` (by ForceKeep).
  uint64_t traces_kept = 0;     // a slow or failed span, or the ratio
  uint64_t traces_dropped = 0;  // the decision wait passed, or the buffer was full
  uint64_t traces_forced = 0;   // ForceKeep: the order was flagged stuck
  uint64_t upgrades = 0;
  // Spans.
  uint64_t lifecycle_spans = 0;             // always kept
  uint64_t kept_detail_spans = 0;           // at once or released from the buffer
  uint64_t dropped_detail_spans = 0;        // by a drop decision
  uint64_t dropped_pending_full_spans = 0;  // dropped early: the buffer was full
  // Now.
  size_t pending_spans = 0;
  size_t pending_bytes = 0;
  size_t pending_traces = 0;
  size_t remembered_traces = 0;
};

// True for the spans kept whatever the policy: status transitions, messaging hops, errors,
// and root spans. Reads only the span's own attributes.
bool IsLifecycleSpan(const base::Span& span);

// The ratio rule: the trace id's rightmost 7 bytes (W3C Trace Context level 2's random part),
// read as a big-endian 56-bit r, keep iff r < ratio * 2^56. Deterministic; 0 keeps none, 1 all.
bool RatioKeeps(const base::TraceId& trace_id, double ratio);

// One trace's detail buffered by one call, as its caller stores it.
struct BufferedPart {
  base::TraceId trace_id;
  uint64_t buffering = 0;  // rising, never reused (also across restarts)
  uint32_t part = 0;       // the n-th part of this buffering
  uint64_t deadline_unix_nano = 0;
};

// How one call changed the buffered detail (see the durability note above).
struct PendingDelta {
  // The spans the call buffered, moved out of its input; one entry in `parts` per trace.
  base::TraceBatch buffered;
  // Where `buffered`'s spans sit in the request body they came in (from Admit's `received`).
  otlp::ReceivedBytes received;
  std::vector<BufferedPart> parts;
  // Bufferings decided keep by the call: their spans are in the batch the call returns.
  std::vector<std::pair<uint64_t, base::TraceId>> kept;
  // TakeReleased only: every buffering below this one is decided; 0: no news.
  uint64_t decided_below = 0;
  bool empty() const { return parts.empty() && kept.empty() && decided_below == 0; }
};

class TailSampler {
 public:
  // `clock` is borrowed and must outlive the sampler.
  TailSampler(SamplingOptions options, const base::Clock& clock);
  TailSampler(const TailSampler&) = delete;
  TailSampler& operator=(const TailSampler&) = delete;

  // Takes one ingested batch and returns the spans to store now: its lifecycle spans, its
  // detail spans of traces decided keep (also by this batch), and the buffered detail that
  // this batch's slow or failed spans released. The remaining detail is buffered or dropped.
  // A batch with no detail span and no slow span comes back as it went in (moved).
  // The spans not returned are moved to `dropped` when given, for the caller to destroy: their
  // memory is best freed by the thread that allocated it (freeing another thread's allocations
  // made every later allocation on that thread slower, a fifth of ingest CPU in all).
  // With `delta`, the buffered spans move there (not to `dropped`) with what to store.
  // `received` (may be null): in, the received bytes of `batch`'s spans, used to buffer them;
  // out, those of the returned batch's spans (the buffered ones' go to `delta`).
  base::TraceBatch Admit(base::TraceBatch batch, std::vector<base::Span>* dropped = nullptr,
                         PendingDelta* delta = nullptr, otlp::ReceivedBytes* received = nullptr);

  // Keeps the trace (its order was flagged stuck): its buffered detail goes to TakeReleased,
  // its later detail is kept.
  void ForceKeep(const base::TraceId& trace_id);

  // The spans released outside Admit since the last call, for the caller to store. With
  // `delta`: the keep decisions behind them and how far every buffering is decided.
  base::TraceBatch TakeReleased(PendingDelta* delta = nullptr);

  // Buffers again one stored part of detail (TracesData) of a buffering not decided before a
  // restart, with its original deadline. Call at start, in buffering order, before Admit.
  absl::Status RestorePending(const BufferedPart& part, std::string_view encoded);

  // Drops the buffered detail of every trace whose decision wait has passed.
  void ExpirePending();

  // When the next buffered trace's wait passes (clock time), or nullopt when none is buffered.
  std::optional<uint64_t> NextExpiryUnixNano() const;

  SamplingStats Stats() const;

 private:
  enum class Decision : uint8_t { kKeep, kDrop };
  enum class KeepReason : uint8_t { kSlowOrFailed, kRatio, kForced };

  // Where a buffered span came from, shared by the spans of one input ScopeSpans.
  struct ResourceOrigin {
    base::Resource resource;
    std::string schema_url;
  };
  struct ScopeOrigin {
    std::shared_ptr<const ResourceOrigin> resource;
    base::InstrumentationScope scope;
    std::string schema_url;
  };
  struct PendingSpan {
    std::shared_ptr<const ScopeOrigin> origin;
    // The span as an OTLP Span message: a tenth of the model's memory and one allocation
    // instead of dozens, which matters with 100,000 spans waiting (ingest CPU went up a third
    // with model spans held here, mostly in malloc and page faults).
    std::string encoded_span;
  };
  struct PendingTrace {
    uint64_t deadline = 0;
    uint64_t sequence = 0;  // tells this buffering apart from an earlier one of the same trace
    std::vector<PendingSpan> spans;
    size_t bytes = 0;        // of `spans`, as counted against max_pending_bytes
    uint32_t next_part = 0;  // durable parts stored so far
    uint64_t part_call = 0;  // the call that stored the last part
  };
  struct Expiry {
    uint64_t deadline;
    uint64_t sequence;
    base::TraceId trace_id;
  };
  struct TraceIdHash {
    size_t operator()(const base::TraceId& id) const;
  };
  using PendingMap = absl::flat_hash_map<base::TraceId, PendingTrace, TraceIdHash>;
  class BatchBuilder;

  static base::TraceBatch BuildBatch(base::TraceBatch base, std::vector<PendingSpan> spans);

  // One input ScopeSpans as SampleScopeLocked takes it.
  struct ScopeInput {
    const base::ResourceSpans& resource_spans;
    base::ScopeSpans& scope_spans;
    otlp::ReceivedBytes::Scope* received;            // its spans' received bytes; may be null
    const std::shared_ptr<const std::string>& body;  // what `received` points into
    const uint8_t* classes;                          // one per span
  };

  // Guarded by mu_ (the *Locked functions require it).
  void SampleScopeLocked(const ScopeInput& input,
                         std::shared_ptr<const ResourceOrigin>& resource_origin, uint64_t now,
                         std::vector<PendingSpan>& released, std::vector<base::Span>* dropped,
                         PendingDelta* delta, size_t& delta_resource);
  // `kept`: where to note the buffering decided keep, if any (null: not durable).
  void KeepLocked(const base::TraceId& trace_id, KeepReason reason,
                  std::vector<PendingSpan>& released,
                  std::vector<std::pair<uint64_t, base::TraceId>>* kept);
  void DropLocked(PendingMap::iterator pending, bool buffer_full);
  // `encoded_span`: the span as otlp::EncodeSpan gives it.
  bool BufferLocked(const base::TraceId& trace_id, const std::shared_ptr<const ScopeOrigin>& origin,
                    std::string encoded_span, uint64_t now, PendingDelta* delta);
  // Drops the oldest traces until `bytes` more fit; false when they cannot (or `trace_id`
  // itself had to go).
  bool MakeRoomLocked(const base::TraceId& trace_id, size_t bytes);
  void ErasePendingLocked(PendingMap::iterator pending);
  void RememberLocked(const base::TraceId& trace_id, Decision decision);
  void ExpireLocked(uint64_t now);
  bool IsLiveLocked(const Expiry& expiry) const;

  // Constant after construction.
  const SamplingOptions options_;
  const base::Clock& clock_;

  mutable std::mutex mu_;
  absl::flat_hash_map<base::TraceId, Decision, TraceIdHash> decisions_;
  std::deque<base::TraceId> decision_order_;  // oldest first, one entry per decision
  PendingMap pending_;
  // Oldest buffering first (so by deadline while the clock moves forward). Entries of traces
  // decided meanwhile stay until they reach the front or a compaction; the front is always live.
  std::deque<Expiry> expiries_;
  uint64_t next_sequence_ = 1;  // from the clock at start: above every earlier run's
  uint64_t calls_ = 0;          // Admit and RestorePending calls, to number durable parts
  uint64_t decided_below_told_ = 0;
  size_t pending_spans_ = 0;
  size_t pending_bytes_ = 0;
  std::vector<PendingSpan> released_;                              // by ForceKeep, for TakeReleased
  std::vector<std::pair<uint64_t, base::TraceId>> released_kept_;  // their bufferings
  SamplingStats stats_;
};

}  // namespace ordertrace::sampling
