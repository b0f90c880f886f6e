#include "gaps/stage_model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace ordertrace::gaps {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr uint64_t kSecond = 1'000'000'000ULL;
constexpr uint64_t kMinute = 60 * kSecond;
constexpr uint64_t kHour = 60 * kMinute;

StageModel MustCreate(StageModelOptions options) {
  absl::StatusOr<StageModel> model = StageModel::Create(std::move(options));
  EXPECT_TRUE(model.ok()) << model.status();
  return *std::move(model);
}

// The message of the refusal of `options`; fails the test when Create accepts them.
std::string Refusal(StageModelOptions options) {
  absl::StatusOr<StageModel> model = StageModel::Create(std::move(options));
  if (model.ok()) {
    ADD_FAILURE() << "Create accepted a contradictory model";
    return "";
  }
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument) << model.status();
  return std::string(model.status().message());
}

StageRule* MutableRule(StageModelOptions& options, const std::string& status) {
  for (StageRule& rule : options.stages) {
    if (rule.status == status) return &rule;
  }
  ADD_FAILURE() << "no rule for " << status;
  return nullptr;
}

// A lifecycle with a fork: a submitted order is reviewed either quickly or by hand.
StageModelOptions ForkOptions() {
  StageModelOptions options;
  options.statuses = {"INITIATED",     "SUBMITTED", "EXPRESS_REVIEW",
                      "MANUAL_REVIEW", "APPROVED",  "CLOSED"};
  options.transitions = {{"INITIATED", "SUBMITTED"},     {"SUBMITTED", "EXPRESS_REVIEW"},
                         {"SUBMITTED", "MANUAL_REVIEW"}, {"EXPRESS_REVIEW", "APPROVED"},
                         {"MANUAL_REVIEW", "APPROVED"},  {"APPROVED", "CLOSED"}};
  options.terminal = {"CLOSED"};
  options.stages = {{"SUBMITTED", {"EXPRESS_REVIEW", "MANUAL_REVIEW"}, 5 * kMinute, false}};
  options.message_sla_nanos = kMinute;
  return options;
}

TEST(StageModelTest, DefaultModelIsValidAndFollowsTheDesign) {
  StageModel model = MustCreate(DefaultStageModelOptions());

  EXPECT_THAT(model.statuses(),
              ElementsAre("INITIATED", "FILE_UPLOADED", "SUBMITTED", "PRICE_CALCULATION_STARTED",
                          "PRICE_CALCULATED", "MANUFACTURING_APPROVED", "MANUFACTURING_STARTED",
                          "MANUFACTURING_COMPLETED", "PACKAGING", "SHIPPED", "CLOSED"));
  for (const std::string& status : model.statuses()) {
    EXPECT_EQ(model.IsTerminal(status), status == "CLOSED") << status;
  }
  EXPECT_EQ(model.RuleFor("CLOSED"), nullptr);

  // Every non-terminal status has a rule expecting the next one; only the price calculation
  // is a calculation.
  for (size_t i = 0; i + 1 < model.statuses().size(); ++i) {
    const StageRule* rule = model.RuleFor(model.statuses()[i]);
    ASSERT_NE(rule, nullptr) << model.statuses()[i];
    EXPECT_THAT(rule->expected, ElementsAre(model.statuses()[i + 1]));
    EXPECT_GT(rule->sla_nanos, 0u);
    EXPECT_EQ(rule->calculation, rule->status == "PRICE_CALCULATION_STARTED") << rule->status;
  }
  EXPECT_EQ(model.SlaNanos(*model.RuleFor("SUBMITTED"), ""), 10 * kMinute);
  EXPECT_EQ(model.SlaNanos(*model.RuleFor("PRICE_CALCULATION_STARTED"), ""), 30 * kMinute);
  EXPECT_EQ(model.SlaNanos(*model.RuleFor("MANUFACTURING_STARTED"), ""), 8 * kHour);
  EXPECT_EQ(model.SlaNanos(*model.RuleFor("SHIPPED"), ""), 12 * kHour);
  EXPECT_EQ(model.MessageSlaNanos(), 5 * kMinute);
  EXPECT_EQ(model.GraceNanos(), 5 * kSecond);
}

