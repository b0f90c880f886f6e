#include "gaps/gap_rules.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ordertrace::gaps {
namespace {

using model::MessageHop;
using model::OrderRecord;
using model::StatusReached;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr uint64_t kSecond = 1'000'000'000ULL;
constexpr uint64_t kMinute = 60 * kSecond;
constexpr uint64_t kHour = 60 * kMinute;
constexpr uint64_t kT = 1'704'067'200ULL * kSecond;
constexpr uint64_t kGrace = 5 * kSecond;

StatusReached Reached(std::string status, std::string prev, uint64_t at, int64_t version) {
  StatusReached reached;
  reached.status = std::move(status);
  reached.prev_status = std::move(prev);
  reached.at_unix_nano = at;
  reached.event_version = version;
  reached.service = "shop-api";
  reached.span_name = "Set" + reached.status;
  return reached;
}

// An order through `statuses` of the default lifecycle, each at the given time, in order.
OrderRecord Order(std::vector<std::pair<std::string, uint64_t>> statuses) {
  OrderRecord record;
  record.order_id = "ord-1";
  record.partner_id = "acme";
  std::string prev;
  int64_t version = 1;
  for (const auto& [status, at] : statuses) {
    record.statuses.push_back(Reached(status, prev, at, version++));
    prev = status;
  }
  return record;
}

class GapRulesTest : public testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<StageModel> model = StageModel::Create(DefaultStageModelOptions());
    ASSERT_TRUE(model.ok()) << model.status();
    model_.emplace(*std::move(model));
  }
  OrderGaps Evaluate(const OrderRecord& record) { return EvaluateOrder(*model_, record); }

  std::optional<StageModel> model_;
};

TEST_F(GapRulesTest, PendingStageAndMessageDeadlines) {
  OrderRecord record = Order({{"INITIATED", kT},
                              {"FILE_UPLOADED", kT + kMinute},
                              {"SUBMITTED", kT + 2 * kMinute},
                              {"PRICE_CALCULATION_STARTED", kT + 3 * kMinute},
                              {"PRICE_CALCULATED", kT + 4 * kMinute}});
  MessageHop hop;
  hop.message_id = "msg-1";
  hop.queue = "q";
  hop.published_at_unix_nano = kT + 4 * kMinute;
  record.messages = {hop};
  OrderGaps gaps = Evaluate(record);
  EXPECT_THAT(gaps.settled, IsEmpty());
  ASSERT_TRUE(gaps.stage.has_value());
  EXPECT_EQ(gaps.stage->status, "PRICE_CALCULATED");
  EXPECT_EQ(gaps.stage->stage, 4);
  EXPECT_EQ(gaps.stage->since_unix_nano, kT + 4 * kMinute);
  EXPECT_EQ(gaps.stage->deadline_unix_nano, kT + 4 * kMinute + 2 * kHour + kGrace);
  EXPECT_EQ(gaps.stage->gap_id, GapId("ord-1", kMissingTransition, "PRICE_CALCULATED"));
  ASSERT_THAT(gaps.messages, SizeIs(1));
  EXPECT_EQ(gaps.messages[0].message_id, "msg-1");
  EXPECT_EQ(gaps.messages[0].deadline_unix_nano, kT + 4 * kMinute + 5 * kMinute + kGrace);
  EXPECT_EQ(gaps.messages[0].gap_id, GapId("ord-1", kMessageNotConsumed, "", "msg-1"));

  // The calculation stage's deadline is a calculation_overdue one.
  record.statuses.pop_back();
  record.messages.clear();
  gaps = Evaluate(record);
  ASSERT_TRUE(gaps.stage.has_value());
  EXPECT_EQ(gaps.stage->gap_id, GapId("ord-1", kCalculationOverdue, "PRICE_CALCULATION_STARTED"));
}

