// End to end (docs/gaps.md): an embedded OrdertraceServer receives OTLP/HTTP protobuf spans of
// orders built here, finds the stuck ones, and raises and resolves their alerts in a real
// Alertmanager 0.25 (Debian's prometheus-alertmanager) that runs deploy/alertmanager's config
// alone (--cluster.listen-address=) on a free loopback port with a private storage folder.
// Covers: a stuck order -> gap -> alert, the missing status -> resolved -> alert gone;
// Alertmanager down while a gap opens; ordertrace restarted with a gap open and a deadline
// passing while it is down. Every wait is bounded; Alertmanager is always stopped, also when
// the test process dies (PR_SET_PDEATHSIG).
//
// ORDERTRACE_ALERTMANAGER_BIN overrides the binary (default: prometheus-alertmanager on PATH),
// ORDERTRACE_ALERTMANAGER_CONFIG the config file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <time.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "server/config.h"
#include "server/ordertrace_server.h"
#include "tests/support/alertmanager_process.h"
#include "tests/support/embedded_server.h"
#include "tests/support/otlp_spans.h"
#include "tests/support/temp_dir.h"

namespace ordertrace::server {
namespace {

using test_support::AddAttribute;
using test_support::AddRootSpan;
using test_support::AddTransition;
using test_support::AlertmanagerProcess;
using test_support::Eventually;
using test_support::FreePort;
using test_support::LoopbackConfig;
using test_support::MakeOrder;
using test_support::MetricValue;
using test_support::NowUnixNano;
using test_support::QueryEscape;
using test_support::TempDir;
using test_support::TestOrder;
using test_support::WaitUntilServing;
namespace pb_collector = opentelemetry::proto::collector::trace::v1;

using json = nlohmann::json;

constexpr uint64_t kSecond = test_support::kNanosPerSecond;
// Gaps fire within a second of their deadline and alerts are re-sent every second: 30 s is
// only ever reached when something is broken.
constexpr auto kWaitTimeout = std::chrono::seconds(30);
constexpr char kExternalUrl[] = "http://ordertrace.test:8686";
// The default lifecycle's SLA of SUBMITTED (expected next: PRICE_CALCULATION_STARTED).
constexpr uint64_t kSubmittedSla = 10 * 60 * kSecond;
constexpr uint64_t kGrace = kSecond / 2;

// "2026-11-24T10:00:00.123456789Z" (the API's times) as unix nanoseconds; 0 when malformed.
uint64_t ParseApiTime(const json& value) {
  if (!value.is_string()) return 0;
  const std::string text = value.get<std::string>();
  std::tm tm{};
  unsigned long nanos = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%9luZ", &tm.tm_year, &tm.tm_mon,
                  &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &nanos) != 7) {
    return 0;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<uint64_t>(timegm(&tm)) * kSecond + nanos;
}

std::string GapId(const TestOrder& order, const std::string& stage) {
  return order.order_id + "/missing_transition/" + stage;
}

// The order's root span (shop-api's `order.root`) and its SUBMITTED transition, ending at
// `submitted_at`, and nothing after: alone, as a backlog flushed long after (an exporter
// retrying after an outage).
pb_collector::ExportTraceServiceRequest SubmittedBacklogRequest(const TestOrder& order,
                                                                uint64_t submitted_at) {
  pb_collector::ExportTraceServiceRequest request;
  AddRootSpan(request, order, submitted_at);
  AddTransition(request, order,
                {"shop-api", "shop.submit", "SUBMITTED", "FILE_UPLOADED", 3, submitted_at, 3});
  return request;
}

// The same with a span shop-api finished just now, as a live exporter's request carries (a
// request of old spans alone is a backlog: its deadlines wait until shop-api goes quiet,
// docs/gaps.md).
pb_collector::ExportTraceServiceRequest SubmittedRequest(const TestOrder& order,
                                                         uint64_t submitted_at) {
  pb_collector::ExportTraceServiceRequest request = SubmittedBacklogRequest(order, submitted_at);
  AddDetailSpan(request, order, {"shop-api", "shop.http.request", 9, 0, NowUnixNano()});
  return request;
}

// PRICE_CALCULATION_STARTED, reported by mes-api at `at` (default: now): the status the stuck
// order waited for.
pb_collector::ExportTraceServiceRequest PriceStartedRequest(const TestOrder& order,
                                                            uint64_t at = 0) {
  pb_collector::ExportTraceServiceRequest request;
  AddTransition(request, order,
                {"mes-api", "mes.price.start", "PRICE_CALCULATION_STARTED", "SUBMITTED", 4,
                 at != 0 ? at : NowUnixNano(), 4});
  return request;
}

const char kDetectedSubmitted[] =
    R"(gap_detected_total{kind="missing_transition",stage="SUBMITTED"})";
const char kOpenSubmitted[] = R"(open_gaps{kind="missing_transition",stage="SUBMITTED"})";

class GapsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(data_dir_.path().empty());
    ASSERT_FALSE(alertmanager_dir_.path().empty());
    // A port taken between FreePort() and the bind shows as an exit at start: try another.
    std::string error;
    for (int attempt = 0; attempt < 3; ++attempt) {
      alertmanager_port_ = FreePort();
      ASSERT_GT(alertmanager_port_, 0);
      alertmanager_ =
          std::make_unique<AlertmanagerProcess>(alertmanager_port_, alertmanager_dir_.path());
      error = alertmanager_->Start();
      if (error.empty()) break;
    }
    ASSERT_EQ(error, "") << "is prometheus-alertmanager installed (scripts/install-deps.sh)?";
    ASSERT_NO_FATAL_FAILURE(StartServer());
  }

  void TearDown() override {
    if (server_) server_->Shutdown();
    server_.reset();
    if (alertmanager_) {
      if (HasFailure()) std::cerr << "Alertmanager log:\n" << alertmanager_->Log();
      alertmanager_->Stop();
    }
  }

  // An OrdertraceServer on loopback port 0 over data_dir_, alerting to our Alertmanager.
  void StartServer() {
    ServerConfig config = LoopbackConfig(data_dir_.path());
    config.alertmanager_url = "http://127.0.0.1:" + std::to_string(alertmanager_port_);
    config.external_url = kExternalUrl;
    config.alertmanager_resend_nanos = kSecond;
    config.lifecycle.grace_nanos = kGrace;
    // A backlog (or a service known from stored orders, after a restart) is quiet after 3 s
    // without spans (30 s by default), to keep the tests short.
    config.gap_detector.watermarks.catch_up_idle_after_nanos = 3 * kSecond;
    server_ = std::make_unique<OrdertraceServer>(std::move(config));
    absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started;
    // Shutting down before a receiver's thread has entered httplib's accept loop hangs (see
    // server_test.cc, ShutdownRightAfterStartReturns): one answered request on each HTTP port
    // proves both loops run.
    for (int port : {server_->ports().http, server_->ports().otlp_http}) {
      ASSERT_EQ(WaitUntilServing(port), "");
    }
  }

  void Ingest(const pb_collector::ExportTraceServiceRequest& request) {
    httplib::Client client("127.0.0.1", server_->ports().otlp_http);
    client.set_connection_timeout(5, 0);
    client.set_read_timeout(15, 0);
    httplib::Result res =
        client.Post("/v1/traces", request.SerializeAsString(), "application/x-protobuf");
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    ASSERT_EQ(res->status, 200) << res->body;
  }

  // GET on ordertrace's API; the body, or "" when the request fails or is not 200.
  std::string ApiGet(const std::string& path) {
    httplib::Client client("127.0.0.1", server_->ports().http);
    client.set_connection_timeout(5, 0);
    client.set_read_timeout(15, 0);
    httplib::Result res = client.Get(path);
    if (!res || res->status != 200) {
      ADD_FAILURE() << "GET " << path << ": "
                    << (res ? std::to_string(res->status) + " " + res->body
                            : httplib::to_string(res.error()));
      return "";
    }
    return res->body;
  }

  json ApiJson(const std::string& path) {
    std::string body = ApiGet(path);
    return body.empty() ? json() : json::parse(body, nullptr, false);
  }

  // The gaps of `order` in `state` ("open", "resolved").
  json GapsOf(const TestOrder& order, const std::string& state) {
    json reply = ApiJson("/api/v1/gaps?state=" + state + "&order_id=" + order.order_id);
    return reply.is_object() ? reply["gaps"] : json::array();
  }

  // Waits until `order` has exactly one gap in `state`, and returns it (null on timeout).
  json WaitForGap(const TestOrder& order, const std::string& state) {
    json found;
    Eventually(kWaitTimeout, [&] {
      json gaps = GapsOf(order, state);
      if (gaps.size() != 1) return false;
      found = gaps[0];
      return true;
    });
    return found;
  }

  std::optional<double> Metric(const std::string& series) {
    return MetricValue(ApiGet("/metrics"), series);
  }

  // GET /api/v2/alerts of Alertmanager with the given matchers; nullopt when it does not
  // answer. Alertmanager lists no resolved alert.
  std::optional<json> GetAlerts(const std::vector<std::string>& filters) {
    std::string path = "/api/v2/alerts?active=true";
    for (const std::string& filter : filters) path += "&filter=" + QueryEscape(filter);
    httplib::Client client("127.0.0.1", alertmanager_port_);
    client.set_connection_timeout(std::chrono::seconds(1));
    client.set_read_timeout(std::chrono::seconds(5));
    auto result = client.Get(path);
    if (!result || result->status != 200) return std::nullopt;
    return json::parse(result->body, nullptr, false);
  }

  // Waits until the alert of `gap_id` is active in Alertmanager; nullopt after kWaitTimeout.
  std::optional<json> WaitForActiveAlert(const std::string& gap_id) {
    std::optional<json> found;
    Eventually(kWaitTimeout, [&] {
      auto alerts = GetAlerts({"gap_id=\"" + gap_id + "\""});
      if (!alerts || !alerts->is_array() || alerts->size() != 1) return false;
      if ((*alerts)[0]["status"]["state"] != "active") return false;
      found = (*alerts)[0];
      return true;
    });
    return found;
  }

  // True once Alertmanager lists no alert of `gap_id` (it was resolved), within kWaitTimeout.
  bool WaitForNoAlert(const std::string& gap_id) {
    return Eventually(kWaitTimeout, [&] {
      auto alerts = GetAlerts({"gap_id=\"" + gap_id + "\""});
      return alerts && alerts->is_array() && alerts->empty();
    });
  }

  TempDir data_dir_{"ordertrace_gaps_e2e"};
  TempDir alertmanager_dir_{"ordertrace_gaps_e2e_am"};
  int alertmanager_port_ = 0;
  std::unique_ptr<AlertmanagerProcess> alertmanager_;
  std::unique_ptr<OrdertraceServer> server_;
};

