// Integration tests of the Alexandrite services (docs/services.md) as a user meets them: a
// private RabbitMQ started by scripts/rabbitmq.sh on a free loopback port, ordertrace embedded
// in-process (temporary data folder, port 0 listeners), and shop-api, crm-api and mes-api
// started in-process, exporting their spans to ordertrace over OTLP/HTTP. Every request goes
// over real HTTP; every wait is a poll with a deadline. The whole suite shares one broker, so
// ctest runs the binary as one test.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "server/config.h"
#include "server/ordertrace_server.h"
#include "services/common/order_transitions.h"
#include "services/common/service_options.h"
#include "services/crm/crm_service.h"
#include "services/mes/mes_service.h"
#include "services/shop/shop_service.h"
#include "tests/support/free_port.h"

namespace ordertrace::services {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Bounds every wait for something asynchronous (a message, an exported span).
constexpr seconds kDeadline{60};
// Bounds the waits that span a broker restart.
constexpr seconds kRestartDeadline{120};
constexpr milliseconds kPollInterval{50};
constexpr int kStatusCount = static_cast<int>(std::size(kDefaultLifecycle));
constexpr char kSpanKindProducer[] = "4";
constexpr char kSpanKindConsumer[] = "5";

// ---- Processes, files, ports ----

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// What a run of scripts/rabbitmq.sh printed.
struct ScriptRun {
  bool ok = false;
  std::string out;
  std::string err;
};

ScriptRun RunRabbitMqScript(const std::string& args, const std::string& scratch, int timeout_s) {
  std::string out = scratch + ".out";
  std::string err = scratch + ".err";
  std::string command = "timeout " + std::to_string(timeout_s) + " " + ORDERTRACE_RABBITMQ_SCRIPT +
                        " " + args + " >" + out + " 2>" + err;
  int rc = std::system(command.c_str());
  ScriptRun run{rc == 0, ReadFile(out), ReadFile(err)};
  std::remove(out.c_str());
  std::remove(err.c_str());
  while (!run.out.empty() && (run.out.back() == '\n' || run.out.back() == '\r')) {
    run.out.pop_back();
  }
  return run;
}

// Stops the broker in a folder and removes the test's folders when this process ends without
// doing so itself (a crash, an abort, a ctest timeout): a detached process waits for the end of a
// pipe that only this process holds open. Arm before any thread starts (it forks).
class BrokerWatchdog {
 public:
  void Arm(const std::string& rabbitmq_dir, const std::string& scratch) {
    int fds[2];
    if (pipe(fds) != 0) return;
    std::string command = std::string(ORDERTRACE_RABBITMQ_SCRIPT) + " stop " + rabbitmq_dir +
                          "; rm -rf " + rabbitmq_dir + " " + rabbitmq_dir + ".out " + rabbitmq_dir +
                          ".err " + scratch;
    pid_t child = fork();
    if (child == 0) {
      // Detach twice, so that ctest, which ends the test's process tree on a timeout, does not
      // end the watchdog with it.
      setsid();
      if (fork() != 0) _exit(0);
      close(fds[1]);
      int null_fd = open("/dev/null", O_RDWR);
      dup2(null_fd, 0);
      dup2(null_fd, 1);
      dup2(null_fd, 2);
      char byte = 0;
      ssize_t n;
      while ((n = read(fds[0], &byte, 1)) < 0 && errno == EINTR) {
      }
      if (n == 1) _exit(0);  // disarmed: the test process stopped the broker itself
      execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      _exit(1);
    }
    close(fds[0]);
    if (child > 0) {
      waitpid(child, nullptr, 0);
      write_fd_ = fds[1];
    } else {
      close(fds[1]);
    }
  }

  void Disarm() {
    if (write_fd_ < 0) return;
    char byte = 'x';
    if (write(write_fd_, &byte, 1) != 1) std::perror("watchdog");
    close(write_fd_);
    write_fd_ = -1;
  }

 private:
  int write_fd_ = -1;
};

// ---- HTTP ----

struct HttpReply {
  int status = 0;  // 0: no answer
  json body;       // discarded when the body is not JSON
  std::string raw;
};

HttpReply Call(int port, const std::string& method, const std::string& path,
               const std::string& body = "", const std::string& content_type = "application/json") {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(seconds(5));
  client.set_read_timeout(seconds(30));
  client.set_write_timeout(seconds(30));
  auto send = [&]() {
    if (method == "POST") return client.Post(path.c_str(), body, content_type.c_str());
    if (method == "PUT") return client.Put(path.c_str(), body, content_type.c_str());
    return client.Get(path.c_str());
  };
  httplib::Result result = send();
  HttpReply reply;
  if (!result) return reply;
  reply.status = result->status;
  reply.raw = result->body;
  reply.body = json::parse(result->body, nullptr, /*allow_exceptions=*/false);
  return reply;
}

std::string Describe(const HttpReply& reply) {
  return "HTTP " + std::to_string(reply.status) + " " + reply.raw.substr(0, 400);
}

// Polls `done` until it holds or `limit` passes.
bool PollUntil(const std::function<bool()>& done, std::chrono::seconds limit = kDeadline) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (true) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(kPollInterval);
  }
}

// A binary STL: 80-byte header, little-endian triangle count, 50 bytes per triangle.
std::string BinaryStl(uint32_t triangles) {
  std::string stl(80, ' ');
  stl.replace(0, 19, "services_flow_test ");
  for (int shift = 0; shift < 32; shift += 8) {
    stl.push_back(static_cast<char>((triangles >> shift) & 0xff));
  }
  stl.append(static_cast<size_t>(triangles) * 50, '\x01');
  return stl;
}

// ---- Traces as ordertrace returns them (GET /api/traces/{id}) ----

struct TracedSpan {
  std::string service;
  std::string trace_id;
  std::string span_id;
  std::string parent_span_id;
  std::string name;
  std::string kind;                                        // OTLP's number, as text
  std::map<std::string, std::string> attributes;           // values as text
  std::vector<std::pair<std::string, std::string>> links;  // (trace id, span id)
  std::vector<std::string> event_names;

  bool Has(const std::string& key) const { return attributes.count(key) > 0; }
  std::string Attr(const std::string& key) const {
    auto it = attributes.find(key);
    return it == attributes.end() ? "" : it->second;
  }
  int64_t IntAttr(const std::string& key) const {
    std::string text = Attr(key);
    return text.empty() ? -1 : std::stoll(text);
  }
};

std::string ValueText(const json& value) {
  for (const char* key : {"stringValue", "intValue"}) {
    if (value.contains(key)) return value[key].get<std::string>();
  }
  if (value.contains("boolValue")) return value["boolValue"].get<bool>() ? "true" : "false";
  if (value.contains("doubleValue")) return value["doubleValue"].dump();
  return value.dump();
}