TEST_F(GapRulesTest, StageLeftLateIsASettledResolvedGap) {
  const OrderRecord record = Order({{"INITIATED", kT}, {"FILE_UPLOADED", kT + kHour}});
  OrderGaps gaps = Evaluate(record);
  ASSERT_THAT(gaps.settled, SizeIs(1));
  const Gap& gap = gaps.settled[0];
  EXPECT_EQ(gap.id, GapId("ord-1", kMissingTransition, "INITIATED"));
  EXPECT_EQ(gap.kind, kMissingTransition);
  EXPECT_EQ(gap.stage, "INITIATED");
  EXPECT_THAT(gap.expected, ElementsAre("FILE_UPLOADED"));
  EXPECT_EQ(gap.since_unix_nano, kT);
  EXPECT_EQ(gap.deadline_unix_nano, kT + 30 * kMinute + kGrace);
  EXPECT_EQ(gap.resolved_at_unix_nano, kT + kHour);
  EXPECT_EQ(gap.resolved_by, "FILE_UPLOADED");
  EXPECT_FALSE(gap.IsOpen());
  EXPECT_EQ(gap.detected_at_unix_nano, 0u);  // the detector's to fill
  ASSERT_TRUE(gaps.stage.has_value());
  EXPECT_EQ(gaps.stage->status, "FILE_UPLOADED");
}

TEST_F(GapRulesTest, StageLeftInTimeImpliesNothing) {
  const uint64_t deadline = kT + 30 * kMinute + kGrace;
  EXPECT_THAT(Evaluate(Order({{"INITIATED", kT}, {"FILE_UPLOADED", deadline}})).settled, IsEmpty());
  EXPECT_THAT(Evaluate(Order({{"INITIATED", kT}, {"FILE_UPLOADED", deadline + 1}})).settled,
              SizeIs(1));
}

TEST_F(GapRulesTest, TerminalOrderHasNoPendingStage) {
  std::vector<std::pair<std::string, uint64_t>> statuses;
  uint64_t at = kT;
  for (const std::string& status : DefaultStageModelOptions().statuses) {
    statuses.emplace_back(status, at);
    at += kMinute;
  }
  OrderGaps gaps = Evaluate(Order(statuses));
  EXPECT_FALSE(gaps.stage.has_value());
  EXPECT_THAT(gaps.settled, IsEmpty());
}

TEST_F(GapRulesTest, UnknownStatusNeitherOpensNorLeavesAStage) {
  OrderRecord record = Order({{"INITIATED", kT}, {"FILE_UPLOADED", kT + kMinute}});
  record.statuses.push_back(Reached("NUKED", "FILE_UPLOADED", kT + 2 * kMinute, 3));
  OrderGaps gaps = Evaluate(record);
  // Still watched in FILE_UPLOADED, since it was reached.
  ASSERT_TRUE(gaps.stage.has_value());
  EXPECT_EQ(gaps.stage->status, "FILE_UPLOADED");
  EXPECT_EQ(gaps.stage->deadline_unix_nano, kT + kMinute + 30 * kMinute + kGrace);

  // And a stage left late only by the unknown status is not left.
  record = Order({{"INITIATED", kT}});
  record.statuses.push_back(Reached("NUKED", "INITIATED", kT + kHour, 2));
  gaps = Evaluate(record);
  ASSERT_TRUE(gaps.stage.has_value());
  EXPECT_EQ(gaps.stage->status, "INITIATED");
  for (const Gap& gap : gaps.settled) EXPECT_NE(gap.kind, kMissingTransition) << gap.id;
}

TEST_F(GapRulesTest, UnknownStatusOpensAConflictAndKeepsTheStageDeadline) {
  OrderRecord record = Order({{"INITIATED", kT}, {"FILE_UPLOADED", kT + kMinute}});
  record.statuses.push_back(Reached("NUKED", "FILE_UPLOADED", kT + 2 * kMinute, 3));
  OrderGaps gaps = Evaluate(record);

  ASSERT_THAT(gaps.settled, SizeIs(1));
  const Gap& conflict = gaps.settled[0];
  EXPECT_EQ(conflict.kind, kForbiddenTransition);
  EXPECT_EQ(conflict.stage, "NUKED");
  EXPECT_THAT(conflict.expected, ElementsAre("SUBMITTED"));
  EXPECT_EQ(conflict.since_unix_nano, kT + 2 * kMinute);
  EXPECT_EQ(conflict.resolved_at_unix_nano, 0u) << "open until the order ends";
  EXPECT_NE(conflict.detail.find("does not know"), std::string::npos) << conflict.detail;
  ASSERT_TRUE(gaps.stage.has_value()) << "the deadline is not disarmed";
  EXPECT_EQ(gaps.stage->status, "FILE_UPLOADED");

  // Without a previous status too; and once the order reaches its terminal status the conflict
  // is resolved by it.
  record = Order({{"INITIATED", kT}});
  record.statuses.push_back(Reached("NUKED", "", kT + kMinute, 2));
  gaps = Evaluate(record);
  ASSERT_THAT(gaps.settled, SizeIs(1));
  EXPECT_EQ(gaps.settled[0].kind, kForbiddenTransition);
  std::vector<std::pair<std::string, uint64_t>> chain;
  uint64_t at = kT;
  for (const std::string& status : model_->statuses()) {
    chain.emplace_back(status, at);
    at += kMinute;
  }
  record = Order(chain);
  record.statuses.insert(record.statuses.begin() + 1, Reached("NUKED", "INITIATED", kT + 1, 1));
  gaps = Evaluate(record);
  ASSERT_THAT(gaps.settled, SizeIs(1));
  EXPECT_EQ(gaps.settled[0].resolved_by, "CLOSED");
}

