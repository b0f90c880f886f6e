// The `ingest:` limits of ordertrace.yaml, and the ranges Validate holds every number to.
#include "server/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/config_refusals.h"

namespace ordertrace::server {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr uint64_t kSecond = 1'000'000'000ULL;
constexpr uint64_t kHour = 3600 * kSecond;
constexpr uint64_t kDay = 24 * kHour;

class ConfigTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = testing::TempDir() + "ordertrace_config_test_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  absl::StatusOr<ServerConfig> Load(const std::string& yaml) {
    std::string path = (std::filesystem::path(dir_) / "ordertrace.yaml").string();
    std::ofstream(path) << yaml;
    return LoadConfigFile(path);
  }
  std::string ValidateError(const std::string& yaml) {
    return std::string(test_support::ValidateRefusal(Load(yaml), yaml).message());
  }

  std::string dir_;
};

TEST_F(ConfigTest, DefaultsAreWithinEveryRange) {
  EXPECT_TRUE(Validate(ServerConfig{}).ok()) << Validate(ServerConfig{});
  EXPECT_TRUE(ValidateRanges(ServerConfig{}).ok());
}

// Closed by default: with no TLS and no tokens, nothing listens off loopback.
TEST_F(ConfigTest, ListenersOffLoopbackAreRefused) {
  for (const char* address : {"0.0.0.0:8686", "[::]:8686", "10.0.0.7:8686", "example.com:8686"}) {
    ServerConfig config;
    config.http_listen = address;
    absl::Status valid = Validate(config);
    EXPECT_FALSE(valid.ok()) << address;
    EXPECT_THAT(valid.message(), AllOf(HasSubstr(address), HasSubstr("off loopback")));
  }
  for (const char* address : {"127.0.0.1:0", "127.0.0.2:4318", "[::1]:4318", "localhost:4318",
                              "[::ffff:127.0.0.1]:4318"}) {
    ServerConfig config;
    config.otlp_http_listen = address;
    EXPECT_TRUE(Validate(config).ok()) << address << ": " << Validate(config);
  }
}

TEST_F(ConfigTest, OffLoopbackTakesBothTlsAndTokensAndTheLineSaysWhatIsMissing) {
  ServerConfig config;
  config.http_listen = "0.0.0.0:8686";
  EXPECT_THAT(Validate(config).message(),
              AllOf(HasSubstr("TLS (tls.cert_file"), HasSubstr("tokens (auth.tokens)")));
  auth::TokenEntry ops;
  ops.name = "ops-1";
  ops.role = auth::Role::kOps;
  ops.sha256[0] = 1;
  config.auth.tokens = {ops};
  EXPECT_THAT(Validate(config).message(),
              AllOf(HasSubstr("without TLS"), Not(HasSubstr("auth.tokens"))));
  config.auth.tokens.clear();
  config.tls.cert_file = "/etc/ordertrace/server.pem";
  config.tls.key_file = "/etc/ordertrace/server.key";
  EXPECT_THAT(Validate(config).message(),
              AllOf(HasSubstr("without tokens (auth.tokens)"), Not(HasSubstr("TLS"))));
  config.auth.tokens = {ops};
  EXPECT_TRUE(Validate(config).ok()) << Validate(config);
}

