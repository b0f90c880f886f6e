#include "services/common/service_options.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

extern char** environ;

namespace ordertrace::services {
namespace {

constexpr char kEnvPrefix[] = "ALEXANDRITE_";

// Clears every ALEXANDRITE_* variable for the test and restores the caller's afterwards, so the
// tests neither see nor leak settings.
class ServiceOptionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (char** entry = environ; *entry != nullptr; ++entry) {
      std::string text(*entry);
      if (text.rfind(kEnvPrefix, 0) != 0) continue;
      size_t equals = text.find('=');
      saved_[text.substr(0, equals)] = equals == std::string::npos ? "" : text.substr(equals + 1);
    }
    for (const auto& [name, value] : saved_) unsetenv(name.c_str());
    const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
    folder_ = std::filesystem::path(::testing::TempDir()) /
              ("service_options_test_" + std::to_string(getpid()) + "_" + test->name());
    std::filesystem::remove_all(folder_);
    std::filesystem::create_directories(folder_);
  }

  void TearDown() override {
    std::vector<std::string> set_by_test;
    for (char** entry = environ; *entry != nullptr; ++entry) {
      std::string text(*entry);
      if (text.rfind(kEnvPrefix, 0) == 0) set_by_test.push_back(text.substr(0, text.find('=')));
    }
    for (const std::string& name : set_by_test) unsetenv(name.c_str());
    for (const auto& [name, value] : saved_) setenv(name.c_str(), value.c_str(), 1);
    std::filesystem::remove_all(folder_);
  }

  // Parses `args` (without the program name) for `identity`; fills `options`.
  int Parse(const ServiceIdentity& identity, std::vector<std::string> args,
            ServiceOptions& options) {
    args.insert(args.begin(), identity.name);
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    return ParseServiceOptions(identity, static_cast<int>(args.size()), argv.data(), options);
  }

  // Parses and returns what went to stderr in `error`.
  int ParseCapturingStderr(const ServiceIdentity& identity, std::vector<std::string> args,
                           std::string& error) {
    ServiceOptions options;
    ::testing::internal::CaptureStderr();
    int code = Parse(identity, std::move(args), options);
    error = ::testing::internal::GetCapturedStderr();
    return code;
  }

  std::string WriteYaml(const std::string& text) {
    std::string path = (folder_ / ("config" + std::to_string(++files_) + ".yaml")).string();
    std::ofstream(path) << text;
    return path;
  }

  std::map<std::string, std::string> saved_;
  std::filesystem::path folder_;
  int files_ = 0;
};

TEST_F(ServiceOptionsTest, DefaultsDependOnTheService) {
  struct Expected {
    const ServiceIdentity* identity;
    const char* http_listen;
    const char* db;
  };
  for (const Expected& want : {Expected{&kShopIdentity, "127.0.0.1:8081", "shop.db"},
                               Expected{&kCrmIdentity, "127.0.0.1:8082", "crm.db"},
                               Expected{&kMesIdentity, "127.0.0.1:8083", "mes.db"}}) {
    SCOPED_TRACE(want.identity->name);
    ServiceOptions options;
    ASSERT_EQ(Parse(*want.identity, {}, options), -1);
    EXPECT_EQ(options.http_listen, want.http_listen);
    EXPECT_EQ(options.db_path, want.db);
    EXPECT_EQ(options.amqp_url, "amqp://guest:guest@127.0.0.1:5672/");
    EXPECT_EQ(options.otlp_endpoint, "http://127.0.0.1:4318/v1/traces");
    EXPECT_EQ(options.time_scale, 600);
    EXPECT_TRUE(options.dashboard_indexes);
    EXPECT_EQ(options.seed_history, 0);
    EXPECT_EQ(options.max_body_bytes, ServiceOptions().max_body_bytes);
    EXPECT_FALSE(options.demo_faults);
  }
}

TEST_F(ServiceOptionsTest, FlagsSetEverySetting) {
  ServiceOptions options;
  ASSERT_EQ(Parse(kMesIdentity,
                  {"--http-listen", "0.0.0.0:0", "--amqp-url", "amqp://u:p@broker:5673/vh",
                   "--otlp-endpoint", "https://collector:4318/v1/traces", "--db", "/tmp/m.db",
                   "--time-scale", "2.5", "--max-body-bytes", "1024", "--dashboard-indexes", "off",
                   "--seed-history", "5000", "--demo-faults", "on"},
                  options),
            -1);
  EXPECT_EQ(options.http_listen, "0.0.0.0:0");
  EXPECT_EQ(options.amqp_url, "amqp://u:p@broker:5673/vh");
  EXPECT_EQ(options.otlp_endpoint, "https://collector:4318/v1/traces");
  EXPECT_EQ(options.db_path, "/tmp/m.db");
  EXPECT_EQ(options.time_scale, 2.5);
  EXPECT_EQ(options.max_body_bytes, 1024);
  EXPECT_FALSE(options.dashboard_indexes);
  EXPECT_EQ(options.seed_history, 5000);
  EXPECT_TRUE(options.demo_faults);
}