// The root spans of a trace as GET /api/traces/{id} returns it (Tempo's "batches").
std::vector<json> RootSpans(const json& trace) {
  std::vector<json> roots;
  if (!trace.is_object()) return roots;
  for (const json& batch : trace["batches"]) {
    for (const json& scope : batch["scopeSpans"]) {
      for (const json& span : scope["spans"]) {
        if (!span.contains("parentSpanId") || span["parentSpanId"] == "") roots.push_back(span);
      }
    }
  }
  return roots;
}

bool HasGapDetected(const json& span) {
  for (const json& attribute : span.value("attributes", json::array())) {
    if (attribute["key"] == "gap_detected") return attribute["value"] == json{{"boolValue", true}};
  }
  return false;
}

TEST_F(GapsE2eTest, StuckOrderRaisesAlertAndTheMissingStatusResolvesIt) {
  const TestOrder order = MakeOrder(1);
  const uint64_t submitted_at = NowUnixNano() - 3600 * kSecond;
  const uint64_t deadline = submitted_at + kSubmittedSla + kGrace;
  const uint64_t sent_at = NowUnixNano();
  ASSERT_NO_FATAL_FAILURE(Ingest(SubmittedRequest(order, submitted_at)));

  // Overdue on arrival (its deadline passed 50 minutes ago): the gap opens at once.
  json gap = WaitForGap(order, "open");
  ASSERT_TRUE(gap.is_object()) << "no open gap for " << order.order_id;
  const std::string gap_id = GapId(order, "SUBMITTED");
  EXPECT_EQ(gap["id"], gap_id);
  EXPECT_EQ(gap["order_id"], order.order_id);
  EXPECT_EQ(gap["partner_id"], order.partner_id);
  EXPECT_EQ(gap["kind"], "missing_transition");
  EXPECT_EQ(gap["stage"], "SUBMITTED");
  EXPECT_EQ(gap["expected"], json({"PRICE_CALCULATION_STARTED"}));
  EXPECT_EQ(gap["state"], "open");
  EXPECT_EQ(gap["service"], "shop-api");
  EXPECT_EQ(gap["trace_id"], order.TraceHex());
  EXPECT_EQ(gap["resolved_at"], nullptr);
  EXPECT_EQ(ParseApiTime(gap["since"]), submitted_at);
  EXPECT_EQ(ParseApiTime(gap["deadline"]), deadline);
  // Detected when it arrived, not at some later scan.
  const uint64_t detected_at = ParseApiTime(gap["detected_at"]);
  EXPECT_GE(detected_at, sent_at);
  EXPECT_LT(detected_at, sent_at + 5 * kSecond);
  EXPECT_NEAR(gap["detection_delay_seconds"].get<double>(),
              static_cast<double>(detected_at - deadline) / 1e9, 1e-3);

  // Raised in Alertmanager.
  std::optional<json> alert = WaitForActiveAlert(gap_id);
  ASSERT_TRUE(alert.has_value()) << "alert of " << gap_id << " never became active";
  EXPECT_EQ((*alert)["labels"], json({{"alertname", "OrderGap"},
                                      {"kind", "missing_transition"},
                                      {"stage", "SUBMITTED"},
                                      {"partner_id", order.partner_id},
                                      {"severity", "warning"},
                                      {"gap_id", gap_id}}));
  const json& annotations = (*alert)["annotations"];
  // The link opens the order's console page; `api` is its JSON.
  const std::string link = std::string(kExternalUrl) + "/orders/" + order.order_id;
  EXPECT_EQ(annotations["order_id"], order.order_id);
  EXPECT_EQ(annotations["link"], link);
  EXPECT_EQ(annotations["api"], std::string(kExternalUrl) + "/api/v1/orders/" + order.order_id);
  EXPECT_EQ(annotations["trace_id"], order.TraceHex());
  EXPECT_THAT(annotations["summary"].get<std::string>(), ::testing::HasSubstr(order.order_id));
  EXPECT_EQ((*alert)["generatorURL"], link);

  // Counted, shown on the order and on its trace.
  EXPECT_EQ(Metric(kDetectedSubmitted), 1.0);
  EXPECT_EQ(Metric(kOpenSubmitted), 1.0);
  json view = ApiJson("/api/v1/orders/" + order.order_id);
  ASSERT_TRUE(view.is_object());
  ASSERT_EQ(view["open_gaps"].size(), 1u);
  EXPECT_EQ(view["open_gaps"][0]["id"], gap_id);
  json trace = ApiJson("/api/traces/" + order.TraceHex());
  std::vector<json> roots = RootSpans(trace);
  ASSERT_EQ(roots.size(), 1u) << trace.dump();
  EXPECT_EQ(roots[0]["name"], "order.root");
  EXPECT_TRUE(HasGapDetected(roots[0])) << roots[0].dump();

  // The missing status arrives: resolved in ordertrace, gone from Alertmanager.
  const uint64_t answered_at = NowUnixNano();
  ASSERT_NO_FATAL_FAILURE(Ingest(PriceStartedRequest(order)));
  json resolved = WaitForGap(order, "resolved");
  ASSERT_TRUE(resolved.is_object()) << "gap " << gap_id << " never resolved";
  EXPECT_EQ(resolved["id"], gap_id);
  EXPECT_EQ(resolved["state"], "resolved");
  EXPECT_EQ(ParseApiTime(resolved["detected_at"]), detected_at);
  EXPECT_GE(ParseApiTime(resolved["resolved_at"]), answered_at);
  EXPECT_TRUE(GapsOf(order, "open").empty());
  EXPECT_TRUE(WaitForNoAlert(gap_id)) << "alert of " << gap_id << " still active";

  EXPECT_EQ(Metric(kDetectedSubmitted), 1.0);
  // Today the series vanishes once no gap of its kind and stage is open; absent reads as 0.
  EXPECT_EQ(Metric(kOpenSubmitted).value_or(0), 0.0);
  view = ApiJson("/api/v1/orders/" + order.order_id);
  ASSERT_TRUE(view.is_object());
  EXPECT_EQ(view["open_gaps"], json::array());
  EXPECT_EQ(view["current_status"], "PRICE_CALCULATION_STARTED");
  // The trace keeps the mark: it has had a gap.
  roots = RootSpans(ApiJson("/api/traces/" + order.TraceHex()));
  ASSERT_EQ(roots.size(), 1u);
  EXPECT_TRUE(HasGapDetected(roots[0]));
}

