// The `lifecycle:` and `alertmanager:` sections of ordertrace.yaml, and what Validate refuses
// of them. (The other config tests live with the embedded server in tests/server_test.cc.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "gaps/stage_model.h"
#include "server/config.h"
#include "tests/support/config_refusals.h"

namespace ordertrace::server {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr uint64_t kSecond = 1'000'000'000ULL;
constexpr uint64_t kMinute = 60 * kSecond;
constexpr uint64_t kHour = 60 * kMinute;

const gaps::StageRule* RuleOf(const gaps::StageModelOptions& options, const std::string& status) {
  for (const gaps::StageRule& rule : options.stages) {
    if (rule.status == status) return &rule;
  }
  return nullptr;
}

// The repository root, as the build names it: __FILE__ is relative when ccache rewrites paths
// (base_dir), and then points nowhere from the directory ctest runs the test in.
std::filesystem::path RepositoryRoot() { return ORDERTRACE_SOURCE_DIR; }

class ConfigLifecycleTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = testing::TempDir() + "ordertrace_config_lifecycle_test_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& yaml) {
    std::string path = (std::filesystem::path(dir_) / "ordertrace.yaml").string();
    std::ofstream(path) << yaml;
    return path;
  }
  absl::StatusOr<ServerConfig> Load(const std::string& yaml) { return LoadConfigFile(Write(yaml)); }
  // The message of the refusal to load `yaml`; fails the test when it loads.
  std::string LoadError(const std::string& yaml) {
    return test_support::LoadRefusal(Load(yaml), yaml);
  }
  // The message of Validate's refusal of a config that loads; fails the test otherwise.
  std::string ValidateError(const std::string& yaml) {
    return std::string(test_support::ValidateRefusal(Load(yaml), yaml).message());
  }

  std::string dir_;
};

TEST_F(ConfigLifecycleTest, DefaultsAreTheDesignsLifecycleAndNoAlertmanager) {
  absl::StatusOr<ServerConfig> config = Load("log_level: info\n");
  ASSERT_TRUE(config.ok()) << config.status();
  const gaps::StageModelOptions defaults = gaps::DefaultStageModelOptions();
  EXPECT_EQ(config->lifecycle.statuses, defaults.statuses);
  EXPECT_EQ(config->lifecycle.transitions, defaults.transitions);
  EXPECT_EQ(config->lifecycle.stages.size(), defaults.stages.size());
  EXPECT_EQ(config->lifecycle.grace_nanos, 5 * kSecond);
  EXPECT_EQ(config->alertmanager_url, "");
  EXPECT_EQ(config->alertmanager_resend_nanos, kMinute);
  EXPECT_TRUE(Validate(*config).ok());
}

