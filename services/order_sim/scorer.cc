#include "services/order_sim/scorer.h"

#include <algorithm>
#include <chrono>
#include <iomanip>
#include <set>
#include <sstream>
#include <thread>

#include "services/common/order_lifecycle.h"
#include "services/order_sim/sim_faults.h"

namespace ordertrace::services::sim {
namespace {

using nlohmann::json;

std::string CurrentStatus(const json& record) {
  return record.contains("current_status") && record["current_status"].is_string()
             ? record["current_status"].get<std::string>()
             : "";
}

// Simulated seconds spent in `status` (the timeline's duration, scaled); -1 when not reached.
double SimulatedSecondsIn(const json& record, std::string_view status, double time_scale) {
  if (!record.contains("timeline") || !record["timeline"].is_array()) return -1;
  for (const json& stage : record["timeline"]) {
    if (stage.value("status", "") == status && stage.contains("duration_seconds") &&
        stage["duration_seconds"].is_number()) {
      return stage["duration_seconds"].get<double>() * time_scale;
    }
  }
  return -1;
}

std::set<std::string> StatusesReached(const json& record) {
  std::set<std::string> reached;
  if (!record.contains("timeline") || !record["timeline"].is_array()) return reached;
  for (const json& stage : record["timeline"]) reached.insert(stage.value("status", ""));
  return reached;
}

int64_t MaxRetryCount(const json& record) {
  int64_t most = 0;
  if (!record.contains("messages") || !record["messages"].is_array()) return 0;
  for (const json& message : record["messages"]) {
    if (message.contains("retry_count") && message["retry_count"].is_number_integer()) {
      most = std::max<int64_t>(most, message["retry_count"].get<int64_t>());
    }
  }
  return most;
}

}  // namespace

std::string Judge(const TruthRecord& truth, const json& record) {
  const std::string current = CurrentStatus(record);
  if (!truth.fault.has_value()) {
    if (current != kClosed) return "not CLOSED in ordertrace (" + current + ")";
    if (MaxRetryCount(record) > 0) return "a message was redelivered";
    if (SimulatedSecondsIn(record, kPriceCalculationStarted, truth.time_scale) >
        kPriceCalculationSlaSeconds) {
      return "price calculation past its SLA";
    }
    if (StatusesReached(record).size() != std::size(kLifecycle)) return "a status is missing";
    return "";
  }
  const SimFaultKind* kind = FindSimFault(truth.fault->kind);
  if (kind == nullptr) return "unknown fault kind " + truth.fault->kind;
  switch (kind->evidence) {
    case FaultEvidence::kStopsAtStage:
      if (current != kind->stage) {
        return "ordertrace says " + (current.empty() ? "nothing" : current) + ", stopped at " +
               std::string(kind->stage);
      }
      return "";
    case FaultEvidence::kSlowStage: {
      double seconds = SimulatedSecondsIn(record, kind->stage, truth.time_scale);
      if (seconds <= kPriceCalculationSlaSeconds) {
        return "stage " + std::string(kind->stage) + " took " + std::to_string(seconds) +
               " simulated s, within the SLA";
      }
      return "";
    }
    case FaultEvidence::kRedelivery:
      if (MaxRetryCount(record) < 1) return "no redelivered message in the record";
      return "";
    case FaultEvidence::kSkippedStatus: {
      std::set<std::string> reached = StatusesReached(record);
      if (reached.count(std::string(kind->stage)) != 0) {
        return "the record has " + std::string(kind->stage);
      }
      if (reached.count(std::string(kShipped)) == 0) return "the record never reached SHIPPED";
      return "";
    }
  }
  return "unjudged";
}

std::string JudgeGaps(const TruthRecord& truth, const json& record, const json& gaps,
                      double& delay) {
  if (!gaps.is_array()) return "no gap list";
  if (!truth.fault.has_value()) {
    for (const json& gap : gaps) {
      return "gap " + gap.value("kind", std::string("?")) + " at " +
             gap.value("stage", std::string("?"));
    }
    return "";
  }
  const SimFaultKind* kind = FindSimFault(truth.fault->kind);
  if (kind == nullptr) return "unknown fault kind " + truth.fault->kind;
  if (kind->gap_kind.empty()) return Judge(truth, record);
  for (const json& gap : gaps) {
    if (gap.value("kind", std::string()) != kind->gap_kind) continue;
    if (!kind->gap_stage.empty() && gap.value("stage", std::string()) != kind->gap_stage) continue;
    delay = gap.contains("detection_delay_seconds") && gap["detection_delay_seconds"].is_number()
                ? gap["detection_delay_seconds"].get<double>()
                : 0;
    return "";
  }
  std::string seen;
  for (const json& gap : gaps) {
    seen += (seen.empty() ? "" : ", ") + gap.value("kind", std::string("?")) + "@" +
            gap.value("stage", std::string("?"));
  }
  return "no " + std::string(kind->gap_kind) +
         (kind->gap_stage.empty() ? "" : " at " + std::string(kind->gap_stage)) + " gap (" +
         (seen.empty() ? "none" : seen) + ")";
}

int ScoreReport::found() const {
  int total = 0;
  for (const auto& [name, score] : kinds) total += score.found;
  return total;
}

int ScoreReport::missed_count() const {
  int total = 0;
  for (const auto& [name, score] : kinds) total += score.missed;
  return total;
}

json ScoreReport::ToJson() const {
  json by_kind = json::object();
  for (const auto& [name, score] : kinds) {
    by_kind[name] = {{"faulted", score.faulted}, {"found", score.found}, {"missed", score.missed}};
    if (!score.detection_delays.empty()) {
      std::vector<double> delays = score.detection_delays;
      std::sort(delays.begin(), delays.end());
      by_kind[name]["detection_delay_seconds"] = {{"median", delays[delays.size() / 2]},
                                                  {"max", delays.back()}};
    }
  }
  return {{"kinds", by_kind},
          {"fault_free", {{"orders", fault_free_orders}, {"false_alarms", false_alarms}}},
          {"found", found()},
          {"missed", missed_count()},
          {"false_alarms", false_alarms},
          {"sim_errors", sim_errors},
          {"missed_orders", missed},
          {"false_alarm_orders", false_alarm_orders},
          {"detection", used_gaps ? "gaps" : "order records"}};
}

std::string ScoreReport::ToText() const {
  std::ostringstream out;
  out << std::left << std::setw(24) << "fault kind" << std::right << std::setw(9) << "faulted"
      << std::setw(7) << "found" << std::setw(8) << "missed" << std::setw(26)
      << "delay median / max (s)"
      << "\n";
  for (const auto& [name, score] : kinds) {
    out << std::left << std::setw(24) << name << std::right << std::setw(9) << score.faulted
        << std::setw(7) << score.found << std::setw(8) << score.missed;
    if (!score.detection_delays.empty()) {
      std::vector<double> delays = score.detection_delays;
      std::sort(delays.begin(), delays.end());
      std::ostringstream cell;
      cell << std::fixed << std::setprecision(3) << delays[delays.size() / 2] << " / "
           << delays.back();
      out << std::setw(26) << cell.str();
    } else {
      out << std::setw(26) << "-";
    }
    out << "\n";
  }
  out << "fault-free orders: " << fault_free_orders << ", false alarms: " << false_alarms << "\n";
  out << "found " << found() << ", missed " << missed_count() << ", false alarms " << false_alarms;
  if (sim_errors > 0) out << ", not scored (order-sim errors) " << sim_errors;
  out << (used_gaps
              ? "\n(scored from ordertrace's gaps; delay: from the SLA deadline to detection)\n"
              : "\n(scored from ordertrace's order records: it has no gap detector)\n");
  for (const std::string& line : missed) out << "  missed: " << line << "\n";
  for (const std::string& line : false_alarm_orders) out << "  false alarm: " << line << "\n";
  return out.str();
}

ScoreReport Score(const std::vector<TruthRecord>& truth, const OrderRecordFetcher& fetch,
                  const OrderGapsFetcher& fetch_gaps, double settle_seconds) {
  ScoreReport report;
  report.used_gaps = fetch_gaps != nullptr;
  std::map<const TruthRecord*, double> delays;
  std::vector<std::pair<const TruthRecord*, std::string>> pending;
  for (const TruthRecord& record : truth) {
    if (record.outcome == "sim_error" || record.order_id.empty()) {
      ++report.sim_errors;
      continue;
    }
    pending.emplace_back(&record, "");
  }
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(static_cast<int64_t>(settle_seconds * 1000));
  while (true) {
    std::vector<std::pair<const TruthRecord*, std::string>> unsettled;
    for (auto& [record, why] : pending) {
      absl::StatusOr<json> fetched = fetch(record->order_id);
      if (!fetched.ok()) {
        why = "ordertrace: " + std::string(fetched.status().message());
      } else if (report.used_gaps) {
        absl::StatusOr<json> gaps = fetch_gaps(record->order_id);
        if (gaps.status().code() == absl::StatusCode::kUnimplemented) {
          report.used_gaps = false;
          why = Judge(*record, *fetched);
        } else if (!gaps.ok()) {
          why = "ordertrace gaps: " + std::string(gaps.status().message());
        } else {
          double delay = 0;
          why = JudgeGaps(*record, *fetched, *gaps, delay);
          delays[record] = delay;
        }
      } else {
        why = Judge(*record, *fetched);
      }
      if (!why.empty()) unsettled.emplace_back(record, why);
    }
    if (unsettled.empty() || std::chrono::steady_clock::now() >= deadline) {
      pending = std::move(unsettled);
      break;
    }
    pending = std::move(unsettled);
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  std::map<const TruthRecord*, std::string> failures;
  for (auto& [record, why] : pending) failures[record] = why;
  for (const TruthRecord& record : truth) {
    if (record.outcome == "sim_error" || record.order_id.empty()) continue;
    auto failure = failures.find(&record);
    bool ok = failure == failures.end();
    if (record.fault.has_value()) {
      KindScore& score = report.kinds[record.fault->kind];
      ++score.faulted;
      if (ok) {
        ++score.found;
        const SimFaultKind* kind = FindSimFault(record.fault->kind);
        if (report.used_gaps && kind != nullptr && !kind->gap_kind.empty() &&
            delays.count(&record) != 0) {
          score.detection_delays.push_back(delays[&record]);
        }
      } else {
        ++score.missed;
        report.missed.push_back(record.order_id + " (" + record.fault->kind +
                                "): " + failure->second);
      }
    } else {
      ++report.fault_free_orders;
      if (!ok) {
        ++report.false_alarms;
        report.false_alarm_orders.push_back(record.order_id + ": " + failure->second);
      }
    }
  }
  return report;
}

}  // namespace ordertrace::services::sim