// PII removed at ingest (docs/security.md) never reaches an alert, wherever it was sent: the
// span and service names an alert's detail is made of, status messages and attributes.
TEST_F(GapsE2eTest, AnAlertCarriesNoPiiSentInTheSpansOfItsOrder) {
  const TestOrder order = MakeOrder(7);
  pb_collector::ExportTraceServiceRequest request =
      SubmittedRequest(order, NowUnixNano() - 3600 * kSecond);
  constexpr char kEmail[] = "jane.alert@example.com";
  constexpr char kPhone[] = "+49 30 7654321";
  // What an alert is made of: the service's name (its label and the gap's detail) and the
  // partner (a label), here carrying an address and a number, which ingest masks and removes.
  auto rewrite = [](auto& attributes, const std::string& key, const std::string& value) {
    for (auto& kv : attributes) {
      if (kv.key() == key) kv.mutable_value()->set_string_value(value);
    }
  };
  for (auto& resource_spans : *request.mutable_resource_spans()) {
    auto& resource_attributes = *resource_spans.mutable_resource()->mutable_attributes();
    rewrite(resource_attributes, "service.name", std::string("shop-api ") + kEmail);
    AddAttribute(&resource_attributes, "owner", kEmail);
    for (auto& scope_spans : *resource_spans.mutable_scope_spans()) {
      for (auto& span : *scope_spans.mutable_spans()) {
        span.set_name(span.name() + " for " + kEmail);
        span.mutable_status()->set_message(std::string("call ") + kPhone);
        rewrite(*span.mutable_attributes(), "partner_id", kPhone);
        AddAttribute(span.mutable_attributes(), "customer.email", kEmail);
        AddAttribute(span.mutable_attributes(), "note", std::string("phone ") + kPhone);
      }
    }
  }
  ASSERT_NO_FATAL_FAILURE(Ingest(request));
  std::optional<json> alert = WaitForActiveAlert(GapId(order, "SUBMITTED"));
  ASSERT_TRUE(alert.has_value()) << "the overdue order raised no alert";
  const std::string text = alert->dump();
  EXPECT_EQ(text.find(kEmail), std::string::npos) << text;
  EXPECT_EQ(text.find("7654321"), std::string::npos) << text;
  EXPECT_NE(text.find(order.order_id), std::string::npos) << "the alert names its order";
  EXPECT_NE(text.find("shop-api [email]"), std::string::npos) << "and its masked service";
}

