#include "gaps/alertmanager_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"

namespace ordertrace::gaps {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using json = nlohmann::json;

constexpr uint64_t kSecond = base::kNanosPerSecond;
constexpr uint64_t kNow = 1'704'067'200ULL * kSecond + 12 * 3600 * kSecond;  // 2024-01-01T12:00Z
constexpr auto kWait = std::chrono::seconds(10);  // bound of every wait for the sender thread

// What the fake Alertmanager saw, shared between the test and the transport the client owns.
struct FakeAlertmanager {
  std::mutex mu;
  std::condition_variable changed;
  int attempts = 0;             // POSTs tried
  std::vector<json> delivered;  // bodies of the POSTs that succeeded
  bool down = false;            // fail every POST with kUnavailable
  bool hang = false;            // hold every POST until released

  // Waits until `ready` (called under mu) holds; false after kWait.
  bool WaitUntil(const std::function<bool()>& ready) {
    std::unique_lock<std::mutex> lock(mu);
    return changed.wait_for(lock, kWait, ready);
  }
  void Set(bool FakeAlertmanager::*flag, bool value) {
    {
      std::lock_guard<std::mutex> lock(mu);
      this->*flag = value;
    }
    changed.notify_all();
  }
  int Attempts() {
    std::lock_guard<std::mutex> lock(mu);
    return attempts;
  }
  std::vector<json> Delivered() {
    std::lock_guard<std::mutex> lock(mu);
    return delivered;
  }
  // Every delivered alert of `gap_id`, oldest first.
  std::vector<json> AlertsOf(const std::string& gap_id) {
    std::vector<json> out;
    for (const json& body : Delivered()) {
      for (const json& alert : body) {
        if (alert["labels"].value("gap_id", "") == gap_id) out.push_back(alert);
      }
    }
    return out;
  }
  // The latest delivered alert of `gap_id`; null when none was.
  json LastOf(const std::string& gap_id) {
    std::vector<json> all = AlertsOf(gap_id);
    return all.empty() ? json() : all.back();
  }
};

class FakeTransport final : public AlertTransport {
 public:
  explicit FakeTransport(std::shared_ptr<FakeAlertmanager> am) : am_(std::move(am)) {}
  absl::Status PostAlerts(const std::string& json_body, std::chrono::milliseconds) override {
    std::unique_lock<std::mutex> lock(am_->mu);
    ++am_->attempts;
    am_->changed.notify_all();
    am_->changed.wait(lock, [&] { return !am_->hang; });
    if (am_->down) return absl::UnavailableError("connection refused");
    am_->delivered.push_back(json::parse(json_body));
    am_->changed.notify_all();
    return absl::OkStatus();
  }

 private:
  std::shared_ptr<FakeAlertmanager> am_;
};

// A clock that moves only when told to, and counts how often it was read: the sender reads it
// once at the top of each round, so a test can wait for the sender to have looked at the time
// and the table (and done nothing) instead of sleeping.
class CountingClock final : public base::Clock {
 public:
  explicit CountingClock(uint64_t now_unix_nano) : clock_(now_unix_nano) {}
  uint64_t NowUnixNano() const override {
    reads_.fetch_add(1);
    return clock_.NowUnixNano();
  }
  void Advance(uint64_t nanos) { clock_.Advance(nanos); }
  uint64_t reads() const { return reads_.load(); }

