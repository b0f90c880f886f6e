// What ingest refuses span by span before it queues a request, so that every span lands
// somewhere known: stored, or refused with a reason the client reads in OTLP's partial_success.
// Stateless free functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/span.h"
#include "otlp/received_bytes.h"

namespace ordertrace::ingest {

struct SpanLimits {
  // A span that started longer ago than this is refused (retention would delete it at once).
  uint64_t max_span_age_nanos = 14ULL * 86400 * 1'000'000'000ULL;
  // A span that starts or ends further ahead of the server's clock than this is refused.
  uint64_t max_span_future_nanos = 24ULL * 3600 * 1'000'000'000ULL;
  // An `order_id` attribute longer than this is refused (it names no order the API could serve).
  size_t max_order_id_bytes = 256;
  // Any attribute (of the span, its events, links, scope or resource) whose key or value is
  // longer; a value's length is its text, or the sum of its elements' for arrays and lists.
  size_t max_attribute_key_bytes = 1024;
  size_t max_attribute_value_bytes = 128 * 1024;
};

// The spans of a request refused one by one, for partial_success.
struct RejectedSpans {
  int64_t count = 0;
  std::string message;  // the first reason, naming the span

  void Add(std::string reason) {
    if (count++ == 0) message = std::move(reason);
  }
};

// Why a span was refused, for the counters in /metrics.
enum class RefusalReason { kTooOld, kInTheFuture, kOrderIdTooLong, kAttributeTooLong, kCount };
const char* RefusalReasonName(RefusalReason reason);

// What CheckSpans kept: the memory its spans hold, and how many of each refusal it made.
struct CheckedBatch {
  size_t bytes = 0;
  size_t spans = 0;
  uint64_t refused[static_cast<size_t>(RefusalReason::kCount)] = {};
};

// Removes the spans of `batch` that break `limits` at `now_unix_nano` (and scopes and resources
// left empty), adding each to `rejected`, and measures what is left (with the body `received`
// keeps alive). `received` (may be null): the batch's received bytes, kept aligned with it.
CheckedBatch CheckSpans(base::TraceBatch& batch, const SpanLimits& limits, uint64_t now_unix_nano,
                        RejectedSpans& rejected, otlp::ReceivedBytes* received = nullptr);

// About how many bytes of memory `span` holds (its objects and their text).
size_t ApproximateBytes(const base::Span& span);

}  // namespace ordertrace::ingest