TEST_F(GapsE2eTest, DeadlineAheadFiresWhenItPassesNotBefore) {
  const TestOrder order = MakeOrder(2);
  // Reached SUBMITTED 2 s short of its SLA: the deadline is 2.5 s ahead.
  const uint64_t submitted_at = NowUnixNano() - kSubmittedSla + 2 * kSecond;
  const uint64_t deadline = submitted_at + kSubmittedSla + kGrace;
  ASSERT_NO_FATAL_FAILURE(Ingest(SubmittedRequest(order, submitted_at)));
  EXPECT_TRUE(GapsOf(order, "open").empty()) << "gap opened before its deadline";

  json gap = WaitForGap(order, "open");
  ASSERT_TRUE(gap.is_object()) << "no open gap for " << order.order_id;
  EXPECT_EQ(ParseApiTime(gap["deadline"]), deadline);
  EXPECT_GE(ParseApiTime(gap["detected_at"]), deadline);
  // The detection target: a gap fires within 1 s of its deadline.
  EXPECT_LT(gap["detection_delay_seconds"].get<double>(), 1.0);
  EXPECT_TRUE(WaitForActiveAlert(GapId(order, "SUBMITTED")).has_value());
}

TEST_F(GapsE2eTest, GapOpensWhileAlertmanagerIsDownAndItsAlertArrivesWhenItIsBack) {
  const TestOrder before = MakeOrder(10);
  ASSERT_NO_FATAL_FAILURE(Ingest(SubmittedRequest(before, NowUnixNano() - 3600 * kSecond)));
  ASSERT_TRUE(WaitForActiveAlert(GapId(before, "SUBMITTED")).has_value());

  alertmanager_->Stop();
  const TestOrder during = MakeOrder(11);
  ASSERT_NO_FATAL_FAILURE(Ingest(SubmittedRequest(during, NowUnixNano() - 3600 * kSecond)));
  json gap = WaitForGap(during, "open");
  ASSERT_TRUE(gap.is_object()) << "no gap while Alertmanager is down";
  EXPECT_EQ(gap["id"], GapId(during, "SUBMITTED"));
  EXPECT_EQ(Metric(kOpenSubmitted), 2.0);
  // Let several deliveries fail before Alertmanager is back.
  ASSERT_TRUE(Eventually(kWaitTimeout, [&] {
    return Metric("alertmanager_failed_posts_total").value_or(0) >= 2;
  })) << "no delivery failed while Alertmanager was down";

  // Same port, same storage. Alertmanager keeps no alerts across a restart, so `before` comes
  // back only through ordertrace's re-sends, `during` through its retries.
  ASSERT_EQ(alertmanager_->Start(), "");
  std::optional<json> arrived = WaitForActiveAlert(GapId(during, "SUBMITTED"));
  ASSERT_TRUE(arrived.has_value()) << "the alert of the gap opened while down never arrived";
  EXPECT_EQ((*arrived)["annotations"]["order_id"], during.order_id);
  EXPECT_TRUE(WaitForActiveAlert(GapId(before, "SUBMITTED")).has_value());
}