 private:
  base::ManualClock clock_;
  mutable std::atomic<uint64_t> reads_{0};
};

AlertmanagerClientOptions TestOptions() {
  AlertmanagerClientOptions options;
  options.external_url = "http://ordertrace.example:8686/";
  options.resend_interval = std::chrono::seconds(60);
  options.alert_lifetime = std::chrono::seconds(300);
  options.min_backoff = std::chrono::seconds(1);
  options.poll_interval = std::chrono::milliseconds(2);
  return options;
}

Gap MakeGap(std::string order_id, std::string kind = std::string(kMissingTransition)) {
  Gap gap;
  gap.order_id = std::move(order_id);
  gap.kind = std::move(kind);
  gap.stage = "Calculated";
  gap.id = gap.order_id + "/" + gap.kind + "/" + gap.stage;
  gap.partner_id = "P-7";
  gap.expected = {"Produced"};
  gap.service = "mes-api";
  gap.queue = "price.requests";
  gap.detail = "No Produced within 2h of Calculated.";
  gap.trace_id.bytes[0] = 0xab;
  gap.trace_id.bytes[15] = 0x01;
  gap.since_unix_nano = kNow - 3 * 3600 * kSecond;
  gap.deadline_unix_nano = kNow - 10 * kSecond;
  gap.detected_at_unix_nano = kNow - 5 * kSecond;
  return gap;
}

Gap Resolved(Gap gap, uint64_t at) {
  gap.resolved_at_unix_nano = at;
  return gap;
}

class AlertmanagerClientTest : public ::testing::Test {
 protected:
  void Start(AlertmanagerClientOptions options = TestOptions()) {
    auto client = AlertmanagerClient::Create(std::move(options), clock_,
                                             std::make_unique<FakeTransport>(am_));
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }
  // Waits until `n` POSTs have been delivered.
  bool WaitForDeliveries(size_t n) {
    return am_->WaitUntil([&] { return am_->delivered.size() >= n; });
  }
  bool WaitForAttempts(int n) {
    return am_->WaitUntil([&] { return am_->attempts >= n; });
  }
  // Polls the client until `ready` holds; false after kWait.
  static bool Eventually(const std::function<bool()>& ready) {
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (!ready()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }
  uint64_t Pending() const { return client_->Stats().pending; }
  // Waits until the sender has begun two rounds since the call: the first saw the clock and the
  // table as they are now and has finished (posting, if it had anything to post). For checks
  // that something did NOT happen. False after kWait.
  bool WaitForSenderRound() {
    const uint64_t seen = clock_.reads();
    return Eventually([&] { return clock_.reads() >= seen + 2; });
  }

  CountingClock clock_{kNow};
  std::shared_ptr<FakeAlertmanager> am_ = std::make_shared<FakeAlertmanager>();
  std::unique_ptr<AlertmanagerClient> client_;
};

TEST_F(AlertmanagerClientTest, OpenedGapIsPostedOnceWithLabelsAnnotationsAndTimes) {
  Start();
  Gap gap = MakeGap("A 1/x");
  model::Operation last_success;
  last_success.span_name = "SetCalculated";
  last_success.service = "crm-api";
  last_success.at_unix_nano = kNow - 3 * 3600 * kSecond;
  gap.last_success = last_success;
  client_->OnGapOpened(gap);
  ASSERT_TRUE(WaitForDeliveries(1));
  ASSERT_TRUE(WaitForSenderRound());

  std::vector<json> posts = am_->Delivered();
  ASSERT_EQ(posts.size(), 1u);
  ASSERT_EQ(posts[0].size(), 1u);
  const json& alert = posts[0][0];
  EXPECT_EQ(alert["labels"], json({{"alertname", "OrderGap"},
                                   {"kind", "missing_transition"},
                                   {"stage", "Calculated"},
                                   {"partner_id", "P-7"},
                                   {"severity", "warning"},
                                   {"gap_id", gap.id}}));
  const json& annotations = alert["annotations"];
  EXPECT_EQ(annotations["order_id"], "A 1/x");
  EXPECT_EQ(annotations["link"], "http://ordertrace.example:8686/orders/A%201%2Fx");
  EXPECT_EQ(annotations["api"], "http://ordertrace.example:8686/api/v1/orders/A%201%2Fx");
  EXPECT_EQ(alert["generatorURL"], annotations["link"]);
  EXPECT_EQ(annotations["trace_id"], "ab" + std::string(28, '0') + "01");
  EXPECT_EQ(annotations["description"], gap.detail);
  EXPECT_EQ(annotations["summary"],
            "Order A 1/x: missing_transition at Calculated since 2024-01-01T09:00:00.000Z, "
            "expected Produced; stopped in mes-api, queue price.requests.");
  EXPECT_EQ(annotations["service"], "mes-api");
  EXPECT_EQ(annotations["queue"], "price.requests");
  EXPECT_EQ(annotations["expected"], "Produced");
  EXPECT_EQ(annotations["since"], "2024-01-01T09:00:00.000Z");
  EXPECT_EQ(annotations["last_success"], "SetCalculated in crm-api at 2024-01-01T09:00:00.000Z");
  EXPECT_EQ(alert["startsAt"], FormatRfc3339(gap.deadline_unix_nano));
  EXPECT_EQ(alert["endsAt"], FormatRfc3339(kNow + 300 * kSecond));

  AlertmanagerClientStats stats = client_->Stats();
  EXPECT_EQ(stats.sent_alerts, 1u);
  EXPECT_EQ(stats.posts, 1u);
  EXPECT_EQ(stats.pending, 0u);
  EXPECT_EQ(stats.held, 1u);

  // The same gap again changes nothing; a changed one goes out at once.
  client_->OnGapOpened(gap);
  ASSERT_TRUE(WaitForSenderRound());
  EXPECT_EQ(am_->Delivered().size(), 1u);
  gap.detail = "Still no Produced.";
  client_->OnGapOpened(gap);
  ASSERT_TRUE(WaitForDeliveries(2));
  EXPECT_EQ(am_->LastOf(gap.id)["annotations"]["description"], "Still no Produced.");
}

TEST_F(AlertmanagerClientTest, SeverityFollowsTheKindTableAndEmptyLabelsAreLeftOut) {
  AlertmanagerClientOptions options = TestOptions();
  options.severity_by_kind["calculation_overdue"] = "page";
  Start(options);
  Gap conflict = MakeGap("B-1", std::string(kStatusBackwards));
  conflict.partner_id.clear();
  Gap custom = MakeGap("B-2", std::string(kCalculationOverdue));
  Gap unknown = MakeGap("B-3", "some_future_kind");
  client_->OnGapOpened(conflict);
  client_->OnGapOpened(custom);
  client_->OnGapOpened(unknown);
  ASSERT_TRUE(am_->WaitUntil([&] {
    size_t alerts = 0;
    for (const json& body : am_->delivered) alerts += body.size();
    return alerts >= 3;
  }));
  json conflict_labels = am_->AlertsOf(conflict.id).at(0)["labels"];
  EXPECT_EQ(conflict_labels["severity"], "critical");
  EXPECT_FALSE(conflict_labels.contains("partner_id"));
  EXPECT_EQ(am_->AlertsOf(custom.id).at(0)["labels"]["severity"], "page");
  EXPECT_EQ(am_->AlertsOf(unknown.id).at(0)["labels"]["severity"], "warning");
}

TEST_F(AlertmanagerClientTest, OpenAlertIsResentBeforeItExpires) {
  Start();
  Gap gap = MakeGap("C-1");
  client_->OnGapOpened(gap);
  ASSERT_TRUE(WaitForDeliveries(1));

  clock_.Advance(59 * kSecond);
  ASSERT_TRUE(WaitForSenderRound());
  EXPECT_EQ(am_->Delivered().size(), 1u) << "re-sent before resend_interval";

  clock_.Advance(1 * kSecond);
  ASSERT_TRUE(WaitForDeliveries(2));
  std::vector<json> sent = am_->AlertsOf(gap.id);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[1]["startsAt"], sent[0]["startsAt"]);
  EXPECT_EQ(sent[1]["endsAt"], FormatRfc3339(kNow + 60 * kSecond + 300 * kSecond));
  // Re-sent while the first copy was still firing in Alertmanager: no gap in between.
  EXPECT_GT(sent[0]["endsAt"].get<std::string>(), FormatRfc3339(kNow + 60 * kSecond));