TEST_F(ConfigTest, AuthTokensAreReadAsHashes) {
  const std::string ops_hash = auth::Sha256Hex("ops-secret");
  absl::StatusOr<ServerConfig> config = Load(
      "auth:\n  tokens:\n"
      "    - {name: ops-1, role: ops, sha256: " +
      ops_hash +
      "}\n"
      "    - {name: acme, role: partner_readonly, partner_id: P-7, sha256: " +
      auth::Sha256Hex("acme") +
      "}\n"
      "audit:\n  file: /var/log/ordertrace/audit.log\n  max_mb: 16\n  keep_files: 3\n");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->auth.tokens.size(), 2u);
  EXPECT_EQ(config->auth.tokens[0].name, "ops-1");
  EXPECT_EQ(config->auth.tokens[0].role, auth::Role::kOps);
  EXPECT_EQ(config->auth.tokens[0].sha256, *auth::ParseSha256Hex(ops_hash));
  EXPECT_EQ(config->auth.tokens[1].partner_id, "P-7");
  EXPECT_EQ(config->audit.path, "/var/log/ordertrace/audit.log");
  EXPECT_EQ(config->audit.max_bytes, 16u << 20);
  EXPECT_EQ(config->audit.keep_files, 3u);

  struct Bad {
    std::string yaml;
    std::string says;
  };
  const Bad bad[] = {
      {"auth:\n  tokens:\n    - {name: a, role: ops, token: hunter2}\n", "never written in clear"},
      {"auth:\n  tokens:\n    - {name: a, role: admin, sha256: " + ops_hash + "}\n",
       "auth.tokens[0].role must be support, dev, ops, partner_readonly or ingest"},
      {"auth:\n  tokens:\n    - {name: a, role: ops, sha256: abc}\n", "64 hex digits"},
      {"auth:\n  tokens:\n    - {name: a, role: ops}\n", "auth.tokens[0] needs sha256"},
      {"auth:\n  tokens:\n    - {name: a, role: partner_readonly, sha256: " + ops_hash + "}\n",
       "needs a partner_id"},
      {"auth:\n  tokens:\n    - {name: a, role: ops, colour: red, sha256: " + ops_hash + "}\n",
       "unknown field 'colour'"},
      {"auth:\n  tokens: ops\n", "must be a list"},
      {"auth:\n  passwords: []\n", "unknown setting 'auth.passwords'"},
      {"audit:\n  keep_files: 0\n", "audit.keep_files must be from 1"},
  };
  // Errors in the token list are found while loading; ranges by Validate.
  auto refusal = [&](const std::string& yaml) {
    absl::StatusOr<ServerConfig> loaded = Load(yaml);
    return std::string(loaded.ok() ? Validate(*loaded).message() : loaded.status().message());
  };
  for (const Bad& b : bad) EXPECT_THAT(refusal(b.yaml), HasSubstr(b.says)) << b.yaml;
}

