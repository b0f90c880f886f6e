#include "services/order_sim/scorer.h"

#include <algorithm>
#include <chrono>
#include <iomanip>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "services/common/order_transitions.h"
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
    if (StatusesReached(record).size() != std::size(kDefaultLifecycle))
      return "a status is missing";
    return "";
  }
  const SimFaultKind* kind = FindAnyFault(truth.fault->kind);
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
    case FaultEvidence::kWentBack:
      if (current != kind->stage || StatusesReached(record).count(std::string(kClosed)) == 0) {
        return "ordertrace says " + (current.empty() ? "nothing" : current) +
               ", expected CLOSED then " + std::string(kind->stage) + " again";
      }
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
  const SimFaultKind* kind = FindAnyFault(truth.fault->kind);
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

std::string JudgeOpenGaps(const TruthRecord& truth, const json& gaps) {
  if (!truth.expected_gaps.has_value()) return "";
  std::vector<std::string> expected, held;
  for (const TruthGap& gap : *truth.expected_gaps) {
    if (gap.state == "open") expected.push_back(gap.kind + "@" + gap.stage);
  }
  if (gaps.is_array()) {
    for (const json& gap : gaps) {
      if (gap.value("state", std::string()) == "open") {
        held.push_back(gap.value("kind", std::string("?")) + "@" +
                       gap.value("stage", std::string("?")));
      }
    }
  }
  if (held.size() == expected.size()) return "";
  auto list = [](const std::vector<std::string>& names) {
    std::string text;
    for (const std::string& name : names) text += (text.empty() ? "" : ", ") + name;
    return text.empty() ? std::string("none") : text;
  };
  return std::to_string(held.size()) + " open gap(s) (" + list(held) + "), the truth " +
         std::to_string(expected.size()) + " (" + list(expected) + ")";
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
          {"open_gaps",
           {{"orders_checked", orders_with_expected_gaps}, {"mismatches", open_count_mismatches}}},
          {"gaps_seen", gaps_seen},
          {"source_gaps", source_gaps},
          {"missed_orders", missed},
          {"false_alarm_orders", false_alarm_orders},
          {"open_count_mismatch_orders", open_count_mismatch_orders},
          {"detection", used_gaps ? "gaps" : "order records"},
          {"gap_queries", bulk ? "paged list" : "per order"}};
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
  if (orders_with_expected_gaps > 0) {
    out << "open gap count as the truth says: " << orders_with_expected_gaps - open_count_mismatches
        << " of " << orders_with_expected_gaps << " orders\n";
  }
  out << "found " << found() << ", missed " << missed_count() << ", false alarms " << false_alarms;
  if (sim_errors > 0) out << ", not scored (order-sim errors) " << sim_errors;
  out << (used_gaps
              ? "\n(scored from ordertrace's gaps; delay: from the SLA deadline to detection)\n"
              : "\n(scored from ordertrace's order records: it has no gap detector)\n");
  for (const std::string& line : missed) out << "  missed: " << line << "\n";
  for (const std::string& line : false_alarm_orders) out << "  false alarm: " << line << "\n";
  for (const std::string& line : open_count_mismatch_orders) {
    out << "  open gaps: " << line << "\n";
  }
  return out.str();
}

ScoreReport Score(const std::vector<TruthRecord>& truth, const OrderRecordFetcher& fetch,
                  const OrderGapsFetcher& fetch_gaps, double settle_seconds) {
  return Score(truth, ScoreSources{fetch, fetch_gaps, nullptr}, settle_seconds);
}

