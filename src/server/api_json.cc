#include "server/api_json.h"

#include <algorithm>
#include <ctime>
#include <map>
#include <vector>

namespace ordertrace::server {
namespace {

using nlohmann::json;

json OperationJson(const std::optional<model::Operation>& op) {
  if (!op) return nullptr;
  json j = {{"span_name", op->span_name},
            {"service", op->service},
            {"at", TimeJson(op->at_unix_nano)},
            {"trace_id", op->trace_id.ToHex()},
            {"span_id", op->span_id.ToHex()}};
  if (!op->error_code.empty()) j["error_code"] = op->error_code;
  if (!op->error_message.empty() || !op->error_code.empty()) {
    j["error_message"] = op->error_message;
  }
  if (!op->reported_status.empty()) j["reported_status"] = op->reported_status;
  if (!op->attempted_status.empty()) j["attempted_status"] = op->attempted_status;
  return j;
}

json MessageJson(const model::MessageHop& m) {
  json j = {{"message_id", m.message_id},
            {"queue", m.queue.empty() ? json(nullptr) : json(m.queue)},
            {"published_at", TimeJson(m.published_at_unix_nano)},
            {"consumed_at", TimeJson(m.consumed_at_unix_nano)},
            {"retry_count", m.retry_count}};
  if (m.consumed_at_unix_nano != 0) {
    j["state"] = "consumed";
    if (m.published_at_unix_nano != 0 && m.consumed_at_unix_nano >= m.published_at_unix_nano) {
      j["publish_to_consume_seconds"] =
          static_cast<double>(m.consumed_at_unix_nano - m.published_at_unix_nano) / 1e9;
    }
  } else {
    j["state"] = "published";
  }
  return j;
}

json CurrentStatusJson(const model::OrderRecord& r) {
  const model::StatusReached* current = r.CurrentStatus();
  if (current == nullptr) return nullptr;
  return current->status;
}

}  // namespace

json TimeJson(uint64_t unix_nano) {
  if (unix_nano == 0) return nullptr;
  std::time_t seconds = static_cast<std::time_t>(unix_nano / 1'000'000'000ULL);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%09lluZ",
                static_cast<unsigned long long>(unix_nano % 1'000'000'000ULL));
  return std::string(buf);
}

json OrderSummaryJson(const model::OrderRecord& r) {
  const model::StatusReached* current = r.CurrentStatus();
  return {{"order_id", r.order_id},
          {"trace_id", r.trace_id.ToHex()},
          {"partner_id", r.partner_id.empty() ? json(nullptr) : json(r.partner_id)},
          {"current_status", CurrentStatusJson(r)},
          {"status_since", current ? TimeJson(current->at_unix_nano) : json(nullptr)},
          {"first_seen", TimeJson(r.first_seen_unix_nano)},
          {"last_seen", TimeJson(r.last_seen_unix_nano)}};
}

json OrderJson(const query::OrderView& view) {
  const model::OrderRecord& r = view.record;
  json j = OrderSummaryJson(r);
  json trace_ids = json::array();
  for (const base::TraceId& t : r.trace_ids) trace_ids.push_back(t.ToHex());
  j["trace_ids"] = std::move(trace_ids);

  json timeline = json::array();
  for (const lifecycle::Stage& stage : view.timeline) {
    const model::StatusReached& t = *stage.transition;
    json s = {{"status", stage.status},
              {"reached_at", TimeJson(stage.reached_at_unix_nano)},
              {"left_at", TimeJson(stage.left_at_unix_nano)},
              {"duration_seconds", static_cast<double>(stage.duration_nanos) / 1e9},
              {"current", stage.current},
              {"prev_status", t.prev_status.empty() ? json(nullptr) : json(t.prev_status)},
              {"service", t.service},
              {"span_name", t.span_name},
              {"span_id", t.span_id.ToHex()}};
    if (t.event_version >= 0) s["event_version"] = t.event_version;
    timeline.push_back(std::move(s));
  }
  j["timeline"] = std::move(timeline);
  j["last_success"] = OperationJson(r.last_success);
  j["last_error"] = OperationJson(r.last_error);
  const model::MessageHop* last = r.LastMessage();
  j["last_message"] = last ? MessageJson(*last) : json(nullptr);
  json messages = json::array();
  for (const model::MessageHop& m : r.messages) messages.push_back(MessageJson(m));
  j["messages"] = std::move(messages);

  // Where the order is now: in a queue when its latest message was published and not yet
  // consumed, else with the service of its latest successful operation.
  json where = {{"service", nullptr}, {"queue", nullptr}};
  if (last != nullptr && last->consumed_at_unix_nano == 0) {
    where["queue"] = last->queue.empty() ? json(nullptr) : json(last->queue);
  }
  if (r.last_success) where["service"] = r.last_success->service;
  j["where"] = std::move(where);
  j["as_of"] = TimeJson(view.as_of_unix_nano);
  return j;
}

json TraceSummaryJson(const query::TraceSummary& s) {
  return {{"traceID", s.trace_id.ToHex()},
          {"rootServiceName", s.root_service_name},
          {"rootTraceName", s.root_span_name},
          {"startTimeUnixNano", std::to_string(s.start_unix_nano)},
          {"durationMs", s.duration_nanos / 1'000'000}};
}

json SlaReportJson(const query::SlaReport& report) {
  auto seconds = [](uint64_t nanos) { return static_cast<double>(nanos) / 1e9; };
  json stages = json::array();
  for (const query::StageSla& s : report.stages) {
    stages.push_back({{"stage", s.stage},
                      {"sla_seconds", s.sla_nanos ? json(seconds(*s.sla_nanos)) : json()},
                      {"completed", s.completed},
                      {"completed_within_sla", s.completed_within_sla},
                      {"p50_seconds", seconds(s.p50_nanos)},
                      {"p95_seconds", seconds(s.p95_nanos)},
                      {"max_seconds", seconds(s.max_nanos)},
                      {"current", s.current},
                      {"current_over_sla", s.current_over_sla}});
  }
  return {{"partner_id", report.partner_id.empty() ? json() : json(report.partner_id)},
          {"orders", report.orders},
          {"truncated", report.truncated},
          {"as_of", TimeJson(report.as_of_unix_nano)},
          {"stages", stages}};
}

json ErrorJson(int http_status, const std::string& message) {
  return {{"error", {{"status", http_status}, {"message", message}}}};
}

json GapJson(const gaps::Gap& gap) {
  auto text_or_null = [](const std::string& s) { return s.empty() ? json() : json(s); };
  return {{"id", gap.id},
          {"order_id", gap.order_id},
          {"partner_id", text_or_null(gap.partner_id)},
          {"kind", gap.kind},
          {"stage", gap.stage},
          {"expected", gap.expected},
          {"state", gap.IsOpen() ? "open" : "resolved"},
          {"service", text_or_null(gap.service)},
          {"queue", text_or_null(gap.queue)},
          {"message_id", text_or_null(gap.message_id)},
          {"detail", gap.detail},
          {"trace_id", gap.trace_id.IsValid() ? json(gap.trace_id.ToHex()) : json()},
          {"last_success", OperationJson(gap.last_success)},
          {"since", TimeJson(gap.since_unix_nano)},
          {"deadline", TimeJson(gap.deadline_unix_nano)},
          {"detected_at", TimeJson(gap.detected_at_unix_nano)},
          {"resolved_at", TimeJson(gap.resolved_at_unix_nano)},
          {"resolved_by", text_or_null(gap.resolved_by)},
          {"paged", gap.paged},
          {"detection_delay_seconds",
           gap.detected_at_unix_nano >= gap.deadline_unix_nano
               ? static_cast<double>(gap.detected_at_unix_nano - gap.deadline_unix_nano) / 1e9
               : 0.0}};
}

json GapCountsJson(const gaps::GapCounts& counts) {
  auto largest_first = [](const std::map<std::string, size_t>& by, const char* name) {
    std::vector<std::pair<std::string, size_t>> sorted(by.begin(), by.end());
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    json list = json::array();
    for (const auto& [key, count] : sorted) list.push_back({{name, key}, {"count", count}});
    return list;
  };
  json by_stage = largest_first(counts.by_stage, "stage");
  for (json& entry : by_stage) {
    auto orders = counts.orders_by_stage.find(entry["stage"].get<std::string>());
    entry["orders"] = orders == counts.orders_by_stage.end() ? 0 : orders->second;
  }
  return {{"total", counts.total},
          {"orders", counts.orders},
          {"complete", counts.complete},
          {"by_stage", by_stage},
          {"by_kind", largest_first(counts.by_kind, "kind")}};
}

}  // namespace ordertrace::server