TEST_F(ConfigTest, PiiRulesChangeTheDefaultsOrAddToThem) {
  absl::StatusOr<ServerConfig> defaults = Load("");
  ASSERT_TRUE(defaults.ok());
  EXPECT_TRUE(defaults->pii.enabled);
  ASSERT_EQ(defaults->pii.rules.size(), 2u);
  EXPECT_TRUE(defaults->operator_id_secret.empty());

  absl::StatusOr<ServerConfig> config = Load(
      "pii:\n  enabled: false\n  operator_id_secret: s3cret-0123456789\n  rules:\n"
      "    - {name: email, action: mask}\n"
      "    - {name: iban, value_pattern: 'DE\\d{20}', action: remove}\n"
      "    - {name: secrets, key_pattern: '(?i).*password.*'}\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->pii.enabled);
  EXPECT_EQ(config->operator_id_secret, "s3cret-0123456789");
  ASSERT_EQ(config->pii.rules.size(), 4u);
  EXPECT_EQ(config->pii.rules[0].name, "email");
  EXPECT_EQ(config->pii.rules[0].action, scrub::PiiAction::kMask);
  EXPECT_EQ(config->pii.rules[0].value_pattern, scrub::DefaultPiiRules()[0].value_pattern);
  EXPECT_EQ(config->pii.rules[1].name, "phone");
  EXPECT_EQ(config->pii.rules[2].value_pattern, "DE\\d{20}");
  EXPECT_EQ(config->pii.rules[3].key_pattern, "(?i).*password.*");
  EXPECT_EQ(config->pii.rules[3].action, scrub::PiiAction::kRemove);
  EXPECT_TRUE(Validate(*config).ok()) << Validate(*config);

  const std::pair<std::string, std::string> bad[] = {
      {"pii:\n  rules:\n    - {name: broken, value_pattern: '(unclosed'}\n",
       "pii rule 'broken': bad value_pattern"},
      {"pii:\n  rules:\n    - {name: k, key_pattern: '[z-a]'}\n", "pii rule 'k': bad key_pattern"},
      {"pii:\n  rules:\n    - {name: x, value_pattern: a, action: hide}\n",
       "pii.rules[0].action must be remove or mask"},
      {"pii:\n  rules:\n    - {value_pattern: a}\n", "pii.rules[0] needs a name"},
      {"pii:\n  rules:\n    - {name: x, colour: red}\n", "unknown field 'colour'"},
      {"pii:\n  rules:\n    - {name: nothing}\n", "neither key_pattern nor value_pattern"},
      {"pii:\n  rules: email\n", "pii.rules must be a list"},
      {"pii:\n  scrub: true\n", "unknown setting 'pii.scrub'"},
  };
  for (const auto& [yaml, says] : bad) {
    absl::StatusOr<ServerConfig> loaded = Load(yaml);
    std::string message(loaded.ok() ? Validate(*loaded).message() : loaded.status().message());
    EXPECT_THAT(message, HasSubstr(says)) << yaml;
  }
}

TEST_F(ConfigTest, AllowedHostsAreReadLowerCased) {
  absl::StatusOr<ServerConfig> config =
      Load("http:\n  allowed_hosts: [Ordertrace.Internal, ops]\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->allowed_hosts, (std::vector<std::string>{"ordertrace.internal", "ops"}));
  EXPECT_FALSE(Load("http:\n  allowed_hosts: ops\n").ok()) << "a list, not a name";
}

TEST_F(ConfigTest, TheConsoleIsOnAndBuiltInByDefault) {
  EXPECT_TRUE(ServerConfig{}.console_enabled);
  EXPECT_TRUE(ServerConfig{}.console_dir.empty());
  absl::StatusOr<ServerConfig> config = Load("console:\n  enabled: false\n  dir: /srv/web\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->console_enabled);
  EXPECT_EQ(config->console_dir, "/srv/web");
  EXPECT_FALSE(Load("console:\n  enabled: maybe\n").ok());
  EXPECT_FALSE(Load("console:\n  directory: /srv/web\n").ok()) << "an unknown key";
}

TEST_F(ConfigTest, TlsFilesAreRead) {
  absl::StatusOr<ServerConfig> config = Load(R"(tls:
  cert_file: /etc/ordertrace/server.pem
  key_file: /etc/ordertrace/server.key
  client_ca_file: /etc/ordertrace/clients.pem
alertmanager:
  url: https://alertmanager.internal:9093
  ca_file: /etc/ordertrace/am-ca.pem
  cert_file: /etc/ordertrace/am-client.pem
  key_file: /etc/ordertrace/am-client.key
)");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(Validate(*config).ok()) << Validate(*config);
  EXPECT_TRUE(config->tls.enabled());
  EXPECT_EQ(config->tls.cert_file, "/etc/ordertrace/server.pem");
  EXPECT_EQ(config->tls.key_file, "/etc/ordertrace/server.key");
  EXPECT_EQ(config->tls.client_ca_file, "/etc/ordertrace/clients.pem");
  EXPECT_EQ(config->alertmanager_ca_file, "/etc/ordertrace/am-ca.pem");
  EXPECT_EQ(config->alertmanager_cert_file, "/etc/ordertrace/am-client.pem");
  EXPECT_EQ(config->alertmanager_key_file, "/etc/ordertrace/am-client.key");
  EXPECT_FALSE(ServerConfig{}.tls.enabled()) << "no TLS by default";
}

TEST_F(ConfigTest, TlsFilesComeInPairs) {
  EXPECT_THAT(ValidateError("tls:\n  cert_file: a.pem\n"),
              AllOf(HasSubstr("tls.cert_file"), HasSubstr("tls.key_file")));
  EXPECT_THAT(ValidateError("tls:\n  key_file: a.key\n"), HasSubstr("both or neither"));
  EXPECT_THAT(ValidateError("tls:\n  client_ca_file: ca.pem\n"),
              HasSubstr("tls.client_ca_file needs tls.cert_file"));
  EXPECT_THAT(ValidateError("alertmanager:\n  url: https://am:9093\n  cert_file: c.pem\n"),
              HasSubstr("alertmanager.cert_file and alertmanager.key_file"));
  EXPECT_THAT(ValidateError("alertmanager:\n  url: http://am:9093\n  ca_file: ca.pem\n"),
              HasSubstr("need an https:// alertmanager.url"));
  EXPECT_FALSE(Load("tls:\n  certfile: a.pem\n").ok()) << "a typo is an unknown key";
}

TEST_F(ConfigTest, IngestLimitsAreRead) {
  absl::StatusOr<ServerConfig> config = Load(R"(ingest:
  max_queued_mb: 64
  decode_budget_mb: 128
  max_decoded_request_mb: 32
  max_span_age: 2d
  max_span_future: 1h
  max_order_id_bytes: 64
  max_attribute_key_bytes: 128
  max_attribute_value_bytes: 4096
)");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(Validate(*config).ok()) << Validate(*config);
  EXPECT_EQ(config->ingest.max_queued_bytes, size_t{64} << 20);
  EXPECT_EQ(config->decode_budget.total_bytes, size_t{128} << 20);
  EXPECT_EQ(config->decode_budget.max_request_bytes, size_t{32} << 20);
  EXPECT_EQ(MaxSpanAgeNanos(*config), 2 * kDay);
  EXPECT_EQ(config->ingest.limits.max_span_future_nanos, kHour);
  EXPECT_EQ(config->ingest.limits.max_order_id_bytes, 64u);
  EXPECT_EQ(config->ingest.limits.max_attribute_key_bytes, 128u);
  EXPECT_EQ(config->ingest.limits.max_attribute_value_bytes, 4096u);
}

TEST_F(ConfigTest, SpanAgeFollowsTheSpanRetentionUnlessGiven) {
  absl::StatusOr<ServerConfig> config = Load("retention:\n  spans: 30d\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(MaxSpanAgeNanos(*config), 30 * kDay);
  EXPECT_EQ(MaxSpanAgeNanos(ServerConfig{}), 14 * kDay);
}

TEST_F(ConfigTest, EachNumberPastItsRangeIsRefusedNamingTheFieldAndTheRange) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"ingest:\n  max_queued_spans: 0\n", "ingest.max_queued_spans must be from 1 to 10000000"},
      {"ingest:\n  max_queued_mb: 0\n", "ingest.max_queued_mb must be from 1 to 65536, got 0"},
      {"ingest:\n  max_request_mb: 100000\n", "ingest.max_request_mb must be from 1 to 65536"},
      {"ingest:\n  max_spans_per_write: 5000000\n", "ingest.max_spans_per_write"},
      {"ingest:\n  retry_after_seconds: 0\n", "ingest.retry_after_seconds must be from 1 to 3600"},
      {"ingest:\n  decode_budget_mb: 8\n", "ingest.decode_budget_mb must be from 16 to 65536"},
      {"ingest:\n  decode_budget_mb: 64\n  max_decoded_request_mb: 65\n",
       "ingest.max_decoded_request_mb must be from 1 to 64, got 65"},
      {"ingest:\n  max_span_age: 30d\n", "ingest.max_span_age must be from 1m to 14d, got 30d"},
      {"ingest:\n  max_span_future: 8d\n", "ingest.max_span_future must be from 1s to 7d"},
      {"ingest:\n  max_order_id_bytes: 1000\n", "ingest.max_order_id_bytes must be from 1 to 256"},
      {"ingest:\n  max_attribute_key_bytes: 1\n", "ingest.max_attribute_key_bytes"},
      {"ingest:\n  max_attribute_value_bytes: 100000000\n", "ingest.max_attribute_value_bytes"},
      {"store:\n  write_buffer_mb: 0\n", "store.write_buffer_mb must be from 1 to 4096"},
      {"store:\n  block_cache_mb: 100000\n", "store.block_cache_mb"},
      {"retention:\n  orders: 30m\n", "retention.orders must be from 1h to 3650d, got 30m"},
      {"retention:\n  interval: 2d\n", "retention.interval must be from 1s to 1d"},
      {"query:\n  max_scanned_blocks: 0\n", "query.max_scanned_blocks"},
      {"query:\n  search_window: 0s\n", "query.search_window"},
      {"alertmanager:\n  resend_interval: 2d\n", "alertmanager.resend_interval"},
      {"lifecycle:\n  grace: 2d\n", "lifecycle.grace must be from 0s to 1d, got 2d"},
      {"lifecycle:\n  message_sla: 400d\n", "lifecycle.message_sla"},
      {"lifecycle:\n  time_scale: 10000000\n", "lifecycle.time_scale"},
      {"lifecycle:\n  watermarks:\n    allowed_lateness: 8d\n",
       "lifecycle.watermarks.allowed_lateness"},
      {"metrics:\n  max_series: 5000000\n", "metrics.max_series must be from 1 to 1000000"},
      {"sampling:\n  decision_wait: 2d\n", "sampling.decision_wait"},
      {"sampling:\n  max_remembered_traces: 0\n", "sampling.max_remembered_traces"},
      {"sampling:\n  max_pending_mb: 0\n", "sampling.max_pending_mb must be from 1 to 65536"},
      {"store:\n  min_free_mb: 2000000\n", "store.min_free_mb must be from 0 to 1048576"},
  };
  for (const auto& [yaml, expected] : cases) {
    EXPECT_THAT(ValidateError(yaml), HasSubstr(expected)) << yaml;
  }
}

TEST_F(ConfigTest, AValueAtEitherEndOfItsRangeIsAccepted) {
  for (const std::string& yaml :
       {"ingest:\n  max_order_id_bytes: 256\n", "ingest:\n  max_order_id_bytes: 1\n",
        "ingest:\n  max_span_age: 14d\n", "ingest:\n  max_span_future: 7d\n",
        "retention:\n  spans: 1h\n  interval: 1d\n", "lifecycle:\n  grace: 0s\n"}) {
    absl::StatusOr<ServerConfig> config = Load(yaml);
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_TRUE(Validate(*config).ok()) << yaml << ": " << Validate(*config);
  }
}

TEST_F(ConfigTest, ARefusalIsOneLine) {
  const std::string error = ValidateError("ingest:\n  max_span_age: 30d\n");
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  EXPECT_THAT(error, AllOf(HasSubstr("ingest.max_span_age"), HasSubstr("14d")));
}

TEST_F(ConfigTest, TheForwardIsOffByDefault) {
  ServerConfig config;
  EXPECT_TRUE(config.forward.endpoint.empty());
  EXPECT_EQ(config.forward.protocol, forward::OtlpForwarderOptions::Protocol::kHttpProtobuf);
  EXPECT_EQ(config.forward.max_queue_bytes, uint64_t{256} << 20);
  EXPECT_FALSE(config.forward.tls);
}

TEST_F(ConfigTest, TheForwardSectionIsRead) {
  absl::StatusOr<ServerConfig> config = Load(
      "forward:\n"
      "  endpoint: https://tempo.example:4318/v1/traces\n"
      "  protocol: grpc\n"
      "  headers:\n"
      "    X-Scope-OrgID: alexandrite\n"
      "    Authorization: Basic dXNlcjpwYXNz\n"
      "  tls: true\n"
      "  ca_file: /etc/ordertrace/ca.pem\n"
      "  client_cert_file: /etc/ordertrace/client.pem\n"
      "  client_key_file: /etc/ordertrace/client.key\n"
      "  timeout: 5s\n"
      "  max_queue_mb: 64\n"
      "  max_batch_spans: 500\n"
      "  max_batch_mb: 2\n"
      "  initial_backoff: 250ms\n"
      "  max_backoff: 10s\n");
  ASSERT_TRUE(config.ok()) << config.status();
  const forward::OtlpForwarderOptions& f = config->forward;
  EXPECT_EQ(f.endpoint, "https://tempo.example:4318/v1/traces");
  EXPECT_EQ(f.protocol, forward::OtlpForwarderOptions::Protocol::kGrpc);
  EXPECT_EQ(f.headers, (std::map<std::string, std::string>{{"Authorization", "Basic dXNlcjpwYXNz"},
                                                           {"X-Scope-OrgID", "alexandrite"}}));
  EXPECT_TRUE(f.tls);
  EXPECT_EQ(f.ca_file, "/etc/ordertrace/ca.pem");
  EXPECT_EQ(f.client_cert_file, "/etc/ordertrace/client.pem");
  EXPECT_EQ(f.client_key_file, "/etc/ordertrace/client.key");
  EXPECT_EQ(f.timeout, std::chrono::seconds(5));
  EXPECT_EQ(f.max_queue_bytes, uint64_t{64} << 20);
  EXPECT_EQ(f.max_batch_spans, 500u);
  EXPECT_EQ(f.max_batch_bytes, size_t{2} << 20);
  EXPECT_EQ(f.initial_backoff, std::chrono::milliseconds(250));
  EXPECT_EQ(f.max_backoff, std::chrono::seconds(10));
  EXPECT_TRUE(Validate(*config).ok()) << Validate(*config);
}

TEST_F(ConfigTest, AForwardHeaderValueCanComeFromTheEnvironment) {
  setenv("ORDERTRACE_TEST_FORWARD_AUTH", "Basic c2VjcmV0", 1);
  absl::StatusOr<ServerConfig> config = Load(
      "forward:\n  headers:\n    Authorization: ${ORDERTRACE_TEST_FORWARD_AUTH}\n"
      "    X-Scope-OrgID: alexandrite\n");
  unsetenv("ORDERTRACE_TEST_FORWARD_AUTH");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->forward.headers.at("Authorization"), "Basic c2VjcmV0");
  EXPECT_EQ(config->forward.headers.at("X-Scope-OrgID"), "alexandrite");
  const std::string unset =
      "forward:\n  headers:\n    Authorization: ${ORDERTRACE_TEST_UNSET_VAR}\n";
  EXPECT_THAT(test_support::LoadRefusal(Load(unset), unset),
              HasSubstr("forward.headers.Authorization: environment variable "
                        "ORDERTRACE_TEST_UNSET_VAR is not set"));
}

