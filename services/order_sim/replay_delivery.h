// How `order-sim replay` delivers a ReplayDay: cut into OTLP requests as the services' exporters
// would send them (one service per request, one ResourceSpans with that service's resource), in
// event-time order or shuffled across requests, then POSTed to an OTLP/HTTP endpoint
// (protobuf, the SDK's exporter: retries 429 / 502 / 503 / 504 with the Retry-After given) by
// several requests at once, or written to a file.
//
// Free functions; each is thread-safe given a ReplayDay that outlives the call.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/span.h"
#include "services/order_sim/replay.h"

namespace ordertrace::services::sim {

enum class ReplayOrdering {
  // Each service's spans in event-time order; the services' requests interleaved by time.
  kInOrder,
  // The event-time stream shuffled within consecutive windows of `window_spans` spans, then
  // batched per service: several exporters flushing a backlog.
  kShuffled,
};

struct ReplayBatchingOptions {
  ReplayOrdering ordering = ReplayOrdering::kInOrder;
  size_t window_spans = 5000;
  size_t batch_spans = 512;  // the most spans in one request
  uint64_t seed = 1;         // the shuffle's
};

// One request: spans of one service.
struct ReplayRequest {
  ReplayService service = ReplayService::kShop;
  std::vector<ReplaySpanRef> spans;
};

// Cuts the day into requests. The stream (event-time order, or shuffled within windows) is read
// once; each service fills its own batch, sent when it holds `batch_spans` spans, and the
// services' last partial batches go at the end. Every span of the day is in exactly one request.
std::vector<ReplayRequest> PlanRequests(const ReplayDay& day, const ReplayBatchingOptions& options);

// A request as its service's exporter sends it: one ResourceSpans (the service's resource:
// service.name, service.namespace=alexandrite, telemetry.sdk.*) with one scope.
base::TraceBatch RequestBatch(const ReplayDay& day, const ReplayRequest& request);

struct ReplaySendOptions {
  std::string endpoint = "http://127.0.0.1:4318/v1/traces";
  int concurrency = 4;  // requests in flight at once
  // Per request, all retries included; then the request counts as refused.
  std::chrono::milliseconds request_timeout = std::chrono::seconds(120);
  int max_attempts = 30;
};

struct ReplaySendStats {
  uint64_t spans_sent = 0;  // in acknowledged requests
  uint64_t requests = 0;    // acknowledged
  uint64_t attempts = 0;    // HTTP requests made, retries included
  uint64_t retries = 0;
  uint64_t refused_requests = 0;  // given up on, after retries
  std::string first_refusal;      // why the first refused request was
  double seconds = 0;
};

// Sends every request, `concurrency` at a time, in plan order. kInvalidArgument for a bad
// endpoint or concurrency; otherwise the stats (refused requests are counted, not an error).
absl::StatusOr<ReplaySendStats> SendRequests(const ReplayDay& day,
                                             const std::vector<ReplayRequest>& requests,
                                             const ReplaySendOptions& options);

// Writes every request to `path` as an OTLP ExportTraceServiceRequest (protobuf), each preceded
// by its length as a varint (protobuf's length-delimited stream). kUnavailable when the file
// cannot be written.
absl::Status WriteRequests(const ReplayDay& day, const std::vector<ReplayRequest>& requests,
                           const std::string& path);

}  // namespace ordertrace::services::sim