std::map<std::string, std::string> Attributes(const json& list) {
  std::map<std::string, std::string> out;
  if (!list.is_array()) return out;
  for (const json& kv : list) out[kv.value("key", "")] = ValueText(kv.value("value", json()));
  return out;
}

std::vector<TracedSpan> SpansOf(const json& trace) {
  std::vector<TracedSpan> spans;
  if (!trace.is_object() || !trace.contains("batches")) return spans;
  for (const json& batch : trace["batches"]) {
    std::map<std::string, std::string> resource =
        Attributes(batch.value("resource", json::object()).value("attributes", json::array()));
    for (const json& scope : batch.value("scopeSpans", json::array())) {
      for (const json& s : scope.value("spans", json::array())) {
        TracedSpan span;
        span.service = resource["service.name"];
        span.trace_id = s.value("traceId", "");
        span.span_id = s.value("spanId", "");
        span.parent_span_id = s.value("parentSpanId", "");
        span.name = s.value("name", "");
        span.kind = std::to_string(s.value("kind", 0));
        span.attributes = Attributes(s.value("attributes", json::array()));
        for (const json& link : s.value("links", json::array())) {
          span.links.emplace_back(link.value("traceId", ""), link.value("spanId", ""));
        }
        for (const json& event : s.value("events", json::array())) {
          span.event_names.push_back(event.value("name", ""));
        }
        spans.push_back(std::move(span));
      }
    }
  }
  return spans;
}

// True when some object in `node` is an attribute keyed `key` (span, event, link or resource).
bool HasAttributeKeyed(const json& node, const std::string& key) {
  if (node.is_object()) {
    if (node.contains("key") && node.contains("value") && node["key"] == key) return true;
    for (const auto& [name, child] : node.items()) {
      if (HasAttributeKeyed(child, key)) return true;
    }
  } else if (node.is_array()) {
    for (const json& child : node) {
      if (HasAttributeKeyed(child, key)) return true;
    }
  }
  return false;
}

// ---- The environment: broker, ordertrace, the three services ----

struct Stack {
  std::string scratch;  // temporary folder for ordertrace's data and the services' databases
  std::string rabbitmq_dir;
  int rabbitmq_port = 0;
  std::string amqp_url;
  BrokerWatchdog watchdog;
  bool broker_running = false;
  std::unique_ptr<server::OrdertraceServer> ordertrace;
  std::unique_ptr<shop::ShopService> shop;
  std::unique_ptr<crm::CrmService> crm;
  std::unique_ptr<mes::MesService> mes;
  std::string start_error;  // why the stack is not there

  int ordertrace_port() const { return ordertrace->ports().http; }
};

Stack* g_stack = nullptr;

// One order as a test plans it, and what the services told about it.
struct Order {
  std::string customer_id;
  std::string partner_id;  // "" for a customer's own order
  uint32_t polygons = 0;
  std::string complexity_class;
  std::string email;
  std::string phone;
  // Filled once created.
  std::string id;
  std::string trace_id;
  // Who started manufacturing (the body of that step).
  std::string operator_id;
};

Order Planned(std::string customer_id, std::string partner_id, uint32_t polygons,
              std::string complexity_class, std::string email = "", std::string phone = "") {
  Order order;
  order.customer_id = std::move(customer_id);
  order.partner_id = std::move(partner_id);
  order.polygons = polygons;
  order.complexity_class = std::move(complexity_class);
  order.email = std::move(email);
  order.phone = std::move(phone);
  return order;
}

class ServicesFlowTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::signal(SIGPIPE, SIG_IGN);  // as the services' main() does
    g_stack = new Stack;
    StartStack(*g_stack);
    if (!g_stack->start_error.empty()) {
      std::fprintf(stderr, "stack did not start: %s\n", g_stack->start_error.c_str());
    }
  }

  static void TearDownTestSuite() {
    Stack& stack = *g_stack;
    if (stack.shop) stack.shop->Shutdown();
    if (stack.crm) stack.crm->Shutdown();
    if (stack.mes) stack.mes->Shutdown();
    if (stack.ordertrace) stack.ordertrace->Shutdown();
    // node.env: the script got as far as starting a node there.
    if (!stack.rabbitmq_dir.empty() && std::filesystem::exists(stack.rabbitmq_dir + "/node.env")) {
      ScriptRun stop = RunRabbitMqScript("stop " + stack.rabbitmq_dir, stack.rabbitmq_dir, 90);
      EXPECT_TRUE(stop.ok) << "scripts/rabbitmq.sh stop failed: " << stop.err;
      if (stop.ok) {
        stack.watchdog.Disarm();
        std::error_code ignored;
        std::filesystem::remove_all(stack.rabbitmq_dir, ignored);
      }
    }
    stack.shop.reset();
    stack.crm.reset();
    stack.mes.reset();
    stack.ordertrace.reset();
    std::error_code ignored;
    if (!stack.scratch.empty()) std::filesystem::remove_all(stack.scratch, ignored);
    delete g_stack;
    g_stack = nullptr;
  }

  static void StartStack(Stack& stack) {
    char scratch[] = "/tmp/ot-services-flow-XXXXXX";
    char rabbitmq[] = "/tmp/ot-services-rabbitmq-XXXXXX";
    if (mkdtemp(scratch) == nullptr || mkdtemp(rabbitmq) == nullptr) {
      stack.start_error = "mkdtemp failed";
      return;
    }
    stack.scratch = scratch;
    stack.rabbitmq_dir = rabbitmq;
    // RabbitMQ's Erlang distribution listens 20000 above the AMQP port.
    stack.rabbitmq_port = test_support::FreePortWithRoomAbove(20000);
    if (stack.rabbitmq_port < 0) {
      stack.start_error = "no free loopback port";
      return;
    }
    stack.watchdog.Arm(stack.rabbitmq_dir, stack.scratch);
    if (!StartBroker(stack)) return;

    server::ServerConfig config;
    config.data_dir = stack.scratch + "/ordertrace";
    config.otlp_grpc_listen = "127.0.0.1:0";
    config.otlp_http_listen = "127.0.0.1:0";
    config.http_listen = "127.0.0.1:0";
    config.log_level = "warn";
    config.http_threads = 4;
    // These tests assert on whole traces (every phase and DB span, no PII anywhere): the tail
    // sampler keeps every trace here (its own tests cover what it drops).
    config.sampling.ratio = 1;
    stack.ordertrace = std::make_unique<server::OrdertraceServer>(config);
    if (absl::Status started = stack.ordertrace->Start(); !started.ok()) {
      stack.start_error = "ordertrace: " + started.ToString();
      return;
    }

    auto options = [&](const char* short_name) {
      ServiceOptions o;
      o.http_listen = "127.0.0.1:0";
      o.amqp_url = stack.amqp_url;
      o.otlp_endpoint =
          "http://127.0.0.1:" + std::to_string(stack.ordertrace->ports().otlp_http) + "/v1/traces";
      o.db_path = stack.scratch + "/" + short_name + ".db";
      o.time_scale = 3600;
      return o;
    };
    auto shop = shop::ShopService::Start(options("shop"));
    auto crm = crm::CrmService::Start(options("crm"));
    auto mes = mes::MesService::Start(options("mes"));
    for (const absl::Status& status : {shop.status(), crm.status(), mes.status()}) {
      if (!status.ok()) {
        stack.start_error = "service: " + status.ToString();
        return;
      }
    }
    stack.shop = *std::move(shop);
    stack.crm = *std::move(crm);
    stack.mes = *std::move(mes);
    bool consuming = PollUntil([&] {
      return stack.shop->runtime().IsConsuming() && stack.crm->runtime().IsConsuming() &&
             stack.mes->runtime().IsConsuming();
    });
    if (!consuming) stack.start_error = "the services' consumers did not connect";
  }

  // Starts (or restarts, on the same folder and port) the private broker.
  static bool StartBroker(Stack& stack) {
    auto started_at = std::chrono::steady_clock::now();
    ScriptRun start =
        RunRabbitMqScript("start " + stack.rabbitmq_dir + " " + std::to_string(stack.rabbitmq_port),
                          stack.rabbitmq_dir, 120);
    if (!start.ok || start.out.rfind("amqp://", 0) != 0) {
      stack.start_error = "scripts/rabbitmq.sh start failed: " + start.err;
      return false;
    }
    stack.amqp_url = start.out;
    stack.broker_running = true;
    std::fprintf(
        stderr, "RabbitMQ at %s started in %.1f s\n", stack.amqp_url.c_str(),
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at).count());
    return true;
  }

  void SetUp() override {
    ASSERT_NE(g_stack, nullptr);
    ASSERT_TRUE(g_stack->start_error.empty()) << g_stack->start_error;
    ASSERT_TRUE(g_stack->broker_running) << "RabbitMQ is not running";
  }

  int shop() const { return g_stack->shop->http_port(); }
  int crm() const { return g_stack->crm->http_port(); }
  int mes() const { return g_stack->mes->http_port(); }
  int ordertrace() const { return g_stack->ordertrace_port(); }

  // ---- Driving orders over HTTP ----

  void Create(Order& order) {
    json request = {{"customer_id", order.customer_id}};
    if (!order.partner_id.empty()) request["partner_id"] = order.partner_id;
    if (!order.email.empty()) request["email"] = order.email;
    if (!order.phone.empty()) request["phone"] = order.phone;
    HttpReply reply = Call(shop(), "POST", "/api/orders", request.dump());
    ASSERT_EQ(reply.status, 201) << Describe(reply);
    ASSERT_EQ(reply.body.value("status", ""), "INITIATED") << Describe(reply);
    EXPECT_EQ(reply.body.value("event_version", 0), 1);
    order.id = reply.body.value("order_id", "");
    order.trace_id = reply.body.value("trace_id", "");
    ASSERT_FALSE(order.id.empty()) << Describe(reply);
    ASSERT_EQ(order.trace_id.size(), 32u) << Describe(reply);
  }

  // One HTTP transition that must succeed and answer the new status.
  void Step(int port, const std::string& path, std::string_view new_status,
            const std::string& body = "", const std::string& method = "POST",
            const std::string& content_type = "application/json") {
    HttpReply reply = Call(port, method, path, body, content_type);
    ASSERT_EQ(reply.status, 200) << method << " " << path << ": " << Describe(reply);
    ASSERT_EQ(reply.body.value("status", ""), new_status) << path << ": " << Describe(reply);
  }

  void Upload(const Order& order) {
    HttpReply reply = Call(shop(), "PUT", "/api/orders/" + order.id + "/model",
                           BinaryStl(order.polygons), "application/octet-stream");
    ASSERT_EQ(reply.status, 200) << Describe(reply);
    ASSERT_EQ(reply.body.value("status", ""), "FILE_UPLOADED");
    ASSERT_EQ(reply.body.value("polygon_count", int64_t{-1}), order.polygons);
  }

  // Waits until the service on `port` sees `order_id` at `status` or later.
  void AwaitView(int port, const std::string& service, const std::string& order_id,
                 std::string_view status, std::chrono::seconds limit = kDeadline) {
    HttpReply last;
    bool reached = PollUntil(
        [&] {
          last = Call(port, "GET", "/api/orders/" + order_id);
          return last.status == 200 &&
                 LifecycleIndex(last.body.value("status", "")) >= LifecycleIndex(status);
        },
        limit);
    ASSERT_TRUE(reached) << service << " never saw order " << order_id << " at " << status
                         << "; last answer: " << Describe(last);
  }

  void Submit(const Order& o) { Step(shop(), "/api/orders/" + o.id + "/submit", kSubmitted); }
  void Approve(const Order& o) {
    AwaitView(crm(), "crm-api", o.id, kPriceCalculated);
    Step(crm(), "/api/orders/" + o.id + "/approve", kManufacturingApproved);
  }
  void Manufacture(Order& o) {
    AwaitView(mes(), "mes-api", o.id, kManufacturingApproved);
    o.operator_id = "operator-" + o.customer_id;
    Step(mes(), "/api/orders/" + o.id + "/manufacturing/start", kManufacturingStarted,
         json{{"operator_id", o.operator_id}}.dump());
    Step(mes(), "/api/orders/" + o.id + "/manufacturing/complete", kManufacturingCompleted);
    Step(mes(), "/api/orders/" + o.id + "/packaging", kPackaging);
    Step(mes(), "/api/orders/" + o.id + "/ship", kShipped);
  }
  void Close(const Order& o, std::chrono::seconds limit = kDeadline) {
    AwaitView(crm(), "crm-api", o.id, kShipped, limit);
    Step(crm(), "/api/orders/" + o.id + "/close", kClosed);
  }

  // Every status, each step done for all orders before the next, so the orders overlap.
  void DriveToClosed(std::vector<Order>& orders) {
    for (Order& o : orders) ASSERT_NO_FATAL_FAILURE(Create(o));
    for (Order& o : orders) ASSERT_NO_FATAL_FAILURE(Upload(o));
    for (Order& o : orders) ASSERT_NO_FATAL_FAILURE(Submit(o));
    for (Order& o : orders) ASSERT_NO_FATAL_FAILURE(Approve(o));
    for (Order& o : orders) ASSERT_NO_FATAL_FAILURE(Manufacture(o));
    for (Order& o : orders) ASSERT_NO_FATAL_FAILURE(Close(o));
  }

  // Every service's view reaches CLOSED at version 11 (each one learns the others' changes).
  void ExpectClosedEverywhere(const Order& o, std::chrono::seconds limit = kDeadline) {
    for (auto [port, name] : {std::pair{shop(), "shop-api"}, std::pair{crm(), "crm-api"},
                              std::pair{mes(), "mes-api"}}) {
      ASSERT_NO_FATAL_FAILURE(AwaitView(port, name, o.id, kClosed, limit));
      HttpReply view = Call(port, "GET", "/api/orders/" + o.id);
      EXPECT_EQ(view.body.value("event_version", 0), kStatusCount) << name << Describe(view);
      EXPECT_EQ(view.body.value("trace_id", ""), o.trace_id) << name;
      if (o.partner_id.empty()) {
        EXPECT_TRUE(view.body["partner_id"].is_null()) << name << Describe(view);
      } else {
        EXPECT_EQ(view.body.value("partner_id", ""), o.partner_id) << name;
      }
      EXPECT_EQ(view.raw.find("email"), std::string::npos) << name << Describe(view);
    }
  }

  // ---- What ordertrace recorded ----

  // Waits for ordertrace's record of a CLOSED order: all statuses, and every message (11 status
  // events and the price request) both published and consumed, as their spans arrive.
  json AwaitClosedRecord(const Order& o, std::chrono::seconds limit = kDeadline) {
    HttpReply last;
    bool reached = PollUntil(
        [&] {
          last = Call(ordertrace(), "GET", "/api/v1/orders/" + o.id);
          if (last.status != 200 || last.body.value("current_status", "") != kClosed ||
              last.body["timeline"].size() < static_cast<size_t>(kStatusCount) ||
              last.body["messages"].size() < kStatusCount + 1u) {
            return false;
          }
          for (const json& m : last.body["messages"]) {
            if (m["published_at"].is_null() || m["consumed_at"].is_null()) return false;
          }
          return true;
        },
        limit);
    EXPECT_TRUE(reached) << "ordertrace's record of " << o.id
                         << " never showed the whole lifecycle; last: " << Describe(last);
    return last.body;
  }

  // Waits until ordertrace holds every span a CLOSED order makes, and returns the trace.
  json AwaitCompleteTrace(const Order& o, std::chrono::seconds limit = kDeadline) {
    HttpReply last;
    std::map<std::string, size_t> counts;
    bool complete = PollUntil(
        [&] {
          last = Call(ordertrace(), "GET", "/api/traces/" + o.trace_id);
          if (last.status != 200) return false;
          std::vector<TracedSpan> spans = SpansOf(last.body);
          counts.clear();
          for (const TracedSpan& s : spans) ++counts[s.name];
          for (const LifecycleStep& step : kDefaultLifecycle) {
            if (counts[std::string(step.span_name)] < 1) return false;
          }
          // Each status event goes to three queues; SUBMITTED also sends the price request.
          return counts["order.root"] >= 1 && counts["mq.publish.status"] >= kStatusCount &&
                 counts["mq.publish.price"] >= 1 && counts["mq.consume.price"] >= 1 &&
                 counts["mq.consume.status"] >= 3u * kStatusCount &&
                 counts["mes.price.calc.quote"] >= 1;
        },
        limit);
    std::string seen;
    for (const auto& [name, n] : counts) seen += name + "=" + std::to_string(n) + " ";
    EXPECT_TRUE(complete) << "trace " << o.trace_id << " of " << o.id
                          << " never became complete; spans: " << seen << Describe(last);
    return last.body;
  }

  void ExpectRecord(const Order& o, const json& record) {
    SCOPED_TRACE("ordertrace record of " + o.id);
    EXPECT_EQ(record.value("current_status", ""), "CLOSED");
    EXPECT_EQ(record.value("trace_id", ""), o.trace_id);
    EXPECT_EQ(record["trace_ids"], json::array({o.trace_id})) << "the order is one trace";
    if (o.partner_id.empty()) {
      EXPECT_TRUE(record["partner_id"].is_null()) << record["partner_id"];
    } else {
      EXPECT_EQ(record.value("partner_id", ""), o.partner_id);
    }
    const json& timeline = record["timeline"];
    ASSERT_EQ(timeline.size(), static_cast<size_t>(kStatusCount)) << timeline.dump();
    for (int i = 0; i < kStatusCount; ++i) {
      const json& stage = timeline[i];
      EXPECT_EQ(stage.value("status", ""), kDefaultLifecycle[i].status) << i;
      EXPECT_EQ(stage.value("event_version", -1), i + 1) << stage.dump();
      EXPECT_EQ(stage.value("service", ""), kDefaultLifecycle[i].service) << stage.dump();
      EXPECT_EQ(stage.value("span_name", ""), kDefaultLifecycle[i].span_name) << stage.dump();
      if (i == 0) {
        EXPECT_TRUE(stage["prev_status"].is_null()) << stage.dump();
      } else {
        EXPECT_EQ(stage.value("prev_status", ""), kDefaultLifecycle[i - 1].status) << stage.dump();
      }
    }
    // 11 status events and the price request, each published and consumed.
    EXPECT_EQ(record["messages"].size(), kStatusCount + 1u) << record["messages"].dump();
    for (const json& m : record["messages"]) {
      EXPECT_EQ(m.value("state", ""), "consumed") << m.dump();
      EXPECT_GE(m.value("publish_to_consume_seconds", -1.0), 0.0) << m.dump();
    }
  }

  // The design's trace of one order (docs/services.md, "Traces").
  void ExpectOrderTrace(const Order& o, const json& trace) {
    SCOPED_TRACE("trace of " + o.id);
    std::vector<TracedSpan> spans = SpansOf(trace);
    ASSERT_FALSE(spans.empty());
    std::map<std::string, const TracedSpan*> by_id;
    for (const TracedSpan& s : spans) {
      EXPECT_EQ(s.trace_id, o.trace_id) << s.name;
      EXPECT_TRUE(by_id.emplace(s.span_id, &s).second) << "span id twice: " << s.span_id;
    }

    // One root, order.root; every other span's parent is in the trace.
    std::vector<const TracedSpan*> roots;
    for (const TracedSpan& s : spans) {
      if (s.parent_span_id.empty()) {
        roots.push_back(&s);
      } else {
        EXPECT_TRUE(by_id.count(s.parent_span_id))
            << s.name << " (" << s.service << ") has a parent outside the trace";
      }
    }
    ASSERT_EQ(roots.size(), 1u);
    const TracedSpan& root = *roots.front();
    EXPECT_EQ(root.name, "order.root");
    EXPECT_EQ(root.service, "shop-api");
    EXPECT_EQ(root.Attr("order_id"), o.id);

    ExpectTransitions(o, spans);
    ExpectMessaging(spans, by_id, root);
    ExpectPriceCalculation(o, spans);

    // HTTP operations hang under the root.
    for (const TracedSpan& s : spans) {
      if (s.kind == "2") {
        EXPECT_EQ(s.parent_span_id, root.span_id) << s.name;
      }
    }

    // Contact details never reach a span.
    EXPECT_FALSE(HasAttributeKeyed(trace, "email"));
    EXPECT_FALSE(HasAttributeKeyed(trace, "phone"));
    std::string text = trace.dump();
    for (const std::string& contact : {o.email, o.phone}) {
      if (!contact.empty()) {
        EXPECT_EQ(text.find(contact), std::string::npos) << contact << " is in a span";
      }
    }
  }

  // Exactly one span per status carries it, with the design's attributes, versions 1..11.
  void ExpectTransitions(const Order& o, const std::vector<TracedSpan>& spans) {
    std::vector<const TracedSpan*> transitions;
    for (const TracedSpan& s : spans) {
      if (s.Has("new_status")) transitions.push_back(&s);
    }
    ASSERT_EQ(transitions.size(), static_cast<size_t>(kStatusCount));
    std::sort(transitions.begin(), transitions.end(), [](const TracedSpan* a, const TracedSpan* b) {
      return a->IntAttr("event_version") < b->IntAttr("event_version");
    });
    for (int i = 0; i < kStatusCount; ++i) {
      const TracedSpan& s = *transitions[i];
      SCOPED_TRACE(s.name);
      EXPECT_EQ(s.name, kDefaultLifecycle[i].span_name);
      EXPECT_EQ(s.service, kDefaultLifecycle[i].service);
      EXPECT_EQ(s.IntAttr("event_version"), i + 1);
      EXPECT_EQ(s.Attr("new_status"), kDefaultLifecycle[i].status);
      EXPECT_EQ(s.Attr("order_id"), o.id);
      if (i == 0) {
        EXPECT_FALSE(s.Has("prev_status"));
      } else {
        EXPECT_EQ(s.Attr("prev_status"), kDefaultLifecycle[i - 1].status);
      }
      if (o.partner_id.empty()) {
        EXPECT_FALSE(s.Has("partner_id"));
      } else {
        EXPECT_EQ(s.Attr("partner_id"), o.partner_id);
      }
      EXPECT_FALSE(s.Has("error_code")) << s.Attr("error_code");
      // Only the manufacturing approval names its operator; ordertrace adds the hash beside it.
      if (kDefaultLifecycle[i].status == kManufacturingStarted) {
        EXPECT_EQ(s.Attr("operator_id"), o.operator_id);
        EXPECT_EQ(s.Attr("operator_id.hash").rfind("hmac:", 0), 0u) << s.Attr("operator_id.hash");
      } else {
        EXPECT_FALSE(s.Has("operator_id")) << s.Attr("operator_id");
      }
    }
  }

  // PRODUCER and CONSUMER spans: OpenTelemetry's messaging attributes, the design's own, and
  // each consume linked (not parented) to its publish.
  void ExpectMessaging(const std::vector<TracedSpan>& spans,
                       const std::map<std::string, const TracedSpan*>& by_id,
                       const TracedSpan& root) {
    std::map<std::string, std::set<std::string>> queues_of_status_message;
    for (const TracedSpan& s : spans) {
      bool publish = s.name == "mq.publish.status" || s.name == "mq.publish.price";
      bool consume = s.name == "mq.consume.status" || s.name == "mq.consume.price";
      if (!publish && !consume) continue;
      SCOPED_TRACE(s.name + " " + s.span_id + " (" + s.service + ")");
      bool status = s.name.ends_with(".status");
      EXPECT_EQ(s.kind, publish ? kSpanKindProducer : kSpanKindConsumer);
      EXPECT_EQ(s.Attr("messaging.system"), "rabbitmq");
      EXPECT_EQ(s.Attr("messaging.operation"), publish ? "publish" : "process");
      EXPECT_EQ(s.Attr("messaging.destination.name"),
                status ? "alexandrite.status" : "alexandrite.price");
      std::string message_id = s.Attr("messaging.message.id");
      EXPECT_EQ(message_id.size(), 36u) << "a UUID";
      EXPECT_EQ(s.Attr("message_id"), message_id);
      EXPECT_EQ(s.Attr("order_id"), root.Attr("order_id"));
      EXPECT_TRUE(s.Has("retry_count"));
      EXPECT_GE(s.IntAttr("retry_count"), 0);
      std::string routing_key = s.Attr("messaging.rabbitmq.destination.routing_key");
      if (!status) {
        EXPECT_EQ(routing_key, "price.request");
      }

      if (publish) {
        // A child of the operation that caused it; a status event's key names that status.
        auto parent = by_id.find(s.parent_span_id);
        ASSERT_NE(parent, by_id.end());
        if (status) {
          EXPECT_EQ(routing_key, StatusRoutingKey(parent->second->Attr("new_status")))
              << "published by " << parent->second->name;
        } else {
          EXPECT_EQ(parent->second->name, "shop.submit");
        }
        continue;
      }
      // A consume: child of order.root, linked to the publish span of the same message.
      EXPECT_EQ(s.parent_span_id, root.span_id);
      std::string queue = s.Attr("queue");
      if (status) {
        EXPECT_TRUE(queue == "shop.status" || queue == "crm.status" || queue == "mes.status")
            << queue;
        EXPECT_EQ(routing_key.rfind("status.", 0), 0u) << routing_key;
        queues_of_status_message[message_id].insert(queue);
      } else {
        EXPECT_EQ(queue, "mes.price.requests");
      }
      ASSERT_EQ(s.links.size(), 1u);
      EXPECT_EQ(s.links[0].first, root.trace_id);
      auto producer = by_id.find(s.links[0].second);
      ASSERT_NE(producer, by_id.end()) << "the link points outside the trace";
      EXPECT_EQ(producer->second->kind, kSpanKindProducer) << producer->second->name;
      EXPECT_EQ(producer->second->Attr("messaging.message.id"), message_id);
      EXPECT_EQ(producer->second->Attr("messaging.rabbitmq.destination.routing_key"), routing_key);
    }
    // Every status event reached all three services.
    EXPECT_EQ(queues_of_status_message.size(), static_cast<size_t>(kStatusCount));
    for (const auto& [message_id, queues] : queues_of_status_message) {
      EXPECT_EQ(queues, (std::set<std::string>{"crm.status", "mes.status", "shop.status"}))
          << message_id;
    }
  }

  void ExpectPriceCalculation(const Order& o, const std::vector<TracedSpan>& spans) {
    std::vector<const TracedSpan*> calcs;
    for (const TracedSpan& s : spans) {
      if (s.name == "mes.price.calc" && s.Has("new_status")) calcs.push_back(&s);
    }
    ASSERT_EQ(calcs.size(), 1u);
    const TracedSpan& calc = *calcs.front();
    EXPECT_EQ(calc.IntAttr("polygon_count"), o.polygons);
    EXPECT_EQ(calc.Attr("complexity_class"), o.complexity_class);
    EXPECT_GT(std::stod(calc.Attr("price")), 0);
    std::vector<std::string> phases;
    for (const TracedSpan& s : spans) {
      if (s.parent_span_id == calc.span_id) phases.push_back(s.name);
    }
    std::sort(phases.begin(), phases.end());
    EXPECT_EQ(phases,
              (std::vector<std::string>{"mes.price.calc.mesh_analysis",
                                        "mes.price.calc.metal_estimate", "mes.price.calc.quote",
                                        "mes.price.calc.stone_setting", "mq.publish.status"}))
        << "four phases and the PRICE_CALCULATED event";
  }
};

