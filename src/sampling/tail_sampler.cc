// Why our own sampler: no C++ library packaged in Debian does tail sampling (opentelemetry-cpp
// samples at the head, in the SDK, before a trace's outcome is known), and the OpenTelemetry
// Collector's tail_sampling processor is Go: a second process in front of ingest. Ours also
// knows which spans carry the order lifecycle, which no generic policy does.
#include "sampling/tail_sampler.h"

#include <algorithm>
#include <iterator>
#include <string_view>
#include <utility>

#include "absl/hash/hash.h"
#include "base/attribute_names.h"
#include "otlp/proto_codec.h"

namespace ordertrace::sampling {
namespace {

// What a buffered span costs besides its bytes: its PendingSpan and a share of its trace's
// entries (the bound is on memory, so an empty span is not free).
constexpr size_t kPendingSpanOverhead = 64;

const std::shared_ptr<const std::string> kNoBody;

// One byte per span of a batch, computed outside the lock.
constexpr uint8_t kLifecycle = 1;
constexpr uint8_t kDecisive = 2;  // slow or failed: keeps its whole trace

// Status transitions and messaging hops. error_code is checked by IsFailed.
constexpr const char* kLifecycleKeys[] = {
    base::kNewStatusKey, base::kMessagingSystemKey, base::kMessagingMessageIdKey,
    base::kMessageIdKey, base::kQueueKey,
};

bool IsFailed(const base::Span& span) {
  return span.status.code == base::StatusCode::kError ||
         base::FindAttribute(span.attributes, base::kErrorCodeKey) != nullptr;
}

bool HasLifecycleMark(const base::Span& span) {
  // Root spans are kept too, so that a kept trace is never rootless: the trace view and the
  // order's timeline hang the detail off its root.
  if (!span.parent_span_id.IsValid()) return true;
  for (const char* key : kLifecycleKeys) {
    if (base::FindAttribute(span.attributes, key) != nullptr) return true;
  }
  return false;
}

uint8_t Classify(const base::Span& span, uint64_t slow_threshold_nanos) {
  uint8_t c = 0;
  if (IsFailed(span)) {
    c = kLifecycle | kDecisive;
  } else if (HasLifecycleMark(span)) {
    c = kLifecycle;
  }
  if (span.end_time_unix_nano > span.start_time_unix_nano &&
      span.end_time_unix_nano - span.start_time_unix_nano > slow_threshold_nanos) {
    c |= kDecisive;
  }
  return c;
}

// Notes the received bytes of a span moved into delta.buffered at (resource, scope, span), so
// that storing it copies them. Only bytes of one body are kept: a delta given to calls with
// different requests encodes the later ones' spans again.
void NoteBuffered(PendingDelta& delta, const std::shared_ptr<const std::string>& body,
                  size_t resource, size_t scope, size_t span,
                  const otlp::ReceivedBytes::Span& entry) {
  if (body == nullptr) return;
  if (delta.received.body() == nullptr) delta.received = otlp::ReceivedBytes(body);
  if (delta.received.body() != body) return;
  std::vector<otlp::ReceivedBytes::Resource>& resources = delta.received.resources();
  if (resources.size() <= resource) resources.resize(resource + 1);
  if (resources[resource].size() <= scope) resources[resource].resize(scope + 1);
  otlp::ReceivedBytes::Scope& entries = resources[resource][scope];
  if (entries.size() < span) entries.resize(span);
  entries.push_back(entry);
}

}  // namespace

bool IsLifecycleSpan(const base::Span& span) { return IsFailed(span) || HasLifecycleMark(span); }

bool RatioKeeps(const base::TraceId& trace_id, double ratio) {
  if (ratio >= 1) return true;
  if (!(ratio > 0)) return false;  // also NaN
  uint64_t r = 0;
  for (size_t i = base::TraceId::kSize - 7; i < base::TraceId::kSize; ++i) {
    r = (r << 8) | trace_id.bytes[i];
  }
  // ratio * 2^56 is below 2^56 here, exact enough in a double, and fits the cast.
  const auto threshold = static_cast<uint64_t>(ratio * static_cast<double>(uint64_t{1} << 56));
  return r < threshold;
}

size_t TailSampler::TraceIdHash::operator()(const base::TraceId& id) const {
  // Seeded per process: trace ids come from the network.
  return absl::Hash<std::string_view>{}(id.AsBytes());
}

// Appends spans to a batch grouped by where they came from: the spans of one origin share a
// ScopeSpans, the origins of one resource share a ResourceSpans, and a resource or scope equal
// to one already in the batch is reused, not repeated.
class TailSampler::BatchBuilder {
 public:
  explicit BatchBuilder(base::TraceBatch batch) : batch_(std::move(batch)) {}

