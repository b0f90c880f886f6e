#include "forward/otlp_forwarder.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "otlp/proto_codec.h"
#include "otlp/wire_format.h"

namespace ordertrace::forward {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// A queue past its bound is trimmed at least this often while a send waits to be retried, so
// that a long Retry-After does not let it grow unbounded meanwhile.
constexpr milliseconds kTrimSlice{1000};
// Failures of one streak are logged once, then at most this often.
constexpr auto kLogEvery = std::chrono::seconds(60);

// The fields of OTLP's TracesData tree that lead to spans.
constexpr uint32_t kResourceSpansField = 1;  // TracesData / ExportTraceServiceRequest
constexpr uint32_t kScopeSpansField = 2;     // ResourceSpans
constexpr uint32_t kSpansField = 2;          // ScopeSpans

}  // namespace

size_t OtlpForwarder::CountSpans(std::string_view encoded) {
  using otlp::wire::WireType;
  size_t spans = 0;
  // The nested walks only look at tags and lengths: far cheaper than decoding.
  const bool ok = otlp::wire::ForEachField(
      encoded, [&](uint32_t field, WireType type, std::string_view resource_spans) {
        if (field != kResourceSpansField || type != WireType::kLen) return true;
        return otlp::wire::ForEachField(
            resource_spans, [&](uint32_t field, WireType type, std::string_view scope_spans) {
              if (field != kScopeSpansField || type != WireType::kLen) return true;
              return otlp::wire::ForEachField(scope_spans,
                                              [&](uint32_t field, WireType type, std::string_view) {
                                                if (field == kSpansField && type == WireType::kLen)
                                                  ++spans;
                                                return true;
                                              });
            });
      });
  return ok ? spans : 0;
}

absl::StatusOr<std::unique_ptr<OtlpForwarder>> OtlpForwarder::Create(store::Store& store,
                                                                     OtlpForwarderOptions options) {
  TransportOptions transport_options;
  transport_options.endpoint = options.endpoint;
  transport_options.headers = options.headers;
  transport_options.tls = options.tls;
  transport_options.ca_file = options.ca_file;
  transport_options.client_cert_file = options.client_cert_file;
  transport_options.client_key_file = options.client_key_file;
  transport_options.timeout = options.timeout;
  absl::StatusOr<std::unique_ptr<ForwardTransport>> transport =
      options.protocol == OtlpForwarderOptions::Protocol::kGrpc
          ? CreateGrpcTransport(std::move(transport_options))
          : CreateHttpTransport(std::move(transport_options));
  if (!transport.ok()) return transport.status();
  return std::make_unique<OtlpForwarder>(store, std::move(options), *std::move(transport));
}

OtlpForwarder::OtlpForwarder(store::Store& store, OtlpForwarderOptions options,
                             std::unique_ptr<ForwardTransport> transport, WaitFunction wait)
    : store_(store),
      options_(std::move(options)),
      transport_(std::move(transport)),
      wait_(std::move(wait)),
      jitter_(std::random_device{}()) {}

OtlpForwarder::~OtlpForwarder() { Shutdown(); }

void OtlpForwarder::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

void OtlpForwarder::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  transport_->Cancel();
  if (thread_.joinable()) thread_.join();
}

ForwarderStats OtlpForwarder::Stats() const {
  ForwarderStats stats;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats = stats_;
  }
  stats.queue_bytes = store_.ForwardQueueBytes();
  return stats;
}

void OtlpForwarder::Run() {
  pthread_setname_np(pthread_self(), "ot-forward");
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    DropPastBound();
    std::optional<Batch> batch = NextBatch();
    if (!batch) {
      if (!Wait(options_.poll_interval)) return;
      continue;
    }
    if (batch->spans == 0) {
      // Blocks retention removed before they were sent (or unreadable): nothing to send.
      Delete(batch->end_seq);
      cursor_ = std::max(cursor_, batch->end_seq);
      continue;
    }
    if (!Deliver(*batch)) return;
  }
}

uint64_t OtlpForwarder::DropPastBound() {
  const uint64_t bytes = store_.ForwardQueueBytes();
  if (bytes <= options_.max_queue_bytes) return 0;
  const uint64_t excess = bytes - options_.max_queue_bytes;
  uint64_t dropped_bytes = 0;
  uint64_t spans = 0;
  uint64_t end = 0;
  while (dropped_bytes < excess) {
    absl::StatusOr<std::vector<store::ForwardEntry>> entries = store_.ReadForwardQueue(
        end, 4096, static_cast<size_t>(std::min<uint64_t>(excess - dropped_bytes, 8 << 20)));
    if (!entries.ok() || entries->empty()) break;
    for (const store::ForwardEntry& entry : *entries) {
      if (dropped_bytes >= excess) break;
      dropped_bytes += entry.bytes;
      spans += CountSpans(entry.encoded);
      end = entry.seq + 1;
    }
  }
  if (end == 0) return 0;
  Delete(end);
  cursor_ = std::max(cursor_, end);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.spans_dropped_full += spans;
  }
  unlogged_dropped_spans_ += spans;
  const Clock::time_point now = Clock::now();
  if (last_drop_log_ == Clock::time_point{} || now - last_drop_log_ >= kLogEvery) {
    spdlog::warn(
        "forward: the queue passed forward.max_queue_mb ({} MiB): dropped the oldest {} spans "
        "unsent (ordertrace_forward_spans_total{{result=\"dropped_full\"}})",
        options_.max_queue_bytes >> 20, unlogged_dropped_spans_);
    unlogged_dropped_spans_ = 0;
    last_drop_log_ = now;
  }
  return end;
}

