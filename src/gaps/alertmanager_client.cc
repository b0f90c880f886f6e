#include "gaps/alertmanager_client.h"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <fstream>
#include <nlohmann/json.hpp>
#include <utility>

namespace ordertrace::gaps {
namespace {

using std::chrono::milliseconds;

constexpr uint64_t kNanosPerMilli = 1'000'000;

uint64_t Nanos(milliseconds d) { return static_cast<uint64_t>(d.count()) * kNanosPerMilli; }

struct BaseUrl {
  std::string scheme_host_port;  // "http://host:port"
  std::string prefix;            // "" or "/path", no trailing slash
};

// Splits http(s)://host[:port][/prefix]. `what` names the option in errors.
absl::StatusOr<BaseUrl> ParseBaseUrl(std::string_view url, std::string_view what) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(std::string(what) + " \"" + std::string(url) +
                                      "\": " + std::string(why));
  };
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return bad("not an http(s):// URL");
  std::string_view scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") return bad("scheme must be http or https");
  std::string_view rest = url.substr(scheme_end + 3);
  if (rest.find_first_of("?# ") != std::string_view::npos) {
    return bad("no query, fragment or spaces allowed");
  }
  size_t slash = rest.find('/');
  std::string_view host_port = rest.substr(0, slash);
  if (host_port.empty() || host_port.front() == ':') return bad("no host");
  BaseUrl out;
  out.scheme_host_port = std::string(scheme) + "://" + std::string(host_port);
  if (slash != std::string_view::npos) {
    std::string_view prefix = rest.substr(slash);
    while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
    out.prefix = std::string(prefix);
  }
  return out;
}

// Percent-encodes everything but RFC 3986's unreserved characters, so that any order id makes a
// valid URI: Alertmanager refuses a whole POST (422) when one generatorURL is not a URI.
std::string EscapePathSegment(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string Join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (const std::string& part : parts) {
    if (!out.empty()) out += separator;
    out += part;
  }
  return out;
}

// When the alert began: the gap's deadline (for conflicts, when it was seen), never later than
// now, since Alertmanager refuses an alert that ends before it starts.
uint64_t StartOf(const Gap& gap, uint64_t now) {
  uint64_t start = gap.deadline_unix_nano != 0      ? gap.deadline_unix_nano
                   : gap.detected_at_unix_nano != 0 ? gap.detected_at_unix_nano
                                                    : now;
  return std::min(start, now);
}

std::string Summary(const Gap& gap) {
  if (gap.kind == kSourceSilent) {
    return gap.service + " has sent no spans since " + FormatRfc3339(gap.since_unix_nano) +
           " while other services go on";
  }
  std::string s = "Order " + gap.order_id + ": " + gap.kind;
  if (!gap.stage.empty()) s += " at " + gap.stage;
  if (gap.since_unix_nano != 0) s += " since " + FormatRfc3339(gap.since_unix_nano);
  if (!gap.expected.empty()) s += ", expected " + Join(gap.expected, " or ");
  if (!gap.service.empty() || !gap.queue.empty()) {
    s += "; stopped";
    if (!gap.service.empty()) s += " in " + gap.service;
    if (!gap.queue.empty()) s += (gap.service.empty() ? " at queue " : ", queue ") + gap.queue;
  }
  s += ".";
  return s;
}

class HttpAlertTransport final : public AlertTransport {
 public:
  HttpAlertTransport(const BaseUrl& url, const AlertmanagerTlsOptions& tls)
      : client_(url.scheme_host_port, tls.cert_file, tls.key_file),
        path_(url.prefix + "/api/v2/alerts"),
        where_(url.scheme_host_port + path_) {
    client_.set_keep_alive(true);
    // httplib verifies the server's certificate and name by default; said here so that it
    // stays so.
    client_.enable_server_certificate_verification(true);
    if (!tls.ca_file.empty()) client_.set_ca_cert_path(tls.ca_file);
  }
  bool valid() const { return client_.is_valid(); }

