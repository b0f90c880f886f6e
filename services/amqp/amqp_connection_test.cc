// Integration tests against a real RabbitMQ started once for the suite by scripts/rabbitmq.sh
// on a free loopback port in a temporary folder.
#include "services/amqp/amqp_connection.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/support/free_port.h"

namespace ordertrace::services::amqp {
namespace {

using std::chrono::milliseconds;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Set by the environment: the broker's URL, or why it could not start.
std::string g_url;
std::string g_start_error;

class RabbitMqEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    char dir_template[] = "/tmp/ot-rabbitmq-XXXXXX";
    if (mkdtemp(dir_template) == nullptr) {
      g_start_error = "mkdtemp failed";
      return;
    }
    dir_ = dir_template;
    // RabbitMQ's Erlang distribution listens 20000 above the AMQP port.
    int port = test_support::FreePortWithRoomAbove(20000);
    if (port < 0) {
      g_start_error = "no free loopback port";
      return;
    }
    std::string out = dir_ + ".out";
    std::string err = dir_ + ".err";
    std::string command = "timeout 120 " + std::string(ORDERTRACE_RABBITMQ_SCRIPT) + " start " +
                          dir_ + " " + std::to_string(port) + " >" + out + " 2>" + err;
    auto started = std::chrono::steady_clock::now();
    int rc = std::system(command.c_str());
    auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started);
    std::string url = ReadFile(out);
    while (!url.empty() && (url.back() == '\n' || url.back() == '\r')) url.pop_back();
    if (rc != 0 || url.rfind("amqp://", 0) != 0) {
      g_start_error = "scripts/rabbitmq.sh start failed (exit " +
                      std::to_string(WIFEXITED(rc) ? WEXITSTATUS(rc) : rc) + "): " + ReadFile(err);
      return;
    }
    g_url = url;
    std::fprintf(stderr, "RabbitMQ at %s started in %.1f s\n", g_url.c_str(), seconds.count());
    std::remove(out.c_str());
    std::remove(err.c_str());
  }

  void TearDown() override {
    if (dir_.empty()) return;
    std::string stop = "timeout 90 " + std::string(ORDERTRACE_RABBITMQ_SCRIPT) + " stop " + dir_;
    int rc = std::system(stop.c_str());
    EXPECT_EQ(rc, 0) << "scripts/rabbitmq.sh stop failed";
    std::system(("rm -rf " + dir_ + " " + dir_ + ".out " + dir_ + ".err").c_str());
  }

 private:
  std::string dir_;
};

const ::testing::Environment* const kRabbitMq =
    ::testing::AddGlobalTestEnvironment(new RabbitMqEnvironment);

class AmqpConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(g_url.empty()) << "RabbitMQ did not start: " << g_start_error;
    // Names unique per test, so tests do not see each other's messages.
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    topology_ = Topology{.exchange = "orders." + name,
                         .queue = "orders.q." + name,
                         .routing_key = "order.*",
                         .dead_letter_exchange = "orders.dlx." + name,
                         .dead_letter_queue = "orders.dlq." + name};
    ASSERT_TRUE(publisher_.Connect(g_url).ok());
    ASSERT_TRUE(consumer_.Connect(g_url).ok());
    absl::Status declared = publisher_.DeclareTopology(topology_);
    ASSERT_TRUE(declared.ok()) << declared;
  }

  Topology topology_;
  AmqpConnection publisher_;
  AmqpConnection consumer_;
};

constexpr char kTraceparent[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST_F(AmqpConnectionTest, PublishedHeadersBodyAndIdReachTheConsumer) {
  AmqpHeaders headers{{"traceparent", kTraceparent}, {"order_id", "ord-42"}};
  absl::Status published =
      publisher_.Publish(topology_.exchange, "order.created", "{\"id\":42}", headers, "msg-1");
  ASSERT_TRUE(published.ok()) << published;

  ASSERT_TRUE(consumer_.Consume(topology_.queue).ok());
  auto delivery = consumer_.NextDelivery(milliseconds(5000));
  ASSERT_TRUE(delivery.ok()) << delivery.status();
  ASSERT_TRUE(delivery->has_value());
  const Delivery& d = **delivery;
  EXPECT_EQ(d.body, "{\"id\":42}");
  EXPECT_EQ(d.headers, headers);
  EXPECT_EQ(d.message_id, "msg-1");
  EXPECT_EQ(d.routing_key, "order.created");
  EXPECT_EQ(d.exchange, topology_.exchange);
  EXPECT_FALSE(d.redelivered);
  EXPECT_TRUE(consumer_.Ack(d.delivery_tag).ok());

  auto none = consumer_.NextDelivery(milliseconds(300));
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());
}

TEST_F(AmqpConnectionTest, PublisherConfirmsEachMessage) {
  for (int i = 0; i < 20; ++i) {
    absl::Status published =
        publisher_.Publish(topology_.exchange, "order.paid", "body-" + std::to_string(i), {}, "");
    ASSERT_TRUE(published.ok()) << i << ": " << published;
  }
  ASSERT_TRUE(consumer_.Consume(topology_.queue, 50).ok());
  for (int i = 0; i < 20; ++i) {
    auto delivery = consumer_.NextDelivery(milliseconds(5000));
    ASSERT_TRUE(delivery.ok() && delivery->has_value()) << i;
    EXPECT_EQ((*delivery)->body, "body-" + std::to_string(i));
    EXPECT_TRUE((*delivery)->message_id.empty());
    EXPECT_TRUE(consumer_.Ack((*delivery)->delivery_tag).ok());
  }
}