TEST_F(ConfigLifecycleTest, ReadsAWholeLifecycleAndAlertmanager) {
  absl::StatusOr<ServerConfig> config = Load(R"(
lifecycle:
  statuses: [NEW, PAID, PACKED, SHIPPED, DONE, CANCELLED]
  transitions:
    - NEW -> PAID
    - PAID -> PACKED
    - PACKED -> SHIPPED
    - SHIPPED -> DONE
    - NEW -> CANCELLED
    - PAID->CANCELLED
  terminal: [DONE, CANCELLED]
  stages:
    NEW: {expected: [PAID, CANCELLED], sla: 30m}
    PAID:
      expected: PACKED
      sla: 2h
      calculation: true
    PACKED: {expected: [SHIPPED], sla: 1h30m}
    SHIPPED: {expected: [DONE], sla: 3d}
  partners:
    acme: {PAID: 4h, PACKED: 10m}
    globex: {NEW: 1h}
  message_sla: 90s
  grace: 2s
  time_scale: 10
alertmanager:
  url: http://127.0.0.1:9093
  external_url: https://ordertrace.example:8686
  resend_interval: 2m
)");
  ASSERT_TRUE(config.ok()) << config.status();
  const gaps::StageModelOptions& lifecycle = config->lifecycle;
  EXPECT_THAT(lifecycle.statuses,
              ElementsAre("NEW", "PAID", "PACKED", "SHIPPED", "DONE", "CANCELLED"));
  EXPECT_THAT(
      lifecycle.transitions,
      ElementsAre(Pair("NEW", "PAID"), Pair("PAID", "PACKED"), Pair("PACKED", "SHIPPED"),
                  Pair("SHIPPED", "DONE"), Pair("NEW", "CANCELLED"), Pair("PAID", "CANCELLED")));
  EXPECT_THAT(lifecycle.terminal, ElementsAre("DONE", "CANCELLED"));
  ASSERT_EQ(lifecycle.stages.size(), 4u);
  const gaps::StageRule* fresh = RuleOf(lifecycle, "NEW");
  ASSERT_NE(fresh, nullptr);
  EXPECT_THAT(fresh->expected, ElementsAre("PAID", "CANCELLED"));
  EXPECT_EQ(fresh->sla_nanos, 30 * kMinute);
  EXPECT_FALSE(fresh->calculation);
  const gaps::StageRule* paid = RuleOf(lifecycle, "PAID");
  ASSERT_NE(paid, nullptr);
  EXPECT_THAT(paid->expected, ElementsAre("PACKED"));  // a single name is a list of one
  EXPECT_EQ(paid->sla_nanos, 2 * kHour);
  EXPECT_TRUE(paid->calculation);
  EXPECT_EQ(RuleOf(lifecycle, "PACKED")->sla_nanos, 90 * kMinute);
  EXPECT_EQ(RuleOf(lifecycle, "SHIPPED")->sla_nanos, 72 * kHour);
  EXPECT_THAT(lifecycle.partner_sla_nanos,
              UnorderedElementsAre(Pair("acme", UnorderedElementsAre(Pair("PAID", 4 * kHour),
                                                                     Pair("PACKED", 10 * kMinute))),
                                   Pair("globex", UnorderedElementsAre(Pair("NEW", kHour)))));
  EXPECT_EQ(lifecycle.message_sla_nanos, 90 * kSecond);
  EXPECT_EQ(lifecycle.grace_nanos, 2 * kSecond);
  EXPECT_EQ(lifecycle.time_scale, 10.0);
  EXPECT_EQ(config->alertmanager_url, "http://127.0.0.1:9093");
  EXPECT_EQ(config->external_url, "https://ordertrace.example:8686");
  EXPECT_EQ(config->alertmanager_resend_nanos, 2 * kMinute);

  ASSERT_TRUE(Validate(*config).ok()) << Validate(*config);
  absl::StatusOr<gaps::StageModel> model = gaps::StageModel::Create(lifecycle);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->SlaNanos(*model->RuleFor("PAID"), "acme"), 4 * kHour / 10);
  EXPECT_TRUE(model->IsAllowed("PAID", "CANCELLED"));
  EXPECT_TRUE(model->IsTerminal("CANCELLED"));
}