  absl::Status PostAlerts(const std::string& json_body, milliseconds timeout) override {
    client_.set_connection_timeout(timeout);
    client_.set_read_timeout(timeout);
    client_.set_write_timeout(timeout);
    try {
      httplib::Result result = client_.Post(path_, json_body, "application/json");
      if (!result) {
        return absl::UnavailableError("POST " + where_ + ": " + httplib::to_string(result.error()));
      }
      const int status = result->status;
      if (status >= 200 && status < 300) return absl::OkStatus();
      std::string message =
          "POST " + where_ + ": HTTP " + std::to_string(status) + " " + result->body.substr(0, 300);
      // 400: an alert failed validation (the valid ones of the batch are stored anyway);
      // 422: the body failed the API schema (nothing stored). Neither gets better by retrying.
      if (status == 400 || status == 422) return absl::InvalidArgumentError(message);
      if (status == 404) return absl::NotFoundError(message);
      if (status == 401 || status == 403) return absl::PermissionDeniedError(message);
      return absl::UnavailableError(message);
    } catch (const std::exception& e) {
      return absl::UnavailableError("POST " + where_ + ": " + e.what());
    }
  }

 private:
  httplib::Client client_;
  const std::string path_;
  const std::string where_;
};

absl::Status ValidateOptions(const AlertmanagerClientOptions& o) {
  auto external = ParseBaseUrl(o.external_url, "alertmanager external_url");
  if (!external.ok()) return external.status();
  if (o.resend_interval <= milliseconds(0)) {
    return absl::InvalidArgumentError("alertmanager resend_interval must be positive");
  }
  if (o.alert_lifetime <= o.resend_interval) {
    // Otherwise an open alert reaches its endsAt before it is re-sent, and flaps.
    return absl::InvalidArgumentError(
        "alertmanager alert_lifetime must be longer than resend_interval");
  }
  if (o.request_timeout <= milliseconds(0) || o.min_backoff <= milliseconds(0) ||
      o.poll_interval <= milliseconds(0)) {
    return absl::InvalidArgumentError(
        "alertmanager request_timeout, min_backoff and poll_interval must be positive");
  }
  if (o.max_alerts == 0 || o.max_batch == 0 || o.resolved_sends < 1) {
    return absl::InvalidArgumentError(
        "alertmanager max_alerts, max_batch and resolved_sends must be at least 1");
  }
  return absl::OkStatus();
}

}  // namespace

std::map<std::string, std::string, std::less<>> DefaultSeverityByKind() {
  return {
      {std::string(kMissingTransition), "warning"},
      {std::string(kCalculationOverdue), "warning"},
      {std::string(kMessageNotConsumed), "warning"},
      {std::string(kForbiddenTransition), "critical"},
      {std::string(kStatusBackwards), "critical"},
      {std::string(kSkippedStatus), "critical"},
      {std::string(kStatusDisagreement), "critical"},
  };
}

std::string FormatRfc3339(uint64_t unix_nano) {
  const time_t seconds = static_cast<time_t>(unix_nano / base::kNanosPerSecond);
  const unsigned millis = static_cast<unsigned>(unix_nano / kNanosPerMilli % 1000);
  struct tm tm {};
  gmtime_r(&seconds, &tm);
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buffer;
}

absl::StatusOr<std::unique_ptr<AlertTransport>> NewHttpAlertTransport(
    const std::string& url, const AlertmanagerTlsOptions& tls) {
  auto base = ParseBaseUrl(url, "alertmanager url");
  if (!base.ok()) return base.status();
  const bool https = base->scheme_host_port.rfind("https://", 0) == 0;
  if (!https && (!tls.ca_file.empty() || !tls.cert_file.empty() || !tls.key_file.empty())) {
    return absl::InvalidArgumentError("alertmanager TLS files need an https:// url, got " + url);
  }
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    return absl::InvalidArgumentError(
        "alertmanager.cert_file and alertmanager.key_file must be given together");
  }
  // httplib reads the CA file only at the first connection, and then fails every POST with a
  // verification error: an unreadable file is found here instead, at start.
  for (const auto& [key, path] : {std::pair{"alertmanager.ca_file", tls.ca_file},
                                  std::pair{"alertmanager.cert_file", tls.cert_file},
                                  std::pair{"alertmanager.key_file", tls.key_file}}) {
    if (!path.empty() && !std::ifstream(path).good()) {
      return absl::FailedPreconditionError(std::string(key) + " " + path + " cannot be read");
    }
  }
  auto transport = std::make_unique<HttpAlertTransport>(*base, tls);
  if (!transport->valid()) {
    return absl::FailedPreconditionError("alertmanager.cert_file " + tls.cert_file +
                                         " and alertmanager.key_file " + tls.key_file +
                                         " are not a matching PEM certificate and key");
  }
  return transport;
}