// The exporter's TLS trust and headers (docs/security.md, "TLS"): a bearer token reaches an
// ordertrace that asks for one, over https verified against a private CA.
TEST_F(ServiceOptionsTest, OtlpCaFileAndRepeatedHeadersAreRead) {
  const std::string ca = WriteYaml("not read as YAML, only checked to be readable\n");
  ServiceOptions options;
  ASSERT_EQ(Parse(kShopIdentity,
                  {"--otlp-endpoint", "https://127.0.0.1:4318/v1/traces", "--otlp-ca-file", ca,
                   "--otlp-header", "Authorization=Bearer abc", "--otlp-header",
                   "X-Scope-OrgID = tenant-1"},
                  options),
            -1);
  EXPECT_EQ(options.otlp_ca_file, ca);
  EXPECT_EQ(options.otlp_headers,
            (std::map<std::string, std::string>{{"authorization", "Bearer abc"},
                                                {"x-scope-orgid", "tenant-1"}}));

  setenv("ALEXANDRITE_OTLP_HEADERS", "authorization=Bearer from-env,x-a=1", 1);
  ServiceOptions from_env;
  ASSERT_EQ(Parse(kShopIdentity, {}, from_env), -1);
  EXPECT_EQ(from_env.otlp_headers, (std::map<std::string, std::string>{
                                       {"authorization", "Bearer from-env"}, {"x-a", "1"}}));
  EXPECT_EQ(from_env.otlp_ca_file, "");

  std::string error;
  EXPECT_EQ(ParseCapturingStderr(kShopIdentity, {"--otlp-header", "no-equals-sign"}, error), 2);
  EXPECT_NE(error.find("otlp_header must be KEY=VALUE"), std::string::npos) << error;
  EXPECT_EQ(ParseCapturingStderr(kShopIdentity, {"--otlp-ca-file", "/nonexistent/ca.pem"}, error),
            2);
  EXPECT_NE(error.find("otlp_ca_file /nonexistent/ca.pem cannot be read"), std::string::npos)
      << error;
}

TEST_F(ServiceOptionsTest, AnEmptyOtlpEndpointFlagTurnsExportOff) {
  ServiceOptions options;
  ASSERT_EQ(Parse(kShopIdentity, {"--otlp-endpoint", ""}, options), -1);
  EXPECT_EQ(options.otlp_endpoint, "");
  ServiceOptions from_file;
  ASSERT_EQ(Parse(kShopIdentity, {"--config", WriteYaml("otlp_endpoint: \"\"\n")}, from_file), -1);
  EXPECT_EQ(from_file.otlp_endpoint, "");
}

TEST_F(ServiceOptionsTest, FlagBeatsEnvironmentBeatsYamlBeatsDefault) {
  const std::string config = WriteYaml(
      "time_scale: 10\nhttp_listen: 127.0.0.1:9001\ndb: from-yaml.db\namqp_url: amqp://yaml/\n");
  setenv("ALEXANDRITE_TIME_SCALE", "20", 1);
  setenv("ALEXANDRITE_SHOP_HTTP_LISTEN", "127.0.0.1:9002", 1);
  setenv("ALEXANDRITE_AMQP_URL", "amqp://env/", 1);

  ServiceOptions all;
  ASSERT_EQ(Parse(kShopIdentity, {"--config", config, "--time-scale", "30"}, all), -1);
  EXPECT_EQ(all.time_scale, 30);                 // flag over environment and YAML
  EXPECT_EQ(all.http_listen, "127.0.0.1:9002");  // environment over YAML
  EXPECT_EQ(all.amqp_url, "amqp://env/");        // environment over YAML
  EXPECT_EQ(all.db_path, "from-yaml.db");        // YAML over default
  EXPECT_EQ(all.otlp_endpoint, "http://127.0.0.1:4318/v1/traces");  // default

  ServiceOptions no_flag;
  ASSERT_EQ(Parse(kShopIdentity, {"--config", config}, no_flag), -1);
  EXPECT_EQ(no_flag.time_scale, 20);

  unsetenv("ALEXANDRITE_TIME_SCALE");
  ServiceOptions no_env;
  ASSERT_EQ(Parse(kShopIdentity, {"--config", config}, no_env), -1);
  EXPECT_EQ(no_env.time_scale, 10);

  ServiceOptions defaults;
  ASSERT_EQ(Parse(kShopIdentity, {}, defaults), -1);
  EXPECT_EQ(defaults.time_scale, 600);
  EXPECT_EQ(defaults.http_listen, "127.0.0.1:9002");  // the environment still applies
  EXPECT_EQ(defaults.db_path, "shop.db");
}