ScoreReport Score(const std::vector<TruthRecord>& truth, const ScoreSources& sources,
                  double settle_seconds) {
  ScoreReport report;
  report.used_gaps = sources.order_gaps != nullptr || sources.all_gaps != nullptr;
  bool try_bulk = sources.all_gaps != nullptr;
  std::map<const TruthRecord*, double> delays;
  struct Verdict {
    std::string why;         // not found / false alarm; "" when right
    std::string open_count;  // open gaps differ from the truth's; "" when they match
    json gaps = json::array();
  };
  std::vector<const TruthRecord*> pending;
  std::map<const TruthRecord*, Verdict> verdicts;
  for (const TruthRecord& record : truth) {
    if (record.outcome == "sim_error" || record.order_id.empty()) {
      ++report.sim_errors;
      continue;
    }
    pending.push_back(&record);
  }
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(static_cast<int64_t>(settle_seconds * 1000));
  while (true) {
    // The whole gap list, by order, when ordertrace can page it.
    std::optional<std::map<std::string, json>> by_order;
    if (report.used_gaps && try_bulk) {
      absl::StatusOr<json> all = sources.all_gaps();
      if (all.ok() && all->is_array()) {
        by_order.emplace();
        report.bulk = true;
        report.source_gaps = 0;
        for (const json& gap : *all) {
          std::string order_id = gap.value("order_id", std::string());
          if (order_id.empty()) {
            ++report.source_gaps;
            continue;
          }
          json& list = (*by_order)[order_id];
          if (list.is_null()) list = json::array();
          list.push_back(gap);
        }
      } else if (all.status().code() == absl::StatusCode::kUnimplemented) {
        report.used_gaps = false;
      } else {
        try_bulk = false;  // not pageable: one query per order from now on
        report.bulk = false;
      }
    }
    if (report.used_gaps && !by_order.has_value() && sources.order_gaps == nullptr) {
      report.used_gaps = false;
    }
    std::vector<const TruthRecord*> unsettled;
    for (const TruthRecord* record : pending) {
      Verdict& verdict = verdicts[record];
      verdict = Verdict{};
      const SimFaultKind* kind =
          record->fault.has_value() ? FindAnyFault(record->fault->kind) : nullptr;
      const bool needs_record = !report.used_gaps || !record->expected_gaps.has_value() ||
                                (kind != nullptr && kind->gap_kind.empty());
      json order_record = json::object();
      if (needs_record) {
        absl::StatusOr<json> fetched = sources.record(record->order_id);
        if (!fetched.ok()) {
          verdict.why = "ordertrace: " + std::string(fetched.status().message());
          unsettled.push_back(record);
          continue;
        }
        order_record = *std::move(fetched);
      }
      if (!report.used_gaps) {
        verdict.why = Judge(*record, order_record);
      } else {
        absl::StatusOr<json> gaps = json::array();
        if (by_order.has_value()) {
          auto found = by_order->find(record->order_id);
          if (found != by_order->end()) gaps = found->second;
        } else {
          gaps = sources.order_gaps(record->order_id);
        }
        if (gaps.status().code() == absl::StatusCode::kUnimplemented) {
          report.used_gaps = false;
          verdict.why = Judge(*record, order_record);
        } else if (!gaps.ok()) {
          verdict.why = "ordertrace gaps: " + std::string(gaps.status().message());
        } else {
          double delay = 0;
          verdict.why = JudgeGaps(*record, order_record, *gaps, delay);
          delays[record] = delay;
          verdict.open_count = JudgeOpenGaps(*record, *gaps);
          verdict.gaps = *std::move(gaps);
        }
      }
      if (!verdict.why.empty() || !verdict.open_count.empty()) unsettled.push_back(record);
    }
    if (unsettled.empty() || std::chrono::steady_clock::now() >= deadline) break;
    pending = std::move(unsettled);
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  for (const TruthRecord& record : truth) {
    if (record.outcome == "sim_error" || record.order_id.empty()) continue;
    const Verdict& verdict = verdicts[&record];
    for (const json& gap : verdict.gaps) report.gaps.push_back(gap);
    report.gaps_seen += static_cast<int>(verdict.gaps.size());
    if (record.expected_gaps.has_value() && report.used_gaps) {
      ++report.orders_with_expected_gaps;
      if (!verdict.open_count.empty()) {
        ++report.open_count_mismatches;
        report.open_count_mismatch_orders.push_back(
            record.order_id + (record.fault.has_value() ? " (" + record.fault->kind + ")" : "") +
            ": " + verdict.open_count);
      }
    }
    if (record.fault.has_value()) {
      KindScore& score = report.kinds[record.fault->kind];
      ++score.faulted;
      if (verdict.why.empty()) {
        ++score.found;
        const SimFaultKind* kind = FindAnyFault(record.fault->kind);
        if (report.used_gaps && kind != nullptr && !kind->gap_kind.empty() &&
            delays.count(&record) != 0) {
          score.detection_delays.push_back(delays[&record]);
        }
      } else {
        ++score.missed;
        report.missed.push_back(record.order_id + " (" + record.fault->kind + "): " + verdict.why);
      }
    } else {
      ++report.fault_free_orders;
      if (!verdict.why.empty()) {
        ++report.false_alarms;
        report.false_alarm_orders.push_back(record.order_id + ": " + verdict.why);
      }
    }
  }
  return report;
}

}  // namespace ordertrace::services::sim