  clock_.Advance(60 * kSecond);
  ASSERT_TRUE(WaitForDeliveries(3));
}

TEST_F(AlertmanagerClientTest, ResolvedGapEndsAtItsResolutionTimeAndIsSentTwice) {
  Start();
  Gap gap = MakeGap("D-1");
  client_->OnGapOpened(gap);
  ASSERT_TRUE(WaitForDeliveries(1));

  clock_.Advance(31 * kSecond);
  client_->OnGapResolved(Resolved(gap, kNow + 30 * kSecond));
  ASSERT_TRUE(WaitForDeliveries(2));
  std::vector<json> sent = am_->AlertsOf(gap.id);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[1]["endsAt"], FormatRfc3339(kNow + 30 * kSecond));
  EXPECT_EQ(sent[1]["startsAt"], sent[0]["startsAt"]);
  EXPECT_EQ(client_->Stats().held, 1u);

  // Once more, one resend_interval later, then forgotten.
  clock_.Advance(60 * kSecond);
  ASSERT_TRUE(WaitForDeliveries(3));
  sent = am_->AlertsOf(gap.id);
  EXPECT_EQ(sent[2]["endsAt"], FormatRfc3339(kNow + 30 * kSecond));
  ASSERT_TRUE(Eventually([&] { return client_->Stats().held == 0; }));
  clock_.Advance(600 * kSecond);
  ASSERT_TRUE(WaitForSenderRound());
  EXPECT_EQ(am_->AlertsOf(gap.id).size(), 3u);
}

