// Integration: AlertmanagerClient against a real Alertmanager 0.25 (Debian's
// prometheus-alertmanager) running our deploy config alone (--cluster.listen-address=) on a free
// loopback port with a private storage folder. Every wait is bounded; the process is always
// stopped, also when the test process dies (PR_SET_PDEATHSIG).
//
// ORDERTRACE_ALERTMANAGER_BIN overrides the binary (default: prometheus-alertmanager on PATH),
// ORDERTRACE_ALERTMANAGER_CONFIG the config file.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "gaps/alertmanager_client.h"
#include "gaps/gap.h"
#include "tests/support/alertmanager_process.h"

namespace ordertrace::gaps {
namespace {

using json = nlohmann::json;
using test_support::AlertmanagerProcess;
using test_support::Eventually;
using test_support::FreePort;
using test_support::QueryEscape;
using ::testing::UnorderedElementsAre;

constexpr auto kAlertTimeout = std::chrono::seconds(30);

Gap MakeGap(const std::string& order_id, std::string_view kind, uint64_t now) {
  Gap gap;
  gap.order_id = order_id;
  gap.kind = std::string(kind);
  gap.stage = "Calculated";
  gap.id = order_id + "/" + gap.kind + "/" + gap.stage;
  gap.partner_id = "P-7";
  gap.expected = {"Produced"};
  gap.service = "mes-api";
  gap.queue = "price.requests";
  gap.detail = "No Produced within 2h of Calculated.";
  gap.trace_id.bytes[0] = 0x7e;
  gap.trace_id.bytes[15] = 0x42;
  gap.since_unix_nano = now - 3 * 3600 * base::kNanosPerSecond;
  gap.deadline_unix_nano = now - 60 * base::kNanosPerSecond;
  gap.detected_at_unix_nano = now;
  return gap;
}

class AlertmanagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/ordertrace-alertmanager-XXXXXX";
    ASSERT_NE(mkdtemp(dir_template), nullptr);
    storage_dir_ = dir_template;
    // A port taken between FreePort() and the bind shows as an exit at start: try another.
    std::string error;
    for (int attempt = 0; attempt < 3; ++attempt) {
      port_ = FreePort();
      ASSERT_GT(port_, 0);
      alertmanager_ = std::make_unique<AlertmanagerProcess>(port_, storage_dir_);
      error = alertmanager_->Start();
      if (error.empty()) break;
    }
    ASSERT_EQ(error, "") << "is prometheus-alertmanager installed (scripts/install-deps.sh)?";

    AlertmanagerClientOptions options;
    options.url = "http://127.0.0.1:" + std::to_string(port_);
    options.external_url = "http://ordertrace.test:8686";
    options.resend_interval = std::chrono::seconds(1);
    options.alert_lifetime = std::chrono::seconds(120);
    options.min_backoff = std::chrono::milliseconds(50);
    options.request_timeout = std::chrono::seconds(2);
    options.poll_interval = std::chrono::milliseconds(50);
    auto client = AlertmanagerClient::Create(options, clock_);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }

  void TearDown() override {
    if (client_) client_->Shutdown();
    if (alertmanager_) {
      if (HasFailure()) std::cerr << "Alertmanager log:\n" << alertmanager_->Log();
      alertmanager_->Stop();
    }
    std::error_code ignored;
    std::filesystem::remove_all(storage_dir_, ignored);
  }

  // GET /api/v2/alerts with the given matchers (and active/silenced/... flags); nullopt when
  // Alertmanager does not answer.
  std::optional<json> GetAlerts(const std::vector<std::string>& filters,
                                const std::string& flags = "") {
    std::string path = "/api/v2/alerts?" + flags;
    for (const std::string& filter : filters) path += "&filter=" + QueryEscape(filter);
    httplib::Client client("127.0.0.1", port_);
    client.set_connection_timeout(std::chrono::seconds(1));
    client.set_read_timeout(std::chrono::seconds(5));
    auto result = client.Get(path);
    if (!result || result->status != 200) return std::nullopt;
    return json::parse(result->body);
  }

  // Waits until the alert of `gap_id` is listed in `state` ("active", "suppressed"); nullopt
  // after kAlertTimeout.
  std::optional<json> WaitForAlert(const std::string& gap_id, const std::string& state) {
    std::optional<json> found;
    Eventually(kAlertTimeout, [&] {
      auto alerts = GetAlerts({"gap_id=\"" + gap_id + "\""});
      if (!alerts || alerts->size() != 1) return false;
      if ((*alerts)[0]["status"]["state"] != state) return false;
      found = (*alerts)[0];
      return true;
    });
    return found;
  }

  base::SystemClock clock_;
  std::string storage_dir_;
  int port_ = 0;
  std::unique_ptr<AlertmanagerProcess> alertmanager_;
  std::unique_ptr<AlertmanagerClient> client_;
};