  void Add(PendingSpan&& pending) {
    auto [slot, inserted] = scopes_.try_emplace(pending.origin.get());
    if (inserted) {
      // Held so that no other origin can take this address while the builder lives.
      alive_.push_back(pending.origin);
      slot->second = ScopeIndex(*pending.origin);
    }
    auto [r, s] = slot->second;
    // It was encoded here from a valid span: decoding cannot fail short of memory corruption.
    absl::StatusOr<base::Span> span = otlp::DecodeSpan(pending.encoded_span);
    if (span.ok()) batch_.resource_spans[r].scope_spans[s].spans.push_back(*std::move(span));
  }

  base::TraceBatch Take() && { return std::move(batch_); }

 private:
  std::pair<size_t, size_t> ScopeIndex(const ScopeOrigin& origin) {
    const size_t r = ResourceIndex(*origin.resource);
    std::vector<base::ScopeSpans>& scopes = batch_.resource_spans[r].scope_spans;
    for (size_t s = 0; s < scopes.size(); ++s) {
      if (scopes[s].scope == origin.scope && scopes[s].schema_url == origin.schema_url) {
        return {r, s};
      }
    }
    scopes.push_back(base::ScopeSpans{origin.scope, origin.schema_url, {}});
    return {r, scopes.size() - 1};
  }

  size_t ResourceIndex(const ResourceOrigin& origin) {
    auto [slot, inserted] = resources_.try_emplace(&origin);
    if (!inserted) return slot->second;
    std::vector<base::ResourceSpans>& all = batch_.resource_spans;
    for (size_t r = 0; r < all.size(); ++r) {
      if (all[r].resource == origin.resource && all[r].schema_url == origin.schema_url) {
        return slot->second = r;
      }
    }
    all.push_back(base::ResourceSpans{origin.resource, origin.schema_url, {}});
    return slot->second = all.size() - 1;
  }