absl::StatusOr<std::unique_ptr<AlertmanagerClient>> AlertmanagerClient::Create(
    AlertmanagerClientOptions options, const base::Clock& clock) {
  auto transport = NewHttpAlertTransport(options.url, options.tls);
  if (!transport.ok()) return transport.status();
  return Create(std::move(options), clock, std::move(*transport));
}

absl::StatusOr<std::unique_ptr<AlertmanagerClient>> AlertmanagerClient::Create(
    AlertmanagerClientOptions options, const base::Clock& clock,
    std::unique_ptr<AlertTransport> transport) {
  if (absl::Status status = ValidateOptions(options); !status.ok()) return status;
  if (transport == nullptr) return absl::InvalidArgumentError("alertmanager: no transport");
  while (!options.external_url.empty() && options.external_url.back() == '/') {
    options.external_url.pop_back();
  }
  return std::unique_ptr<AlertmanagerClient>(
      new AlertmanagerClient(std::move(options), clock, std::move(transport)));
}

AlertmanagerClient::AlertmanagerClient(AlertmanagerClientOptions options, const base::Clock& clock,
                                       std::unique_ptr<AlertTransport> transport)
    : options_(std::move(options)), clock_(clock), transport_(std::move(transport)) {
  sender_ = std::thread([this] { SenderLoop(); });
}

AlertmanagerClient::~AlertmanagerClient() { Shutdown(); }

void AlertmanagerClient::OnGapOpened(const Gap& gap) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t now = clock_.NowUnixNano();
    auto it = alerts_.find(gap.id);
    if (it == alerts_.end()) {
      if (alerts_.size() >= options_.max_alerts && !MakeRoomLocked()) {
        CountDropLocked(gap, "new open gap");
        return;
      }
      it = alerts_.emplace(gap.id, Entry{}).first;
    } else if (it->second.ends_at == 0 && it->second.gap == gap) {
      return;  // already open as it is
    }
    Entry& entry = it->second;
    if (entry.version == 0 || entry.ends_at != 0) {  // new, or open again after a resolution
      entry.starts_at = StartOf(gap, now);
      entry.ends_at = 0;
      entry.resolved_sends_done = 0;
      if (entry.resolved_seq != 0) {
        resolved_by_age_.erase(entry.resolved_seq);
        entry.resolved_seq = 0;
      }
    }
    entry.gap = gap;
    entry.version = next_version_++;
    EnqueueLocked(gap.id, entry);
    woken_ = true;
  }
  wake_.notify_one();
}

void AlertmanagerClient::OnGapResolved(const Gap& gap) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t now = clock_.NowUnixNano();
    auto it = alerts_.find(gap.id);
    if (it == alerts_.end()) {
      // Not seen open here (opened before a restart, or dropped): Alertmanager may still hold
      // it firing, and a resolved alert with the same labels ends it.
      if (alerts_.size() >= options_.max_alerts && !MakeRoomLocked()) {
        CountDropLocked(gap, "resolution of an unknown gap");
        return;
      }
      it = alerts_.emplace(gap.id, Entry{}).first;
      it->second.starts_at = StartOf(gap, now);
    } else if (it->second.ends_at != 0) {
      return;  // already resolved
    }
    Entry& entry = it->second;
    entry.gap = gap;
    const uint64_t resolved_at = gap.resolved_at_unix_nano != 0 ? gap.resolved_at_unix_nano : now;
    entry.ends_at = std::max(resolved_at, entry.starts_at);
    entry.resolved_sends_done = 0;
    entry.resolved_seq = next_resolved_seq_++;
    resolved_by_age_.emplace(entry.resolved_seq, gap.id);
    entry.version = next_version_++;
    EnqueueLocked(gap.id, entry);
    woken_ = true;
  }
  wake_.notify_one();
}