// Several orders, partner and customer ones, of every size class, through all eleven statuses;
// then everything ordertrace recorded of them.
TEST_F(ServicesFlowTest, FullLifecycle) {
  std::vector<Order> orders = {
      Planned("cust-ring", "partner-7", 12, "simple", "ring.buyer@example.com", "+15550101"),
      Planned("cust-pendant", "", 60'000, "moderate", "pendant.buyer@example.com"),
      Planned("cust-tiara", "partner-9", 260'000, "complex", "", "+15550199"),
  };
  ASSERT_NO_FATAL_FAILURE(DriveToClosed(orders));

  for (const Order& o : orders) {
    SCOPED_TRACE(o.customer_id);
    ASSERT_NO_FATAL_FAILURE(ExpectClosedEverywhere(o));
    HttpReply shop_view = Call(shop(), "GET", "/api/orders/" + o.id);
    EXPECT_EQ(shop_view.body.value("customer_id", ""), o.customer_id);
    EXPECT_EQ(shop_view.body.value("polygon_count", int64_t{-1}), o.polygons);
    HttpReply mes_view = Call(mes(), "GET", "/api/orders/" + o.id);
    EXPECT_EQ(mes_view.body.value("complexity_class", ""), o.complexity_class);
    EXPECT_GT(mes_view.body.value("price", 0.0), 0.0) << Describe(mes_view);
    HttpReply crm_view = Call(crm(), "GET", "/api/orders/" + o.id);
    EXPECT_EQ(crm_view.body.value("price", -1.0), mes_view.body.value("price", -2.0))
        << "CRM's price comes from MES's event";
  }
  for (const Order& o : orders) {
    json record = AwaitClosedRecord(o);
    ExpectRecord(o, record);
    json trace = AwaitCompleteTrace(o);
    ExpectOrderTrace(o, trace);
  }
}

// The HTTP errors of the contract, and that a refused operation changes nothing.
// Sends `request` as raw bytes (what curl sends for `curl -X POST URL`: no Content-Length, no
// body) and returns the whole answer, "" when none came within 10 s.
std::string RawExchange(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string answer;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size())) {
    char buffer[4096];
    for (ssize_t n; (n = recv(fd, buffer, sizeof buffer, 0)) > 0;) answer.append(buffer, n);
  }
  close(fd);
  return answer;
}

