#include "services/order_sim/scorer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "services/common/order_transitions.h"
#include "services/order_sim/sim_faults.h"

namespace ordertrace::services::sim {
namespace {

using nlohmann::json;

// An ordertrace order record that went through `statuses`, each stage lasting `seconds`.
json Record(std::vector<std::string_view> statuses, double seconds = 0.01, int64_t max_retry = 0) {
  json timeline = json::array();
  for (std::string_view status : statuses) {
    timeline.push_back({{"status", status}, {"duration_seconds", seconds}});
  }
  json record = {{"current_status", statuses.empty() ? "" : std::string(statuses.back())},
                 {"timeline", timeline},
                 {"messages", json::array({{{"retry_count", max_retry}}})}};
  return record;
}

std::vector<std::string_view> AllStatuses() {
  std::vector<std::string_view> all;
  for (const LifecycleStep& step : kDefaultLifecycle) all.push_back(step.status);
  return all;
}

std::vector<std::string_view> Until(std::string_view last) {
  std::vector<std::string_view> statuses;
  for (const LifecycleStep& step : kDefaultLifecycle) {
    statuses.push_back(step.status);
    if (step.status == last) break;
  }
  return statuses;
}

TruthRecord Faulted(std::string kind, std::string order_id = "o-1") {
  TruthRecord truth;
  truth.order_id = std::move(order_id);
  truth.time_scale = 3600;
  truth.outcome = "stopped";
  const SimFaultKind* fault = FindSimFault(kind);
  truth.fault = TruthFault{kind, std::string(fault->stage), std::string(fault->service), "", 1};
  return truth;
}

TEST(JudgeTest, StoppingFaultIsFoundOnlyWhenTheRecordStopsAtItsStage) {
  TruthRecord truth = Faulted("calculator_hang");
  EXPECT_EQ(Judge(truth, Record(Until(kPriceCalculationStarted))), "");
  EXPECT_NE(Judge(truth, Record(Until(kSubmitted))), "");
  EXPECT_NE(Judge(truth, Record(AllStatuses())), "");
}

TEST(JudgeTest, SlowCalculationNeedsTheStageToPassItsSla) {
  TruthRecord truth = Faulted("calculator_slow");
  // 0.6 s real at 3600x is 36 simulated minutes: past the 30-minute SLA.
  EXPECT_EQ(Judge(truth, Record(AllStatuses(), 0.6)), "");
  EXPECT_NE(Judge(truth, Record(AllStatuses(), 0.1)), "");
}

TEST(JudgeTest, RedeliveryAndSkippedStatusNeedTheirEvidence) {
  EXPECT_EQ(Judge(Faulted("consumer_crash"), Record(AllStatuses(), 0.01, 1)), "");
  EXPECT_NE(Judge(Faulted("consumer_crash"), Record(AllStatuses(), 0.01, 0)), "");
  std::vector<std::string_view> skipped = AllStatuses();
  std::erase(skipped, kPackaging);
  EXPECT_EQ(Judge(Faulted("skipped_status"), Record(skipped)), "");
  EXPECT_NE(Judge(Faulted("skipped_status"), Record(AllStatuses())), "");
}

TEST(JudgeTest, FaultFreeOrderMustCloseCleanly) {
  TruthRecord truth;
  truth.order_id = "o-2";
  truth.time_scale = 3600;
  truth.outcome = "closed";
  EXPECT_EQ(Judge(truth, Record(AllStatuses())), "");
  EXPECT_NE(Judge(truth, Record(Until(kShipped))), "");
  EXPECT_NE(Judge(truth, Record(AllStatuses(), 0.01, 2)), "");
  EXPECT_NE(Judge(truth, Record(AllStatuses(), 0.6)), "");
}

TEST(ScoreTest, CountsFoundMissedFalseAlarmsAndSkipsSimErrors) {
  std::vector<TruthRecord> truth = {Faulted("lost_price_request", "a"),
                                    Faulted("lost_price_request", "b")};
  TruthRecord clean;
  clean.order_id = "c";
  clean.outcome = "closed";
  clean.time_scale = 3600;
  truth.push_back(clean);
  TruthRecord error;
  error.order_id = "d";
  error.outcome = "sim_error";
  truth.push_back(error);
  std::map<std::string, json> records = {{"a", Record(Until(kSubmitted))},
                                         {"b", Record(Until(kPriceCalculated))},
                                         {"c", Record(Until(kPackaging))}};
  OrderRecordFetcher fetch = [&](const std::string& id) -> absl::StatusOr<json> {
    auto it = records.find(id);
    if (it == records.end()) return absl::NotFoundError("order not found");
    return it->second;
  };
  ScoreReport report = Score(truth, fetch, nullptr, /*settle_seconds=*/0);
  EXPECT_EQ(report.kinds["lost_price_request"].faulted, 2);
  EXPECT_EQ(report.kinds["lost_price_request"].found, 1);
  EXPECT_EQ(report.kinds["lost_price_request"].missed, 1);
  EXPECT_EQ(report.fault_free_orders, 1);
  EXPECT_EQ(report.false_alarms, 1);
  EXPECT_EQ(report.sim_errors, 1);
  json out = report.ToJson();
  EXPECT_EQ(out["missed"], 1);
  EXPECT_EQ(out["false_alarms"], 1);
  EXPECT_THAT(out["missed_orders"][0].get<std::string>(), ::testing::StartsWith("b "));
}

TEST(ScoreTest, UnknownOrderIsAMiss) {
  OrderRecordFetcher fetch = [](const std::string&) -> absl::StatusOr<json> {
    return absl::NotFoundError("order not found");
  };
  ScoreReport report = Score({Faulted("operator_no_show")}, fetch, nullptr, 0);
  EXPECT_EQ(report.kinds["operator_no_show"].missed, 1);
}

TEST(FaultListTest, ParsesAllNoneAndListsAndNamesUnknownKinds) {
  EXPECT_EQ(ParseFaultList("all")->size(), SimFaultKinds().size());
  EXPECT_TRUE(ParseFaultList("none")->empty());
  EXPECT_EQ(*ParseFaultList("calculator_hang, operator_no_show"),
            (std::vector<std::string>{"calculator_hang", "operator_no_show"}));
  std::map<std::string, double> rates;
  EXPECT_EQ(*ParseFaultList("calculator_hang:0.05,operator_no_show", &rates),
            (std::vector<std::string>{"calculator_hang", "operator_no_show"}));
  EXPECT_EQ(rates, (std::map<std::string, double>{{"calculator_hang", 0.05}}));
  EXPECT_FALSE(ParseFaultList("calculator_hang:2").ok());
  EXPECT_FALSE(ParseFaultList("calculator_hang:x").ok());
  absl::StatusOr<std::vector<std::string>> bad = ParseFaultList("calculator_hang,gremlins");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("gremlins"), std::string::npos);
}

TEST(TruthTest, RoundTripsThroughJsonLines) {
  TruthRecord record = Faulted("skipped_status", "o-9");
  record.partner_id = "partner-2";
  record.polygon_count = 12345;
  record.note = "why";
  absl::StatusOr<TruthRecord> back = DecodeTruth(EncodeTruth(record));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->order_id, "o-9");
  EXPECT_EQ(back->partner_id, "partner-2");
  EXPECT_EQ(back->polygon_count, 12345);
  ASSERT_TRUE(back->fault.has_value());
  EXPECT_EQ(back->fault->kind, "skipped_status");
  EXPECT_EQ(back->fault->stage, "PACKAGING");
  EXPECT_FALSE(DecodeTruth("{\"order_id\": 5}").ok());
  EXPECT_FALSE(DecodeTruth("not json").ok());
  EXPECT_FALSE(back->expected_gaps.has_value());  // run's truth knows no gaps