void AlertmanagerClient::Shutdown() {
  std::lock_guard<std::mutex> shutdown_lock(shutdown_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (sender_.joinable()) sender_.join();
}

AlertmanagerClientStats AlertmanagerClient::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  AlertmanagerClientStats stats = stats_;
  stats.pending = pending_count_ + in_flight_;
  stats.held = alerts_.size();
  return stats;
}

void AlertmanagerClient::SenderLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    const uint64_t now = clock_.NowUnixNano();
    const uint64_t wake_at = NextWakeLocked(now);
    if (wake_at == 0 || wake_at > now) {
      // Sleep until the next alert is due, but read the clock at least every poll_interval:
      // the injected clock may move without telling anyone.
      auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(options_.poll_interval);
      if (wake_at != 0) wait = std::min(wait, std::chrono::nanoseconds(wake_at - now));
      wake_.wait_for(lock, wait, [this] { return stopping_ || woken_; });
      woken_ = false;
      continue;
    }
    Batch batch = TakeBatchLocked(now, /*pending_only=*/false);
    if (batch.ids.empty()) {
      wake_.wait_for(lock, options_.poll_interval, [this] { return stopping_ || woken_; });
      woken_ = false;
      continue;
    }
    Post(lock, batch, options_.request_timeout);
  }
  FlushForShutdown(lock);
}

uint64_t AlertmanagerClient::NextWakeLocked(uint64_t now) const {
  if (retry_at_ > now) return retry_at_;  // backing off after a failure
  if (pending_count_ > 0) return now;
  if (!resend_due_.empty()) return std::max<uint64_t>(resend_due_.begin()->first, 1);
  return 0;
}

AlertmanagerClient::Batch AlertmanagerClient::TakeBatchLocked(uint64_t now, bool pending_only) {
  Batch batch;
  batch.taken_at = now;
  batch.body = "[";
  auto add = [&](const std::string& id, Entry& entry) {
    if (!batch.ids.empty()) batch.body += ',';
    batch.body += RenderLocked(entry, now);
    batch.ids.emplace_back(id, entry.version);
  };
  while (batch.ids.size() < options_.max_batch && !pending_.empty()) {
    std::string id = std::move(pending_.front());
    pending_.pop_front();
    auto it = alerts_.find(id);
    if (it == alerts_.end() || !it->second.queued) continue;  // stale
    it->second.queued = false;
    --pending_count_;
    add(id, it->second);
  }
  while (!pending_only && batch.ids.size() < options_.max_batch && !resend_due_.empty() &&
         resend_due_.begin()->first <= now) {
    auto node = resend_due_.extract(resend_due_.begin());
    Entry& entry = alerts_.at(node.value().second);
    entry.resend_due = 0;
    add(node.value().second, entry);
  }
  batch.body += ']';
  return batch;
}

bool AlertmanagerClient::Post(std::unique_lock<std::mutex>& lock, const Batch& batch,
                              milliseconds timeout) {
  in_flight_ = batch.ids.size();
  lock.unlock();
  absl::Status status = transport_->PostAlerts(batch.body, timeout);
  lock.lock();
  in_flight_ = 0;
  SettleLocked(batch, status);
  return status.ok() || absl::IsInvalidArgument(status);
}