// The server's defaults, written out: deriving them from base/default_lifecycle.h must not
// change one of them.
TEST(StageModelTest, DefaultOptionsAreExactlyTheShippedLifecycle) {
  const StageModelOptions options = DefaultStageModelOptions();
  const std::vector<std::string> statuses = {"INITIATED",
                                             "FILE_UPLOADED",
                                             "SUBMITTED",
                                             "PRICE_CALCULATION_STARTED",
                                             "PRICE_CALCULATED",
                                             "MANUFACTURING_APPROVED",
                                             "MANUFACTURING_STARTED",
                                             "MANUFACTURING_COMPLETED",
                                             "PACKAGING",
                                             "SHIPPED",
                                             "CLOSED"};
  const uint64_t slas[] = {30 * kMinute, 30 * kMinute, 10 * kMinute, 30 * kMinute, 2 * kHour,
                           2 * kHour,    8 * kHour,    1 * kHour,    4 * kHour,    12 * kHour};
  EXPECT_EQ(options.statuses, statuses);
  std::vector<std::pair<std::string, std::string>> chain;
  for (size_t i = 0; i + 1 < statuses.size(); ++i) chain.emplace_back(statuses[i], statuses[i + 1]);
  EXPECT_EQ(options.transitions, chain);
  EXPECT_THAT(options.terminal, ElementsAre("CLOSED"));
  ASSERT_EQ(options.stages.size(), std::size(slas));
  for (size_t i = 0; i < std::size(slas); ++i) {
    const StageRule& rule = options.stages[i];
    EXPECT_EQ(rule.status, statuses[i]);
    EXPECT_THAT(rule.expected, ElementsAre(statuses[i + 1])) << rule.status;
    EXPECT_EQ(rule.sla_nanos, slas[i]) << rule.status;
    EXPECT_EQ(rule.calculation, rule.status == "PRICE_CALCULATION_STARTED") << rule.status;
  }
  EXPECT_EQ(options.message_sla_nanos, 5 * kMinute);
  EXPECT_EQ(options.grace_nanos, 5 * kSecond);
  EXPECT_TRUE(options.partner_sla_nanos.empty());
  EXPECT_EQ(options.time_scale, 1);
}

TEST(StageModelTest, IndexOfIsTheLifecyclePosition) {
  StageModel model = MustCreate(DefaultStageModelOptions());
  EXPECT_EQ(model.IndexOf("INITIATED"), 0);
  EXPECT_EQ(model.IndexOf("SUBMITTED"), 2);
  EXPECT_EQ(model.IndexOf("PRICE_CALCULATION_STARTED"), 3);
  EXPECT_EQ(model.IndexOf("CLOSED"), 10);
  EXPECT_EQ(model.IndexOf("LOST_IN_SPACE"), -1);
  EXPECT_EQ(model.IndexOf(""), -1);
  EXPECT_EQ(model.IndexOf("submitted"), -1);
}

TEST(StageModelTest, IsAllowedFollowsTheTransitionsInTheirDirection) {
  StageModel model = MustCreate(DefaultStageModelOptions());
  EXPECT_TRUE(model.IsAllowed("SUBMITTED", "PRICE_CALCULATION_STARTED"));
  EXPECT_TRUE(model.IsAllowed("SHIPPED", "CLOSED"));
  EXPECT_FALSE(model.IsAllowed("PRICE_CALCULATION_STARTED", "SUBMITTED"));  // backwards
  EXPECT_FALSE(model.IsAllowed("SUBMITTED", "PRICE_CALCULATED"));           // a skip
  EXPECT_FALSE(model.IsAllowed("SUBMITTED", "SUBMITTED"));
  EXPECT_FALSE(model.IsAllowed("CLOSED", "INITIATED"));
  EXPECT_FALSE(model.IsAllowed("NOWHERE", "CLOSED"));
}