TEST_F(ConfigLifecycleTest, StatusesAloneMakeAStraightChainEndingInATerminalWithoutSlas) {
  absl::StatusOr<ServerConfig> config = Load("lifecycle:\n  statuses: [A, B, C]\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->lifecycle.transitions, ElementsAre(Pair("A", "B"), Pair("B", "C")));
  EXPECT_THAT(config->lifecycle.terminal, ElementsAre("C"));
  EXPECT_THAT(config->lifecycle.stages, IsEmpty());
  EXPECT_TRUE(Validate(*config).ok()) << Validate(*config);
}

TEST_F(ConfigLifecycleTest, StagesMergeOverTheDefaultsFieldByField) {
  absl::StatusOr<ServerConfig> config = Load(R"(
lifecycle:
  stages:
    SUBMITTED: {sla: 20m}
    PACKAGING: {expected: [SHIPPED], sla: 6h}
    PRICE_CALCULATED: {calculation: true}
)");
  ASSERT_TRUE(config.ok()) << config.status();
  const gaps::StageModelOptions defaults = gaps::DefaultStageModelOptions();
  const gaps::StageModelOptions& lifecycle = config->lifecycle;
  EXPECT_EQ(lifecycle.statuses, defaults.statuses);
  EXPECT_EQ(lifecycle.stages.size(), defaults.stages.size());

  const gaps::StageRule* submitted = RuleOf(lifecycle, "SUBMITTED");
  ASSERT_NE(submitted, nullptr);
  EXPECT_EQ(submitted->sla_nanos, 20 * kMinute);
  EXPECT_THAT(submitted->expected, ElementsAre("PRICE_CALCULATION_STARTED"));  // kept
  EXPECT_EQ(RuleOf(lifecycle, "PACKAGING")->sla_nanos, 6 * kHour);
  const gaps::StageRule* calculated = RuleOf(lifecycle, "PRICE_CALCULATED");
  EXPECT_TRUE(calculated->calculation);
  EXPECT_EQ(calculated->sla_nanos, 2 * kHour);  // kept
  EXPECT_THAT(calculated->expected, ElementsAre("MANUFACTURING_APPROVED"));
  // Untouched stages stay as they were.
  EXPECT_EQ(RuleOf(lifecycle, "SHIPPED")->sla_nanos, 12 * kHour);
  EXPECT_TRUE(RuleOf(lifecycle, "PRICE_CALCULATION_STARTED")->calculation);
  EXPECT_TRUE(Validate(*config).ok()) << Validate(*config);
}

// Tuning only the price calculation's SLA must not turn its calculation_overdue gaps into
// missing_transition ones: a field not given keeps its default, `calculation` included.
TEST_F(ConfigLifecycleTest, ChangingOnlyTheSlaOfTheCalculationKeepsItACalculation) {
  absl::StatusOr<ServerConfig> config =
      Load("lifecycle:\n  stages:\n    PRICE_CALCULATION_STARTED: {sla: 45m}\n");
  ASSERT_TRUE(config.ok()) << config.status();
  const gaps::StageRule* rule = RuleOf(config->lifecycle, "PRICE_CALCULATION_STARTED");
  ASSERT_NE(rule, nullptr);
  EXPECT_EQ(rule->sla_nanos, 45 * kMinute);
  EXPECT_TRUE(rule->calculation);

  config = Load(
      "lifecycle:\n  stages:\n    PRICE_CALCULATION_STARTED: {sla: 45m, calculation: false}\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(RuleOf(config->lifecycle, "PRICE_CALCULATION_STARTED")->calculation);
}

TEST_F(ConfigLifecycleTest, TransitionsAloneReplaceTheDefaultOnes) {
  absl::StatusOr<ServerConfig> config = Load(R"(
lifecycle:
  statuses: [A, B, C]
  transitions: ["A -> B", "A -> C", "B -> C"]
)");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->lifecycle.transitions,
              ElementsAre(Pair("A", "B"), Pair("A", "C"), Pair("B", "C")));
}

TEST_F(ConfigLifecycleTest, TheShippedConfigFileLoadsAndValidates) {
  const std::string path = (RepositoryRoot() / "ordertrace.yaml").string();
  absl::StatusOr<ServerConfig> config = LoadConfigFile(path);
  ASSERT_TRUE(config.ok()) << path << ": " << config.status();
  EXPECT_TRUE(Validate(*config).ok()) << path << ": " << Validate(*config);
  const gaps::StageRule* calculation = RuleOf(config->lifecycle, "PRICE_CALCULATION_STARTED");
  ASSERT_NE(calculation, nullptr);
  EXPECT_TRUE(calculation->calculation);
}

// Bad shapes: one error that names the key.

TEST_F(ConfigLifecycleTest, ListsThatAreNotListsAreRefusedByName) {
  EXPECT_THAT(LoadError("lifecycle:\n  statuses: NEW\n"),
              AllOf(HasSubstr("lifecycle.statuses"), HasSubstr("list")));
  EXPECT_THAT(LoadError("lifecycle:\n  statuses: [[A, B], C]\n"), HasSubstr("lifecycle.statuses"));
  EXPECT_THAT(LoadError("lifecycle:\n  transitions: {A: B}\n"), HasSubstr("lifecycle.transitions"));
  EXPECT_THAT(LoadError("lifecycle:\n  terminal: CLOSED\n"), HasSubstr("lifecycle.terminal"));
}

TEST_F(ConfigLifecycleTest, TransitionWithoutAnArrowIsRefusedQuotingIt) {
  EXPECT_THAT(LoadError("lifecycle:\n  transitions: [\"SUBMITTED => CLOSED\"]\n"),
              AllOf(HasSubstr("lifecycle.transitions"), HasSubstr("SUBMITTED => CLOSED"),
                    HasSubstr("FROM -> TO")));
}

TEST_F(ConfigLifecycleTest, BadStagesAreRefusedNamingTheStageAndField) {
  EXPECT_THAT(LoadError("lifecycle:\n  stages: [SUBMITTED]\n"),
              AllOf(HasSubstr("lifecycle.stages"), HasSubstr("map")));
  EXPECT_THAT(LoadError("lifecycle:\n  stages:\n    SUBMITTED: 10m\n"),
              HasSubstr("lifecycle.stages.SUBMITTED"));
  EXPECT_THAT(LoadError("lifecycle:\n  stages:\n    SUBMITTED: {sla: soon}\n"),
              AllOf(HasSubstr("lifecycle.stages.SUBMITTED.sla"), HasSubstr("soon")));
  EXPECT_THAT(LoadError("lifecycle:\n  stages:\n    SUBMITTED: {sla: [10m]}\n"),
              HasSubstr("lifecycle.stages.SUBMITTED.sla"));
  EXPECT_THAT(LoadError("lifecycle:\n  stages:\n    SUBMITTED: {expected: {A: B}}\n"),
              HasSubstr("lifecycle.stages.SUBMITTED.expected"));
  EXPECT_THAT(LoadError("lifecycle:\n  stages:\n    SUBMITTED: {calculation: maybe}\n"),
              HasSubstr("lifecycle.stages.SUBMITTED.calculation"));
  EXPECT_THAT(LoadError("lifecycle:\n  stages:\n    SUBMITTED: {slaa: 10m}\n"),
              AllOf(HasSubstr("unknown setting"), HasSubstr("lifecycle.stages.SUBMITTED.slaa")));
}

TEST_F(ConfigLifecycleTest, BadPartnersAreRefusedNamingThePartnerAndStage) {
  EXPECT_THAT(LoadError("lifecycle:\n  partners: [acme]\n"), HasSubstr("lifecycle.partners"));
  EXPECT_THAT(LoadError("lifecycle:\n  partners:\n    acme: 1h\n"),
              HasSubstr("lifecycle.partners.acme"));
  EXPECT_THAT(LoadError("lifecycle:\n  partners:\n    acme: {SUBMITTED: fast}\n"),
              AllOf(HasSubstr("lifecycle.partners.acme.SUBMITTED"), HasSubstr("fast")));
}

TEST_F(ConfigLifecycleTest, BadScalarsAreRefusedByKey) {
  EXPECT_THAT(LoadError("lifecycle:\n  message_sla: 5 minutes\n"),
              HasSubstr("lifecycle.message_sla"));
  EXPECT_THAT(LoadError("lifecycle:\n  grace: [5s]\n"), HasSubstr("lifecycle.grace"));
  EXPECT_THAT(LoadError("lifecycle:\n  time_scale: fast\n"), HasSubstr("lifecycle.time_scale"));
  EXPECT_THAT(LoadError("lifecycle:\n  grace_period: 5s\n"),
              AllOf(HasSubstr("unknown setting"), HasSubstr("lifecycle.grace_period")));
  EXPECT_THAT(LoadError("lifecycle: [a, b]\n"), HasSubstr("lifecycle"));
  EXPECT_THAT(LoadError("alertmanager:\n  url: [http://a]\n"), HasSubstr("alertmanager.url"));
  EXPECT_THAT(LoadError("alertmanager:\n  resend_interval: often\n"),
              HasSubstr("alertmanager.resend_interval"));
  EXPECT_THAT(LoadError("alertmanager:\n  ur1: http://a\n"),
              AllOf(HasSubstr("unknown setting"), HasSubstr("alertmanager.ur1")));
}

TEST_F(ConfigLifecycleTest, ErrorsNameTheFile) {
  std::string message = LoadError("lifecycle:\n  statuses: NEW\n");
  EXPECT_THAT(message, HasSubstr(dir_));
}

// Validate: a model that contradicts itself, and a URL that is not one.

TEST_F(ConfigLifecycleTest, ValidateRefusesAContradictoryModelNamingTheCulprit) {
  EXPECT_THAT(
      ValidateError("lifecycle:\n  stages:\n    SUBMITTED: {expected: [PRICE_CALCULATED]}\n"),
      AllOf(HasSubstr("lifecycle"), HasSubstr("SUBMITTED -> PRICE_CALCULATED")));
  EXPECT_THAT(ValidateError("lifecycle:\n  transitions: [\"A -> B\"]\n"), HasSubstr("A -> B"));
  // A thread count past what a process may start is refused, not an abort at start.
  EXPECT_THAT(ValidateError("ingest:\n  http_threads: 100000\n"),
              HasSubstr("ingest.http_threads must be from 1 to 512"));
  EXPECT_THAT(ValidateError("lifecycle:\n  watermarks:\n    silent_after: 1s\n"),
              HasSubstr("silent_after"));
  EXPECT_THAT(ValidateError("lifecycle:\n  statuses: [A, B, C]\n  terminal: [B]\n"),
              AllOf(HasSubstr("B"), HasSubstr("terminal")));
  EXPECT_THAT(ValidateError("lifecycle:\n  statuses: [A, B, C]\n  transitions: [\"A -> B\"]\n"),
              AllOf(HasSubstr("status B"), HasSubstr("dead end")));
  EXPECT_THAT(ValidateError("lifecycle:\n  stages:\n    CLOSED: {expected: [SHIPPED], sla: 1h}\n"),
              AllOf(HasSubstr("CLOSED"), HasSubstr("SLA")));
  EXPECT_THAT(ValidateError("lifecycle:\n  stages:\n    NEW_STAGE: {expected: [SHIPPED]}\n"),
              HasSubstr("NEW_STAGE"));
  EXPECT_THAT(ValidateError("lifecycle:\n  partners:\n    acme: {CLOSED: 1h}\n"),
              AllOf(HasSubstr("acme"), HasSubstr("CLOSED")));
  EXPECT_THAT(ValidateError("lifecycle:\n  message_sla: 0s\n"), HasSubstr("message SLA"));
  EXPECT_THAT(ValidateError("lifecycle:\n  statuses: []\n"), HasSubstr("no statuses"));
}

// A value given for a default stage is taken as given: a zero SLA or an empty list of expected
// statuses is refused, never silently replaced by the default.
TEST_F(ConfigLifecycleTest, ValidateRefusesAZeroSlaOrNoExpectedStatusOverADefaultStage) {
  EXPECT_THAT(ValidateError("lifecycle:\n  stages:\n    SUBMITTED: {sla: 0s}\n"),
              AllOf(HasSubstr("SUBMITTED"), HasSubstr("zero SLA")));
  EXPECT_THAT(ValidateError("lifecycle:\n  stages:\n    SUBMITTED: {expected: []}\n"),
              AllOf(HasSubstr("SUBMITTED"), HasSubstr("expects no")));
}

TEST_F(ConfigLifecycleTest, ValidateRefusesATimeScaleThatIsNotAPositiveNumber) {
  for (const char* scale : {"0", "-2", "nan", "inf"}) {
    EXPECT_THAT(ValidateError(std::string("lifecycle:\n  time_scale: ") + scale + "\n"),
                HasSubstr("time_scale"))
        << scale;
  }
  absl::StatusOr<ServerConfig> half = Load("lifecycle:\n  time_scale: 0.5\n");
  ASSERT_TRUE(half.ok()) << half.status();
  EXPECT_EQ(half->lifecycle.time_scale, 0.5);
  EXPECT_TRUE(Validate(*half).ok());
}

TEST_F(ConfigLifecycleTest, ValidateRefusesAnAlertmanagerUrlThatIsNotHttp) {
  for (const char* url : {"127.0.0.1:9093", "ftp://127.0.0.1:9093", "localhost", "HTTP//x"}) {
    EXPECT_THAT(ValidateError(std::string("alertmanager:\n  url: \"") + url + "\"\n"),
                AllOf(HasSubstr("alertmanager.url"), HasSubstr(url)))
        << url;
  }
  for (const char* url : {"http://127.0.0.1:9093", "https://alertmanager.example"}) {
    absl::StatusOr<ServerConfig> config = Load(std::string("alertmanager:\n  url: ") + url + "\n");
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->alertmanager_url, url);
    EXPECT_TRUE(Validate(*config).ok()) << url << ": " << Validate(*config);
  }
}

TEST_F(ConfigLifecycleTest, ValidateRefusesAResendIntervalUnderASecond) {
  EXPECT_THAT(ValidateError("alertmanager:\n  resend_interval: 500ms\n"),
              HasSubstr("alertmanager.resend_interval"));
}

}  // namespace
}  // namespace ordertrace::server