  base::TraceBatch batch_;
  std::vector<std::shared_ptr<const ScopeOrigin>> alive_;
  absl::flat_hash_map<const ScopeOrigin*, std::pair<size_t, size_t>> scopes_;
  absl::flat_hash_map<const ResourceOrigin*, size_t> resources_;
};

TailSampler::TailSampler(SamplingOptions options, const base::Clock& clock)
    : options_(options),
      clock_(clock),
      next_sequence_(std::max<uint64_t>(1, clock.NowUnixNano())) {}

base::TraceBatch TailSampler::Admit(base::TraceBatch batch, std::vector<base::Span>* dropped,
                                    PendingDelta* delta, otlp::ReceivedBytes* received) {
  std::vector<uint8_t> classes;
  size_t detail = 0;
  size_t decisive = 0;
  for (const base::ResourceSpans& rs : batch.resource_spans) {
    for (const base::ScopeSpans& ss : rs.scope_spans) {
      for (const base::Span& span : ss.spans) {
        const uint8_t c = Classify(span, options_.slow_threshold_nanos);
        classes.push_back(c);
        if ((c & kLifecycle) == 0) ++detail;
        if ((c & kDecisive) != 0) ++decisive;
      }
    }
  }

  std::vector<PendingSpan> released;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.lifecycle_spans += classes.size() - detail;
    if (!options_.enabled) {
      stats_.kept_detail_spans += detail;
      return batch;
    }
    const uint64_t now = clock_.NowUnixNano();
    ++calls_;
    std::vector<std::pair<uint64_t, base::TraceId>>* kept =
        delta != nullptr ? &delta->kept : nullptr;
    // Also here, not only in ExpirePending: a span arriving after its trace's wait follows
    // the drop decision whenever the caller's loop last ran.
    ExpireLocked(now);
    if (decisive > 0) {
      // First, so that this batch's detail of those traces is kept in place, not buffered.
      size_t i = 0;
      for (const base::ResourceSpans& rs : batch.resource_spans) {
        for (const base::ScopeSpans& ss : rs.scope_spans) {
          for (const base::Span& span : ss.spans) {
            if ((classes[i++] & kDecisive) != 0) {
              KeepLocked(span.trace_id, KeepReason::kSlowOrFailed, released, kept);
            }
          }
        }
      }
    }
    if (detail > 0) {
      // Kept spans move up in place; ScopeSpans and ResourceSpans that sampling emptied go.
      const uint8_t* next_class = classes.data();
      // The received bytes move with their spans (see otlp::ReceivedBytes).
      std::vector<base::ResourceSpans>& all = batch.resource_spans;
      std::vector<otlp::ReceivedBytes::Resource>* all_received =
          received != nullptr ? &received->resources() : nullptr;
      size_t rs_out = 0;
      for (size_t r = 0; r < all.size(); ++r) {
        std::vector<base::ScopeSpans>& scopes = all[r].scope_spans;
        otlp::ReceivedBytes::Resource* scopes_received =
            received != nullptr ? received->MutableResource(r) : nullptr;
        const bool had_scopes = !scopes.empty();
        std::shared_ptr<const ResourceOrigin> resource_origin;
        size_t delta_resource = SIZE_MAX;  // this resource's place in delta->buffered
        size_t ss_out = 0;
        for (size_t s = 0; s < scopes.size(); ++s) {
          const size_t span_count = scopes[s].spans.size();
          ScopeInput input{all[r], scopes[s],
                           received != nullptr ? received->MutableScope(r, s) : nullptr,
                           received != nullptr ? received->body() : kNoBody, next_class};
          SampleScopeLocked(input, resource_origin, now, released, dropped, delta, delta_resource);
          next_class += span_count;
          if (span_count > 0 && scopes[s].spans.empty()) continue;
          if (ss_out != s) {
            scopes[ss_out] = std::move(scopes[s]);
            otlp::MoveEntry(scopes_received, s, ss_out);
          }
          ++ss_out;
        }
        scopes.erase(scopes.begin() + ss_out, scopes.end());
        otlp::TruncateEntries(scopes_received, ss_out);
        if (had_scopes && scopes.empty()) continue;
        if (rs_out != r) {
          all[rs_out] = std::move(all[r]);
          otlp::MoveEntry(all_received, r, rs_out);
        }
        ++rs_out;
      }
      all.erase(all.begin() + rs_out, all.end());
      otlp::TruncateEntries(all_received, rs_out);
    }
  }
  if (released.empty()) return batch;
  return BuildBatch(std::move(batch), std::move(released));
}