TEST_F(AlertmanagerClientTest, ResolutionOfAnUnknownGapIsSentAndNeverEndsBeforeItStarts) {
  Start();
  Gap gap = MakeGap("E-1");
  gap.deadline_unix_nano = kNow - 10 * kSecond;
  client_->OnGapResolved(Resolved(gap, kNow - 20 * kSecond));  // clocks of different hosts
  ASSERT_TRUE(WaitForDeliveries(1));
  json alert = am_->AlertsOf(gap.id).at(0);
  EXPECT_EQ(alert["startsAt"], FormatRfc3339(kNow - 10 * kSecond));
  EXPECT_EQ(alert["endsAt"], FormatRfc3339(kNow - 10 * kSecond));
}

TEST_F(AlertmanagerClientTest, AlertmanagerDownLosesNothingAndRetriesWithCappedBackoff) {
  am_->Set(&FakeAlertmanager::down, true);
  Start();
  Gap a = MakeGap("F-1"), b = MakeGap("F-2"), c = MakeGap("F-3");
  client_->OnGapOpened(a);
  client_->OnGapOpened(b);
  client_->OnGapOpened(c);
  ASSERT_TRUE(WaitForAttempts(1));
  client_->OnGapResolved(Resolved(a, kNow));
  ASSERT_TRUE(WaitForSenderRound());
  int attempts = am_->Attempts();
  EXPECT_EQ(client_->Stats().failed_posts, static_cast<uint64_t>(attempts));
  EXPECT_EQ(client_->Stats().pending, 3u);
  EXPECT_EQ(client_->Stats().held, 3u);

  // Backoff 1 s, 2 s, 4 s, ... capped at resend_interval (60 s); measured on the clock.
  uint64_t backoff = 1 * kSecond;
  for (int i = 0; i < 9; ++i) {
    clock_.Advance(backoff - kSecond / 1000);
    ASSERT_TRUE(WaitForSenderRound());
    EXPECT_EQ(am_->Attempts(), attempts) << "retried before the backoff of " << backoff;
    clock_.Advance(kSecond / 1000);
    ASSERT_TRUE(WaitForAttempts(attempts + 1)) << "no retry after " << backoff;
    attempts = am_->Attempts();
    backoff = std::min(backoff * 2, 60 * kSecond);
  }
  EXPECT_EQ(backoff, 60 * kSecond);
  EXPECT_THAT(am_->Delivered(), IsEmpty());

  am_->Set(&FakeAlertmanager::down, false);
  clock_.Advance(60 * kSecond);
  ASSERT_TRUE(Eventually([&] { return Pending() == 0; }));
  EXPECT_EQ(am_->LastOf(a.id)["endsAt"], FormatRfc3339(kNow));
  const uint64_t now = clock_.NowUnixNano();
  EXPECT_EQ(am_->LastOf(b.id)["endsAt"], FormatRfc3339(now + 300 * kSecond));
  EXPECT_EQ(am_->LastOf(c.id)["endsAt"], FormatRfc3339(now + 300 * kSecond));
  AlertmanagerClientStats stats = client_->Stats();
  EXPECT_EQ(stats.sent_alerts, 3u);
  EXPECT_EQ(stats.dropped, 0u);
}

