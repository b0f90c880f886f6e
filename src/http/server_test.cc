#include "http/server.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "http/router.h"

namespace ordertrace::http {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using Clock = std::chrono::steady_clock;

constexpr char kGetHello[] = "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n";

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// A response as read off a raw socket.
struct RawResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;

  std::string Header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
      if (key == Lower(std::string(name))) return value;
    }
    return "";
  }
};

// A loopback client socket that writes exactly the bytes a test gives it and reads with a
// deadline: for what httplib::Client cannot send (slow, partial, pipelined, malformed).
class RawClient {
 public:
  explicit RawClient(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) Close();
    // A write the server never reads fails after this instead of blocking the test.
    timeval send_timeout{5, 0};
    if (fd_ >= 0) setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
  }
  ~RawClient() { Close(); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return fd_ >= 0; }

  // False when the peer is gone (or the write timed out).
  bool Send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t sent = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (sent < 0 && errno == EINTR) continue;
      if (sent <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(sent));
    }
    return true;
  }

  void ShutdownWrite() { shutdown(fd_, SHUT_WR); }

  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  // The next response, or nullopt when none is complete within `timeout`. `head` for the
  // answer to a HEAD request (no body whatever its Content-Length).
  std::optional<RawResponse> ReadResponse(std::chrono::milliseconds timeout = 2s,
                                          bool head = false) {
    const Clock::time_point deadline = Clock::now() + timeout;
    while (true) {
      if (std::optional<RawResponse> response = TakeResponse(head)) return response;
      if (closed_ || ReadSome(deadline) == Read::kTimeout) return std::nullopt;
    }
  }

  // True when the peer closes its side (EOF or reset) within `timeout`; bytes that arrive
  // first are kept in unread().
  bool WaitClosed(std::chrono::milliseconds timeout) {
    const Clock::time_point deadline = Clock::now() + timeout;
    while (!closed_) {
      if (ReadSome(deadline) == Read::kTimeout) return false;
    }
    return true;
  }

  const std::string& unread() const { return pending_; }

 private:
  enum class Read { kData, kClosed, kTimeout };

  Read ReadSome(Clock::time_point deadline) {
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return Read::kTimeout;
      pollfd poll_fd{fd_, POLLIN, 0};
      int ready = poll(&poll_fd, 1, static_cast<int>(left.count()));
      if (ready < 0 && errno == EINTR) continue;
      if (ready == 0) return Read::kTimeout;
      char chunk[16 << 10];
      ssize_t got = recv(fd_, chunk, sizeof chunk, 0);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        closed_ = true;
        return Read::kClosed;
      }
      pending_.append(chunk, static_cast<size_t>(got));
      return Read::kData;
    }
  }

  // Parses and removes one complete response from pending_.
  std::optional<RawResponse> TakeResponse(bool head) {
    size_t end_of_head = pending_.find("\r\n\r\n");
    if (end_of_head == std::string::npos) return std::nullopt;
    RawResponse response;
    std::string_view text(pending_.data(), end_of_head);
    size_t line_end = text.find("\r\n");
    std::string_view status_line = text.substr(0, line_end);
    if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1.") return std::nullopt;
    response.status = std::stoi(std::string(status_line.substr(9, 3)));
    while (line_end != std::string_view::npos) {
      text.remove_prefix(line_end + 2);
      line_end = text.find("\r\n");
      std::string_view line = text.substr(0, line_end);
      size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      response.headers.emplace_back(Lower(std::string(line.substr(0, colon))), std::string(value));
    }
    size_t body_start = end_of_head + 4;
    size_t length = 0;
    if (!head && response.status >= 200 && response.status != 204 && response.status != 304) {
      std::string declared = response.Header("Content-Length");
      if (declared.empty()) {
        if (!closed_) return std::nullopt;  // the body runs to the close
        length = pending_.size() - body_start;
      } else {
        length = std::stoul(declared);
      }
    }
    if (pending_.size() < body_start + length) return std::nullopt;
    response.body = pending_.substr(body_start, length);
    pending_.erase(0, body_start + length);
    return response;
  }

  int fd_ = -1;
  std::string pending_;
  bool closed_ = false;
};