std::optional<OtlpForwarder::Batch> OtlpForwarder::NextBatch() {
  absl::StatusOr<std::vector<store::ForwardEntry>> entries =
      store_.ReadForwardQueue(cursor_, options_.max_batch_spans, options_.max_batch_bytes);
  if (!entries.ok()) {
    spdlog::error("forward: cannot read the queue: {}", entries.status().ToString());
    return std::nullopt;
  }
  if (entries->empty()) return std::nullopt;
  Batch batch;
  batch.first_seq = entries->front().seq;
  size_t taken = 0;
  for (const store::ForwardEntry& entry : *entries) {
    const size_t spans = CountSpans(entry.encoded);
    if (taken > 0 && batch.spans + spans > options_.max_batch_spans) break;
    batch.spans += spans;
    batch.end_seq = entry.seq + 1;
    ++taken;
  }
  if (!options_.before_send) {
    // TracesData and ExportTraceServiceRequest are the same message, and a repeated field's
    // encodings concatenate: the stored bytes go as they are.
    size_t size = 0;
    for (size_t i = 0; i < taken; ++i) size += (*entries)[i].encoded.size();
    batch.request.reserve(size);
    for (size_t i = 0; i < taken; ++i) batch.request.append((*entries)[i].encoded);
    return batch;
  }
  // Rewritten spans are encoded again from the model: decoded without their received bytes,
  // so that nothing the hook replaced can slip out as it came.
  base::TraceBatch spans;
  for (size_t i = 0; i < taken; ++i) {
    absl::StatusOr<otlp::DecodedRequest> decoded =
        otlp::DecodeProtobufRequest(std::string_view((*entries)[i].encoded));
    if (!decoded.ok()) {
      spdlog::error("forward: a queued block is unreadable, skipped: {}",
                    decoded.status().ToString());
      continue;
    }
    for (base::ResourceSpans& rs : decoded->batch.resource_spans) {
      spans.resource_spans.push_back(std::move(rs));
    }
  }
  options_.before_send(spans);
  batch.request = otlp::EncodeProtobuf(spans);
  return batch;
}

bool OtlpForwarder::Deliver(Batch& batch) {
  milliseconds backoff = options_.initial_backoff;
  for (;;) {
    const SendResult result = transport_->Send(batch.request);
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.requests[result.code];
      if (stopping_) return false;
    }
    if (result.outcome == SendResult::Outcome::kAccepted) {
      Delete(batch.end_seq);
      cursor_ = std::max(cursor_, batch.end_seq);
      std::lock_guard<std::mutex> lock(mu_);
      stats_.spans_sent += batch.spans;
      if (failed_attempts_ > 0) {
        spdlog::info("forward: {} accepts spans again after {} failed attempts", options_.endpoint,
                     failed_attempts_);
        failed_attempts_ = 0;
      }
      return true;
    }
    if (result.outcome == SendResult::Outcome::kRejected) {
      // Sending the same spans again would be refused again: they go, counted, so that the
      // rest of the queue is not held behind them.
      Delete(batch.end_seq);
      cursor_ = std::max(cursor_, batch.end_seq);
      spdlog::warn("forward: {} refused {} spans for good, dropped: {}", options_.endpoint,
                   batch.spans, result.detail);
      std::lock_guard<std::mutex> lock(mu_);
      stats_.spans_dropped_rejected += batch.spans;
      return true;
    }
    const milliseconds wait = result.retry_after ? *result.retry_after : Jittered(backoff);
    backoff =
        std::min(milliseconds(static_cast<int64_t>(backoff.count() * options_.backoff_multiplier)),
                 options_.max_backoff);
    if (failed_attempts_++ == 0 || Clock::now() - last_failure_log_ >= kLogEvery) {
      last_failure_log_ = Clock::now();
      spdlog::warn(
          "forward: sending to {} failed ({}); retrying in {} ms (then at most every {} ms), "
          "the spans stay queued",
          options_.endpoint, result.detail, wait.count(), options_.max_backoff.count());
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.retries;
    }
    if (!Wait(wait)) return false;
    // The queue may have passed its bound while the endpoint was away. When that took the
    // batch's first entries, the rest of it is read again from the new head.
    DropPastBound();
    if (cursor_ > batch.first_seq) return true;
  }
}

bool OtlpForwarder::Wait(milliseconds duration) {
  if (wait_) return wait_(duration);
  const Clock::time_point until = Clock::now() + duration;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    const Clock::time_point now = Clock::now();
    if (stopping_) return false;
    if (now >= until) return true;
    const Clock::time_point slice_end = std::min(until, now + kTrimSlice);
    if (stop_cv_.wait_until(lock, slice_end, [this] { return stopping_; })) return false;
    if (slice_end < until) {
      lock.unlock();
      DropPastBound();
      lock.lock();
    }
  }
}

milliseconds OtlpForwarder::Jittered(milliseconds backoff) {
  std::uniform_real_distribution<double> factor(0.8, 1.2);
  return milliseconds(static_cast<int64_t>(static_cast<double>(backoff.count()) * factor(jitter_)));
}

void OtlpForwarder::Delete(uint64_t end_seq) {
  absl::Status deleted = store_.DeleteForwardQueue(end_seq);
  // The entries stay: sent again later (at least once), or dropped at the bound.
  if (!deleted.ok()) spdlog::warn("forward: cannot delete sent spans: {}", deleted.ToString());
}

}  // namespace ordertrace::forward
