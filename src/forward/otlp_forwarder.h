// The OTLP forward: sends what ordertrace stores on to one OTLP endpoint (Tempo, Jaeger, an
// OpenTelemetry Collector), so that raw traces also reach a trace store built for scale.
//
// The queue is the store's forward_queue (store::RocksStoreOptions::forward_queue): every span
// block is queued in the same write that stores it, so what an exporter was told is stored is
// also queued, across kill -9, and what is forwarded is what is stored (PII already removed at
// ingest). One thread reads the queue in order, batches it, lets `before_send` rewrite each
// batch (operator ids hashed), sends it and deletes what the endpoint acknowledged.
//  - Retries: 429, 5xx, gRPC UNAVAILABLE and the like, and connection failures are retried for
//    as long as it takes, waiting with exponential backoff and +-20% jitter, or as long as the
//    endpoint asked (Retry-After, gRPC RetryInfo). A final refusal (4xx but 429; gRPC
//    INVALID_ARGUMENT...) drops the batch: counted (dropped_rejected) and logged.
//  - Bound: past `max_queue_bytes` the oldest entries are dropped and counted (dropped_full).
//    Ingest never waits for the forward and is never refused because of it.
//  - Delivery is at least once: a batch the endpoint took just before a crash (or whose
//    deletion failed) is sent again after the restart.
//
// Thread-safety: Start and Shutdown from one thread; Stats from any.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "base/span.h"
#include "forward/forward_transport.h"
#include "store/store.h"

namespace ordertrace::forward {

struct OtlpForwarderOptions {
  // Empty: no forward (the default).
  std::string endpoint;
  enum class Protocol { kHttpProtobuf, kGrpc };
  Protocol protocol = Protocol::kHttpProtobuf;
  // Headers (HTTP) or metadata (gRPC): X-Scope-OrgID for a multi-tenant Tempo, Authorization.
  std::map<std::string, std::string> headers;
  // TLS: see TransportOptions.
  bool tls = false;
  std::string ca_file;
  std::string client_cert_file;
  std::string client_key_file;
  // The most one attempt may take.
  std::chrono::milliseconds timeout = std::chrono::seconds(10);
  // The queue's bound in bytes of encoded spans; past it the oldest are dropped.
  uint64_t max_queue_bytes = uint64_t{256} << 20;
  // One request holds at most this many spans and bytes (one stored block at least).
  size_t max_batch_spans = 2048;
  size_t max_batch_bytes = size_t{4} << 20;
  // Waits between attempts: initial_backoff, growing by backoff_multiplier up to max_backoff.
  std::chrono::milliseconds initial_backoff = std::chrono::seconds(1);
  std::chrono::milliseconds max_backoff = std::chrono::seconds(30);
  double backoff_multiplier = 2;
  // How often an empty queue is looked at again.
  std::chrono::milliseconds poll_interval = std::chrono::milliseconds(100);
  // Called on each batch, on the forwarder's thread, before it is sent (operator ids hashed);
  // null: the stored bytes are sent as they are.
  std::function<void(base::TraceBatch&)> before_send;
};

// Counters since start.
struct ForwarderStats {
  uint64_t spans_sent = 0;
  uint64_t spans_dropped_full = 0;      // the queue's bound was passed
  uint64_t spans_dropped_rejected = 0;  // the endpoint refused them for good
  uint64_t retries = 0;
  std::map<std::string, uint64_t> requests;  // by answer code (SendResult::code)
  uint64_t queue_bytes = 0;
};

class OtlpForwarder {
 public:
  // Builds the transport the options ask for; kInvalidArgument names the bad setting.
  static absl::StatusOr<std::unique_ptr<OtlpForwarder>> Create(store::Store& store,
                                                               OtlpForwarderOptions options);

  // How the forwarder waits between attempts: returns false when it should stop instead. The
  // default waits on the clock, waking early for Shutdown.
  using WaitFunction = std::function<bool(std::chrono::milliseconds)>;

  // With a transport of the caller's (tests inject a fake) and, optionally, its own waiting.
  // `store` is borrowed and must outlive the forwarder.
  OtlpForwarder(store::Store& store, OtlpForwarderOptions options,
                std::unique_ptr<ForwardTransport> transport, WaitFunction wait = nullptr);
  ~OtlpForwarder();
  OtlpForwarder(const OtlpForwarder&) = delete;
  OtlpForwarder& operator=(const OtlpForwarder&) = delete;

  // Starts the sending thread, which resumes the queue where an earlier run left it.
  void Start();
  // Stops the thread, aborting a send under way; what is queued stays for the next start.
  // Idempotent.
  void Shutdown();

  ForwarderStats Stats() const;

  // The spans in an encoded TracesData / ExportTraceServiceRequest (0 when it is malformed).
  static size_t CountSpans(std::string_view encoded);

 private:
  struct Batch {
    uint64_t first_seq = 0;
    uint64_t end_seq = 0;  // one past its last entry
    size_t spans = 0;
    std::string request;  // the ExportTraceServiceRequest to send
  };

  void Run();
  // Drops the oldest entries while the queue is past its bound. Returns the queue's first
  // seq afterwards (0: nothing dropped).
  uint64_t DropPastBound();
  // The next batch from `cursor_`; nullopt when the queue is empty (or unreadable).
  std::optional<Batch> NextBatch();
  // Sends `batch` until it is acknowledged or refused, or the forwarder stops (false).
  bool Deliver(Batch& batch);
  // Waits `duration` unless stopped; false when stopped.
  bool Wait(std::chrono::milliseconds duration);
  std::chrono::milliseconds Jittered(std::chrono::milliseconds backoff);
  void Delete(uint64_t end_seq);

  // Constant after construction.
  store::Store& store_;
  const OtlpForwarderOptions options_;
  const std::unique_ptr<ForwardTransport> transport_;
  const WaitFunction wait_;

  // The sending thread's own.
  uint64_t cursor_ = 0;  // the first seq not sent yet (0: from the oldest)
  std::mt19937 jitter_;
  // Failures and drops are logged when they start, then at most once a minute.
  uint64_t failed_attempts_ = 0;  // since the last accepted send
  std::chrono::steady_clock::time_point last_failure_log_{};
  uint64_t unlogged_dropped_spans_ = 0;
  std::chrono::steady_clock::time_point last_drop_log_{};

  mutable std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;  // guarded by mu_
  ForwarderStats stats_;   // guarded by mu_ (queue_bytes read from the store)
  std::thread thread_;
};

}  // namespace ordertrace::forward