TEST_F(AmqpConnectionTest, PublishToMissingExchangeFailsAndConnectionRecovers) {
  absl::Status missing = publisher_.Publish("no.such.exchange", "x", "b", {}, "m");
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound) << missing;
  EXPECT_NE(missing.message().find("no.such.exchange"), std::string::npos) << missing;
  EXPECT_TRUE(publisher_.IsConnected());
  absl::Status again = publisher_.Publish(topology_.exchange, "order.created", "b", {}, "m");
  EXPECT_TRUE(again.ok()) << again;
}

TEST_F(AmqpConnectionTest, RejectWithoutRequeueGoesToDeadLetterQueue) {
  AmqpHeaders headers{{"traceparent", kTraceparent}, {"order_id", "ord-7"}};
  ASSERT_TRUE(
      publisher_.Publish(topology_.exchange, "order.shipped", "poison", headers, "msg-7").ok());
  ASSERT_TRUE(consumer_.Consume(topology_.queue).ok());
  auto delivery = consumer_.NextDelivery(milliseconds(5000));
  ASSERT_TRUE(delivery.ok() && delivery->has_value());
  ASSERT_TRUE(consumer_.Reject((*delivery)->delivery_tag, /*requeue=*/false).ok());

  AmqpConnection dead_letters;
  ASSERT_TRUE(dead_letters.Connect(g_url).ok());
  ASSERT_TRUE(dead_letters.Consume(topology_.dead_letter_queue).ok());
  auto dead = dead_letters.NextDelivery(milliseconds(5000));
  ASSERT_TRUE(dead.ok()) << dead.status();
  ASSERT_TRUE(dead->has_value()) << "nothing arrived on the dead-letter queue";
  EXPECT_EQ((*dead)->body, "poison");
  EXPECT_EQ((*dead)->message_id, "msg-7");
  EXPECT_EQ((*dead)->exchange, topology_.dead_letter_exchange);
  EXPECT_EQ((*dead)->routing_key, "order.shipped");
  // The producer's string headers come through; the broker adds its own string headers and an
  // x-death table, which is not a string and so is left out.
  const AmqpHeaders& got = (*dead)->headers;
  EXPECT_EQ(got.at("traceparent"), kTraceparent);
  EXPECT_EQ(got.at("order_id"), "ord-7");
  EXPECT_EQ(got.at("x-first-death-reason"), "rejected");
  EXPECT_EQ(got.count("x-death"), 0u);
  EXPECT_TRUE(dead_letters.Ack((*dead)->delivery_tag).ok());

  auto original = consumer_.NextDelivery(milliseconds(300));
  ASSERT_TRUE(original.ok());
  EXPECT_FALSE(original->has_value()) << "rejected message came back to the main queue";
}

TEST_F(AmqpConnectionTest, OneConnectionCanConsumeAndPublish) {
  ASSERT_TRUE(consumer_.Consume(topology_.queue).ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        consumer_.Publish(topology_.exchange, "order.created", std::to_string(i), {}, "").ok());
  }
  for (int i = 0; i < 5; ++i) {
    auto delivery = consumer_.NextDelivery(milliseconds(5000));
    ASSERT_TRUE(delivery.ok() && delivery->has_value()) << i;
    EXPECT_EQ((*delivery)->body, std::to_string(i));
    EXPECT_TRUE(consumer_.Ack((*delivery)->delivery_tag).ok());
  }
}

TEST_F(AmqpConnectionTest, RedeclaringWithOtherSettingsIsAClearError) {
  // Same topology again is fine.
  EXPECT_TRUE(publisher_.DeclareTopology(topology_).ok());
  Topology other = topology_;
  other.dead_letter_exchange = topology_.dead_letter_exchange + ".other";
  absl::Status status = publisher_.DeclareTopology(other);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find(topology_.queue), std::string::npos) << status;
  EXPECT_TRUE(publisher_.IsConnected());
}

TEST(AmqpConnectionErrorsTest, BadUrlIsInvalidArgument) {
  AmqpConnection connection;
  for (const char* url : {"not a url", "http://127.0.0.1:5672/", "amqp://h:notaport/"}) {
    absl::Status status = connection.Connect(url);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << url << ": " << status;
    EXPECT_NE(status.message().find("invalid AMQP URL"), std::string::npos) << status;
    std::printf("%s -> %s\n", url, status.ToString().c_str());
  }
  EXPECT_FALSE(connection.IsConnected());
  EXPECT_EQ(connection.Publish("e", "k", "b", {}, "").code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(AmqpConnectionErrorsTest, ClosedPortIsUnavailable) {
  int port = test_support::FreePort();
  ASSERT_GT(port, 0);
  AmqpConnection connection(AmqpConnectionOptions{.connect_timeout = milliseconds(2000)});
  absl::Status status =
      connection.Connect("amqp://guest:guest@127.0.0.1:" + std::to_string(port) + "/");
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_NE(status.message().find("cannot connect"), std::string::npos) << status;
  EXPECT_NE(status.message().find(std::to_string(port)), std::string::npos) << status;
  std::printf("%s\n", status.ToString().c_str());
  EXPECT_FALSE(connection.IsConnected());
}

TEST(AmqpConnectionErrorsTest, WrongPasswordIsUnavailableWithLoginMessage) {
  ASSERT_FALSE(g_url.empty()) << "RabbitMQ did not start: " << g_start_error;
  std::string url = g_url;
  url.replace(url.find("guest@"), 5, "wrong");
  AmqpConnection connection;
  absl::Status status = connection.Connect(url);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_NE(status.message().find("login"), std::string::npos) << status;
  std::printf("%s\n", status.ToString().c_str());
  EXPECT_FALSE(connection.IsConnected());
}

}  // namespace
}  // namespace ordertrace::services::amqp
