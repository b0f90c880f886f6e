// Raises and resolves gaps as alerts in Prometheus Alertmanager (API v2, POST /api/v2/alerts).
//
// One gap is one Alertmanager alert. Alertmanager identifies an alert by its whole label set, so
// the labels must tell two gaps apart: with only {alertname, kind, stage, partner_id, severity}
// every overdue order of one partner at one stage would collapse into a single alert, and the
// first resolution would resolve them all. Each alert therefore carries the label `gap_id` (the
// stable Gap::id, which already contains the order id). Deploy configs group and route by
// {alertname, kind, stage, partner_id, severity}, never by gap_id, so one notification still
// lists all the gaps of a group (deploy/alertmanager/alertmanager.yml). Everything else about
// the order (order id, summary, link, trace id, service, queue) goes into annotations, which
// Alertmanager does not use for identity.
//
// Labels:      alertname="OrderGap", kind, stage, partner_id, severity, gap_id.
//              A label whose value would be empty (an order without a partner) is left out:
//              Alertmanager drops empty labels itself, and matchers such as partner_id=""
//              match an absent label, so "absent" is the one spelling of "none".
// Annotations: order_id, summary, description, link, trace_id, service, queue, message_id,
//              expected, since (empty ones left out). generatorURL is the link to the order.
// startsAt:    when the gap began (its deadline; for conflicts, when it was seen).
// endsAt:      open gaps: time of sending + alert_lifetime, re-sent every resend_interval, so an
//              alert expires on its own if ordertrace goes away; resolved gaps: the time of
//              resolution.
//
// OnGapOpened/OnGapResolved only update an in-memory table and wake the sender thread; they
// never wait for the network. The sender posts new and changed alerts at once, in batches of
// at most max_batch, and every open alert again each resend_interval. While Alertmanager is
// unreachable nothing is lost: alerts stay in the table and are retried with exponential backoff
// (capped at resend_interval). The table is bounded by max_alerts: past it, the oldest resolved
// alerts still waiting to be sent are dropped first; when every held alert is open, the new
// gap is dropped (an open alert already in Alertmanager is never dropped, since it would then
// expire there and look resolved). Drops are counted and logged.
//
// Thread-safety: thread-safe. Times come from the injected clock.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/clock.h"
#include "gaps/gap.h"