// Holds the handlers that enter it until the test opens it.
class Gate {
 public:
  void Enter() {
    std::unique_lock<std::mutex> lock(mu_);
    ++entered_;
    changed_.notify_all();
    changed_.wait(lock, [this] { return open_; });
  }
  bool WaitEntered(int count, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, timeout, [&] { return entered_ >= count; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  int entered_ = 0;
  bool open_ = false;
};

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 2s) {
  const Clock::time_point deadline = Clock::now() + timeout;
  while (!condition()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

std::string PostHead(size_t content_length, std::string_view extra_headers = "") {
  return "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: " +
         std::to_string(content_length) + "\r\n" + std::string(extra_headers) + "\r\n";
}

bool IsJsonWithError(const std::string& body) {
  nlohmann::json parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  return parsed.is_object() && parsed.contains("error") && parsed["error"].is_string();
}

class ServerTest : public ::testing::Test {
 protected:
  void TearDown() override {
    gate_.Open();  // a handler held by the gate would hold Shutdown
    if (server_) server_->Shutdown();
  }

  // Starts a server on 127.0.0.1, any free port, with the test's routes:
  //   GET /hello, /items/{}, /files/{*}, /query?q=, /throw, /block (held by gate_); POST /echo.
  void StartServer(ServerOptions options = {}) {
    router_.Get("/hello", [this](Request&, Response& response) {
      ++hello_calls_;
      response.SetContent("hello", "text/plain");
    });
    router_.Get("/items/{}", [](Request& request, Response& response) {
      response.SetContent(request.PathParam(0), "text/plain");
    });
    router_.Get("/files/{*}", [](Request& request, Response& response) {
      response.SetContent(request.PathParam(0), "text/plain");
    });
    router_.Get("/query", [](Request& request, Response& response) {
      response.SetContent(request.Param("q"), "text/plain");
    });
    router_.Get("/throw", [](Request&, Response&) -> void {
      throw std::runtime_error("secret detail at /var/lib/ordertrace/wal");
    });
    router_.Get("/block", [this](Request&, Response& response) {
      gate_.Enter();
      response.SetContent("unblocked", "text/plain");
    });
    router_.Post("/echo", [](Request& request, Response& response) {
      response.SetContent(
          "size=" + std::to_string(request.body.size()) + " head=" + request.body.substr(0, 16),
          "text/plain");
    });
    server_ = std::make_unique<Server>(
        std::move(options),
        [this](Request& request, Response& response) { router_.Handle(request, response); });
    absl::StatusOr<int> port = server_->Start({"127.0.0.1", 0});
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
  }

  httplib::Client Client() {
    httplib::Client client("127.0.0.1", port_);
    client.set_connection_timeout(2, 0);
    client.set_read_timeout(5, 0);
    return client;
  }

  std::unique_ptr<RawClient> Connect() {
    auto client = std::make_unique<RawClient>(port_);
    EXPECT_TRUE(client->connected());
    return client;
  }

  Router router_;
  Gate gate_;
  std::atomic<int> hello_calls_{0};
  std::unique_ptr<Server> server_;
  int port_ = 0;
};

TEST_F(ServerTest, RoutesPathParamsAndQueries) {
  StartServer();
  httplib::Client client = Client();
  client.set_url_encode(false);  // the targets below are sent as written
  auto item = client.Get("/items/a%20b");
  ASSERT_TRUE(item);
  EXPECT_EQ(item->status, 200);
  EXPECT_EQ(item->body, "a b");
  auto file = client.Get("/files/x/y%2Fz");
  ASSERT_TRUE(file);
  EXPECT_EQ(file->body, "x/y/z");
  auto query = client.Get("/query?q=a+b%26c&other=1");
  ASSERT_TRUE(query);
  EXPECT_EQ(query->body, "a b&c");
}

TEST_F(ServerTest, UnknownPathIs404JsonAndOtherMethodIs405WithAllow) {
  StartServer();
  httplib::Client client = Client();
  auto missing = client.Get("/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->get_header_value("Content-Type"), "application/json");
  EXPECT_TRUE(IsJsonWithError(missing->body)) << missing->body;
  auto not_allowed = client.Post("/hello", "", "text/plain");
  ASSERT_TRUE(not_allowed);
  EXPECT_EQ(not_allowed->status, 405);
  EXPECT_EQ(not_allowed->get_header_value("Allow"), "GET");
  EXPECT_EQ(hello_calls_, 0);
}

TEST_F(ServerTest, HeadAnswersTheGetHeadWithoutItsBody) {
  StartServer();
  auto client = Connect();
  // HEAD then GET on one connection: a body sent after the HEAD answer would be read as the
  // start of the GET's answer.
  ASSERT_TRUE(client->Send("HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::optional<RawResponse> head = client->ReadResponse(2s, /*head=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->Header("Content-Length"), "5");
  ASSERT_TRUE(client->Send(kGetHello));
  std::optional<RawResponse> get = client->ReadResponse();
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(get->body, "hello");
  EXPECT_EQ(client->unread(), "");
}

TEST_F(ServerTest, NonUtf8PathIsAnsweredAsValidJson) {
  StartServer();
  auto encoded = Connect();
  ASSERT_TRUE(encoded->Send("GET /%FF%FE%C3 HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::optional<RawResponse> response = encoded->ReadResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 404);
  EXPECT_TRUE(IsJsonWithError(response->body)) << response->body;

  // Raw bytes past 0x7f in the target: refused or routed, always as JSON.
  auto raw = Connect();
  ASSERT_TRUE(raw->Send("GET /\xff\xfe HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::optional<RawResponse> raw_response = raw->ReadResponse();
  ASSERT_TRUE(raw_response);
  EXPECT_TRUE(raw_response->status == 404 || raw_response->status == 400) << raw_response->status;
  EXPECT_TRUE(IsJsonWithError(raw_response->body)) << raw_response->body;

  auto hello = Client().Get("/hello");
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->status, 200);
}

TEST_F(ServerTest, SlowHeadersAndBodiesAreCutWhileOthersAreServed) {
  ServerOptions options;
  options.worker_threads = 2;  // fewer than the slow clients: none may hold a worker
  options.header_timeout = 1s;
  options.body_timeout = 1s;
  StartServer(options);
  constexpr size_t kSlowHeads = 4;
  constexpr size_t kSlowBodies = 4;
  const std::string head = "GET /hello HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa";
  std::vector<std::unique_ptr<RawClient>> slow;
  for (size_t i = 0; i < kSlowHeads + kSlowBodies; ++i) slow.push_back(Connect());
  for (size_t i = kSlowHeads; i < slow.size(); ++i) ASSERT_TRUE(slow[i]->Send(PostHead(1000)));

  // One byte every 200 ms on each; ordinary requests meanwhile, while all slow ones are open.
  int ordinary = 0;
  const Clock::time_point start = Clock::now();
  for (size_t tick = 0; Clock::now() - start < 2500ms; ++tick) {
    for (size_t i = 0; i < slow.size(); ++i) {
      // Fails once the server has cut the connection, as it should.
      slow[i]->Send(i < kSlowHeads ? std::string_view(&head[tick % head.size()], 1) : "x");
    }
    if (Clock::now() - start < 800ms) {
      const Clock::time_point sent = Clock::now();
      auto response = Client().Get("/hello");
      ASSERT_TRUE(response) << "an ordinary request got no answer";
      EXPECT_EQ(response->status, 200);
      EXPECT_LT(Clock::now() - sent, 1s);
      ++ordinary;
    }
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_GE(ordinary, 3);
  for (size_t i = 0; i < slow.size(); ++i) {
    EXPECT_TRUE(slow[i]->WaitClosed(2s)) << "slow connection " << i << " still open";
    EXPECT_EQ(slow[i]->unread(), "") << "slow connection " << i << " got an answer";
  }
  EXPECT_EQ(server_->Stats().timeouts, kSlowHeads + kSlowBodies);
  EXPECT_EQ(server_->Stats().requests, static_cast<uint64_t>(ordinary));
  EXPECT_TRUE(WaitFor([&] { return server_->Stats().connections_open == 0; }));
}

TEST_F(ServerTest, ConnectionsPastTheBoundGet503AndClose) {
  ServerOptions options;
  options.max_connections = 4;
  StartServer(options);
  std::vector<std::unique_ptr<RawClient>> idle;
  for (int i = 0; i < 4; ++i) idle.push_back(Connect());
  ASSERT_TRUE(WaitFor([&] { return server_->Stats().connections_accepted == 4; }));

  auto refused = Connect();
  std::optional<RawResponse> refusal = refused->ReadResponse(1s);
  ASSERT_TRUE(refusal) << "no answer past max_connections";
  EXPECT_EQ(refusal->status, 503);
  EXPECT_EQ(refusal->Header("Retry-After"), "1");
  EXPECT_TRUE(IsJsonWithError(refusal->body)) << refusal->body;
  EXPECT_TRUE(refused->WaitClosed(2s));
  EXPECT_EQ(server_->Stats().connections_refused, 1u);

  // The connections within the bound are still served.
  ASSERT_TRUE(idle[0]->Send(kGetHello));
  std::optional<RawResponse> served = idle[0]->ReadResponse();
  ASSERT_TRUE(served);
  EXPECT_EQ(served->status, 200);

  idle.clear();
  refused.reset();
  ASSERT_TRUE(WaitFor([&] { return server_->Stats().connections_open == 0; }, 7s));
  auto after = Client().Get("/hello");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
}

// A refused body is drained for up to seconds after its answer; such answered connections must
// not hold the connection bound against clients that are within it.
TEST_F(ServerTest, ConnectionsDrainingARefusedBodyLeaveTheBound) {
  ServerOptions options;
  options.max_connections = 2;
  options.max_body_bytes = 1000;
  StartServer(options);
  auto refused = Connect();
  ASSERT_TRUE(refused->Send(PostHead(10'000'000) + std::string(4096, 'b')));
  std::optional<RawResponse> too_large = refused->ReadResponse();
  ASSERT_TRUE(too_large);
  EXPECT_EQ(too_large->status, 413);
  // The server's half-close after the answer: it now drains `refused`, which stays connected,
  // until it closes (or 5 s pass).
  ASSERT_TRUE(refused->WaitClosed(2s));
  auto idle = Connect();
  ASSERT_TRUE(WaitFor([&] { return server_->Stats().connections_accepted == 2; }));
  auto client = Connect();
  ASSERT_TRUE(client->Send(kGetHello));
  std::optional<RawResponse> served = client->ReadResponse();
  ASSERT_TRUE(served);
  EXPECT_EQ(served->status, 200) << served->body;
  EXPECT_EQ(server_->Stats().connections_refused, 0u);
}

TEST_F(ServerTest, FullWorkerQueueIs503AtOnce) {
  ServerOptions options;
  options.worker_threads = 1;
  options.max_queued_requests = 1;
  StartServer(options);
  auto running = Connect();
  ASSERT_TRUE(running->Send("GET /block HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(gate_.WaitEntered(1, 2s));
  auto queued = Connect();
  ASSERT_TRUE(queued->Send(kGetHello));
  ASSERT_TRUE(WaitFor([&] { return server_->Stats().queued_requests == 1; }));

  auto bodiless = Connect();
  ASSERT_TRUE(bodiless->Send(kGetHello));
  std::optional<RawResponse> refused = bodiless->ReadResponse(1s);
  ASSERT_TRUE(refused) << "a request past the full queue was left waiting";
  EXPECT_EQ(refused->status, 503);
  EXPECT_EQ(refused->Header("Retry-After"), "1");
  EXPECT_TRUE(bodiless->WaitClosed(2s));

  // With a body: refused from its head, before the body is sent.
  auto with_body = Connect();
  ASSERT_TRUE(with_body->Send(PostHead(100)));
  std::optional<RawResponse> refused_post = with_body->ReadResponse(1s);
  ASSERT_TRUE(refused_post);
  EXPECT_EQ(refused_post->status, 503);
  EXPECT_EQ(refused_post->Header("Retry-After"), "1");
  EXPECT_EQ(server_->Stats().refused_busy, 2u);

  gate_.Open();
  std::optional<RawResponse> first = running->ReadResponse();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->body, "unblocked");
  std::optional<RawResponse> second = queued->ReadResponse();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 200);
  EXPECT_EQ(second->body, "hello");
  EXPECT_EQ(hello_calls_, 1);
}

TEST_F(ServerTest, BodiesPastTheInflightBudgetGet429) {
  ServerOptions options;
  options.max_body_bytes = 1000;
  options.max_inflight_bytes = 1500;
  StartServer(options);
  auto holder = Connect();
  ASSERT_TRUE(holder->Send(PostHead(1000)));  // reserves 1000 and sends nothing more yet
  ASSERT_TRUE(WaitFor([&] { return server_->Stats().inflight_bytes == 1000; }));

  auto over = Connect();
  ASSERT_TRUE(over->Send(PostHead(600)));
  std::optional<RawResponse> refused = over->ReadResponse(1s);
  ASSERT_TRUE(refused) << "a request past the byte budget was left waiting";
  EXPECT_EQ(refused->status, 429);
  EXPECT_EQ(refused->Header("Retry-After"), "1");
  EXPECT_TRUE(IsJsonWithError(refused->body));
  EXPECT_EQ(server_->Stats().refused_over_budget, 1u);

  // What still fits is admitted.
  auto fits = Connect();
  ASSERT_TRUE(fits->Send(PostHead(500) + std::string(500, 'f')));
  std::optional<RawResponse> fitted = fits->ReadResponse();
  ASSERT_TRUE(fitted);
  EXPECT_EQ(fitted->status, 200);
  EXPECT_THAT(fitted->body, HasSubstr("size=500"));

  ASSERT_TRUE(holder->Send(std::string(1000, 'h')));
  std::optional<RawResponse> held = holder->ReadResponse();
  ASSERT_TRUE(held);
  EXPECT_THAT(held->body, HasSubstr("size=1000"));
  ASSERT_TRUE(WaitFor([&] { return server_->Stats().inflight_bytes == 0; }));

  auto retry = Connect();
  ASSERT_TRUE(retry->Send(PostHead(600) + std::string(600, 'r')));
  std::optional<RawResponse> retried = retry->ReadResponse();
  ASSERT_TRUE(retried);
  EXPECT_EQ(retried->status, 200);
}

TEST_F(ServerTest, ContentLengthOverTheLimitIs413BeforeTheBody) {
  ServerOptions options;
  options.max_body_bytes = 1000;
  StartServer(options);
  auto client = Connect();
  ASSERT_TRUE(client->Send(PostHead(10'000'000)));
  std::optional<RawResponse> refused = client->ReadResponse(1s);
  ASSERT_TRUE(refused) << "no answer before the body";
  EXPECT_EQ(refused->status, 413);
  EXPECT_TRUE(IsJsonWithError(refused->body));
  EXPECT_THAT(refused->body, HasSubstr("1000"));
  EXPECT_EQ(server_->Stats().refused_too_large, 1u);
  EXPECT_EQ(server_->Stats().requests, 0u);
  // The body sent after the answer is drained, not met with a reset; then the server closes.
  EXPECT_TRUE(client->Send(std::string(64 << 10, 'b')));
  client->ShutdownWrite();
  EXPECT_TRUE(client->WaitClosed(3s));
}

TEST_F(ServerTest, ChunkedBodiesAreDecodedAndBoundedToo) {
  ServerOptions options;
  options.max_body_bytes = 1000;
  StartServer(options);
  const std::string head =
      "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  auto within = Connect();
  ASSERT_TRUE(within->Send(head + "12c\r\n" + std::string(300, 'a') + "\r\n12c\r\n" +
                           std::string(300, 'b') + "\r\n0\r\n\r\n"));
  std::optional<RawResponse> accepted = within->ReadResponse();
  ASSERT_TRUE(accepted);
  EXPECT_EQ(accepted->status, 200);
  EXPECT_THAT(accepted->body, HasSubstr("size=600"));

  auto over = Connect();
  ASSERT_TRUE(over->Send(head));
  for (int i = 0; i < 3; ++i) over->Send("200\r\n" + std::string(512, 'c') + "\r\n");
  std::optional<RawResponse> refused = over->ReadResponse();
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 413);
  EXPECT_TRUE(IsJsonWithError(refused->body));
  EXPECT_EQ(server_->Stats().requests, 1u);
}

TEST_F(ServerTest, HeadOverTheLimitIs431) {
  ServerOptions options;
  options.max_header_bytes = 1024;
  StartServer(options);
  auto client = Connect();
  ASSERT_TRUE(client->Send("GET /hello HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(2000, 'a') +
                           "\r\n\r\n"));
  std::optional<RawResponse> refused = client->ReadResponse();
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 431);
  EXPECT_TRUE(IsJsonWithError(refused->body));
  EXPECT_EQ(hello_calls_, 0);
  // A head within the limit still passes.
  auto fine = Connect();
  ASSERT_TRUE(
      fine->Send("GET /hello HTTP/1.1\r\nHost: t\r\nX-Ok: " + std::string(500, 'a') + "\r\n\r\n"));
  std::optional<RawResponse> served = fine->ReadResponse();
  ASSERT_TRUE(served);
  EXPECT_EQ(served->status, 200);
}

TEST_F(ServerTest, GarbageIs400AndClosed) {
  StartServer();
  for (std::string garbage :
       {std::string("HELLO WORLD\r\n\r\n"), std::string("\x16\x03\x01\x02\x00\r\n\r\n", 9),
        std::string("GET / HTTP/1.1\r\nHost t\r\n\r\n")}) {
    auto client = Connect();
    ASSERT_TRUE(client->Send(garbage));
    std::optional<RawResponse> refused = client->ReadResponse();
    ASSERT_TRUE(refused) << "no answer to " << garbage;
    EXPECT_EQ(refused->status, 400);
    EXPECT_TRUE(IsJsonWithError(refused->body));
    client->ShutdownWrite();
    EXPECT_TRUE(client->WaitClosed(2s));
  }
  EXPECT_EQ(server_->Stats().refused_malformed, 3u);
  EXPECT_EQ(server_->Stats().requests, 0u);
}

TEST_F(ServerTest, ThrowingHandlerIs500GenericAndTheServerGoesOn) {
  StartServer();
  httplib::Client client = Client();
  auto failed = client.Get("/throw");
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->status, 500);
  EXPECT_TRUE(IsJsonWithError(failed->body));
  EXPECT_THAT(failed->body, Not(HasSubstr("secret")));
  EXPECT_THAT(failed->body, Not(HasSubstr("/var/lib")));
  EXPECT_EQ(server_->Stats().handler_errors, 1u);
  for (int i = 0; i < 3; ++i) {
    auto hello = client.Get("/hello");
    ASSERT_TRUE(hello);
    EXPECT_EQ(hello->status, 200);
  }
}

// A listener's own check on the head (ordertrace's OTLP/HTTP checks the bearer token there): a
// refused client is answered before its body, which costs no body budget and reaches no handler.
TEST_F(ServerTest, CheckHeadRefusesBeforeTheBodyWithItsStatusAndHeaders) {
  ServerOptions options;
  options.max_inflight_bytes = 64 << 10;
  options.check_head = [](const Request& head) -> std::optional<HeadRefusal> {
    if (head.Header("Authorization") == "Bearer good") return std::nullopt;
    return HeadRefusal{401, "a bearer token is required", {{"WWW-Authenticate", "Bearer"}}};
  };
  StartServer(options);
  // Many refused heads announcing bodies far past the budget, their bodies never sent: each is
  // answered at once, none holds a byte of the budget.
  for (int i = 0; i < 20; ++i) {
    auto refused_client = Connect();
    ASSERT_TRUE(refused_client->Send(PostHead(50'000)));
    std::optional<RawResponse> refused = refused_client->ReadResponse(1s);
    ASSERT_TRUE(refused) << "no answer before the body";
    EXPECT_EQ(refused->status, 401);
    EXPECT_EQ(refused->Header("WWW-Authenticate"), "Bearer");
    EXPECT_TRUE(IsJsonWithError(refused->body));
  }
  EXPECT_EQ(server_->Stats().refused_by_head, 20u);
  EXPECT_EQ(server_->Stats().refused_over_budget, 0u);
  EXPECT_EQ(server_->Stats().requests, 0u);
  auto admitted = Connect();
  ASSERT_TRUE(admitted->Send(PostHead(5, "Authorization: Bearer good\r\n") + "abcde"));
  std::optional<RawResponse> answer = admitted->ReadResponse();
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 200);
  EXPECT_EQ(answer->body, "size=5 head=abcde");
}

TEST_F(ServerTest, ExpectContinueIsAnsweredOnlyWhenAdmitted) {
  ServerOptions options;
  options.max_body_bytes = 1000;
  StartServer(options);
  auto admitted = Connect();
  ASSERT_TRUE(admitted->Send(PostHead(5, "Expect: 100-continue\r\n")));
  std::optional<RawResponse> interim = admitted->ReadResponse(1s);
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(admitted->Send("abcde"));
  std::optional<RawResponse> final_answer = admitted->ReadResponse();
  ASSERT_TRUE(final_answer);
  EXPECT_EQ(final_answer->status, 200);
  EXPECT_EQ(final_answer->body, "size=5 head=abcde");

  auto too_large = Connect();
  ASSERT_TRUE(too_large->Send(PostHead(5000, "Expect: 100-continue\r\n")));
  std::optional<RawResponse> refused = too_large->ReadResponse(1s);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 413);  // not 100 first
  EXPECT_EQ(server_->Stats().requests, 1u);
}

TEST_F(ServerTest, RequestWaitingPastMaxQueueWaitIs503Unrun) {
  ServerOptions options;
  options.worker_threads = 1;
  options.max_queue_wait = 200ms;
  StartServer(options);
  auto running = Connect();
  ASSERT_TRUE(running->Send("GET /block HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(gate_.WaitEntered(1, 2s));
  auto waiting = Connect();
  ASSERT_TRUE(waiting->Send(kGetHello));
  ASSERT_TRUE(WaitFor([&] { return server_->Stats().queued_requests == 1; }));
  std::this_thread::sleep_for(400ms);
  gate_.Open();
  std::optional<RawResponse> first = running->ReadResponse();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200);
  std::optional<RawResponse> late = waiting->ReadResponse();
  ASSERT_TRUE(late);
  EXPECT_EQ(late->status, 503);
  EXPECT_EQ(late->Header("Retry-After"), "1");
  EXPECT_EQ(hello_calls_, 0);
  EXPECT_EQ(server_->Stats().refused_busy, 1u);
}

TEST_F(ServerTest, PipelinedRequestsAreAnsweredInOrder) {
  StartServer();
  auto client = Connect();
  ASSERT_TRUE(
      client->Send("GET /items/1 HTTP/1.1\r\nHost: t\r\n\r\n"
                   "GET /items/2 HTTP/1.1\r\nHost: t\r\n\r\n" +
                   PostHead(3) + "xyz" + "GET /items/3 HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::vector<std::string> bodies;
  for (int i = 0; i < 4; ++i) {
    std::optional<RawResponse> response = client->ReadResponse();
    ASSERT_TRUE(response) << "answer " << i;
    EXPECT_EQ(response->status, 200);
    bodies.push_back(response->body);
  }
  EXPECT_THAT(bodies, ::testing::ElementsAre("1", "2", "size=3 head=xyz", "3"));
  EXPECT_EQ(server_->Stats().connections_accepted, 1u);
}

TEST_F(ServerTest, KeepAliveReusesTheConnection) {
  StartServer();
  httplib::Client client = Client();
  client.set_keep_alive(true);
  for (int i = 0; i < 5; ++i) {
    auto response = client.Get("/hello");
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200);
  }
  EXPECT_EQ(server_->Stats().connections_accepted, 1u);
  EXPECT_EQ(hello_calls_, 5);
  // "Connection: close" is honoured.
  auto closing = Connect();
  ASSERT_TRUE(closing->Send("GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
  std::optional<RawResponse> answer = closing->ReadResponse();
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 200);
  EXPECT_TRUE(closing->WaitClosed(2s));
}

TEST_F(ServerTest, Http10ClosesAfterTheAnswer) {
  StartServer();
  auto client = Connect();
  ASSERT_TRUE(client->Send("GET /hello HTTP/1.0\r\n\r\n"));
  std::optional<RawResponse> answer = client->ReadResponse();
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 200);
  EXPECT_EQ(answer->body, "hello");
  EXPECT_TRUE(client->WaitClosed(2s));
}

TEST_F(ServerTest, IdleConnectionIsClosedAfterIdleTimeout) {
  ServerOptions options;
  options.idle_timeout = 300ms;
  options.header_timeout = 10s;
  StartServer(options);
  auto silent = Connect();  // never sends a byte
  auto kept_alive = Connect();
  ASSERT_TRUE(kept_alive->Send(kGetHello));
  ASSERT_TRUE(kept_alive->ReadResponse());
  EXPECT_TRUE(silent->WaitClosed(3s));
  EXPECT_TRUE(kept_alive->WaitClosed(3s));  // idle after its answer
  EXPECT_EQ(silent->unread(), "");
  // Idle is not slow: only a head or body cut at its deadline counts as a timeout.
  EXPECT_EQ(server_->Stats().timeouts, 0u);
}

TEST_F(ServerTest, ShutdownWithConnectionsOpenReturnsPromptly) {
  StartServer();  // default deadlines: 60 s idle, 10 s head, 30 s body
  std::vector<std::unique_ptr<RawClient>> open;
  for (int i = 0; i < 3; ++i) open.push_back(Connect());
  open.push_back(Connect());
  ASSERT_TRUE(open.back()->Send("GET /hello HTTP/1.1\r\nHo"));
  open.push_back(Connect());
  ASSERT_TRUE(open.back()->Send(PostHead(100) + "part"));
  ASSERT_TRUE(WaitFor([&] { return server_->Stats().connections_open == 5; }));
  const Clock::time_point start = Clock::now();
  server_->Shutdown();
  EXPECT_LT(Clock::now() - start, 2s);
  for (auto& client : open) EXPECT_TRUE(client->WaitClosed(1s));
  EXPECT_EQ(server_->Stats().connections_open, 0u);
  server_->Shutdown();  // idempotent
  RawClient after(port_);
  EXPECT_FALSE(after.connected() && after.Send(kGetHello) && after.ReadResponse(500ms).has_value());
}

TEST_F(ServerTest, StartOnATakenPortFailsWithTheListenerName) {
  StartServer();
  ServerOptions options;
  options.name = "second listener";
  Server second(options, [](Request&, Response&) {});
  absl::StatusOr<int> port = second.Start({"127.0.0.1", port_});
  ASSERT_FALSE(port.ok());
  EXPECT_THAT(port.status().message(), HasSubstr("second listener"));
}

}  // namespace
}  // namespace ordertrace::http