void TailSampler::SampleScopeLocked(const ScopeInput& input,
                                    std::shared_ptr<const ResourceOrigin>& resource_origin,
                                    uint64_t now, std::vector<PendingSpan>& released,
                                    std::vector<base::Span>* dropped, PendingDelta* delta,
                                    size_t& delta_resource) {
  const base::ResourceSpans& resource_spans = input.resource_spans;
  base::ScopeSpans& scope_spans = input.scope_spans;
  const uint8_t* classes = input.classes;
  otlp::ReceivedBytes::Scope* received = input.received;
  std::vector<base::Span>& spans = scope_spans.spans;
  std::shared_ptr<const ScopeOrigin> origin;
  base::ScopeSpans* delta_scope = nullptr;  // where this scope's buffered spans move
  size_t kept = 0;
  for (size_t j = 0; j < spans.size(); ++j) {
    base::Span& span = spans[j];
    const otlp::ReceivedBytes::Span* span_received =
        received != nullptr && j < received->size() ? &(*received)[j] : nullptr;
    bool keep = false;
    if ((classes[j] & kLifecycle) != 0) {
      keep = true;
    } else if ((classes[j] & kDecisive) != 0) {
      // Decided keep before this pass (even if that decision was forgotten since).
      keep = true;
      ++stats_.kept_detail_spans;
    } else if (auto decision = decisions_.find(span.trace_id); decision != decisions_.end()) {
      keep = decision->second == Decision::kKeep;
      ++(keep ? stats_.kept_detail_spans : stats_.dropped_detail_spans);
    } else if (!pending_.contains(span.trace_id) && RatioKeeps(span.trace_id, options_.ratio)) {
      // A buffered trace failed the ratio already; the rule is deterministic.
      KeepLocked(span.trace_id, KeepReason::kRatio, released, nullptr);  // none buffered
      keep = true;
      ++stats_.kept_detail_spans;
    } else {
      if (origin == nullptr) {
        // Copied once per input ScopeSpans that has buffered spans, shared by its spans.
        if (resource_origin == nullptr) {
          resource_origin = std::make_shared<const ResourceOrigin>(
              ResourceOrigin{resource_spans.resource, resource_spans.schema_url});
        }
        origin = std::make_shared<const ScopeOrigin>(
            ScopeOrigin{resource_origin, scope_spans.scope, scope_spans.schema_url});
      }
      const base::TraceId trace_id = span.trace_id;
      // Its received bytes when it has them: copying is cheaper than encoding again.
      if (!BufferLocked(trace_id, origin, otlp::EncodeSpan(span, span_received), now, delta)) {
        ++stats_.dropped_pending_full_spans;
      } else if (delta != nullptr) {
        if (delta_scope == nullptr) {
          std::vector<base::ResourceSpans>& out = delta->buffered.resource_spans;
          if (delta_resource == SIZE_MAX) {
            base::ResourceSpans copy;
            copy.resource = resource_spans.resource;
            copy.schema_url = resource_spans.schema_url;
            out.push_back(std::move(copy));
            delta_resource = out.size() - 1;
          }
          out[delta_resource].scope_spans.push_back(
              base::ScopeSpans{scope_spans.scope, scope_spans.schema_url, {}});
          delta_scope = &out[delta_resource].scope_spans.back();
        }
        if (span_received != nullptr) {
          // The span keeps its received bytes in the delta.
          NoteBuffered(*delta, input.body, delta_resource,
                       delta->buffered.resource_spans[delta_resource].scope_spans.size() - 1,
                       delta_scope->spans.size(), *span_received);
        }
        delta_scope->spans.push_back(std::move(span));  // its shell goes on to `dropped`
      }
    }
    if (keep) {
      // Swapped, not assigned over: the span not kept moves back whole, for `dropped`.
      if (kept != j) {
        std::swap(spans[kept], span);
        otlp::MoveEntry(received, j, kept);
      }
      ++kept;
    }
  }
  if (dropped != nullptr) {
    dropped->insert(dropped->end(), std::make_move_iterator(spans.begin() + kept),
                    std::make_move_iterator(spans.end()));
  }
  spans.erase(spans.begin() + kept, spans.end());
  otlp::TruncateEntries(received, kept);
}

void TailSampler::KeepLocked(const base::TraceId& trace_id, KeepReason reason,
                             std::vector<PendingSpan>& released,
                             std::vector<std::pair<uint64_t, base::TraceId>>* kept) {
  if (auto decision = decisions_.find(trace_id); decision != decisions_.end()) {
    if (decision->second == Decision::kKeep) return;
    decision->second = Decision::kKeep;
    ++(reason == KeepReason::kForced ? stats_.traces_forced : stats_.upgrades);
    return;
  }
  if (auto pending = pending_.find(trace_id); pending != pending_.end()) {
    std::vector<PendingSpan>& spans = pending->second.spans;
    stats_.kept_detail_spans += spans.size();
    if (kept != nullptr) kept->emplace_back(pending->second.sequence, trace_id);
    released.insert(released.end(), std::make_move_iterator(spans.begin()),
                    std::make_move_iterator(spans.end()));
    ErasePendingLocked(pending);
  }
  RememberLocked(trace_id, Decision::kKeep);
  ++(reason == KeepReason::kForced ? stats_.traces_forced : stats_.traces_kept);
}