namespace ordertrace::gaps {

inline constexpr std::string_view kAlertName = "OrderGap";
// The alertname of a source_silent gap (a service that stopped reporting, not an order).
inline constexpr std::string_view kSourceAlertName = "SourceSilent";

// Severity per gap kind by default: conflicts in the lifecycle are "critical", overdue work
// (missing transitions, late calculations, unconsumed messages) is "warning".
std::map<std::string, std::string, std::less<>> DefaultSeverityByKind();

// For an https:// Alertmanager URL: whom to trust and what certificate to present. The server's
// certificate is always verified, its name included.
struct AlertmanagerTlsOptions {
  // PEM CA certificates that sign Alertmanager's certificate; empty: the system's CAs.
  std::string ca_file;
  // A PEM client certificate and its key (both or neither); empty: none presented.
  std::string cert_file;
  std::string key_file;
};

struct AlertmanagerClientOptions {
  // Alertmanager's base URL: http(s)://host:port[/prefix]. Alerts go to <url>/api/v2/alerts.
  std::string url;
  // Used with an https:// url only (an http:// url with any of them set is refused).
  AlertmanagerTlsOptions tls;
  // ordertrace's own address as people reach it; the alert links to
  // <external_url>/api/v1/orders/<order_id> (annotation "link" and generatorURL).
  std::string external_url = "http://127.0.0.1:8686";
  // Open alerts are re-sent this often, so that they never reach their endsAt while open.
  std::chrono::milliseconds resend_interval{60'000};
  // endsAt of an open alert = time of sending + alert_lifetime. Must exceed resend_interval.
  std::chrono::milliseconds alert_lifetime{300'000};
  // Per HTTP request (connect, write and read each); also bounds the flush in Shutdown().
  std::chrono::milliseconds request_timeout{5'000};
  // Alerts held: open ones plus resolved ones not yet delivered. Beyond: drop and count.
  size_t max_alerts = 100'000;
  // Alerts per POST.
  size_t max_batch = 500;
  // How often a resolved alert is delivered, resend_interval apart. Twice by default: a
  // resolution whose endsAt is still in the future on Alertmanager's clock (its clock behind
  // ours) loses to the firing alert's later endsAt in Alertmanager's merge, and so does a
  // resolution delivered to only one instance of a pair behind one URL; the second delivery,
  // one resend_interval later, settles both. It costs one more alert per resolution.
  int resolved_sends = 2;
  // First wait after a failed POST; doubles per failure up to resend_interval.
  std::chrono::milliseconds min_backoff{1'000};
  // The longest the sender sleeps without reading the clock. Only clocks that jump (a
  // ManualClock in tests) need it small.
  std::chrono::milliseconds poll_interval{1'000};
  // Label "severity" per gap kind; kinds not listed get default_severity.
  std::map<std::string, std::string, std::less<>> severity_by_kind = DefaultSeverityByKind();
  std::string default_severity = "warning";
};

// Counters since construction, and the table's current size.
struct AlertmanagerClientStats {
  uint64_t sent_alerts = 0;      // alerts in POSTs that Alertmanager accepted
  uint64_t posts = 0;            // POSTs accepted
  uint64_t failed_posts = 0;     // POSTs that failed (unreachable, timeout, 5xx...); retried
  uint64_t rejected_alerts = 0;  // alerts in POSTs refused as invalid (400, 422); not retried
  uint64_t dropped = 0;          // alerts dropped to stay within max_alerts
  uint64_t pending = 0;          // alerts owed a delivery (new, changed, failed, in flight)
  uint64_t held = 0;             // alerts in the table (open, and resolved still to send)
};

// The HTTP side, apart so tests can inject a fake. Called by one thread at a time.
class AlertTransport {
 public:
  virtual ~AlertTransport() = default;
  // POSTs `json_body` (a JSON array of postable alerts) to /api/v2/alerts, giving up after
  // `timeout`. OK on 2xx. kInvalidArgument when Alertmanager refused the alerts as invalid
  // (400, 422), which no retry can fix; any other error is worth retrying.
  virtual absl::Status PostAlerts(const std::string& json_body,
                                  std::chrono::milliseconds timeout) = 0;
};

// The transport over cpp-httplib (TLS for https URLs, verified against `tls.ca_file` or the
// system's CAs). kInvalidArgument for a URL that is not http(s)://host[:port][/prefix], or TLS
// files with an http:// URL; kFailedPrecondition naming a TLS file that cannot be read.
absl::StatusOr<std::unique_ptr<AlertTransport>> NewHttpAlertTransport(
    const std::string& url, const AlertmanagerTlsOptions& tls = {});

class AlertmanagerClient final : public GapSink {
 public:
  // Starts the sender thread. `clock` must outlive the client. kInvalidArgument for a bad URL
  // or options that contradict each other (alert_lifetime not above resend_interval, ...).
  static absl::StatusOr<std::unique_ptr<AlertmanagerClient>> Create(
      AlertmanagerClientOptions options, const base::Clock& clock);
  // As above, with the given transport (tests); options.url is then not used.
  static absl::StatusOr<std::unique_ptr<AlertmanagerClient>> Create(
      AlertmanagerClientOptions options, const base::Clock& clock,
      std::unique_ptr<AlertTransport> transport);

  ~AlertmanagerClient() override;
  AlertmanagerClient(const AlertmanagerClient&) = delete;
  AlertmanagerClient& operator=(const AlertmanagerClient&) = delete;

  // Records the gap as an open alert (or updates it) and wakes the sender. Never blocks on
  // the network.
  void OnGapOpened(const Gap& gap) override;
  // Records the gap's resolution (also for a gap this client never saw open, e.g. one opened
  // before a restart) and wakes the sender. Never blocks on the network.
  void OnGapResolved(const Gap& gap) override;

  // Stops the sender after one last best-effort delivery of pending alerts, which waits for
  // the request in flight and then at most request_timeout. Idempotent; the destructor calls it.
  void Shutdown();

  AlertmanagerClientStats Stats() const;

 private:
  struct Entry {
    Gap gap;
    uint64_t starts_at = 0;
    uint64_t ends_at = 0;  // 0 while open
    uint64_t version = 0;  // a fresh next_version_ on every change
    int resolved_sends_done = 0;
    bool queued = false;        // in pending_ (a delivery is owed)
    uint64_t resend_due = 0;    // its key in resend_due_; 0: not there
    uint64_t resolved_seq = 0;  // its key in resolved_by_age_; 0: open
  };
  struct Batch {
    uint64_t taken_at = 0;  // endsAt of its open alerts = taken_at + alert_lifetime
    std::string body;
    std::vector<std::pair<std::string, uint64_t>> ids;  // gap id, version sent
  };

  AlertmanagerClient(AlertmanagerClientOptions options, const base::Clock& clock,
                     std::unique_ptr<AlertTransport> transport);

  void SenderLoop();
  // Takes up to max_batch alerts that are owed (and, unless `pending_only`, due for a resend)
  // out of the queues and renders them. Requires mu_.
  Batch TakeBatchLocked(uint64_t now, bool pending_only);
  // Books the outcome of posting `batch`. Requires mu_.
  void SettleLocked(const Batch& batch, const absl::Status& status);
  // Posts `batch` outside the lock and books the outcome; false when it failed.
  bool Post(std::unique_lock<std::mutex>& lock, const Batch& batch,
            std::chrono::milliseconds timeout);
  void FlushForShutdown(std::unique_lock<std::mutex>& lock);

  // Requires mu_.
  void EnqueueLocked(const std::string& id, Entry& entry);
  void RemoveFromResendLocked(const std::string& id, Entry& entry);
  void EraseLocked(const std::string& id);
  // Frees one slot by dropping the oldest resolved alert; false when all held alerts are open.
  bool MakeRoomLocked();
  void CountDropLocked(const Gap& gap, const char* why);
  std::string RenderLocked(const Entry& entry, uint64_t now) const;
  uint64_t NextWakeLocked(uint64_t now) const;

  // Constant after construction.
  const AlertmanagerClientOptions options_;
  const base::Clock& clock_;
  const std::unique_ptr<AlertTransport> transport_;  // used by the sender thread only

  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;                          // guarded by mu_
  bool woken_ = false;                             // guarded by mu_
  std::unordered_map<std::string, Entry> alerts_;  // by gap id; guarded by mu_
  // Ids owed a delivery, oldest first; may hold ids no longer queued (skipped when taken).
  std::deque<std::string> pending_;  // guarded by mu_
  size_t pending_count_ = 0;         // live entries of pending_; guarded by mu_
  size_t in_flight_ = 0;             // alerts in the POST under way; guarded by mu_
  std::set<std::pair<uint64_t, std::string>> resend_due_;  // (due time, id); guarded by mu_
  std::map<uint64_t, std::string> resolved_by_age_;        // guarded by mu_
  uint64_t next_resolved_seq_ = 1;                         // guarded by mu_
  uint64_t next_version_ = 1;             // versions are unique across entries; guarded by mu_
  uint64_t retry_at_ = 0;                 // guarded by mu_
  std::chrono::milliseconds backoff_{0};  // guarded by mu_
  bool failing_ = false;                  // guarded by mu_
  AlertmanagerClientStats stats_;         // counters; guarded by mu_

  std::mutex shutdown_mu_;  // serialises Shutdown
  std::thread sender_;
};

// RFC 3339 in UTC with milliseconds, "2024-01-01T12:00:00.000Z", as Alertmanager reads it.
std::string FormatRfc3339(uint64_t unix_nano);

}  // namespace ordertrace::gaps