TEST(StageModelTest, NextOfListsEveryAllowedNextStatus) {
  StageModel chain = MustCreate(DefaultStageModelOptions());
  EXPECT_THAT(chain.NextOf("SUBMITTED"), ElementsAre("PRICE_CALCULATION_STARTED"));
  EXPECT_THAT(chain.NextOf("PACKAGING"), ElementsAre("SHIPPED"));
  EXPECT_THAT(chain.NextOf("CLOSED"), IsEmpty());
  EXPECT_THAT(chain.NextOf("NOWHERE"), IsEmpty());

  StageModel fork = MustCreate(ForkOptions());
  EXPECT_THAT(fork.NextOf("SUBMITTED"), ElementsAre("EXPRESS_REVIEW", "MANUAL_REVIEW"));
  EXPECT_THAT(fork.NextOf("MANUAL_REVIEW"), ElementsAre("APPROVED"));
  EXPECT_FALSE(fork.IsAllowed("EXPRESS_REVIEW", "MANUAL_REVIEW"));
  EXPECT_THAT(fork.RuleFor("SUBMITTED")->expected, ElementsAre("EXPRESS_REVIEW", "MANUAL_REVIEW"));
  EXPECT_EQ(fork.RuleFor("APPROVED"), nullptr);  // a stage nobody watches
}

TEST(StageModelTest, SlaNanosUsesThePartnersOverrideAndOnlyForThatPartnerAndStage) {
  StageModelOptions options = DefaultStageModelOptions();
  options.partner_sla_nanos["acme"]["SUBMITTED"] = 2 * kMinute;
  options.partner_sla_nanos["acme"]["PACKAGING"] = 1 * kHour;
  StageModel model = MustCreate(options);

  const StageRule& submitted = *model.RuleFor("SUBMITTED");
  EXPECT_EQ(model.SlaNanos(submitted, "acme"), 2 * kMinute);
  EXPECT_EQ(model.SlaNanos(submitted, "globex"), 10 * kMinute);
  EXPECT_EQ(model.SlaNanos(submitted, ""), 10 * kMinute);
  EXPECT_EQ(model.SlaNanos(*model.RuleFor("PACKAGING"), "acme"), 1 * kHour);
  // A stage acme does not override keeps the stage's SLA.
  EXPECT_EQ(model.SlaNanos(*model.RuleFor("SHIPPED"), "acme"), 12 * kHour);
}

TEST(StageModelTest, TimeScaleDividesSlasAndOverridesButNotTheGrace) {
  StageModelOptions options = DefaultStageModelOptions();
  options.partner_sla_nanos["acme"]["SUBMITTED"] = 2 * kMinute;
  options.time_scale = 60;
  StageModel model = MustCreate(options);

  const StageRule& submitted = *model.RuleFor("SUBMITTED");
  EXPECT_EQ(model.SlaNanos(submitted, ""), 10 * kSecond);  // 10 min / 60
  EXPECT_EQ(model.SlaNanos(submitted, "acme"), 2 * kSecond);
  EXPECT_EQ(model.SlaNanos(*model.RuleFor("SHIPPED"), ""), 12 * kMinute);
  EXPECT_EQ(model.MessageSlaNanos(), 5 * kSecond);
  EXPECT_EQ(model.GraceNanos(), 5 * kSecond);

  options.time_scale = 0.5;  // a slowed-down world doubles the SLAs
  StageModel slow = MustCreate(options);
  EXPECT_EQ(slow.SlaNanos(*slow.RuleFor("SUBMITTED"), ""), 20 * kMinute);
}

TEST(StageModelTest, RefusesAnEmptyLifecycle) {
  EXPECT_THAT(Refusal(StageModelOptions{}), HasSubstr("no statuses"));
}

