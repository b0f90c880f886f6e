#include "forward/forward_transport.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <thread>

#include "tests/support/free_port.h"

namespace ordertrace::forward {
namespace {

using ::testing::HasSubstr;

// An OTLP/HTTP endpoint on a free loopback port that answers `status` (with `retry_after`
// when set) and keeps the last request.
class StubEndpoint {
 public:
  StubEndpoint() {
    server_.Post(".*", [this](const httplib::Request& request, httplib::Response& response) {
      std::lock_guard<std::mutex> lock(mu_);
      last_ = request;
      response.status = status_;
      if (!retry_after_.empty()) response.set_header("Retry-After", retry_after_);
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~StubEndpoint() {
    server_.stop();
    thread_.join();
  }
  void Answer(int status, std::string retry_after = "") {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = status;
    retry_after_ = std::move(retry_after);
  }
  httplib::Request last() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_;
  }
  std::string url(const std::string& path = "") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  int status_ = 200;
  std::string retry_after_;
  httplib::Request last_;
};

std::unique_ptr<ForwardTransport> Http(TransportOptions options) {
  absl::StatusOr<std::unique_ptr<ForwardTransport>> transport =
      CreateHttpTransport(std::move(options));
  EXPECT_TRUE(transport.ok()) << transport.status();
  return transport.ok() ? *std::move(transport) : nullptr;
}

TEST(HttpTransportTest, PostsProtobufWithTheHeadersToTheDefaultPath) {
  StubEndpoint endpoint;
  TransportOptions options;
  options.endpoint = endpoint.url();  // no path: /v1/traces
  options.headers = {{"X-Scope-OrgID", "alexandrite"}, {"Authorization", "Bearer t0ken"}};
  std::unique_ptr<ForwardTransport> transport = Http(options);
  ASSERT_NE(transport, nullptr);
  const SendResult result = transport->Send(std::string("\x0a\x00", 2));
  EXPECT_EQ(result.outcome, SendResult::Outcome::kAccepted);
  EXPECT_EQ(result.code, "200");
  const httplib::Request request = endpoint.last();
  EXPECT_EQ(request.path, "/v1/traces");
  EXPECT_EQ(request.get_header_value("Content-Type"), "application/x-protobuf");
  EXPECT_EQ(request.get_header_value("X-Scope-OrgID"), "alexandrite");
  EXPECT_EQ(request.get_header_value("Authorization"), "Bearer t0ken");
  EXPECT_EQ(request.body, std::string("\x0a\x00", 2));
}

TEST(HttpTransportTest, KeepsTheEndpointsOwnPath) {
  StubEndpoint endpoint;
  TransportOptions options;
  options.endpoint = endpoint.url("/tempo/otlp/v1/traces");
  std::unique_ptr<ForwardTransport> transport = Http(options);
  ASSERT_NE(transport, nullptr);
  EXPECT_EQ(transport->Send("").outcome, SendResult::Outcome::kAccepted);
  EXPECT_EQ(endpoint.last().path, "/tempo/otlp/v1/traces");
}

TEST(HttpTransportTest, TooManyRequestsAndServerErrorsAreRetriedOtherClientErrorsAreFinal) {
  StubEndpoint endpoint;
  TransportOptions options;
  options.endpoint = endpoint.url("/v1/traces");
  std::unique_ptr<ForwardTransport> transport = Http(options);
  ASSERT_NE(transport, nullptr);
  struct Case {
    int status;
    SendResult::Outcome outcome;
  };
  for (const Case& c :
       {Case{429, SendResult::Outcome::kRetryable}, Case{500, SendResult::Outcome::kRetryable},
        Case{502, SendResult::Outcome::kRetryable}, Case{503, SendResult::Outcome::kRetryable},
        Case{504, SendResult::Outcome::kRetryable}, Case{400, SendResult::Outcome::kRejected},
        Case{401, SendResult::Outcome::kRejected}, Case{403, SendResult::Outcome::kRejected},
        Case{404, SendResult::Outcome::kRejected}, Case{413, SendResult::Outcome::kRejected}}) {
    endpoint.Answer(c.status);
    const SendResult result = transport->Send("x");
    EXPECT_EQ(result.outcome, c.outcome) << c.status;
    EXPECT_EQ(result.code, std::to_string(c.status));
    EXPECT_FALSE(result.retry_after.has_value());
  }
}

TEST(HttpTransportTest, RetryAfterIsReadInSeconds) {
  StubEndpoint endpoint;
  endpoint.Answer(503, "3");
  TransportOptions options;
  options.endpoint = endpoint.url("/v1/traces");
  std::unique_ptr<ForwardTransport> transport = Http(options);
  ASSERT_NE(transport, nullptr);
  const SendResult result = transport->Send("x");
  EXPECT_EQ(result.outcome, SendResult::Outcome::kRetryable);
  ASSERT_TRUE(result.retry_after.has_value());
  EXPECT_EQ(*result.retry_after, std::chrono::seconds(3));
}

TEST(HttpTransportTest, NoAnswerIsRetriedWithCodeError) {
  TransportOptions options;
  options.endpoint = "http://127.0.0.1:" + std::to_string(test_support::FreePort()) + "/v1/traces";
  options.timeout = std::chrono::seconds(2);
  std::unique_ptr<ForwardTransport> transport = Http(options);
  ASSERT_NE(transport, nullptr);
  const SendResult result = transport->Send("x");
  EXPECT_EQ(result.outcome, SendResult::Outcome::kRetryable);
  EXPECT_EQ(result.code, "error");
  EXPECT_FALSE(result.detail.empty());
}

TEST(HttpTransportTest, AfterCancelNothingIsSent) {
  StubEndpoint endpoint;
  TransportOptions options;
  options.endpoint = endpoint.url("/v1/traces");
  std::unique_ptr<ForwardTransport> transport = Http(options);
  ASSERT_NE(transport, nullptr);
  transport->Cancel();
  EXPECT_EQ(transport->Send("cancelled").outcome, SendResult::Outcome::kRetryable);
  EXPECT_NE(endpoint.last().body, "cancelled");
}

TEST(HttpTransportTest, EndpointsThatAreNotHttpUrlsAreRefusedNamingTheSetting) {
  for (const char* endpoint : {"tempo:4318", "ftp://tempo/v1/traces", "http://:4318/"}) {
    TransportOptions options;
    options.endpoint = endpoint;
    absl::StatusOr<std::unique_ptr<ForwardTransport>> transport = CreateHttpTransport(options);
    EXPECT_EQ(transport.status().code(), absl::StatusCode::kInvalidArgument) << endpoint;
    EXPECT_THAT(transport.status().message(), HasSubstr("forward.endpoint")) << endpoint;
  }
  TransportOptions plain_with_ca;
  plain_with_ca.endpoint = "http://127.0.0.1:4318";
  plain_with_ca.ca_file = "/etc/ssl/certs/ca-certificates.crt";
  EXPECT_THAT(CreateHttpTransport(plain_with_ca).status().message(), HasSubstr("https://"));
  TransportOptions missing_ca;
  missing_ca.endpoint = "https://127.0.0.1:4318";
  missing_ca.ca_file = "/nonexistent/ca.pem";
  EXPECT_THAT(CreateHttpTransport(missing_ca).status().message(),
              HasSubstr("cannot read /nonexistent/ca.pem"));
}

TEST(GrpcTransportTest, EndpointsWithoutAHostAndPortAreRefused) {
  for (const char* endpoint : {"tempo", "ftp://tempo:4317", ":4317"}) {
    TransportOptions options;
    options.endpoint = endpoint;
    absl::StatusOr<std::unique_ptr<ForwardTransport>> transport = CreateGrpcTransport(options);
    EXPECT_EQ(transport.status().code(), absl::StatusCode::kInvalidArgument) << endpoint;
    EXPECT_THAT(transport.status().message(), HasSubstr("forward.endpoint")) << endpoint;
  }
  TransportOptions cert_without_tls;
  cert_without_tls.endpoint = "127.0.0.1:4317";
  cert_without_tls.client_cert_file = "client.pem";
  cert_without_tls.client_key_file = "client.key";
  EXPECT_THAT(CreateGrpcTransport(cert_without_tls).status().message(), HasSubstr("needs TLS"));
  TransportOptions missing_ca;
  missing_ca.endpoint = "127.0.0.1:4317";
  missing_ca.ca_file = "/nonexistent/ca.pem";
  EXPECT_THAT(CreateGrpcTransport(missing_ca).status().message(),
              HasSubstr("forward.ca_file: cannot read"));
}

TEST(GrpcTransportTest, NoServerIsUnavailableAndRetried) {
  TransportOptions options;
  options.endpoint = "http://127.0.0.1:" + std::to_string(test_support::FreePort());
  options.timeout = std::chrono::seconds(2);
  absl::StatusOr<std::unique_ptr<ForwardTransport>> transport = CreateGrpcTransport(options);
  ASSERT_TRUE(transport.ok()) << transport.status();
  const SendResult result = (*transport)->Send(std::string());  // an empty request is valid
  EXPECT_EQ(result.outcome, SendResult::Outcome::kRetryable);
  EXPECT_THAT(result.code, testing::AnyOf("UNAVAILABLE", "DEADLINE_EXCEEDED"));
}

TEST(GrpcTransportTest, BytesThatAreNotARequestAreRejectedWithoutSending) {
  TransportOptions options;
  options.endpoint = "127.0.0.1:1";
  absl::StatusOr<std::unique_ptr<ForwardTransport>> transport = CreateGrpcTransport(options);
  ASSERT_TRUE(transport.ok()) << transport.status();
  const SendResult result = (*transport)->Send("\x0a\xff");  // a length past the end
  EXPECT_EQ(result.outcome, SendResult::Outcome::kRejected);
}

}  // namespace
}  // namespace ordertrace::forward