TEST_F(GapsE2eTest, RestartKeepsOpenGapsAndFiresDeadlinesThatPassedWhileDown) {
  // A gap open before the restart.
  const TestOrder stuck = MakeOrder(20);
  ASSERT_NO_FATAL_FAILURE(Ingest(SubmittedRequest(stuck, NowUnixNano() - 3600 * kSecond)));
  json before = WaitForGap(stuck, "open");
  ASSERT_TRUE(before.is_object());
  std::optional<json> alert_before = WaitForActiveAlert(GapId(stuck, "SUBMITTED"));
  ASSERT_TRUE(alert_before.has_value());
  EXPECT_EQ(Metric(kDetectedSubmitted), 1.0);

  // An order whose deadline is 3.5 s ahead, and passes while ordertrace is down.
  const TestOrder late = MakeOrder(21);
  const uint64_t submitted_at = NowUnixNano() - kSubmittedSla + 3 * kSecond;
  const uint64_t deadline = submitted_at + kSubmittedSla + kGrace;
  ASSERT_NO_FATAL_FAILURE(Ingest(SubmittedRequest(late, submitted_at)));
  ASSERT_TRUE(GapsOf(late, "open").empty()) << "gap opened before its deadline";

  server_->Shutdown();
  server_.reset();
  const uint64_t down_at = NowUnixNano();
  ASSERT_LT(down_at, deadline) << "the machine was too slow to stop ordertrace before the deadline";
  // Alertmanager restarts meanwhile and forgets every alert: the open gap's alert can only
  // come back through the new ordertrace re-announcing it.
  alertmanager_->Stop();
  ASSERT_EQ(alertmanager_->Start(), "");
  std::optional<json> forgotten = GetAlerts({"gap_id=\"" + GapId(stuck, "SUBMITTED") + "\""});
  ASSERT_TRUE(forgotten.has_value());
  EXPECT_TRUE(forgotten->empty()) << forgotten->dump();
  while (NowUnixNano() < deadline + 2 * kSecond) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  const uint64_t restart_began = NowUnixNano();
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const uint64_t restarted = NowUnixNano();

  // The open gap is still open: same id, same detection time.
  json after = WaitForGap(stuck, "open");
  ASSERT_TRUE(after.is_object()) << "the open gap did not survive the restart";
  EXPECT_EQ(after["id"], before["id"]);
  EXPECT_EQ(after["detected_at"], before["detected_at"]);
  EXPECT_EQ(after["deadline"], before["deadline"]);

  // The deadline that passed while down fired soon after the restart: once shop-api (known from
  // the stored orders) has had catch_up_idle_after (3 s here) to flush what it queued, and did
  // not.
  json fired = WaitForGap(late, "open");
  ASSERT_TRUE(fired.is_object()) << "the deadline that passed while down never fired";
  EXPECT_EQ(fired["id"], GapId(late, "SUBMITTED"));
  EXPECT_EQ(ParseApiTime(fired["deadline"]), deadline);
  const uint64_t detected_at = ParseApiTime(fired["detected_at"]);
  EXPECT_GE(detected_at, restart_began + 3 * kSecond);
  EXPECT_LE(detected_at, restarted + 5 * kSecond);

  // Counted once each: the restored gap is not counted again, the new one is.
  EXPECT_EQ(Metric(kDetectedSubmitted), 1.0);
  EXPECT_EQ(Metric(kOpenSubmitted), 2.0);
  EXPECT_EQ(GapsOf(stuck, "open").size(), 1u);

  // Both alerts active in the restarted Alertmanager: the restored one re-announced, the new
  // one raised.
  std::optional<json> restored = WaitForActiveAlert(GapId(stuck, "SUBMITTED"));
  ASSERT_TRUE(restored.has_value()) << "the open gap was not re-announced after the restart";
  EXPECT_EQ((*restored)["startsAt"], (*alert_before)["startsAt"]);
  std::optional<json> raised = WaitForActiveAlert(GapId(late, "SUBMITTED"));
  ASSERT_TRUE(raised.has_value());
  EXPECT_EQ((*raised)["annotations"]["order_id"], late.order_id);
}