TEST_F(AlertmanagerClientTest, BatchesHoldAtMostMaxBatchAlerts) {
  AlertmanagerClientOptions options = TestOptions();
  options.max_batch = 2;
  am_->Set(&FakeAlertmanager::down, true);  // let them pile up first
  Start(options);
  for (int i = 0; i < 5; ++i) client_->OnGapOpened(MakeGap("G-" + std::to_string(i)));
  ASSERT_TRUE(WaitForAttempts(1));
  am_->Set(&FakeAlertmanager::down, false);
  clock_.Advance(kSecond);
  ASSERT_TRUE(Eventually([&] { return Pending() == 0; }));
  std::vector<size_t> sizes;
  for (const json& body : am_->Delivered()) sizes.push_back(body.size());
  EXPECT_THAT(sizes, ElementsAre(2, 2, 1));
}

TEST_F(AlertmanagerClientTest, MaxAlertsDropsOldestResolvedFirstThenNewGapsAndCounts) {
  AlertmanagerClientOptions options = TestOptions();
  options.max_alerts = 3;
  am_->Set(&FakeAlertmanager::down, true);
  Start(options);
  Gap a = MakeGap("H-A"), b = MakeGap("H-B"), c = MakeGap("H-C"), d = MakeGap("H-D"),
      e = MakeGap("H-E");
  client_->OnGapOpened(a);
  client_->OnGapOpened(b);
  client_->OnGapResolved(Resolved(a, kNow));
  client_->OnGapOpened(c);
  EXPECT_EQ(client_->Stats().dropped, 0u);
  client_->OnGapOpened(d);  // full: the resolution of a goes
  EXPECT_EQ(client_->Stats().dropped, 1u);
  client_->OnGapOpened(e);  // full of open alerts: e goes
  AlertmanagerClientStats stats = client_->Stats();
  EXPECT_EQ(stats.dropped, 2u);
  EXPECT_EQ(stats.held, 3u);

  am_->Set(&FakeAlertmanager::down, false);
  clock_.Advance(60 * kSecond);
  ASSERT_TRUE(Eventually([&] { return Pending() == 0; }));
  std::vector<std::string> delivered;
  for (const json& body : am_->Delivered()) {
    for (const json& alert : body) delivered.push_back(alert["labels"]["gap_id"]);
  }
  EXPECT_THAT(delivered, UnorderedElementsAre(b.id, c.id, d.id));
}

TEST_F(AlertmanagerClientTest, LongOutageWithChurnStaysBoundedAndSendsEachSurvivorOnce) {
  AlertmanagerClientOptions options = TestOptions();
  options.max_alerts = 10;
  am_->Set(&FakeAlertmanager::down, true);
  Start(options);
  constexpr int kGaps = 5000;
  for (int i = 0; i < kGaps; ++i) {
    Gap gap = MakeGap("M-" + std::to_string(i));
    client_->OnGapOpened(gap);
    client_->OnGapResolved(Resolved(gap, kNow));
  }
  AlertmanagerClientStats stats = client_->Stats();
  EXPECT_EQ(stats.dropped, static_cast<uint64_t>(kGaps - 10));
  EXPECT_EQ(stats.held, 10u);

  am_->Set(&FakeAlertmanager::down, false);
  clock_.Advance(60 * kSecond);
  ASSERT_TRUE(Eventually([&] { return Pending() == 0; }));
  std::vector<std::string> delivered;
  for (const json& body : am_->Delivered()) {
    for (const json& alert : body) delivered.push_back(alert["labels"]["gap_id"]);
  }
  std::vector<std::string> expected;
  for (int i = kGaps - 10; i < kGaps; ++i) expected.push_back(MakeGap("M-" + std::to_string(i)).id);
  EXPECT_THAT(delivered, ::testing::UnorderedElementsAreArray(expected));
}