// Backoff and resends count from when the batch was rendered, not from when the POST returned:
// the endsAt it carried was computed then, and a POST that hung until its timeout has already
// waited.
void AlertmanagerClient::SettleLocked(const Batch& batch, const absl::Status& status) {
  const uint64_t now = batch.taken_at;
  const bool delivered = status.ok() || absl::IsInvalidArgument(status);
  if (!delivered) {
    ++stats_.failed_posts;
    backoff_ = backoff_.count() == 0 ? options_.min_backoff
                                     : std::min(backoff_ * 2, options_.resend_interval);
    retry_at_ = now + Nanos(backoff_);
    if (!failing_) {
      spdlog::warn("Alertmanager unreachable, alerts kept and retried: {}", status.ToString());
    }
    failing_ = true;
    // Owed again, ahead of newer alerts. An entry changed meanwhile is already queued.
    for (auto it = batch.ids.rbegin(); it != batch.ids.rend(); ++it) {
      auto found = alerts_.find(it->first);
      if (found == alerts_.end() || found->second.version != it->second) continue;
      Entry& entry = found->second;
      if (entry.queued) continue;
      RemoveFromResendLocked(it->first, entry);
      entry.queued = true;
      ++pending_count_;
      pending_.push_front(it->first);
    }
    return;
  }
  if (status.ok()) {
    ++stats_.posts;
    stats_.sent_alerts += batch.ids.size();
    if (failing_) {
      spdlog::info("Alertmanager reachable again after {} failed posts; {} alerts owed",
                   stats_.failed_posts, pending_count_);
    }
    failing_ = false;
    backoff_ = milliseconds(0);
    retry_at_ = 0;
  } else {
    // Our own rendering is at fault; retrying the same alerts would only repeat it. Open alerts
    // are tried again at their next resend.
    stats_.rejected_alerts += batch.ids.size();
    spdlog::error("Alertmanager refused {} alerts: {}", batch.ids.size(), status.ToString());
  }
  for (const auto& [id, version] : batch.ids) {
    auto found = alerts_.find(id);
    if (found == alerts_.end() || found->second.version != version) continue;
    Entry& entry = found->second;
    if (entry.ends_at != 0 && ++entry.resolved_sends_done >= options_.resolved_sends) {
      EraseLocked(id);
      continue;
    }
    RemoveFromResendLocked(id, entry);
    entry.resend_due = now + Nanos(options_.resend_interval);
    resend_due_.emplace(entry.resend_due, id);
  }
}

void AlertmanagerClient::FlushForShutdown(std::unique_lock<std::mutex>& lock) {
  const auto deadline = std::chrono::steady_clock::now() + options_.request_timeout;
  while (pending_count_ > 0) {
    auto left =
        std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left <= milliseconds(0)) break;
    Batch batch = TakeBatchLocked(clock_.NowUnixNano(), /*pending_only=*/true);
    if (batch.ids.empty() || !Post(lock, batch, left)) break;
  }
  if (pending_count_ > 0) {
    spdlog::warn("Alertmanager client stopped with {} alerts undelivered", pending_count_);
  }
}

void AlertmanagerClient::EnqueueLocked(const std::string& id, Entry& entry) {
  RemoveFromResendLocked(id, entry);
  if (entry.queued) return;
  entry.queued = true;
  ++pending_count_;
  pending_.push_back(id);
  // Stale ids (of entries dropped while queued) pile up only while nothing is taken, i.e.
  // while Alertmanager is down; keep the deque proportional to what it holds.
  if (pending_.size() > 2 * pending_count_ + 1024) {
    std::deque<std::string> live;
    for (std::string& queued_id : pending_) {
      auto it = alerts_.find(queued_id);
      if (it != alerts_.end() && it->second.queued) live.push_back(std::move(queued_id));
    }
    // An id queued twice (dropped, then added again) must appear once. The views point into
    // `unique`, whose elements push_back leaves in place.
    std::deque<std::string> unique;
    std::set<std::string_view> seen;
    for (std::string& queued_id : live) {
      if (seen.contains(queued_id)) continue;
      unique.push_back(std::move(queued_id));
      seen.insert(unique.back());
    }
    pending_ = std::move(unique);
  }
}

void AlertmanagerClient::RemoveFromResendLocked(const std::string& id, Entry& entry) {
  if (entry.resend_due == 0) return;
  resend_due_.erase({entry.resend_due, id});
  entry.resend_due = 0;
}