TEST_F(ServicesFlowTest, Errors) {
  // Unknown orders: 404 order_not_found from every service and operation.
  const std::string unknown = "/api/orders/no-such-order";
  for (auto [port, method, path] : std::vector<std::tuple<int, std::string, std::string>>{
           {shop(), "GET", unknown},
           {shop(), "POST", unknown + "/submit"},
           {crm(), "GET", unknown},
           {crm(), "POST", unknown + "/approve"},
           {crm(), "POST", unknown + "/close"},
           {mes(), "GET", unknown},
           {mes(), "POST", unknown + "/manufacturing/complete"},
           {mes(), "POST", unknown + "/ship"},
       }) {
    HttpReply reply = Call(port, method, path);
    EXPECT_EQ(reply.status, 404) << method << " " << path << ": " << Describe(reply);
    EXPECT_EQ(reply.body.value("error", ""), "order_not_found") << Describe(reply);
    EXPECT_FALSE(reply.body.value("message", "").empty()) << Describe(reply);
  }
  // A bodyless POST, as `curl -X POST` sends it (no Content-Length): answered like any other,
  // not refused for want of a length.
  std::string bodyless =
      RawExchange(shop(), "POST " + unknown +
                              "/submit HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(bodyless.rfind("HTTP/1.1 404", 0), 0u) << bodyless;
  EXPECT_NE(bodyless.find("order_not_found"), std::string::npos) << bodyless;
  HttpReply upload_unknown =
      Call(shop(), "PUT", unknown + "/model", BinaryStl(3), "application/octet-stream");
  EXPECT_EQ(upload_unknown.status, 404) << Describe(upload_unknown);
  HttpReply no_route = Call(shop(), "GET", "/api/no-such-route");
  EXPECT_EQ(no_route.status, 404);
  EXPECT_EQ(no_route.body.value("error", ""), "not_found") << Describe(no_route);

  // Malformed creation requests: 400 bad_request.
  for (const std::string& body :
       {std::string("{not json"), std::string("[1, 2]"), std::string("{}"),
        std::string(R"({"customer_id": 42})"), std::string(R"({"customer_id": ""})"),
        std::string(R"({"partner_id": "partner-1"})")}) {
    HttpReply reply = Call(shop(), "POST", "/api/orders", body);
    EXPECT_EQ(reply.status, 400) << body << ": " << Describe(reply);
    EXPECT_EQ(reply.body.value("error", ""), "bad_request") << body << ": " << Describe(reply);
  }

  Order order = Planned("cust-errors", "partner-err", 40, "simple");
  ASSERT_NO_FATAL_FAILURE(Create(order));
  const std::string path = "/api/orders/" + order.id;

  // Submitting without a model: 409 with the current status.
  HttpReply early_submit = Call(shop(), "POST", path + "/submit");
  EXPECT_EQ(early_submit.status, 409) << Describe(early_submit);
  EXPECT_EQ(early_submit.body.value("error", ""), "illegal_transition");
  EXPECT_EQ(early_submit.body.value("current_status", ""), "INITIATED");

  // Model files that are not binary STL: 422.
  std::string short_file(40, 'x');
  std::string wrong_count = BinaryStl(5);
  wrong_count.resize(wrong_count.size() - 100);  // says 5 triangles, holds 3
  std::string ascii_stl = "solid ring\nfacet normal 0 0 1\nendfacet\nendsolid ring\n";
  for (const std::string& model : {short_file, wrong_count, ascii_stl}) {
    HttpReply reply = Call(shop(), "PUT", path + "/model", model, "application/octet-stream");
    EXPECT_EQ(reply.status, 422) << model.size() << " bytes: " << Describe(reply);
    EXPECT_EQ(reply.body.value("error", ""), "malformed_model") << Describe(reply);
  }
  HttpReply unchanged = Call(shop(), "GET", path);
  EXPECT_EQ(unchanged.body.value("status", ""), "INITIATED") << Describe(unchanged);
  EXPECT_EQ(unchanged.body.value("event_version", 0), 1) << Describe(unchanged);

  // Approving or closing before the price: 409 from CRM's own view.
  ASSERT_NO_FATAL_FAILURE(Upload(order));
  ASSERT_NO_FATAL_FAILURE(AwaitView(crm(), "crm-api", order.id, kFileUploaded));
  for (const char* action : {"/approve", "/close"}) {
    HttpReply reply = Call(crm(), "POST", path + action);
    EXPECT_EQ(reply.status, 409) << action << ": " << Describe(reply);
    EXPECT_EQ(reply.body.value("error", ""), "illegal_transition");
    EXPECT_EQ(reply.body.value("current_status", ""), "FILE_UPLOADED") << Describe(reply);
  }

  // Manufacturing start without an operator: 400, checked before the lifecycle; with one, 409.
  ASSERT_NO_FATAL_FAILURE(AwaitView(mes(), "mes-api", order.id, kFileUploaded));
  for (const std::string& body :
       {std::string(""), std::string("{}"), std::string(R"({"operator_id": ""})"),
        std::string(R"({"operator_id": 7})"), std::string("{bad")}) {
    HttpReply reply = Call(mes(), "POST", path + "/manufacturing/start", body);
    EXPECT_EQ(reply.status, 400) << "'" << body << "': " << Describe(reply);
    EXPECT_EQ(reply.body.value("error", ""), "bad_request") << Describe(reply);
  }
  HttpReply early_start =
      Call(mes(), "POST", path + "/manufacturing/start", json{{"operator_id", "op-1"}}.dump());
  EXPECT_EQ(early_start.status, 409) << Describe(early_start);
  EXPECT_EQ(early_start.body.value("current_status", ""), "FILE_UPLOADED");

  // To the end, then closing twice and shipping again: 409 CLOSED.
  ASSERT_NO_FATAL_FAILURE(Submit(order));
  ASSERT_NO_FATAL_FAILURE(Approve(order));
  ASSERT_NO_FATAL_FAILURE(Manufacture(order));
  ASSERT_NO_FATAL_FAILURE(Close(order));
  HttpReply close_again = Call(crm(), "POST", path + "/close");
  EXPECT_EQ(close_again.status, 409) << Describe(close_again);
  EXPECT_EQ(close_again.body.value("error", ""), "illegal_transition");
  EXPECT_EQ(close_again.body.value("current_status", ""), "CLOSED");
  ASSERT_NO_FATAL_FAILURE(AwaitView(mes(), "mes-api", order.id, kClosed));
  HttpReply ship_again = Call(mes(), "POST", path + "/ship");
  EXPECT_EQ(ship_again.status, 409) << Describe(ship_again);
  EXPECT_EQ(ship_again.body.value("current_status", ""), "CLOSED");

  // ordertrace: the refusals added no status, and the trace shows them as failed operations.
  json record = AwaitClosedRecord(order);
  EXPECT_EQ(record["timeline"].size(), static_cast<size_t>(kStatusCount));
  // Each refusal of a known order is a failed operation in the order's trace.
  const std::vector<std::string> refused = {"shop.submit", "crm.approve.manufacturing", "crm.close",
                                            "mes.manufacturing.start", "mes.shipped"};
  HttpReply last;
  std::map<std::string, std::set<std::string>> failures;  // span name -> error codes
  bool failures_seen = PollUntil([&] {
    last = Call(ordertrace(), "GET", "/api/traces/" + order.trace_id);
    failures.clear();
    for (const TracedSpan& s : SpansOf(last.body)) {
      if (s.Has("error_code")) failures[s.name].insert(s.Attr("error_code"));
    }
    return std::all_of(refused.begin(), refused.end(), [&](const std::string& name) {
      return failures[name].count("ILLEGAL_TRANSITION") > 0;
    });
  });
  ASSERT_TRUE(failures_seen) << "the 409s never showed in the order's trace: " << Describe(last);
  for (const TracedSpan& s : SpansOf(last.body)) {
    if (!s.Has("error_code")) continue;
    SCOPED_TRACE(s.name);
    EXPECT_FALSE(s.Attr("error_message").empty());
    EXPECT_FALSE(s.Has("new_status")) << "a refusal is not a transition";
    EXPECT_EQ(s.Attr("order_id"), order.id);
    if (s.Attr("error_code") == "ILLEGAL_TRANSITION") {
      EXPECT_EQ(s.Attr("http.response.status_code"), "409");
      EXPECT_FALSE(s.Attr("current_status").empty());
    }
  }
}

// RabbitMQ stops mid-flow: the services keep answering, the outboxes hold the messages, and once
// the broker is back on the same folder and port every message arrives, and the traces show the
// retried publishes.
TEST_F(ServicesFlowTest, RabbitMqRestart) {
  // Already at MES when the broker goes: manufactured and shipped while it is down.
  std::vector<Order> at_mes = {
      Planned("cust-restart-1", "partner-r", 500, "simple"),
      Planned("cust-restart-2", "", 80'000, "moderate"),
  };
  for (Order& o : at_mes) ASSERT_NO_FATAL_FAILURE(Create(o));
  for (Order& o : at_mes) ASSERT_NO_FATAL_FAILURE(Upload(o));
  for (Order& o : at_mes) ASSERT_NO_FATAL_FAILURE(Submit(o));
  for (Order& o : at_mes) ASSERT_NO_FATAL_FAILURE(Approve(o));
  for (Order& o : at_mes) {
    ASSERT_NO_FATAL_FAILURE(AwaitView(mes(), "mes-api", o.id, kManufacturingApproved));
  }
  // Created before, uploaded and submitted while the broker is down.
  Order at_shop = Planned("cust-restart-3", "partner-s", 7, "simple");
  ASSERT_NO_FATAL_FAILURE(Create(at_shop));
  ASSERT_NO_FATAL_FAILURE(AwaitView(crm(), "crm-api", at_shop.id, kInitiated));
  ASSERT_NO_FATAL_FAILURE(AwaitView(mes(), "mes-api", at_shop.id, kInitiated));

  const uint64_t shop_failures_before = g_stack->shop->runtime().outbox().stats().failed_attempts;
  const uint64_t mes_failures_before = g_stack->mes->runtime().outbox().stats().failed_attempts;
  ScriptRun stop = RunRabbitMqScript("stop " + g_stack->rabbitmq_dir, g_stack->rabbitmq_dir, 90);
  ASSERT_TRUE(stop.ok) << "scripts/rabbitmq.sh stop failed: " << stop.err;
  g_stack->broker_running = false;

  // While it is down, every HTTP operation still succeeds.
  for (Order& o : at_mes) {
    const std::string path = "/api/orders/" + o.id;
    o.operator_id = "op-night";
    ASSERT_NO_FATAL_FAILURE(Step(mes(), path + "/manufacturing/start", kManufacturingStarted,
                                 json{{"operator_id", o.operator_id}}.dump()));
    ASSERT_NO_FATAL_FAILURE(Step(mes(), path + "/manufacturing/complete", kManufacturingCompleted));
    ASSERT_NO_FATAL_FAILURE(Step(mes(), path + "/packaging", kPackaging));
    ASSERT_NO_FATAL_FAILURE(Step(mes(), path + "/ship", kShipped));
  }
  ASSERT_NO_FATAL_FAILURE(Upload(at_shop));
  ASSERT_NO_FATAL_FAILURE(Submit(at_shop));
  Order created_while_down = Planned("cust-restart-4", "", 300, "simple", "night@example.com");
  ASSERT_NO_FATAL_FAILURE(Create(created_while_down));
  ASSERT_NO_FATAL_FAILURE(Upload(created_while_down));
  ASSERT_NO_FATAL_FAILURE(Submit(created_while_down));

  // The relays tried and failed; nothing reached the other services.
  bool relays_failed = PollUntil([&] {
    return g_stack->shop->runtime().outbox().stats().failed_attempts > shop_failures_before &&
           g_stack->mes->runtime().outbox().stats().failed_attempts > mes_failures_before;
  });
  ASSERT_TRUE(relays_failed) << "the outbox relays never noticed the broker was gone";
  for (const Order& o : at_mes) {
    HttpReply crm_view = Call(crm(), "GET", "/api/orders/" + o.id);
    EXPECT_EQ(crm_view.body.value("status", ""), "MANUFACTURING_APPROVED") << Describe(crm_view);
  }
  HttpReply mes_view = Call(mes(), "GET", "/api/orders/" + at_shop.id);
  EXPECT_EQ(mes_view.body.value("status", ""), "INITIATED") << Describe(mes_view);

  // Back on the same folder and port: the durable queues and what they held are still there.
  const std::string url_before = g_stack->amqp_url;
  ASSERT_TRUE(StartBroker(*g_stack)) << g_stack->start_error;
  EXPECT_EQ(g_stack->amqp_url, url_before);

  for (const Order& o : at_mes) ASSERT_NO_FATAL_FAILURE(Close(o, kRestartDeadline));
  std::vector<Order> submitted = {at_shop, created_while_down};
  for (const Order& o : submitted) {
    ASSERT_NO_FATAL_FAILURE(AwaitView(crm(), "crm-api", o.id, kPriceCalculated, kRestartDeadline));
  }
  for (Order& o : submitted) ASSERT_NO_FATAL_FAILURE(Approve(o));
  for (Order& o : submitted) ASSERT_NO_FATAL_FAILURE(Manufacture(o));
  for (Order& o : submitted) ASSERT_NO_FATAL_FAILURE(Close(o));

  std::vector<Order> all = at_mes;
  all.insert(all.end(), submitted.begin(), submitted.end());
  int retried_publishes = 0;
  std::map<std::string, std::vector<TracedSpan>> traces;  // by order id
  for (const Order& o : all) {
    SCOPED_TRACE(o.customer_id);
    ASSERT_NO_FATAL_FAILURE(ExpectClosedEverywhere(o, kRestartDeadline));
    json record = AwaitClosedRecord(o, kRestartDeadline);
    ExpectRecord(o, record);
    json trace = AwaitCompleteTrace(o, kRestartDeadline);
    ExpectOrderTrace(o, trace);
    traces[o.id] = SpansOf(trace);
    for (const TracedSpan& s : traces[o.id]) {
      if (s.name != "mq.publish.status" && s.name != "mq.publish.price") continue;
      size_t failed_events = std::count(s.event_names.begin(), s.event_names.end(),
                                        std::string("publish attempt failed"));
      EXPECT_EQ(failed_events, static_cast<size_t>(std::max<int64_t>(s.IntAttr("retry_count"), 0)))
          << s.name << ": one event per failed attempt";
      if (s.IntAttr("retry_count") > 0) ++retried_publishes;
    }
  }
  EXPECT_GE(retried_publishes, 1) << "no publish span shows the retries while RabbitMQ was down";

  // The first message each relay tried while the broker was down (MES: the first order's
  // MANUFACTURING_STARTED; shop: the upload of the order it held) kept one publish span that
  // shows the failed attempt and ends once the broker took it.
  for (const auto& [order_id, operation] :
       {std::pair{at_mes[0].id, std::string("mes.manufacturing.start")},
        std::pair{at_shop.id, std::string("shop.upload")}}) {
    SCOPED_TRACE(operation);
    const std::vector<TracedSpan>& spans = traces[order_id];
    auto op = std::find_if(spans.begin(), spans.end(), [&](const TracedSpan& s) {
      return s.name == operation && s.Has("new_status");
    });
    ASSERT_NE(op, spans.end());
    std::vector<const TracedSpan*> publishes;
    for (const TracedSpan& s : spans) {
      if (s.name == "mq.publish.status" && s.parent_span_id == op->span_id) publishes.push_back(&s);
    }
    ASSERT_EQ(publishes.size(), 1u) << "one span for all the attempts";
    EXPECT_GE(publishes[0]->IntAttr("retry_count"), 1);
    EXPECT_NE(std::find(publishes[0]->event_names.begin(), publishes[0]->event_names.end(),
                        "publish attempt failed"),
              publishes[0]->event_names.end());
  }
}

}  // namespace
}  // namespace ordertrace::services