TEST(StageModelTest, RefusesADuplicateStatusNamingIt) {
  StageModelOptions options = DefaultStageModelOptions();
  options.statuses.push_back("SUBMITTED");
  EXPECT_THAT(Refusal(options), AllOf(HasSubstr("SUBMITTED"), HasSubstr("twice")));
}

TEST(StageModelTest, RefusesAnEmptyStatusName) {
  StageModelOptions options = DefaultStageModelOptions();
  options.statuses.insert(options.statuses.begin() + 1, "");
  EXPECT_THAT(Refusal(options), HasSubstr("empty status"));
}

TEST(StageModelTest, RefusesATransitionWithAnUnknownStatusNamingIt) {
  StageModelOptions to_unknown = DefaultStageModelOptions();
  to_unknown.transitions.emplace_back("SUBMITTED", "CANCELLED");
  EXPECT_THAT(Refusal(to_unknown),
              AllOf(HasSubstr("SUBMITTED -> CANCELLED"), HasSubstr("unknown status")));

  StageModelOptions from_unknown = DefaultStageModelOptions();
  from_unknown.transitions.emplace_back("ON_HOLD", "SUBMITTED");
  EXPECT_THAT(Refusal(from_unknown), HasSubstr("ON_HOLD -> SUBMITTED"));
}

TEST(StageModelTest, RefusesATransitionToItself) {
  StageModelOptions options = DefaultStageModelOptions();
  options.transitions.emplace_back("PACKAGING", "PACKAGING");
  EXPECT_THAT(Refusal(options), HasSubstr("PACKAGING -> PACKAGING"));
}

TEST(StageModelTest, RefusesAnExpectedStatusTheStageCannotReach) {
  StageModelOptions options = DefaultStageModelOptions();
  // SUBMITTED -> PRICE_CALCULATED skips PRICE_CALCULATION_STARTED: not an allowed transition.
  MutableRule(options, "SUBMITTED")->expected = {"PRICE_CALCULATED"};
  EXPECT_THAT(Refusal(options),
              AllOf(HasSubstr("SUBMITTED -> PRICE_CALCULATED"), HasSubstr("not allowed")));
}

TEST(StageModelTest, RefusesAnExpectedStatusThatIsUnknown) {
  StageModelOptions options = DefaultStageModelOptions();
  MutableRule(options, "PACKAGING")->expected = {"TELEPORTED"};
  EXPECT_THAT(Refusal(options), AllOf(HasSubstr("PACKAGING"), HasSubstr("TELEPORTED")));
}

TEST(StageModelTest, RefusesAStageThatExpectsNothing) {
  StageModelOptions options = DefaultStageModelOptions();
  MutableRule(options, "PACKAGING")->expected.clear();
  EXPECT_THAT(Refusal(options), AllOf(HasSubstr("PACKAGING"), HasSubstr("expects no")));
}

TEST(StageModelTest, RefusesATerminalStatusWithAWayOut) {
  StageModelOptions options = DefaultStageModelOptions();
  options.transitions.emplace_back("CLOSED", "INITIATED");
  EXPECT_THAT(Refusal(options),
              AllOf(HasSubstr("terminal status CLOSED"), HasSubstr("transition out")));
}

TEST(StageModelTest, RefusesATerminalStatusWithAnSla) {
  StageModelOptions options = DefaultStageModelOptions();
  options.stages.push_back({"CLOSED", {"SHIPPED"}, kHour, false});
  EXPECT_THAT(Refusal(options), AllOf(HasSubstr("CLOSED"), HasSubstr("cannot have an SLA")));
}

TEST(StageModelTest, RefusesAnUnknownTerminalStatus) {
  StageModelOptions options = DefaultStageModelOptions();
  options.terminal.push_back("ARCHIVED");
  EXPECT_THAT(Refusal(options), AllOf(HasSubstr("ARCHIVED"), HasSubstr("unknown")));
}