void AlertmanagerClient::EraseLocked(const std::string& id) {
  auto it = alerts_.find(id);
  if (it == alerts_.end()) return;
  Entry& entry = it->second;
  if (entry.queued) --pending_count_;  // its id in pending_ is skipped as stale
  RemoveFromResendLocked(id, entry);
  if (entry.resolved_seq != 0) resolved_by_age_.erase(entry.resolved_seq);
  alerts_.erase(it);
}

bool AlertmanagerClient::MakeRoomLocked() {
  if (resolved_by_age_.empty()) return false;
  const std::string id = resolved_by_age_.begin()->second;
  CountDropLocked(alerts_.at(id).gap, "oldest undelivered resolution");
  EraseLocked(id);
  return true;
}

void AlertmanagerClient::CountDropLocked(const Gap& gap, const char* why) {
  ++stats_.dropped;
  if (stats_.dropped == 1 || stats_.dropped % 1000 == 0) {
    spdlog::warn(
        "Alertmanager client holds max_alerts={} alerts; dropped {} so far (latest: {} "
        "of gap {})",
        options_.max_alerts, stats_.dropped, why, gap.id);
  }
}

std::string AlertmanagerClient::RenderLocked(const Entry& entry, uint64_t now) const {
  const Gap& gap = entry.gap;
  nlohmann::json labels = nlohmann::json::object();
  auto label = [&](const char* name, std::string_view value) {
    if (!value.empty()) labels[name] = std::string(value);
  };
  auto severity = options_.severity_by_kind.find(gap.kind);
  // A silent source is not an order's gap: its own alert, named by its service.
  const bool source = gap.kind == kSourceSilent;
  label("alertname", source ? kSourceAlertName : kAlertName);
  label("kind", gap.kind);
  if (source) label("service", gap.service);
  label("stage", gap.stage);
  label("partner_id", gap.partner_id);
  label("severity", severity != options_.severity_by_kind.end() ? std::string_view(severity->second)
                                                                : options_.default_severity);
  label("gap_id", gap.id);

  // The link a person follows is the console's page (the order at a glance, or the stuck
  // orders filtered to silent sources); `api` is the same answer as JSON, for scripts.
  const std::string link =
      source ? options_.external_url + "/gaps?kind=" + std::string(kSourceSilent)
             : options_.external_url + "/orders/" + EscapePathSegment(gap.order_id);
  const std::string api_link =
      source ? options_.external_url + "/api/v1/gaps?kind=" + std::string(kSourceSilent)
             : options_.external_url + "/api/v1/orders/" + EscapePathSegment(gap.order_id);
  const std::string summary = Summary(gap);
  nlohmann::json annotations = nlohmann::json::object();
  auto annotate = [&](const char* name, std::string_view value) {
    if (!value.empty()) annotations[name] = std::string(value);
  };
  annotate("order_id", gap.order_id);
  annotate("summary", summary);
  annotate("description", gap.detail.empty() ? summary : gap.detail);
  annotate("link", link);
  annotate("api", api_link);
  if (gap.trace_id.IsValid()) annotate("trace_id", gap.trace_id.ToHex());
  annotate("service", gap.service);
  annotate("queue", gap.queue);
  annotate("message_id", gap.message_id);
  annotate("expected", Join(gap.expected, ", "));
  if (gap.since_unix_nano != 0) annotate("since", FormatRfc3339(gap.since_unix_nano));
  if (gap.last_success.has_value()) {
    const model::Operation& op = *gap.last_success;
    std::string text = op.span_name;
    if (!op.service.empty()) text += " in " + op.service;
    if (op.at_unix_nano != 0) text += " at " + FormatRfc3339(op.at_unix_nano);
    annotate("last_success", text);
  }

  nlohmann::json alert = {
      {"labels", std::move(labels)},
      {"annotations", std::move(annotations)},
      {"startsAt", FormatRfc3339(entry.starts_at)},
      {"endsAt",
       FormatRfc3339(entry.ends_at != 0 ? entry.ends_at : now + Nanos(options_.alert_lifetime))},
      {"generatorURL", link},
  };
  // Span attributes need not be valid UTF-8; replace bad bytes rather than throw.
  return alert.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace ordertrace::gaps