void TailSampler::DropLocked(PendingMap::iterator pending, bool buffer_full) {
  const base::TraceId trace_id = pending->first;
  const size_t spans = pending->second.spans.size();
  (buffer_full ? stats_.dropped_pending_full_spans : stats_.dropped_detail_spans) += spans;
  ++stats_.traces_dropped;
  ErasePendingLocked(pending);
  RememberLocked(trace_id, Decision::kDrop);
}

bool TailSampler::MakeRoomLocked(const base::TraceId& trace_id, size_t bytes) {
  if (bytes > options_.max_pending_bytes) return false;  // would empty the buffer in vain
  auto full = [&] {
    return pending_spans_ + 1 > options_.max_pending_spans ||
           pending_bytes_ + bytes > options_.max_pending_bytes;
  };
  // A full buffer never blocks ingest: the oldest traces are decided drop early. expiries_'s
  // front is always a buffered trace, the one buffered longest.
  while (full() && !expiries_.empty()) {
    auto oldest = pending_.find(expiries_.front().trace_id);
    const bool itself = oldest->first == trace_id;
    DropLocked(oldest, /*buffer_full=*/true);
    if (itself) return false;
  }
  return !full();
}

bool TailSampler::BufferLocked(const base::TraceId& trace_id,
                               const std::shared_ptr<const ScopeOrigin>& origin,
                               std::string encoded_span, uint64_t now, PendingDelta* delta) {
  const size_t bytes = encoded_span.size() + kPendingSpanOverhead;
  if (!MakeRoomLocked(trace_id, bytes)) return false;
  auto [pending, inserted] = pending_.try_emplace(trace_id);
  PendingTrace& trace = pending->second;
  if (inserted) {
    trace.deadline = now + options_.decision_wait_nanos;
    trace.sequence = next_sequence_++;
    expiries_.push_back(Expiry{trace.deadline, trace.sequence, trace_id});
  }
  trace.spans.push_back(PendingSpan{origin, std::move(encoded_span)});
  trace.bytes += bytes;
  ++pending_spans_;
  pending_bytes_ += bytes;
  if (delta != nullptr && trace.part_call != calls_) {
    trace.part_call = calls_;
    delta->parts.push_back(
        BufferedPart{trace_id, trace.sequence, trace.next_part++, trace.deadline});
  }
  return true;
}

absl::Status TailSampler::RestorePending(const BufferedPart& part, std::string_view encoded) {
  absl::StatusOr<otlp::DecodedRequest> decoded = otlp::DecodeProtobufRequest(encoded);
  if (!decoded.ok()) return decoded.status();
  std::lock_guard<std::mutex> lock(mu_);
  ++calls_;
  auto [pending, inserted] = pending_.try_emplace(part.trace_id);
  PendingTrace& trace = pending->second;
  if (inserted) {
    trace.deadline = part.deadline_unix_nano;
    trace.sequence = part.buffering;
    expiries_.push_back(Expiry{trace.deadline, trace.sequence, part.trace_id});
    next_sequence_ = std::max(next_sequence_, part.buffering + 1);
  }
  trace.next_part = std::max(trace.next_part, part.part + 1);
  for (const base::ResourceSpans& rs : decoded->batch.resource_spans) {
    auto resource =
        std::make_shared<const ResourceOrigin>(ResourceOrigin{rs.resource, rs.schema_url});
    for (const base::ScopeSpans& ss : rs.scope_spans) {
      auto origin =
          std::make_shared<const ScopeOrigin>(ScopeOrigin{resource, ss.scope, ss.schema_url});
      for (const base::Span& span : ss.spans) {
        std::string encoded_span = otlp::EncodeSpan(span);
        const size_t bytes = encoded_span.size() + kPendingSpanOverhead;
        trace.spans.push_back(PendingSpan{origin, std::move(encoded_span)});
        trace.bytes += bytes;
        ++pending_spans_;
        pending_bytes_ += bytes;
      }
    }
  }
  return absl::OkStatus();
}