TEST_F(GapRulesTest, MessageConsumedAfterItsDeadlineIsSettledInThePublishStage) {
  OrderRecord record =
      Order({{"INITIATED", kT}, {"FILE_UPLOADED", kT + kMinute}, {"SUBMITTED", kT + 2 * kMinute}});
  MessageHop hop;
  hop.message_id = "msg-1";
  hop.queue = "q";
  hop.published_at_unix_nano = kT + 90 * kSecond;  // while FILE_UPLOADED
  hop.consumed_at_unix_nano = kT + kHour;
  record.messages = {hop};
  OrderGaps gaps = Evaluate(record);
  EXPECT_THAT(gaps.messages, IsEmpty());
  ASSERT_THAT(gaps.settled, SizeIs(1));
  const Gap& gap = gaps.settled[0];
  EXPECT_EQ(gap.id, GapId("ord-1", kMessageNotConsumed, "", "msg-1"));
  EXPECT_EQ(gap.stage, "FILE_UPLOADED");
  EXPECT_EQ(gap.queue, "q");
  EXPECT_EQ(gap.since_unix_nano, kT + 90 * kSecond);
  EXPECT_EQ(gap.deadline_unix_nano, kT + 90 * kSecond + 5 * kMinute + kGrace);
  EXPECT_EQ(gap.resolved_at_unix_nano, kT + kHour);
  EXPECT_EQ(gap.resolved_by, "consumed");

  // Consumed in time: nothing.
  record.messages[0].consumed_at_unix_nano = kT + 2 * kMinute;
  EXPECT_THAT(Evaluate(record).settled, IsEmpty());
}

TEST_F(GapRulesTest, AMessagePublishedByATransitionBelongsToItsStatus) {
  // The services publish within the transition's span, which ends (and so reaches SUBMITTED)
  // a moment after the publish started: the message is SUBMITTED's, not FILE_UPLOADED's.
  OrderRecord record =
      Order({{"INITIATED", kT}, {"FILE_UPLOADED", kT + kMinute}, {"SUBMITTED", kT + 2 * kMinute}});
  for (size_t i = 0; i < record.statuses.size(); ++i) record.statuses[i].span_id.bytes[7] = i + 1;
  MessageHop hop;
  hop.message_id = "msg-1";
  hop.queue = "mes.price.requests";
  hop.published_at_unix_nano = kT + 2 * kMinute - 57'000;  // 57 us before the span ended
  hop.published_by = record.statuses[2].span_id;
  record.messages = {hop};
  OrderGaps gaps = Evaluate(record);
  ASSERT_THAT(gaps.settled, IsEmpty());
  ASSERT_THAT(gaps.messages, SizeIs(1));
  // The gap as the detector opens it past the deadline.
  Gap gap = UnconsumedMessageGap(*model_, record, gaps.messages[0]);
  EXPECT_EQ(gap.stage, "SUBMITTED");
  EXPECT_EQ(gap.since_unix_nano, hop.published_at_unix_nano);

  // Published by an operation that reached no status: the status at the publish time.
  record.messages[0].published_by.bytes[0] = 0x77;
  EXPECT_EQ(UnconsumedMessageGap(*model_, record, gaps.messages[0]).stage, "FILE_UPLOADED");
  record.messages[0].published_by = {};
  EXPECT_EQ(UnconsumedMessageGap(*model_, record, gaps.messages[0]).stage, "FILE_UPLOADED");
}

