// The `ingest:` limits of ordertrace.yaml, and the ranges Validate holds every number to.
#include "server/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
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

TEST_F(ConfigTest, AllowedHostsAreReadLowerCased) {
  absl::StatusOr<ServerConfig> config =
      Load("http:\n  allowed_hosts: [Ordertrace.Internal, ops]\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->allowed_hosts, (std::vector<std::string>{"ordertrace.internal", "ops"}));
  EXPECT_FALSE(Load("http:\n  allowed_hosts: ops\n").ok()) << "a list, not a name";
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

}  // namespace
}  // namespace ordertrace::server
