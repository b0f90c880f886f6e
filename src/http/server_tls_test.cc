// The HTTP server on a TLS listener: served like a plain one after the handshake; plain HTTP,
// missing client certificates and slow handshakes are closed and counted; a reload reaches new
// connections and drops none.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "http/router.h"
#include "http/server.h"
#include "http/tls_context.h"
#include "http/tls_test_client.h"

namespace ordertrace::http {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using Clock = std::chrono::steady_clock;

// A plain TCP socket that sends raw bytes and tells when the server closes it.
class PlainSocket {
 public:
  explicit PlainSocket(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  }
  ~PlainSocket() { close(fd_); }

  bool connected() const { return connected_; }
  bool Send(const std::string& bytes) {
    return send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  // True when the server closes (EOF or reset) within `timeout`; what came first is in read().
  bool WaitClosed(std::chrono::milliseconds timeout) {
    const Clock::time_point deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      pollfd poll_fd{fd_, POLLIN, 0};
      if (poll(&poll_fd, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      ssize_t got = recv(fd_, chunk, sizeof chunk, 0);
      if (got <= 0) return true;
      read_.append(chunk, static_cast<size_t>(got));
    }
    return false;
  }
  const std::string& read() const { return read_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string read_;
};

class ServerTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ca_ = new test::TestCaFolder("ordertrace_server_tls_test");
    ASSERT_TRUE(ca_->made());
  }
  static void TearDownTestSuite() {
    delete ca_;
    ca_ = nullptr;
  }
  static std::string File(const std::string& name) { return ca_->File(name); }

  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  static TlsCredentials Credentials(const std::string& name, bool client_ca = false) {
    absl::StatusOr<TlsCredentials> credentials = LoadTlsCredentials(
        {File(name + ".pem"), File(name + ".key"), client_ca ? File("ca.pem") : ""});
    EXPECT_TRUE(credentials.ok()) << credentials.status();
    return credentials.value_or(TlsCredentials{});
  }

  // Serves GET /hello over TLS on a free loopback port.
  void StartServer(ServerOptions options, const TlsCredentials& credentials,
                   ClientCertificates client_certificates = ClientCertificates::kNotAsked) {
    absl::StatusOr<std::shared_ptr<TlsContextProvider>> provider =
        TlsContextProvider::Create(credentials, client_certificates);
    ASSERT_TRUE(provider.ok()) << provider.status();
    provider_ = *provider;
    options.tls = provider_;
    router_.Get("/hello",
                [](Request&, Response& response) { response.SetContent("hello", "text/plain"); });
    server_ = std::make_unique<Server>(
        std::move(options),
        [this](Request& request, Response& response) { router_.Handle(request, response); });
    absl::StatusOr<int> port = server_->Start({"127.0.0.1", 0});
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
  }

  test::TlsClientOptions Trusting(const std::string& client = "") {
    test::TlsClientOptions options;
    options.ca_file = File("ca.pem");
    if (!client.empty()) {
      options.cert_file = File(client + ".pem");
      options.key_file = File(client + ".key");
    }
    return options;
  }

  static test::TestCaFolder* ca_;
  Router router_;
  std::shared_ptr<TlsContextProvider> provider_;
  std::unique_ptr<Server> server_;
  int port_ = 0;
};

test::TestCaFolder* ServerTlsTest::ca_ = nullptr;

TEST_F(ServerTlsTest, RequestsAreServedOverTlsAndKeptAlive) {
  StartServer({}, Credentials("server"));
  test::TlsTestClient client(port_, Trusting());
  ASSERT_TRUE(client.Handshake()) << "the server's certificate must verify for 127.0.0.1";
  for (int i = 0; i < 3; ++i) {
    std::optional<std::string> answer = client.Get("/hello");
    ASSERT_TRUE(answer) << "request " << i;
    EXPECT_THAT(*answer, StartsWith("HTTP/1.1 200"));
    EXPECT_THAT(*answer, HasSubstr("\r\n\r\nhello"));
  }
  EXPECT_EQ(server_->Stats().connections_accepted, 1u) << "one connection kept alive";
  EXPECT_EQ(server_->Stats().requests, 3u);
  EXPECT_EQ(server_->Stats().tls_handshake_failures, 0u);
}

TEST_F(ServerTlsTest, PlainHttpIsClosedAfterTheFailedHandshakeAndCounted) {
  StartServer({}, Credentials("server"));
  PlainSocket plain(port_);
  ASSERT_TRUE(plain.connected());
  ASSERT_TRUE(plain.Send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"));
  EXPECT_TRUE(plain.WaitClosed(2s)) << "a plain request must not hold the connection";
  EXPECT_THAT(plain.read(), Not(HasSubstr("hello")));
  EXPECT_THAT(plain.read(), Not(HasSubstr("HTTP/1.1")));
  EXPECT_EQ(server_->Stats().tls_handshake_failures, 1u);
  EXPECT_EQ(server_->Stats().requests, 0u);
  // And the listener goes on.
  test::TlsTestClient client(port_, Trusting());
  ASSERT_TRUE(client.Get("/hello"));
  EXPECT_EQ(server_->Stats().connections_open, 1u);
}

TEST_F(ServerTlsTest, AClientCertificateIsRequiredWhenAClientCaIsGiven) {
  StartServer({}, Credentials("server", /*client_ca=*/true),
              ClientCertificates::kRequiredWhenCaGiven);
  {
    test::TlsTestClient no_certificate(port_, Trusting());
    EXPECT_FALSE(no_certificate.Get("/hello")) << "served without a client certificate";
  }
  {
    test::TlsTestClient other_ca(port_, Trusting("other-client"));
    EXPECT_FALSE(other_ca.Get("/hello")) << "served a certificate from an unrelated CA";
  }
  test::TlsTestClient trusted(port_, Trusting("client"));
  std::optional<std::string> answer = trusted.Get("/hello");
  ASSERT_TRUE(answer);
  EXPECT_THAT(*answer, StartsWith("HTTP/1.1 200"));
  EXPECT_EQ(server_->Stats().tls_handshake_failures, 2u);
  EXPECT_EQ(server_->Stats().requests, 1u);
}

TEST_F(ServerTlsTest, ASlowHandshakeIsCutAtTheHeaderDeadlineWhileOthersAreServed) {
  ServerOptions options;
  options.header_timeout = 1s;
  options.idle_timeout = 10s;  // the cut must come from the header deadline, not this
  StartServer(options, Credentials("server"));
  // A TLS record header announcing a ClientHello, then a byte every 200 ms: never complete.
  PlainSocket slow(port_);
  ASSERT_TRUE(slow.connected());
  const Clock::time_point start = Clock::now();
  ASSERT_TRUE(slow.Send(std::string("\x16\x03\x01\x02\x00", 5)));
  bool closed = false;
  int served = 0;
  while (!closed && Clock::now() - start < 4s) {
    slow.Send("\x01");
    test::TlsTestClient other(port_, Trusting());
    if (other.Get("/hello")) ++served;
    closed = slow.WaitClosed(200ms);
  }
  const auto elapsed = Clock::now() - start;
  EXPECT_TRUE(closed) << "the slow handshake was never cut";
  EXPECT_GE(elapsed, 900ms);
  EXPECT_LT(elapsed, 3000ms);  // loose: the machine may be busy; idle_timeout would be 10 s
  EXPECT_GE(served, 1) << "ordinary TLS clients must be served meanwhile";
  // The deadline closes the socket before the handshake's handler runs and counts it: the
  // client may see the close first.
  const Clock::time_point counted_by = Clock::now() + 2s;
  while (server_->Stats().tls_handshake_failures == 0 && Clock::now() < counted_by) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(server_->Stats().tls_handshake_failures, 1u);
}

TEST_F(ServerTlsTest, AReloadReachesNewConnectionsAndKeepsOpenOnes) {
  const TlsCredentials first = Credentials("server");
  const TlsCredentials second = Credentials("server2");
  StartServer({}, first);
  test::TlsTestClient before(port_, Trusting());
  ASSERT_TRUE(before.Get("/hello"));
  EXPECT_EQ(before.PeerFingerprint(), first.sha256_fingerprint);

  ASSERT_TRUE(provider_->Install(second).ok());

  std::optional<std::string> again = before.Get("/hello");
  ASSERT_TRUE(again) << "the connection opened before the reload was dropped";
  EXPECT_THAT(*again, StartsWith("HTTP/1.1 200"));
  test::TlsTestClient after(port_, Trusting());
  ASSERT_TRUE(after.Get("/hello"));
  EXPECT_EQ(after.PeerFingerprint(), second.sha256_fingerprint);
  EXPECT_EQ(server_->Stats().connections_accepted, 2u);
}

}  // namespace
}  // namespace ordertrace::http