TEST_F(AlertmanagerClientTest, OnGapOpenedDoesNotWaitForAHangingAlertmanager) {
  am_->Set(&FakeAlertmanager::hang, true);
  Start();
  client_->OnGapOpened(MakeGap("I-0"));
  ASSERT_TRUE(WaitForAttempts(1));  // the sender is now stuck in the POST

  // If OnGapOpened waited for the network, this would not finish until the hang is released.
  auto opened = std::async(std::launch::async, [&] {
    for (int i = 1; i <= 1000; ++i) client_->OnGapOpened(MakeGap("I-" + std::to_string(i)));
    client_->OnGapResolved(Resolved(MakeGap("I-0"), kNow));
    return client_->Stats();
  });
  ASSERT_EQ(opened.wait_for(kWait), std::future_status::ready);
  EXPECT_EQ(opened.get().held, 1001u);

  am_->Set(&FakeAlertmanager::hang, false);
  ASSERT_TRUE(Eventually([&] { return Pending() == 0; }));
  EXPECT_EQ(am_->AlertsOf("I-1000/missing_transition/Calculated").size(), 1u);
  EXPECT_EQ(am_->LastOf("I-0/missing_transition/Calculated")["endsAt"], FormatRfc3339(kNow));
}

TEST_F(AlertmanagerClientTest, ShutdownDeliversWhatIsPendingAndStopsTheSender) {
  am_->Set(&FakeAlertmanager::hang, true);
  Start();
  client_->OnGapOpened(MakeGap("J-1"));
  ASSERT_TRUE(WaitForAttempts(1));
  client_->OnGapOpened(MakeGap("J-2"));  // owed while the first POST hangs
  auto shutdown = std::async(std::launch::async, [&] { client_->Shutdown(); });
  am_->Set(&FakeAlertmanager::hang, false);
  ASSERT_EQ(shutdown.wait_for(kWait), std::future_status::ready);
  EXPECT_EQ(am_->AlertsOf("J-2/missing_transition/Calculated").size(), 1u);

  const int attempts = am_->Attempts();
  clock_.Advance(3600 * kSecond);
  client_->OnGapOpened(MakeGap("J-3"));
  // Shutdown joined the sender, so there is no round to wait for: a sender that wrongly lived
  // on would read the clock every poll_interval (2 ms) and post J-3 within a few of them.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(am_->Attempts(), attempts) << "sender still running after Shutdown";
  client_->Shutdown();  // idempotent
}

TEST_F(AlertmanagerClientTest, ShutdownReturnsWhileAlertmanagerIsDown) {
  am_->Set(&FakeAlertmanager::down, true);
  Start();
  client_->OnGapOpened(MakeGap("K-1"));
  ASSERT_TRUE(WaitForAttempts(1));
  auto shutdown = std::async(std::launch::async, [&] { client_->Shutdown(); });
  ASSERT_EQ(shutdown.wait_for(kWait), std::future_status::ready);
  EXPECT_EQ(client_->Stats().pending, 1u);
}

TEST(AlertmanagerClientOptionsTest, CreateRefusesBadOptions) {
  base::ManualClock clock(kNow);
  auto create = [&](AlertmanagerClientOptions options) {
    return AlertmanagerClient::Create(std::move(options), clock).status();
  };
  AlertmanagerClientOptions options;
  options.url = "http://127.0.0.1:9093";
  EXPECT_TRUE(create(options).ok());
  for (std::string url :
       {"", "127.0.0.1:9093", "ftp://host", "http://", "http://:9093", "http://host:9093/?x=1"}) {
    AlertmanagerClientOptions bad = options;
    bad.url = url;
    EXPECT_TRUE(absl::IsInvalidArgument(create(bad))) << url;
  }
  AlertmanagerClientOptions flapping = options;
  flapping.alert_lifetime = flapping.resend_interval;
  EXPECT_TRUE(absl::IsInvalidArgument(create(flapping)));
  AlertmanagerClientOptions no_room = options;
  no_room.max_alerts = 0;
  EXPECT_TRUE(absl::IsInvalidArgument(create(no_room)));
  AlertmanagerClientOptions bad_link = options;
  bad_link.external_url = "ordertrace:8686";
  EXPECT_TRUE(absl::IsInvalidArgument(create(bad_link)));
}