  record.trace_id = "abc";
  record.expected_gaps = std::vector<TruthGap>{{"skipped_status", "PACKAGING", "resolved"}};
  back = DecodeTruth(EncodeTruth(record));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->trace_id, "abc");
  EXPECT_EQ(back->expected_gaps, record.expected_gaps);
}

json Gap(std::string order_id, std::string kind, std::string stage, std::string state) {
  return {{"order_id", std::move(order_id)},
          {"kind", std::move(kind)},
          {"stage", std::move(stage)},
          {"state", std::move(state)}};
}

TEST(JudgeOpenGapsTest, CountsOpenGapsAgainstTheTruth) {
  TruthRecord truth = Faulted("lost_price_request");
  EXPECT_EQ(JudgeOpenGaps(truth, json::array({Gap("o-1", "x", "y", "open")})), "");  // no list
  truth.expected_gaps = std::vector<TruthGap>{{"message_not_consumed", "SUBMITTED", "open"},
                                              {"missing_transition", "SUBMITTED", "open"},
                                              {"calculation_overdue", "X", "resolved"}};
  json both = json::array({Gap("o-1", "message_not_consumed", "SUBMITTED", "open"),
                           Gap("o-1", "missing_transition", "SUBMITTED", "open"),
                           Gap("o-1", "calculation_overdue", "X", "resolved")});
  EXPECT_EQ(JudgeOpenGaps(truth, both), "");
  both[1]["state"] = "resolved";
  EXPECT_NE(JudgeOpenGaps(truth, both), "");
}