TEST_F(GapRulesTest, ConflictsAreResolvedByTheTerminalStatus) {
  // MANUFACTURING_COMPLETED -> SHIPPED skips PACKAGING; open until CLOSED.
  std::vector<std::pair<std::string, uint64_t>> statuses;
  uint64_t at = kT;
  for (const std::string& status : DefaultStageModelOptions().statuses) {
    if (status == "PACKAGING") continue;
    statuses.emplace_back(status, at);
    at += kMinute;
  }
  OrderRecord closed = Order(statuses);
  OrderRecord shipped = closed;
  shipped.statuses.pop_back();

  OrderGaps gaps = Evaluate(shipped);
  ASSERT_THAT(gaps.settled, SizeIs(1));
  EXPECT_EQ(gaps.settled[0].id, GapId("ord-1", kSkippedStatus, "PACKAGING"));
  EXPECT_TRUE(gaps.settled[0].IsOpen());
  EXPECT_EQ(gaps.settled[0].since_unix_nano, shipped.statuses.back().at_unix_nano);

  gaps = Evaluate(closed);
  ASSERT_THAT(gaps.settled, SizeIs(1));
  EXPECT_EQ(gaps.settled[0].resolved_by, "CLOSED");
  EXPECT_EQ(gaps.settled[0].resolved_at_unix_nano, closed.statuses.back().at_unix_nano);
}

TEST_F(GapRulesTest, DisagreementIsOpenUntilTheOrderLeavesTheStage) {
  OrderRecord record = Order({{"INITIATED", kT},
                              {"FILE_UPLOADED", kT + kMinute},
                              {"SUBMITTED", kT + 2 * kMinute},
                              {"PRICE_CALCULATION_STARTED", kT + 3 * kMinute},
                              {"PRICE_CALCULATED", kT + 4 * kMinute},
                              {"MANUFACTURING_APPROVED", kT + 5 * kMinute}});
  model::Operation refusal;
  refusal.service = "mes-api";
  refusal.span_name = "StartManufacturing";
  refusal.at_unix_nano = kT + 6 * kMinute;
  refusal.reported_status = "PRICE_CALCULATED";
  record.last_error = refusal;
  OrderGaps gaps = Evaluate(record);
  ASSERT_THAT(gaps.settled, SizeIs(1));
  EXPECT_EQ(gaps.settled[0].kind, kStatusDisagreement);
  EXPECT_EQ(gaps.settled[0].stage, "MANUFACTURING_APPROVED");
  EXPECT_TRUE(gaps.settled[0].IsOpen());

  record.statuses.push_back(
      Reached("MANUFACTURING_STARTED", "MANUFACTURING_APPROVED", kT + 7 * kMinute, 7));
  gaps = Evaluate(record);
  ASSERT_THAT(gaps.settled, SizeIs(1));
  EXPECT_EQ(gaps.settled[0].resolved_by, "MANUFACTURING_STARTED");
  EXPECT_EQ(gaps.settled[0].resolved_at_unix_nano, kT + 7 * kMinute);
}

TEST_F(GapRulesTest, DeadlinesSaturateNearTheEndOfTime) {
  EXPECT_EQ(AddSaturating(UINT64_MAX - 1, 2), UINT64_MAX);
  EXPECT_EQ(AddSaturating(1, 2), 3u);
  const uint64_t late = UINT64_MAX - kSecond;
  OrderRecord record = Order({{"INITIATED", late}});
  MessageHop hop;
  hop.message_id = "msg-1";
  hop.published_at_unix_nano = late;
  record.messages = {hop};
  OrderGaps gaps = Evaluate(record);
  ASSERT_TRUE(gaps.stage.has_value());
  EXPECT_EQ(gaps.stage->deadline_unix_nano, UINT64_MAX);
  ASSERT_THAT(gaps.messages, SizeIs(1));
  EXPECT_EQ(gaps.messages[0].deadline_unix_nano, UINT64_MAX);
  // A stage left at the end of time is never late.
  record = Order({{"INITIATED", late}, {"FILE_UPLOADED", UINT64_MAX}});
  EXPECT_THAT(Evaluate(record).settled, IsEmpty());
}

TEST_F(GapRulesTest, OnlyDeadlineKindsAreJudgedFromDeadlines) {
  EXPECT_TRUE(IsDeadlineKind(kMissingTransition));
  EXPECT_TRUE(IsDeadlineKind(kCalculationOverdue));
  EXPECT_TRUE(IsDeadlineKind(kMessageNotConsumed));
  EXPECT_FALSE(IsDeadlineKind(kSkippedStatus));
  EXPECT_FALSE(IsDeadlineKind(kSourceSilent));
}

}  // namespace
}  // namespace ordertrace::gaps