TEST(FormatRfc3339Test, UtcWithMilliseconds) {
  EXPECT_EQ(FormatRfc3339(kNow), "2024-01-01T12:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(kNow + 1'234'567'891), "2024-01-01T12:00:01.234Z");
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00.000Z");
}

// The real HTTP transport against a local httplib server standing in for Alertmanager.
class HttpAlertmanagerStub {
 public:
  // Serves POST <prefix>/api/v2/alerts on `port` (0: any free port); over TLS with
  // `cert`/`key`, requiring a client certificate signed by `client_ca` when it is given.
  explicit HttpAlertmanagerStub(const std::string& prefix, int port = 0,
                                const std::string& cert = "", const std::string& key = "",
                                const std::string& client_ca = "")
      : server_(cert.empty() ? std::make_unique<httplib::Server>()
                             : std::make_unique<httplib::SSLServer>(
                                   cert.c_str(), key.c_str(),
                                   client_ca.empty() ? nullptr : client_ca.c_str())) {
    server_->set_keep_alive_timeout(1);  // stop() waits for kept-alive connections to idle out
    server_->Post(prefix + "/api/v2/alerts",
                  [this](const httplib::Request& request, httplib::Response& response) {
                    std::lock_guard<std::mutex> lock(mu_);
                    if (refuse_next_ > 0) {
                      --refuse_next_;
                      response.status = 503;
                      return;
                    }
                    content_types_.push_back(request.get_header_value("Content-Type"));
                    for (const json& alert : json::parse(request.body)) {
                      gap_ids_.push_back(alert["labels"]["gap_id"]);
                    }
                    response.status = 200;
                  });
    if (port == 0) {
      port_ = server_->bind_to_any_port("127.0.0.1");
    } else if (server_->bind_to_port("127.0.0.1", port)) {
      port_ = port;
    }
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~HttpAlertmanagerStub() {
    server_->stop();
    thread_.join();
  }
  int port() const { return port_; }
  void RefuseNext(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    refuse_next_ = n;
  }
  std::vector<std::string> GapIds() {
    std::lock_guard<std::mutex> lock(mu_);
    return gap_ids_;
  }
  std::vector<std::string> ContentTypes() {
    std::lock_guard<std::mutex> lock(mu_);
    return content_types_;
  }
  // Waits until `gap_id` arrived; false after kWait.
  bool WaitFor(const std::string& gap_id) {
    auto deadline = std::chrono::steady_clock::now() + kWait;
    while (std::chrono::steady_clock::now() < deadline) {
      for (const std::string& id : GapIds()) {
        if (id == gap_id) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

 private:
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = -1;
  std::mutex mu_;
  int refuse_next_ = 0;
  std::vector<std::string> gap_ids_;
  std::vector<std::string> content_types_;
};

TEST(AlertmanagerClientHttpTest, PostsJsonToApiV2AlertsAndRetriesAcrossARestart) {
  base::SystemClock clock;
  auto stub = std::make_unique<HttpAlertmanagerStub>("/am");
  const int port = stub->port();
  ASSERT_GT(port, 0);
  AlertmanagerClientOptions options;
  options.url = "http://127.0.0.1:" + std::to_string(port) + "/am/";
  options.min_backoff = std::chrono::milliseconds(20);
  options.request_timeout = std::chrono::milliseconds(2000);
  options.poll_interval = std::chrono::milliseconds(10);
  auto client = AlertmanagerClient::Create(options, clock);
  ASSERT_TRUE(client.ok()) << client.status();

  (*client)->OnGapOpened(MakeGap("L-1"));
  ASSERT_TRUE(stub->WaitFor("L-1/missing_transition/Calculated"));
  EXPECT_THAT(stub->ContentTypes(), ElementsAre("application/json"));

  // A 503 is retried.
  stub->RefuseNext(1);
  (*client)->OnGapOpened(MakeGap("L-2"));
  ASSERT_TRUE(stub->WaitFor("L-2/missing_transition/Calculated"));
  EXPECT_GE((*client)->Stats().failed_posts, 1u);

  // Alertmanager gone: the gap waits, and arrives once it is back on the same port.
  stub.reset();
  (*client)->OnGapOpened(MakeGap("L-3"));
  const uint64_t failed = (*client)->Stats().failed_posts;
  auto deadline = std::chrono::steady_clock::now() + kWait;
  while ((*client)->Stats().failed_posts < failed + 2 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GE((*client)->Stats().failed_posts, failed + 2);
  EXPECT_EQ((*client)->Stats().pending, 1u);
  stub = std::make_unique<HttpAlertmanagerStub>("/am", port);
  ASSERT_EQ(stub->port(), port);
  ASSERT_TRUE(stub->WaitFor("L-3/missing_transition/Calculated"));
  (*client)->Shutdown();
  EXPECT_EQ((*client)->Stats().pending, 0u);
}

// https:// with alertmanager.ca_file and a client certificate, against a stub with a CA made
// by tests/support/make_test_ca.sh: delivered when the CA and the client certificate are right;
// with another CA's trust, or without the client certificate, nothing is delivered.
TEST(AlertmanagerClientHttpTest, PostsOverHttpsVerifyingTheServerAndPresentingAClientCertificate) {
  // As ordertrace's main() does: a refused TLS client writes to a closed socket through
  // OpenSSL's write(), which raises SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  std::string dir = testing::TempDir() + "ordertrace_alertmanager_tls_XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  ASSERT_EQ(std::system(("bash " ORDERTRACE_SOURCE_DIR "/tests/support/make_test_ca.sh '" + dir +
                         "' >/dev/null")
                            .c_str()),
            0);
  auto file = [&](const std::string& name) { return dir + "/" + name; };
  HttpAlertmanagerStub stub("", 0, file("server.pem"), file("server.key"), file("ca.pem"));
  ASSERT_GT(stub.port(), 0);
  base::SystemClock clock;
  auto client_with = [&](AlertmanagerTlsOptions tls) {
    AlertmanagerClientOptions options;
    options.url = "https://127.0.0.1:" + std::to_string(stub.port());
    options.tls = std::move(tls);
    options.min_backoff = std::chrono::milliseconds(20);
    options.request_timeout = std::chrono::milliseconds(2000);
    options.poll_interval = std::chrono::milliseconds(10);
    return AlertmanagerClient::Create(options, clock);
  };

  auto trusted = client_with({file("ca.pem"), file("client.pem"), file("client.key")});
  ASSERT_TRUE(trusted.ok()) << trusted.status();
  (*trusted)->OnGapOpened(MakeGap("TLS-1"));
  EXPECT_TRUE(stub.WaitFor("TLS-1/missing_transition/Calculated"));

  auto wrong_ca = client_with({file("other-ca.pem"), file("client.pem"), file("client.key")});
  ASSERT_TRUE(wrong_ca.ok()) << wrong_ca.status();
  (*wrong_ca)->OnGapOpened(MakeGap("TLS-2"));
  auto no_certificate = client_with({file("ca.pem"), "", ""});
  ASSERT_TRUE(no_certificate.ok()) << no_certificate.status();
  (*no_certificate)->OnGapOpened(MakeGap("TLS-3"));
  auto deadline = std::chrono::steady_clock::now() + kWait;
  while (((*wrong_ca)->Stats().failed_posts < 2 || (*no_certificate)->Stats().failed_posts < 2) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GE((*wrong_ca)->Stats().failed_posts, 2u) << "an untrusted server was accepted";
  EXPECT_GE((*no_certificate)->Stats().failed_posts, 2u);
  EXPECT_THAT(stub.GapIds(), ElementsAre("TLS-1/missing_transition/Calculated"));

  EXPECT_EQ(client_with({file("missing.pem"), "", ""}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(client_with({"", file("client.pem"), file("server.key")}).status().code(),
            absl::StatusCode::kFailedPrecondition)
      << "a key that does not match the certificate";
  EXPECT_FALSE(NewHttpAlertTransport("http://127.0.0.1:1", {file("ca.pem"), "", ""}).ok());
  (*trusted)->Shutdown();
  (*wrong_ca)->Shutdown();
  (*no_certificate)->Shutdown();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ordertrace::gaps