TEST_F(ConfigTest, BadForwardSettingsAreRefusedNamingTheKey) {
  for (const auto& [yaml, expected] : std::vector<std::pair<std::string, std::string>>{
           {"forward:\n  protocol: http/json\n", "forward.protocol: must be http/protobuf or grpc"},
           {"forward:\n  headers: [a, b]\n", "forward.headers must be a map"},
           {"forward:\n  headers:\n    \"Bad Name\": x\n", "is not a header name"},
           {"forward:\n  headers:\n    X-A: [1, 2]\n", "forward.headers.X-A must be a single"},
           {"forward:\n  endpoints: http://x\n", "unknown setting 'forward.endpoints'"},
       }) {
    EXPECT_THAT(test_support::LoadRefusal(Load(yaml), yaml), HasSubstr(expected)) << yaml;
  }
  for (const auto& [yaml, expected] : std::vector<std::pair<std::string, std::string>>{
           {"forward:\n  endpoint: tempo:4318\n",
            "forward.endpoint must be an http:// or https://"},
           {"forward:\n  endpoint: http://tempo:4318\n  tls: true\n", "need an https://"},
           {"forward:\n  endpoint: https://tempo:4318\n  client_cert_file: c.pem\n",
            "forward.client_cert_file and forward.client_key_file must be given together"},
           {"forward:\n  max_queue_mb: 0\n", "forward.max_queue_mb must be from 1 to"},
           {"forward:\n  timeout: 20m\n", "forward.timeout must be from 100ms to 10m, got 20m"},
           {"forward:\n  max_batch_spans: 0\n", "forward.max_batch_spans"},
           {"forward:\n  endpoint: http://t:1\n  initial_backoff: 5s\n  max_backoff: 1s\n",
            "forward.initial_backoff must not exceed forward.max_backoff"},
       }) {
    EXPECT_THAT(ValidateError(yaml), HasSubstr(expected)) << yaml;
  }
  // gRPC takes host:port as it is.
  absl::StatusOr<ServerConfig> grpc = Load("forward:\n  endpoint: tempo:4317\n  protocol: grpc\n");
  ASSERT_TRUE(grpc.ok());
  EXPECT_TRUE(Validate(*grpc).ok()) << Validate(*grpc);
}

}  // namespace
}  // namespace ordertrace::server