TEST_F(ServiceOptionsTest, EnvironmentNamesFollowTheService) {
  setenv("ALEXANDRITE_CRM_DB", "crm-env.db", 1);
  setenv("ALEXANDRITE_SHOP_DB", "shop-env.db", 1);
  setenv("ALEXANDRITE_MES_DASHBOARD_INDEXES", "off", 1);
  setenv("ALEXANDRITE_MES_SEED_HISTORY", "12", 1);
  setenv("ALEXANDRITE_OTLP_ENDPOINT", "http://elsewhere:4318/v1/traces", 1);
  setenv("ALEXANDRITE_DEMO_FAULTS", "on", 1);

  ServiceOptions crm;
  ASSERT_EQ(Parse(kCrmIdentity, {}, crm), -1);
  EXPECT_EQ(crm.db_path, "crm-env.db");
  EXPECT_EQ(crm.otlp_endpoint, "http://elsewhere:4318/v1/traces");
  EXPECT_TRUE(crm.dashboard_indexes);  // MES's variables are not CRM's settings
  EXPECT_TRUE(crm.demo_faults);

  ServiceOptions mes;
  ASSERT_EQ(Parse(kMesIdentity, {}, mes), -1);
  EXPECT_EQ(mes.db_path, "mes.db");
  EXPECT_FALSE(mes.dashboard_indexes);
  EXPECT_EQ(mes.seed_history, 12);
}

TEST_F(ServiceOptionsTest, YamlSetsMesSettings) {
  ServiceOptions options;
  ASSERT_EQ(Parse(kMesIdentity,
                  {"--config", WriteYaml("dashboard_indexes: off\nseed_history: 300\n"
                                         "max_body_bytes: 2048\n")},
                  options),
            -1);
  EXPECT_FALSE(options.dashboard_indexes);
  EXPECT_EQ(options.seed_history, 300);
  EXPECT_EQ(options.max_body_bytes, 2048);
}

TEST_F(ServiceOptionsTest, EmptyYamlFileChangesNothing) {
  ServiceOptions options;
  ASSERT_EQ(Parse(kCrmIdentity, {"--config", WriteYaml("")}, options), -1);
  EXPECT_EQ(options.http_listen, "127.0.0.1:8082");
}

TEST_F(ServiceOptionsTest, BadYamlFilesExitWithTwo) {
  std::string error;
  EXPECT_EQ(ParseCapturingStderr(kShopIdentity, {"--config", WriteYaml("colour: blue\n")}, error),
            2);
  EXPECT_NE(error.find("unknown setting 'colour'"), std::string::npos) << error;
  // MES's settings are unknown keys for the shop.
  EXPECT_EQ(ParseCapturingStderr(kShopIdentity, {"--config", WriteYaml("dashboard_indexes: on\n")},
                                 error),
            2);
  EXPECT_NE(error.find("dashboard_indexes"), std::string::npos) << error;
  EXPECT_EQ(ParseCapturingStderr(kShopIdentity, {"--config", WriteYaml("- a\n- b\n")}, error), 2);
  EXPECT_EQ(
      ParseCapturingStderr(kShopIdentity, {"--config", WriteYaml("db:\n  nested: value\n")}, error),
      2);
  EXPECT_NE(error.find("'db'"), std::string::npos) << error;
  EXPECT_EQ(ParseCapturingStderr(kShopIdentity, {"--config", WriteYaml("db: [unclosed\n")}, error),
            2);
  EXPECT_EQ(ParseCapturingStderr(kShopIdentity, {"--config", WriteYaml("time_scale: 0\n")}, error),
            2);
  EXPECT_NE(error.find("time_scale"), std::string::npos) << error;
}