TEST(ScoreTest, ReplayTruthIsScoredFromTheWholeGapList) {
  auto replayed = [](std::string order_id, std::string kind) {
    TruthRecord truth;
    truth.order_id = std::move(order_id);
    truth.outcome = "closed";
    if (!kind.empty()) {
      const SimFaultKind* fault = FindAnyFault(kind);
      truth.fault = TruthFault{kind, std::string(fault->stage), "", "", 1};
    }
    truth.expected_gaps = std::vector<TruthGap>{};
    return truth;
  };
  std::vector<TruthRecord> truth = {
      replayed("slow", "calculator_slow"), replayed("back", "status_backwards"),
      replayed("crash", "consumer_crash"), replayed("clean", ""), replayed("noisy", "")};
  truth[0].expected_gaps->push_back(
      {"calculation_overdue", "PRICE_CALCULATION_STARTED", "resolved"});
  truth[1].expected_gaps->push_back({"status_backwards", "SHIPPED", "open"});
  json all =
      json::array({Gap("slow", "calculation_overdue", "PRICE_CALCULATION_STARTED", "resolved"),
                   Gap("back", "status_backwards", "SHIPPED", "resolved"),
                   Gap("noisy", "missing_transition", "PACKAGING", "resolved"),
                   Gap("", "source_silent", "", "open")});
  std::vector<std::string> records_read;
  ScoreSources sources;
  sources.record = [&](const std::string& id) -> absl::StatusOr<json> {
    records_read.push_back(id);
    return Record(AllStatuses(), 0.01, 1);
  };
  sources.order_gaps = [](const std::string&) -> absl::StatusOr<json> {
    ADD_FAILURE() << "per-order query while the whole list is available";
    return json::array();
  };
  sources.all_gaps = [&]() -> absl::StatusOr<json> { return all; };
  ScoreReport report = Score(truth, sources, 0);
  EXPECT_TRUE(report.bulk);
  EXPECT_EQ(records_read, std::vector<std::string>{"crash"});  // judged by its record only
  EXPECT_EQ(report.kinds["calculator_slow"].found, 1);
  EXPECT_EQ(report.kinds["status_backwards"].found, 1);  // found, but resolved: open count off
  EXPECT_EQ(report.kinds["consumer_crash"].found, 1);
  EXPECT_EQ(report.fault_free_orders, 2);
  EXPECT_EQ(report.false_alarms, 1);
  ASSERT_EQ(report.false_alarm_orders.size(), 1u);
  EXPECT_EQ(report.false_alarm_orders[0].rfind("noisy", 0), 0u);
  EXPECT_EQ(report.orders_with_expected_gaps, 5);
  EXPECT_EQ(report.open_count_mismatches, 1);
  EXPECT_EQ(report.open_count_mismatch_orders[0].rfind("back", 0), 0u);
  EXPECT_EQ(report.source_gaps, 1);
  EXPECT_EQ(report.gaps_seen, 3);
}

TEST(ScoreTest, UnpageableListFallsBackToOneQueryPerOrder) {
  TruthRecord truth;
  truth.order_id = "o-1";
  truth.outcome = "closed";
  truth.expected_gaps = std::vector<TruthGap>{};
  int per_order = 0;
  ScoreSources sources;
  sources.record = [](const std::string&) -> absl::StatusOr<json> { return Record(AllStatuses()); };
  sources.order_gaps = [&](const std::string&) -> absl::StatusOr<json> {
    ++per_order;
    return json::array();
  };
  sources.all_gaps = []() -> absl::StatusOr<json> { return absl::OutOfRangeError("no cursor"); };
  ScoreReport report = Score({truth}, sources, 0);
  EXPECT_FALSE(report.bulk);
  EXPECT_EQ(per_order, 1);
  EXPECT_EQ(report.false_alarms, 0);
}

}  // namespace
}  // namespace ordertrace::services::sim