TEST_F(AlertmanagerTest, OpenedGapFiresRoutedAndInhibitedAndResolvedGapEnds) {
  const uint64_t now = clock_.NowUnixNano();
  Gap overdue = MakeGap("AM-1", kMissingTransition, now);
  client_->OnGapOpened(overdue);

  std::optional<json> alert = WaitForAlert(overdue.id, "active");
  ASSERT_TRUE(alert.has_value()) << "alert never became active; client stats: posts="
                                 << client_->Stats().posts
                                 << " failed=" << client_->Stats().failed_posts;
  EXPECT_EQ((*alert)["labels"], json({{"alertname", "OrderGap"},
                                      {"kind", "missing_transition"},
                                      {"stage", "Calculated"},
                                      {"partner_id", "P-7"},
                                      {"severity", "warning"},
                                      {"gap_id", overdue.id}}));
  const json& annotations = (*alert)["annotations"];
  EXPECT_EQ(annotations["order_id"], "AM-1");
  EXPECT_EQ(annotations["link"], "http://ordertrace.test:8686/orders/AM-1");
  EXPECT_EQ(annotations["api"], "http://ordertrace.test:8686/api/v1/orders/AM-1");
  EXPECT_EQ(annotations["trace_id"], "7e" + std::string(28, '0') + "42");
  EXPECT_EQ(annotations["description"], overdue.detail);
  EXPECT_THAT(annotations["summary"].get<std::string>(), ::testing::HasSubstr("Order AM-1"));
  EXPECT_EQ((*alert)["generatorURL"], "http://ordertrace.test:8686/orders/AM-1");
  EXPECT_EQ((*alert)["startsAt"], FormatRfc3339(overdue.deadline_unix_nano));
  EXPECT_GT((*alert)["endsAt"].get<std::string>(), FormatRfc3339(clock_.NowUnixNano()));
  // Routed by deploy/alertmanager/alertmanager.yml: the partner desk and, by severity, ops.
  std::vector<std::string> receivers;
  for (const json& receiver : (*alert)["receivers"]) receivers.push_back(receiver["name"]);
  EXPECT_THAT(receivers, UnorderedElementsAre("partner-desk", "ops-warning"));

  // A conflict of the same partner at the same stage is critical and inhibits the warning.
  Gap conflict = MakeGap("AM-2", kStatusBackwards, now);
  client_->OnGapOpened(conflict);
  std::optional<json> critical = WaitForAlert(conflict.id, "active");
  ASSERT_TRUE(critical.has_value());
  EXPECT_EQ((*critical)["labels"]["severity"], "critical");
  std::optional<json> inhibited = WaitForAlert(overdue.id, "suppressed");
  ASSERT_TRUE(inhibited.has_value()) << "warning not inhibited by the critical gap";
  EXPECT_EQ((*inhibited)["status"]["inhibitedBy"].size(), 1u);

  // Resolved: gone from the alerts Alertmanager lists (it lists no resolved alert at all).
  Gap resolved = conflict;
  resolved.resolved_at_unix_nano = clock_.NowUnixNano();
  client_->OnGapResolved(resolved);
  EXPECT_TRUE(Eventually(kAlertTimeout, [&] {
    auto alerts = GetAlerts({"gap_id=\"" + conflict.id + "\""}, "active=true");
    return alerts && alerts->empty();
  }));
  // ... which lifts the inhibition.
  EXPECT_TRUE(WaitForAlert(overdue.id, "active").has_value());

  resolved = overdue;
  resolved.resolved_at_unix_nano = clock_.NowUnixNano();
  client_->OnGapResolved(resolved);
  EXPECT_TRUE(Eventually(kAlertTimeout, [&] {
    auto alerts = GetAlerts({"alertname=\"OrderGap\""});
    return alerts && alerts->empty();
  }));
  // Both resolutions delivered twice, then forgotten.
  EXPECT_TRUE(Eventually(kAlertTimeout, [&] { return client_->Stats().held == 0; }));
  EXPECT_EQ(client_->Stats().rejected_alerts, 0u);
}

TEST_F(AlertmanagerTest, GapOpenedWhileAlertmanagerIsDownArrivesWhenItIsBack) {
  const uint64_t now = clock_.NowUnixNano();
  Gap before = MakeGap("AM-10", kMessageNotConsumed, now);
  client_->OnGapOpened(before);
  ASSERT_TRUE(WaitForAlert(before.id, "active").has_value());

  alertmanager_->Stop();
  const uint64_t failed = client_->Stats().failed_posts;
  Gap during = MakeGap("AM-11", kCalculationOverdue, now);
  during.partner_id.clear();
  client_->OnGapOpened(during);
  ASSERT_TRUE(Eventually(kAlertTimeout, [&] { return client_->Stats().failed_posts > failed; }));
  EXPECT_GE(client_->Stats().pending, 1u);

  // Same port, same storage. Alertmanager keeps no alerts across a restart (only silences and
  // the notification log), so `before` comes back only through the client's resend.
  ASSERT_EQ(alertmanager_->Start(), "");
  std::optional<json> arrived = WaitForAlert(during.id, "active");
  ASSERT_TRUE(arrived.has_value());
  EXPECT_FALSE((*arrived)["labels"].contains("partner_id"));
  std::vector<std::string> receivers;
  for (const json& receiver : (*arrived)["receivers"]) receivers.push_back(receiver["name"]);
  EXPECT_THAT(receivers, UnorderedElementsAre("ops-warning"));
  EXPECT_TRUE(WaitForAlert(before.id, "active").has_value());
  EXPECT_TRUE(Eventually(kAlertTimeout, [&] { return client_->Stats().pending == 0; }));
  EXPECT_EQ(client_->Stats().dropped, 0u);
}

}  // namespace
}  // namespace ordertrace::gaps