// A backlog flushed after an outage (every span hours old) pages nothing it answers itself
// (docs/gaps.md, "When ordertrace decides"). An order whose next status came in time has no gap
// at all; one whose next status came after its deadline has a gap recorded already resolved, by
// that status, never paged.
TEST_F(GapsE2eTest, BacklogFlushedAfterAnOutagePagesNothingItAnswers) {
  const TestOrder in_time = MakeOrder(30);
  const TestOrder overran = MakeOrder(31);
  const uint64_t submitted_at = NowUnixNano() - 3 * 3600 * kSecond;
  const uint64_t late_answer = submitted_at + kSubmittedSla + 20 * 60 * kSecond;
  // shop-api's queue first, then mes-api's: each order's answer comes in a later request.
  ASSERT_NO_FATAL_FAILURE(Ingest(SubmittedBacklogRequest(in_time, submitted_at)));
  ASSERT_NO_FATAL_FAILURE(Ingest(SubmittedBacklogRequest(overran, submitted_at)));
  ASSERT_NO_FATAL_FAILURE(Ingest(PriceStartedRequest(in_time, submitted_at + 60 * kSecond)));
  ASSERT_NO_FATAL_FAILURE(Ingest(PriceStartedRequest(overran, late_answer)));

  // Recorded once the evidence is in (the backlog went quiet), already resolved.
  json gap = WaitForGap(overran, "resolved");
  ASSERT_TRUE(gap.is_object()) << "the overrun was not recorded";
  EXPECT_EQ(gap["id"], GapId(overran, "SUBMITTED"));
  EXPECT_EQ(gap["resolved_by"], "PRICE_CALCULATION_STARTED");
  EXPECT_EQ(ParseApiTime(gap["resolved_at"]), late_answer);
  EXPECT_EQ(gap["paged"], false);
  EXPECT_EQ(Metric(kDetectedSubmitted).value_or(0), 0.0) << "counted as paged";
  EXPECT_EQ(Metric(R"(gap_found_resolved_total{kind="missing_transition",stage="SUBMITTED"})"),
            1.0);
  // Both orders are stuck in PRICE_CALCULATION_STARTED since (a true gap each); SUBMITTED was
  // left in time by one and is a resolved gap of the other, nothing else.
  for (const json& other : GapsOf(in_time, "all")) {
    EXPECT_EQ(other["kind"], "calculation_overdue") << other.dump();
  }
  for (const json& open : GapsOf(overran, "open")) {
    EXPECT_EQ(open["kind"], "calculation_overdue") << open.dump();
  }
  // Never paged: Alertmanager has never heard of it.
  std::optional<json> alerts = GetAlerts({"gap_id=\"" + GapId(overran, "SUBMITTED") + "\""});
  ASSERT_TRUE(alerts.has_value());
  EXPECT_TRUE(alerts->empty()) << alerts->dump();
  EXPECT_EQ(Metric(R"(ordertrace_gaps_held)"), 0.0);
}

}  // namespace
}  // namespace ordertrace::server