TEST(StageModelTest, RefusesALifecycleWithoutTerminalStatus) {
  StageModelOptions options = DefaultStageModelOptions();
  options.terminal.clear();
  EXPECT_THAT(Refusal(options), HasSubstr("no terminal status"));
}

TEST(StageModelTest, RefusesADeadEndThatIsNotTerminal) {
  StageModelOptions options = DefaultStageModelOptions();
  // CANCELLED can be reached but never left, and is not terminal.
  options.statuses.push_back("CANCELLED");
  options.transitions.emplace_back("SUBMITTED", "CANCELLED");
  EXPECT_THAT(Refusal(options), AllOf(HasSubstr("CANCELLED"), HasSubstr("dead end")));

  options.terminal.push_back("CANCELLED");
  MustCreate(options);
}

TEST(StageModelTest, RefusesAZeroSlaNamingTheStage) {
  StageModelOptions options = DefaultStageModelOptions();
  MutableRule(options, "MANUFACTURING_STARTED")->sla_nanos = 0;
  EXPECT_THAT(Refusal(options), AllOf(HasSubstr("MANUFACTURING_STARTED"), HasSubstr("zero SLA")));
}

TEST(StageModelTest, RefusesTwoRulesForOneStage) {
  StageModelOptions options = DefaultStageModelOptions();
  options.stages.push_back({"SUBMITTED", {"PRICE_CALCULATION_STARTED"}, kHour, false});
  EXPECT_THAT(Refusal(options), AllOf(HasSubstr("SUBMITTED"), HasSubstr("two rules")));
}

TEST(StageModelTest, RefusesARuleForAnUnknownStage) {
  StageModelOptions options = DefaultStageModelOptions();
  options.stages.push_back({"QUALITY_CHECK", {"PACKAGING"}, kHour, false});
  EXPECT_THAT(Refusal(options), AllOf(HasSubstr("QUALITY_CHECK"), HasSubstr("unknown")));
}

TEST(StageModelTest, RefusesAPartnerOverrideForAStageWithoutARule) {
  StageModelOptions terminal = DefaultStageModelOptions();
  terminal.partner_sla_nanos["acme"]["CLOSED"] = kHour;
  EXPECT_THAT(Refusal(terminal),
              AllOf(HasSubstr("acme"), HasSubstr("CLOSED"), HasSubstr("no SLA rule")));

  StageModelOptions unknown = DefaultStageModelOptions();
  unknown.partner_sla_nanos["globex"]["SUBMITED"] = kHour;  // a typo
  EXPECT_THAT(Refusal(unknown), AllOf(HasSubstr("globex"), HasSubstr("SUBMITED")));
}

TEST(StageModelTest, RefusesAZeroPartnerSla) {
  StageModelOptions options = DefaultStageModelOptions();
  options.partner_sla_nanos["acme"]["SUBMITTED"] = 0;
  EXPECT_THAT(Refusal(options), AllOf(HasSubstr("acme"), HasSubstr("SUBMITTED")));
}

TEST(StageModelTest, RefusesAZeroMessageSla) {
  StageModelOptions options = DefaultStageModelOptions();
  options.message_sla_nanos = 0;
  EXPECT_THAT(Refusal(options), HasSubstr("message SLA"));
}

TEST(StageModelTest, RefusesATimeScaleThatIsNotAPositiveNumber) {
  for (double scale : {0.0, -1.0, -0.0, std::numeric_limits<double>::quiet_NaN(),
                       std::numeric_limits<double>::infinity()}) {
    StageModelOptions options = DefaultStageModelOptions();
    options.time_scale = scale;
    EXPECT_THAT(Refusal(options), HasSubstr("time_scale")) << "time_scale " << scale;
  }
}

TEST(StageModelTest, AcceptsAForkWithSeveralExpectedStatuses) {
  absl::StatusOr<StageModel> model = StageModel::Create(ForkOptions());
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->IndexOf("MANUAL_REVIEW"), 3);
}

}  // namespace
}  // namespace ordertrace::gaps
