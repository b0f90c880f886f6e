#include "server/component_metrics.h"

#include "forward/otlp_forwarder.h"
#include "gaps/alertmanager_client.h"
#include "gaps/gap_detector.h"
#include "ingest/ingester.h"
#include "metrics/registry.h"
#include "otlp/decode_budget.h"
#include "sampling/tail_sampler.h"
#include "scrub/pii_scrubber.h"
#include "store/store.h"

namespace ordertrace::server {
namespace {

using Values = std::vector<std::pair<std::vector<std::string>, double>>;

Values ByKindAndStage(const std::map<std::pair<std::string, std::string>, uint64_t>& counts) {
  Values out;
  for (const auto& [key, count] : counts) {
    out.push_back({{key.first, key.second}, static_cast<double>(count)});
  }
  return out;
}

}  // namespace

void RegisterComponentMetrics(metrics::Registry& registry, const gaps::GapDetector* gaps,
                              const gaps::AlertmanagerClient* alerts,
                              const ingest::Ingester* ingester,
                              const sampling::TailSampler* sampler) {
  if (gaps != nullptr) {
    auto& detected = registry.AddCounter({"gap_detected_total",
                                          "Gaps that paged (an alert fired), by kind and stage.",
                                          {"kind", "stage"}});
    auto& open =
        registry.AddGauge({"open_gaps", "Gaps open now, by kind and stage.", {"kind", "stage"}});
    auto& tracked_orders =
        registry.AddGauge({"gap_tracked_orders", "Orders with a stage deadline pending.", {}});
    auto& tracked_messages =
        registry.AddGauge({"gap_tracked_messages", "Messages waiting for their consumer.", {}});
    auto& lookup_errors = registry.AddCounter(
        {"gap_lookup_errors_total", "Deadlines whose order could not be read (retried).", {}});
    auto& store_errors = registry.AddCounter(
        {"gap_store_errors_total", "Gap writes that failed (tried again).", {}});
    auto& found_resolved = registry.AddCounter(
        {"gap_found_resolved_total",
         "Gaps recorded that never paged: found already over, or over before the sources "
         "caught up.",
         {"kind", "stage"}});
    auto& withdrawn = registry.AddCounter(
        {"ordertrace_gaps_withdrawn_total",
         "Gaps late spans proved wrong (the missing event had come in time, a status between "
         "arrived): removed, by kind.",
         {"kind"}});
    auto& held = registry.AddGauge(
        {"ordertrace_gaps_held",
         "Deadlines passed on the wall clock whose evidence is not in yet (a source catching "
         "up or silent).",
         {}});
    auto& writes_queued = registry.AddGauge(
        {"ordertrace_gap_writes_queued", "Gap writes waiting for the store.", {}});
    auto& writes_dropped = registry.AddCounter(
        {"ordertrace_gap_writes_dropped_total", "Gap writes given up after every retry.", {}});
    auto& watermark = registry.AddGauge(
        {"ordertrace_source_watermark_seconds",
         "The latest span end each service has reported (event time, unix seconds).",
         {"service"}});
    auto& lag =
        registry.AddGauge({"ordertrace_source_lag_seconds",
                           "How far each service's last report lagged behind the wall clock.",
                           {"service"}});
    auto& source_spans = registry.AddCounter(
        {"ordertrace_source_spans_total", "Spans each service reported.", {"service"}});
    auto& late_answers = registry.AddCounter(
        {"ordertrace_source_late_answers_total",
         "Judged deadlines answered afterwards (their answer arrived after the order's stage was "
         "judged), by the service that reported it.",
         {"service"}});
    auto& late_spans = registry.AddCounter(
        {"ordertrace_source_out_of_order_spans_total",
         "Spans that ended further behind their service's watermark than the lifecycle's grace.",
         {"service"}});
    auto& state =
        registry.AddGauge({"ordertrace_source_state",
                           "1 for each service's state: live, catching_up, quiet or silent.",
                           {"service", "state"}});
    registry.AddScrapeHook([=, &detected, &open, &tracked_orders, &tracked_messages, &lookup_errors,
                            &store_errors, &found_resolved, &withdrawn, &held, &writes_queued,
                            &writes_dropped, &watermark, &lag, &source_spans, &late_spans,
                            &late_answers, &state] {
      gaps::GapDetectorStats stats = gaps->Stats();
      detected.ReplaceAll(ByKindAndStage(stats.detected_total));
      open.ReplaceAll(ByKindAndStage(stats.open));
      found_resolved.ReplaceAll(ByKindAndStage(stats.found_resolved_total));
      tracked_orders.Set({}, static_cast<double>(stats.tracked_orders));
      tracked_messages.Set({}, static_cast<double>(stats.tracked_messages));
      lookup_errors.ReplaceAll({{{}, static_cast<double>(stats.lookup_errors)}});
      store_errors.ReplaceAll({{{}, static_cast<double>(stats.store_errors)}});
      Values withdrawn_by_kind;
      for (const auto& [kind, count] : stats.withdrawn_total) {
        withdrawn_by_kind.push_back({{kind}, static_cast<double>(count)});
      }
      withdrawn.ReplaceAll(withdrawn_by_kind);
      held.Set({}, static_cast<double>(stats.held));
      writes_queued.Set({}, static_cast<double>(stats.writes_queued));
      writes_dropped.ReplaceAll({{{}, static_cast<double>(stats.writes_dropped)}});
      Values watermarks, lags, spans, late, states;
      for (const gaps::SourceStatus& source : stats.sources) {
        watermarks.push_back(
            {{source.service}, static_cast<double>(source.watermark_unix_nano) / 1e9});
        lags.push_back({{source.service}, static_cast<double>(source.lag_nanos) / 1e9});
        spans.push_back({{source.service}, static_cast<double>(source.spans)});
        late.push_back({{source.service}, static_cast<double>(source.late_spans)});
        states.push_back({{source.service, std::string(gaps::SourceStateName(source.state))}, 1.0});
      }
      watermark.ReplaceAll(watermarks);
      lag.ReplaceAll(lags);
      source_spans.ReplaceAll(spans);
      late_spans.ReplaceAll(late);
      Values answers;
      for (const auto& [service, count] : stats.late_answers) {
        answers.push_back({{service}, static_cast<double>(count)});
      }
      late_answers.ReplaceAll(answers);
      state.ReplaceAll(states);
    });
  }
  if (alerts != nullptr) {
    auto& sent = registry.AddCounter(
        {"alertmanager_alerts_sent_total", "Alerts Alertmanager accepted.", {}});
    auto& failed = registry.AddCounter(
        {"alertmanager_failed_posts_total", "Posts to Alertmanager that failed (retried).", {}});
    auto& rejected = registry.AddCounter(
        {"alertmanager_rejected_alerts_total", "Alerts Alertmanager refused as invalid.", {}});
    auto& dropped = registry.AddCounter(
        {"alertmanager_alerts_dropped_total", "Alerts dropped to stay within the bound.", {}});
    auto& pending =
        registry.AddGauge({"alertmanager_alerts_pending", "Alerts owed a delivery.", {}});
    registry.AddScrapeHook([=, &sent, &failed, &rejected, &dropped, &pending] {
      gaps::AlertmanagerClientStats stats = alerts->Stats();
      sent.ReplaceAll({{{}, static_cast<double>(stats.sent_alerts)}});
      failed.ReplaceAll({{{}, static_cast<double>(stats.failed_posts)}});
      rejected.ReplaceAll({{{}, static_cast<double>(stats.rejected_alerts)}});
      dropped.ReplaceAll({{{}, static_cast<double>(stats.dropped)}});
      pending.Set({}, static_cast<double>(stats.pending));
    });
  }
  if (ingester != nullptr) {
    auto& spans = registry.AddCounter(
        {"ordertrace_ingested_spans_total", "Spans accepted and folded into order records.", {}});
    auto& refused =
        registry.AddCounter({"ordertrace_ingest_refused_requests_total",
                             "Requests refused because the ingest queue was full (clients retry).",
                             {}});
    auto& errors =
        registry.AddCounter({"ordertrace_ingest_write_errors_total", "Failed store writes.", {}});
    auto& queued =
        registry.AddGauge({"ordertrace_ingest_queued_spans", "Spans waiting for the writer.", {}});
    auto& refused_bytes = registry.AddCounter(
        {"ordertrace_ingest_refused_bytes_requests_total",
         "Requests refused because the ingest queue held ingest.max_queued_mb (clients retry).",
         {}});
    auto& queued_bytes = registry.AddGauge(
        {"ordertrace_ingest_queued_bytes", "Bytes of spans waiting for the writer.", {}});
    auto& rejected_spans = registry.AddCounter(
        {"ordertrace_ingest_rejected_spans_total",
         "Spans refused one by one (reported in partial_success), by reason: too_old, "
         "in_the_future, order_id_too_long, attribute_too_long.",
         {"reason"}});
    registry.AddScrapeHook(
        [=, &spans, &refused, &errors, &queued, &refused_bytes, &queued_bytes, &rejected_spans] {
          ingest::IngesterStats stats = ingester->Stats();
          spans.ReplaceAll({{{}, static_cast<double>(stats.spans_written)}});
          refused.ReplaceAll({{{}, static_cast<double>(stats.requests_refused_full)}});
          errors.ReplaceAll({{{}, static_cast<double>(stats.write_errors)}});
          queued.Set({}, static_cast<double>(stats.queued_spans));
          refused_bytes.ReplaceAll({{{}, static_cast<double>(stats.requests_refused_bytes)}});
          queued_bytes.Set({}, static_cast<double>(stats.queued_bytes));
          Values by_reason;
          for (size_t i = 0; i < std::size(stats.spans_refused); ++i) {
            by_reason.push_back({{ingest::RefusalReasonName(static_cast<ingest::RefusalReason>(i))},
                                 static_cast<double>(stats.spans_refused[i])});
          }
          rejected_spans.ReplaceAll(by_reason);
        });
  }
  if (sampler != nullptr) {
    auto& decisions = registry.AddCounter(
        {"ordertrace_sampling_decisions_total",
         "Traces decided by the tail sampler: kept (slow, failed or by ratio), dropped, or "
         "forced (the order was flagged stuck).",
         {"decision"}});
    auto& sampled_spans = registry.AddCounter(
        {"ordertrace_sampling_spans_total",
         "Spans through the sampler: lifecycle (always kept), kept or dropped detail, and "
         "detail dropped early because the pending buffer was full.",
         {"outcome"}});
    auto& upgrades =
        registry.AddCounter({"ordertrace_sampling_upgrades_total",
                             "Dropped traces turned to kept by a late slow or failed span.",
                             {}});
    auto& pending = registry.AddGauge(
        {"ordertrace_sampling_pending_spans", "Detail spans waiting for their decision.", {}});
    auto& pending_traces = registry.AddGauge(
        {"ordertrace_sampling_pending_traces", "Traces with detail waiting for a decision.", {}});
    auto& pending_bytes = registry.AddGauge(
        {"ordertrace_sampling_pending_bytes",
         "Bytes of detail waiting for a decision (bounded by sampling.max_pending_mb).",
         {}});
    registry.AddScrapeHook(
        [=, &decisions, &sampled_spans, &upgrades, &pending, &pending_traces, &pending_bytes] {
          sampling::SamplingStats s = sampler->Stats();
          decisions.ReplaceAll({{{"kept"}, static_cast<double>(s.traces_kept)},
                                {{"dropped"}, static_cast<double>(s.traces_dropped)},
                                {{"forced"}, static_cast<double>(s.traces_forced)}});
          sampled_spans.ReplaceAll(
              {{{"lifecycle"}, static_cast<double>(s.lifecycle_spans)},
               {{"kept_detail"}, static_cast<double>(s.kept_detail_spans)},
               {{"dropped_detail"}, static_cast<double>(s.dropped_detail_spans)},
               {{"dropped_pending_full"}, static_cast<double>(s.dropped_pending_full_spans)}});
          upgrades.ReplaceAll({{{}, static_cast<double>(s.upgrades)}});
          pending.Set({}, static_cast<double>(s.pending_spans));
          pending_traces.Set({}, static_cast<double>(s.pending_traces));
          pending_bytes.Set({}, static_cast<double>(s.pending_bytes));
        });
  }
}

void RegisterPiiMetrics(metrics::Registry& registry, const scrub::PiiScrubber& scrubber) {
  auto& removed = registry.AddCounter(
      {"ordertrace_pii_removed_total",
       "Attributes removed and matches masked as PII before storage, by rule (pii.rules).",
       {"rule"}});
  registry.AddScrapeHook([&scrubber, &removed] {
    Values by_rule;
    for (const scrub::PiiRuleCount& count : scrubber.Stats()) {
      by_rule.push_back({{count.rule}, static_cast<double>(count.removed)});
    }
    removed.ReplaceAll(by_rule);
  });
}

void RegisterStoreMetrics(metrics::Registry& registry, const store::Store& store) {
  auto& out_of_space = registry.AddGauge(
      {"ordertrace_store_out_of_space",
       "1 while the store refuses writes for want of disk space (ingest answers 503), else 0.",
       {}});
  registry.AddScrapeHook(
      [&store, &out_of_space] { out_of_space.Set({}, store.IsOutOfSpace() ? 1.0 : 0.0); });
}

void RegisterHttpMetrics(metrics::Registry& registry, std::vector<HttpListenerSource> listeners) {
  auto& open = registry.AddGauge(
      {"ordertrace_http_connections_open", "Connections open now, by listener.", {"listener"}});
  auto& draining = registry.AddGauge(
      {"ordertrace_http_connections_draining",
       "Connections answered with a refusal, reading what the client still sends before the "
       "close (bounded, apart from http.max_connections).",
       {"listener"}});
  auto& accepted = registry.AddCounter(
      {"ordertrace_http_connections_total", "Connections accepted and served.", {"listener"}});
  auto& refused_connections = registry.AddCounter(
      {"ordertrace_http_connections_refused_total",
       "Connections refused past http.max_connections (answered 503, or closed).",
       {"listener"}});
  auto& refused = registry.AddCounter(
      {"ordertrace_http_requests_refused_total",
       "Requests refused before a handler ran: busy (503, the queue was full or waited too "
       "long), over_budget (429, request bytes in flight at http.max_inflight_mb), too_large "
       "(413/431), malformed (400), credentials (401/403 on the head, before the body: OTLP/HTTP "
       "with auth.tokens).",
       {"listener", "reason"}});
  auto& timeouts = registry.AddCounter(
      {"ordertrace_http_timeouts_total",
       "Connections closed because a request head or body did not arrive in time.",
       {"listener"}});
  auto& handler_errors = registry.AddCounter({"ordertrace_http_handler_errors_total",
                                              "Handlers that threw (answered 500).",
                                              {"listener"}});
  auto& queued = registry.AddGauge(
      {"ordertrace_http_queued_requests", "Requests read and waiting for a worker.", {"listener"}});
  auto& inflight = registry.AddGauge({"ordertrace_http_inflight_bytes",
                                      "Request body bytes being read, queued or handled.",
                                      {"listener"}});
  auto& handshake_failures = registry.AddCounter(
      {"ordertrace_http_tls_handshake_failures_total",
       "Connections to a TLS listener closed because the handshake failed: plain HTTP, no or an "
       "untrusted client certificate, not done within http.header_timeout.",
       {"listener"}});
  registry.AddScrapeHook([=, &open, &draining, &accepted, &refused_connections, &refused, &timeouts,
                          &handler_errors, &queued, &inflight, &handshake_failures] {
    Values open_v, draining_v, accepted_v, refused_connections_v, refused_v, timeouts_v, errors_v,
        queued_v, inflight_v, handshake_v;
    for (const HttpListenerSource& listener : listeners) {
      http::ServerStats s = listener.stats();
      const std::string& name = listener.name;
      open_v.push_back({{name}, static_cast<double>(s.connections_open)});
      draining_v.push_back({{name}, static_cast<double>(s.connections_draining)});
      accepted_v.push_back({{name}, static_cast<double>(s.connections_accepted)});
      refused_connections_v.push_back({{name}, static_cast<double>(s.connections_refused)});
      refused_v.push_back({{name, "busy"}, static_cast<double>(s.refused_busy)});
      refused_v.push_back({{name, "over_budget"}, static_cast<double>(s.refused_over_budget)});
      refused_v.push_back({{name, "too_large"}, static_cast<double>(s.refused_too_large)});
      refused_v.push_back({{name, "malformed"}, static_cast<double>(s.refused_malformed)});
      refused_v.push_back({{name, "credentials"}, static_cast<double>(s.refused_by_head)});
      timeouts_v.push_back({{name}, static_cast<double>(s.timeouts)});
      errors_v.push_back({{name}, static_cast<double>(s.handler_errors)});
      queued_v.push_back({{name}, static_cast<double>(s.queued_requests)});
      inflight_v.push_back({{name}, static_cast<double>(s.inflight_bytes)});
      handshake_v.push_back({{name}, static_cast<double>(s.tls_handshake_failures)});
    }
    open.ReplaceAll(open_v);
    draining.ReplaceAll(draining_v);
    accepted.ReplaceAll(accepted_v);
    refused_connections.ReplaceAll(refused_connections_v);
    refused.ReplaceAll(refused_v);
    timeouts.ReplaceAll(timeouts_v);
    handler_errors.ReplaceAll(errors_v);
    queued.ReplaceAll(queued_v);
    inflight.ReplaceAll(inflight_v);
    handshake_failures.ReplaceAll(handshake_v);
  });
}

void RegisterTlsReloadMetrics(metrics::Registry& registry, const std::atomic<uint64_t>& ok,
                              const std::atomic<uint64_t>& failed) {
  auto& reloads = registry.AddCounter(
      {"ordertrace_tls_reloads_total",
       "Certificate reloads on SIGHUP: ok (new connections get the new certificate) or failed "
       "(a file was missing, unreadable or mismatched; the old certificate is still served).",
       {"result"}});
  registry.AddScrapeHook([&reloads, &ok, &failed] {
    reloads.ReplaceAll({{{"ok"}, static_cast<double>(ok.load())},
                        {{"failed"}, static_cast<double>(failed.load())}});
  });
}

void RegisterDecodeBudgetMetrics(metrics::Registry& registry, const otlp::DecodeBudget& budget) {
  auto& leased = registry.AddGauge(
      {"ordertrace_decode_budget_leased_bytes",
       "Bytes the OTLP requests being decoded and ingested hold (estimated before decoding).",
       {}});
  auto& refused = registry.AddCounter(
      {"ordertrace_decode_refused_requests_total",
       "OTLP requests refused before decoding: budget_full (ingest.decode_budget_mb was spent; "
       "429 or RESOURCE_EXHAUSTED with a retry delay) or too_large (past "
       "ingest.max_decoded_request_mb; 413).",
       {"reason"}});
  registry.AddScrapeHook([&budget, &leased, &refused] {
    otlp::DecodeBudgetStats stats = budget.Stats();
    leased.Set({}, static_cast<double>(stats.leased_bytes));
    refused.ReplaceAll({{{"budget_full"}, static_cast<double>(stats.refused_budget_full)},
                        {{"too_large"}, static_cast<double>(stats.refused_too_large)}});
  });
}

void RegisterAuthMetrics(metrics::Registry& registry, const auth::TokenAuthenticator& tokens,
                         const auth::AuditLog* audit) {
  auto& accepted = registry.AddCounter(
      {"ordertrace_auth_accepted_total", "Requests whose bearer token was valid.", {}});
  auto& refused = registry.AddCounter(
      {"ordertrace_auth_refused_total",
       "Requests refused for their token, on the API and OTLP: missing, malformed or unknown "
       "(401, UNAUTHENTICATED) and forbidden (a valid token whose role may not; 403, "
       "PERMISSION_DENIED).",
       {"reason"}});
  registry.AddScrapeHook([&tokens, &accepted, &refused] {
    auth::AuthStats stats = tokens.Stats();
    accepted.ReplaceAll({{{}, static_cast<double>(stats.accepted)}});
    std::vector<std::pair<std::vector<std::string>, double>> by_reason;
    for (size_t i = 0; i < std::size(stats.failures); ++i) {
      by_reason.push_back({{std::string(auth::AuthFailureName(static_cast<auth::AuthFailure>(i)))},
                           static_cast<double>(stats.failures[i])});
    }
    refused.ReplaceAll(by_reason);
  });
  if (audit == nullptr) return;
  auto& lines =
      registry.AddCounter({"ordertrace_audit_lines_total", "Lines written to the audit log.", {}});
  auto& errors = registry.AddCounter(
      {"ordertrace_audit_write_errors_total",
       "Audit lines that could not be written (a full disk, say); the request was still served.",
       {}});
  registry.AddScrapeHook([audit, &lines, &errors] {
    auth::AuditLogStats stats = audit->Stats();
    lines.ReplaceAll({{{}, static_cast<double>(stats.lines)}});
    errors.ReplaceAll({{{}, static_cast<double>(stats.write_errors)}});
  });
}

void RegisterForwardMetrics(metrics::Registry& registry, const forward::OtlpForwarder& forwarder) {
  auto& spans = registry.AddCounter(
      {"ordertrace_forward_spans_total",
       "Spans the forward sent (the endpoint acknowledged them), or dropped: past "
       "forward.max_queue_mb (dropped_full) or refused for good by the endpoint "
       "(dropped_rejected).",
       {"result"}});
  auto& requests = registry.AddCounter(
      {"ordertrace_forward_requests_total",
       "Requests to the forward's endpoint, by answer: HTTP status, gRPC code, or error (no "
       "answer).",
       {"code"}});
  auto& retries = registry.AddCounter({"ordertrace_forward_retries_total",
                                       "Forward requests that failed and will be retried.",
                                       {}});
  auto& queue_bytes = registry.AddGauge({"ordertrace_forward_queue_bytes",
                                         "Bytes of spans queued for the forward, not sent yet.",
                                         {}});
  registry.AddScrapeHook([&forwarder, &spans, &requests, &retries, &queue_bytes] {
    const forward::ForwarderStats stats = forwarder.Stats();
    spans.ReplaceAll({{{"sent"}, static_cast<double>(stats.spans_sent)},
                      {{"dropped_full"}, static_cast<double>(stats.spans_dropped_full)},
                      {{"dropped_rejected"}, static_cast<double>(stats.spans_dropped_rejected)}});
    Values by_code;
    for (const auto& [code, count] : stats.requests) {
      by_code.push_back({{code}, static_cast<double>(count)});
    }
    requests.ReplaceAll(by_code);
    retries.ReplaceAll({{{}, static_cast<double>(stats.retries)}});
    queue_bytes.Set({}, static_cast<double>(stats.queue_bytes));
  });
}

}  // namespace ordertrace::server