TEST_F(ServiceOptionsTest, BadValuesExitWithTwoNamingTheSetting) {
  struct Case {
    const ServiceIdentity* identity;
    std::vector<std::string> args;
    const char* setting;
  };
  const std::vector<Case> cases = {
      {&kShopIdentity, {"--time-scale", "0"}, "time_scale"},
      {&kShopIdentity, {"--time-scale=-1"}, "time_scale"},
      {&kShopIdentity, {"--time-scale", "abc"}, "time_scale"},
      {&kShopIdentity, {"--time-scale", "5x"}, "time_scale"},
      {&kShopIdentity, {"--time-scale", "inf"}, "time_scale"},
      {&kShopIdentity, {"--http-listen", "127.0.0.1"}, "http_listen"},
      {&kShopIdentity, {"--http-listen", "127.0.0.1:"}, "http_listen"},
      {&kShopIdentity, {"--http-listen", "127.0.0.1:99999"}, "http_listen"},
      {&kShopIdentity, {"--amqp-url", "http://127.0.0.1:5672/"}, "amqp_url"},
      {&kShopIdentity, {"--otlp-endpoint", "grpc://127.0.0.1:4317"}, "otlp_endpoint"},
      {&kShopIdentity, {"--db", ""}, "db"},
      {&kShopIdentity, {"--max-body-bytes", "0"}, "max_body_bytes"},
      {&kMesIdentity, {"--dashboard-indexes", "maybe"}, "dashboard_indexes"},
      {&kMesIdentity, {"--seed-history=-1"}, "seed_history"},
      {&kMesIdentity, {"--seed-history", "lots"}, "seed_history"},
      {&kCrmIdentity, {"--demo-faults", "yes"}, "demo_faults"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.args.back());
    std::string error;
    EXPECT_EQ(ParseCapturingStderr(*c.identity, c.args, error), 2);
    EXPECT_NE(error.find(c.setting), std::string::npos) << error;
    EXPECT_NE(error.find(c.identity->name), std::string::npos) << error;
    // One line.
    EXPECT_EQ(error.find('\n'), error.size() - 1) << error;
  }
}

TEST_F(ServiceOptionsTest, BadEnvironmentValuesExitWithTwo) {
  setenv("ALEXANDRITE_TIME_SCALE", "-1", 1);
  std::string error;
  EXPECT_EQ(ParseCapturingStderr(kCrmIdentity, {}, error), 2);
  EXPECT_NE(error.find("time_scale"), std::string::npos) << error;
  unsetenv("ALEXANDRITE_TIME_SCALE");
  setenv("ALEXANDRITE_AMQP_URL", "rabbit://x", 1);
  EXPECT_EQ(ParseCapturingStderr(kCrmIdentity, {}, error), 2);
  EXPECT_NE(error.find("amqp_url"), std::string::npos) << error;
}

TEST_F(ServiceOptionsTest, AValidFlagRescuesABadEnvironmentValue) {
  setenv("ALEXANDRITE_TIME_SCALE", "abc", 1);
  ServiceOptions options;
  ASSERT_EQ(Parse(kShopIdentity, {"--time-scale", "1"}, options), -1);
  EXPECT_EQ(options.time_scale, 1);
}

TEST_F(ServiceOptionsTest, HelpExitsWithZeroAndListsTheSettings) {
  ServiceOptions options;
  ::testing::internal::CaptureStdout();
  int code = Parse(kMesIdentity, {"--help"}, options);
  std::string help = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(code, 0);
  for (const char* flag : {"--http-listen", "--amqp-url", "--otlp-endpoint", "--db", "--time-scale",
                           "--dashboard-indexes", "--seed-history", "--config"}) {
    EXPECT_NE(help.find(flag), std::string::npos) << flag;
  }
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(Parse(kShopIdentity, {"-h"}, options), 0);
  std::string shop_help = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(shop_help.find("--dashboard-indexes"), std::string::npos);
}

TEST_F(ServiceOptionsTest, MesOnlyFlagsAreParseErrorsForTheOtherServices) {
  for (const ServiceIdentity* identity : {&kShopIdentity, &kCrmIdentity}) {
    SCOPED_TRACE(identity->name);
    std::string error;
    int code = ParseCapturingStderr(*identity, {"--dashboard-indexes", "off"}, error);
    EXPECT_NE(code, -1);
    EXPECT_NE(code, 0);
    EXPECT_NE(error.find("--dashboard-indexes"), std::string::npos) << error;
    code = ParseCapturingStderr(*identity, {"--seed-history", "3"}, error);
    EXPECT_NE(code, -1);
    EXPECT_NE(code, 0);
  }
}

TEST_F(ServiceOptionsTest, UnknownFlagsAndAMissingConfigFileStopTheService) {
  std::string error;
  int unknown = ParseCapturingStderr(kShopIdentity, {"--colour", "blue"}, error);
  EXPECT_NE(unknown, -1);
  EXPECT_NE(unknown, 0);
  int missing = ParseCapturingStderr(
      kShopIdentity, {"--config", (folder_ / "does-not-exist.yaml").string()}, error);
  EXPECT_NE(missing, -1);
  EXPECT_NE(missing, 0);
  int no_value = ParseCapturingStderr(kShopIdentity, {"--db"}, error);
  EXPECT_NE(no_value, -1);
  EXPECT_NE(no_value, 0);
}

}  // namespace
}  // namespace ordertrace::services