void TailSampler::ErasePendingLocked(PendingMap::iterator pending) {
  pending_spans_ -= pending->second.spans.size();
  pending_bytes_ -= pending->second.bytes;
  pending_.erase(pending);
  while (!expiries_.empty() && !IsLiveLocked(expiries_.front())) expiries_.pop_front();
  // Entries of traces decided before their wait passed; without this they would pile up for a
  // whole decision wait when most traces are decided early.
  if (expiries_.size() > 2 * pending_.size() + 64) {
    std::erase_if(expiries_, [this](const Expiry& e) { return !IsLiveLocked(e); });
  }
}

bool TailSampler::IsLiveLocked(const Expiry& expiry) const {
  auto pending = pending_.find(expiry.trace_id);
  return pending != pending_.end() && pending->second.sequence == expiry.sequence;
}

void TailSampler::RememberLocked(const base::TraceId& trace_id, Decision decision) {
  // FIFO, not LRU: a decision lives max_remembered_traces decisions, far longer than a trace's
  // spans keep arriving, and a lookup then needs no list update.
  if (!decisions_.try_emplace(trace_id, decision).second) return;
  decision_order_.push_back(trace_id);
  while (decisions_.size() > options_.max_remembered_traces) {
    decisions_.erase(decision_order_.front());
    decision_order_.pop_front();
  }
}

void TailSampler::ExpireLocked(uint64_t now) {
  // By buffering order; if the clock stepped back, a later entry may wait behind an earlier
  // one until that one's deadline too.
  while (!expiries_.empty() && expiries_.front().deadline <= now) {
    DropLocked(pending_.find(expiries_.front().trace_id), /*buffer_full=*/false);
  }
}

void TailSampler::ForceKeep(const base::TraceId& trace_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!options_.enabled) return;
  KeepLocked(trace_id, KeepReason::kForced, released_, &released_kept_);
}

base::TraceBatch TailSampler::TakeReleased(PendingDelta* delta) {
  std::vector<PendingSpan> spans;
  {
    std::lock_guard<std::mutex> lock(mu_);
    spans.swap(released_);
    if (delta != nullptr) {
      delta->kept.insert(delta->kept.end(), released_kept_.begin(), released_kept_.end());
      // Bufferings are decided in any order, but every one below the oldest still buffered is.
      const uint64_t below = expiries_.empty() ? next_sequence_ : expiries_.front().sequence;
      if (below > decided_below_told_) delta->decided_below = decided_below_told_ = below;
    }
    released_kept_.clear();
  }
  return BuildBatch({}, std::move(spans));
}

base::TraceBatch TailSampler::BuildBatch(base::TraceBatch base, std::vector<PendingSpan> spans) {
  BatchBuilder builder(std::move(base));
  for (PendingSpan& pending : spans) builder.Add(std::move(pending));
  return std::move(builder).Take();
}

void TailSampler::ExpirePending() {
  std::lock_guard<std::mutex> lock(mu_);
  ExpireLocked(clock_.NowUnixNano());
}

std::optional<uint64_t> TailSampler::NextExpiryUnixNano() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (expiries_.empty()) return std::nullopt;
  return expiries_.front().deadline;
}

SamplingStats TailSampler::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  SamplingStats s = stats_;
  s.pending_spans = pending_spans_;
  s.pending_bytes = pending_bytes_;
  s.pending_traces = pending_.size();
  s.remembered_traces = decisions_.size();
  return s;
}

}  // namespace ordertrace::sampling
