#include "sdk/otlp_http_exporter.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <thread>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "tests/support/free_port.h"

namespace ordertrace::sdk {
namespace {

using ::opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;
using ::opentelemetry::proto::common::v1::KeyValue;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kBound = std::chrono::seconds(10);

// One scripted answer of the fake collector; past the script it answers 200.
struct Answer {
  int status = 200;
  std::string retry_after;  // sent as Retry-After when not empty
};

struct ReceivedRequest {
  std::string path;
  std::string content_type;
  std::string content_encoding;
  std::string authorization;
  std::string body;  // as the server hands it over (httplib inflates gzip bodies)
  SteadyClock::time_point at;
};

// An OTLP/HTTP endpoint on 127.0.0.1, port chosen by the kernel, answering from a script.
class FakeCollector {
 public:
  explicit FakeCollector(std::vector<Answer> script,
                         std::unique_ptr<httplib::Server> server = nullptr)
      : script_(std::move(script)),
        server_(server != nullptr ? std::move(server) : std::make_unique<httplib::Server>()) {
    server_->Post(".*", [this](const httplib::Request& req, httplib::Response& res) {
      Answer answer;
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back({req.path, req.get_header_value("Content-Type"),
                             req.get_header_value("Content-Encoding"),
                             req.get_header_value("Authorization"), req.body, SteadyClock::now()});
        if (next_ < script_.size()) answer = script_[next_++];
        cv_.notify_all();
      }
      res.status = answer.status;
      if (!answer.retry_after.empty()) res.set_header("Retry-After", answer.retry_after);
      res.set_content("", "application/x-protobuf");
    });
    server_->set_keep_alive_timeout(1);
    port_ = server_->bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    // stop() is a no-op until the listen thread runs; wait for it, bounded.
    auto deadline = SteadyClock::now() + kBound;
    while (!server_->is_running() && SteadyClock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  ~FakeCollector() {
    server_->stop();
    thread_.join();
  }

  std::string Url(std::string_view scheme = "http", std::string_view path = "/v1/traces") const {
    return std::string(scheme) + "://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }
  std::vector<ReceivedRequest> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  bool WaitForRequests(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kBound, [&] { return requests_.size() >= n; });
  }
  int port() const { return port_; }

 private:
  const std::vector<Answer> script_;
  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ReceivedRequest> requests_;  // guarded by mu_
  size_t next_ = 0;                        // guarded by mu_
};

std::vector<SpanData> OrderSpans(int n) {
  auto resource = std::make_shared<const base::Resource>(
      base::Resource{{{"service.name", base::AnyValue::String("shop-api")}}, 0});
  auto scope = std::make_shared<const base::InstrumentationScope>(
      base::InstrumentationScope{"shop", "1.0", {}, 0});
  std::vector<SpanData> spans;
  for (int i = 0; i < n; ++i) {
    SpanData data;
    data.span.trace_id.bytes[15] = 1;
    data.span.span_id.bytes[7] = static_cast<uint8_t>(i + 1);
    data.span.name = "shop.submit." + std::to_string(i);
    data.span.kind = base::SpanKind::kServer;
    data.span.start_time_unix_nano = 1'700'000'000'000'000'000ULL;
    data.span.end_time_unix_nano = data.span.start_time_unix_nano + 1000;
    data.span.attributes = {{"order_id", base::AnyValue::String("A-" + std::to_string(i))}};
    data.resource = resource;
    data.scope = scope;
    spans.push_back(std::move(data));
  }
  return spans;
}

// Options with waits short enough for tests.
OtlpHttpExporterOptions FastOptions(std::string endpoint) {
  OtlpHttpExporterOptions options;
  options.endpoint = std::move(endpoint);
  options.initial_backoff = std::chrono::milliseconds(10);
  options.max_backoff = std::chrono::milliseconds(40);
  options.timeout = std::chrono::seconds(10);
  return options;
}

std::unique_ptr<OtlpHttpExporter> MakeExporter(OtlpHttpExporterOptions options) {
  absl::StatusOr<std::unique_ptr<OtlpHttpExporter>> exporter =
      OtlpHttpExporter::Create(std::move(options));
  EXPECT_TRUE(exporter.ok()) << exporter.status();
  return exporter.ok() ? *std::move(exporter) : nullptr;
}

// The body as the generated OTLP classes read it; an empty request when it does not parse.
ExportTraceServiceRequest Decoded(const std::string& body) {
  ExportTraceServiceRequest request;
  EXPECT_TRUE(request.ParseFromString(body)) << "not an ExportTraceServiceRequest";
  return request;
}

// The string value of attribute `key`, or "" when absent.
std::string AttributeText(const google::protobuf::RepeatedPtrField<KeyValue>& attributes,
                          std::string_view key) {
  for (const KeyValue& kv : attributes) {
    if (kv.key() == key) return kv.value().string_value();
  }
  return "";
}

std::vector<std::string> DecodedNames(const std::string& body) {
  std::vector<std::string> names;
  const ExportTraceServiceRequest request = Decoded(body);
  for (const auto& rs : request.resource_spans()) {
    EXPECT_EQ(AttributeText(rs.resource().attributes(), "service.name"), "shop-api");
    for (const auto& ss : rs.scope_spans()) {
      for (const auto& span : ss.spans()) names.push_back(span.name());
    }
  }
  return names;
}

TEST(OtlpHttpExporterTest, PostsProtobufThatDecodesBackToTheSpans) {
  FakeCollector collector({});
  OtlpHttpExporterOptions options = FastOptions(collector.Url());
  options.headers = {{"Authorization", "Bearer token-1"}};
  auto exporter = MakeExporter(options);
  ASSERT_NE(exporter, nullptr);
  std::vector<SpanData> spans = OrderSpans(3);
  ASSERT_TRUE(exporter->Export(spans).ok());

  std::vector<ReceivedRequest> requests = collector.requests();
  ASSERT_THAT(requests, SizeIs(1));
  EXPECT_EQ(requests[0].path, "/v1/traces");
  EXPECT_EQ(requests[0].content_type, "application/x-protobuf");
  EXPECT_EQ(requests[0].content_encoding, "");
  EXPECT_EQ(requests[0].authorization, "Bearer token-1");
  EXPECT_THAT(DecodedNames(requests[0].body),
              ElementsAre("shop.submit.0", "shop.submit.1", "shop.submit.2"));
  ExportTraceServiceRequest decoded = Decoded(requests[0].body);
  ASSERT_EQ(decoded.resource_spans_size(), 1);
  ASSERT_EQ(decoded.resource_spans(0).scope_spans_size(), 1);
  ASSERT_GE(decoded.resource_spans(0).scope_spans(0).spans_size(), 1);
  const auto& first = decoded.resource_spans(0).scope_spans(0).spans(0);
  EXPECT_EQ(first.trace_id(), spans[0].span.trace_id.AsBytes());
  EXPECT_EQ(first.span_id(), spans[0].span.span_id.AsBytes());
  EXPECT_EQ(AttributeText(first.attributes(), "order_id"), "A-0");
  EXPECT_EQ(decoded.resource_spans(0).scope_spans(0).scope().name(), "shop");

  OtlpHttpExporterStats stats = exporter->stats();
  EXPECT_EQ(stats.spans_exported, 3u);
  EXPECT_EQ(stats.requests, 1u);
  EXPECT_EQ(stats.retries, 0u);
}

TEST(OtlpHttpExporterTest, EndpointWithoutPathPostsToV1Traces) {
  FakeCollector collector({});
  auto exporter = MakeExporter(FastOptions(collector.Url("http", "")));
  ASSERT_NE(exporter, nullptr);
  ASSERT_TRUE(exporter->Export(OrderSpans(1)).ok());
  EXPECT_EQ(collector.requests().at(0).path, "/v1/traces");
}

TEST(OtlpHttpExporterTest, GzipBodyIsMarkedAndDecodes) {
  FakeCollector collector({});
  OtlpHttpExporterOptions options = FastOptions(collector.Url());
  options.gzip = true;
  auto exporter = MakeExporter(options);
  ASSERT_NE(exporter, nullptr);
  ASSERT_TRUE(exporter->Export(OrderSpans(2)).ok());
  std::vector<ReceivedRequest> requests = collector.requests();
  ASSERT_THAT(requests, SizeIs(1));
  EXPECT_EQ(requests[0].content_encoding, "gzip");
  // httplib's server inflated it; that it parses proves the gzip stream was well formed.
  EXPECT_THAT(DecodedNames(requests[0].body), ElementsAre("shop.submit.0", "shop.submit.1"));
}

std::string Gunzip(const std::string& data) {
  z_stream stream{};
  if (inflateInit2(&stream, 15 + 16) != Z_OK) return "<init failed>";
  std::string out(1 << 16, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  int result = inflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  inflateEnd(&stream);
  return result == Z_STREAM_END ? out : "<inflate failed>";
}

TEST(GzipCompressTest, ProducesAGzipStreamThatInflatesBack) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data += "order A-" + std::to_string(i) + " PRICE_CALCULATED\n";
  std::string compressed = GzipCompress(data);
  ASSERT_GE(compressed.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(compressed[0]), 0x1f);  // gzip magic
  EXPECT_EQ(static_cast<unsigned char>(compressed[1]), 0x8b);
  EXPECT_LT(compressed.size(), data.size() / 4);
  EXPECT_EQ(Gunzip(compressed), data);
  EXPECT_EQ(Gunzip(GzipCompress("")), "");
}

TEST(OtlpHttpExporterTest, Retries503AndHonoursRetryAfter) {
  FakeCollector collector({{503, "1"}});
  auto exporter = MakeExporter(FastOptions(collector.Url()));
  ASSERT_NE(exporter, nullptr);
  ASSERT_TRUE(exporter->Export(OrderSpans(1)).ok());
  std::vector<ReceivedRequest> requests = collector.requests();
  ASSERT_THAT(requests, SizeIs(2));
  // The backoff alone would have waited about 10 ms; Retry-After asked for a second.
  EXPECT_GE(requests[1].at - requests[0].at, std::chrono::seconds(1));
  EXPECT_THAT(DecodedNames(requests[1].body), ElementsAre("shop.submit.0"));
  OtlpHttpExporterStats stats = exporter->stats();
  EXPECT_EQ(stats.retries, 1u);
  EXPECT_EQ(stats.requests, 2u);
  EXPECT_EQ(stats.spans_exported, 1u);
  EXPECT_EQ(stats.spans_failed, 0u);
}

TEST(OtlpHttpExporterTest, Retries429ThenSucceeds) {
  FakeCollector collector({{429, ""}, {429, ""}});
  auto exporter = MakeExporter(FastOptions(collector.Url()));
  ASSERT_NE(exporter, nullptr);
  EXPECT_TRUE(exporter->Export(OrderSpans(1)).ok());
  EXPECT_THAT(collector.requests(), SizeIs(3));
  EXPECT_EQ(exporter->stats().retries, 2u);
}

TEST(OtlpHttpExporterTest, Retries502And504) {
  FakeCollector collector({{502, ""}, {504, ""}});
  auto exporter = MakeExporter(FastOptions(collector.Url()));
  ASSERT_NE(exporter, nullptr);
  EXPECT_TRUE(exporter->Export(OrderSpans(1)).ok());
  EXPECT_THAT(collector.requests(), SizeIs(3));
}

TEST(OtlpHttpExporterTest, BadRequestIsNotRetried) {
  FakeCollector collector({{400, ""}});
  auto exporter = MakeExporter(FastOptions(collector.Url()));
  ASSERT_NE(exporter, nullptr);
  absl::Status status = exporter->Export(OrderSpans(2));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("HTTP 400"));
  EXPECT_THAT(collector.requests(), SizeIs(1));
  OtlpHttpExporterStats stats = exporter->stats();
  EXPECT_EQ(stats.spans_failed, 2u);
  EXPECT_EQ(stats.spans_exported, 0u);
  EXPECT_EQ(stats.retries, 0u);
}

TEST(OtlpHttpExporterTest, GivesUpAfterMaxAttempts) {
  FakeCollector collector({{503, ""}, {503, ""}, {503, ""}, {503, ""}});
  OtlpHttpExporterOptions options = FastOptions(collector.Url());
  options.max_attempts = 3;
  auto exporter = MakeExporter(options);
  ASSERT_NE(exporter, nullptr);
  EXPECT_EQ(exporter->Export(OrderSpans(1)).code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(collector.requests(), SizeIs(3));
  EXPECT_EQ(exporter->stats().spans_failed, 1u);
}

TEST(OtlpHttpExporterTest, RetryAfterBeyondTheTimeoutGivesUpAtOnce) {
  FakeCollector collector({{503, "3600"}});
  OtlpHttpExporterOptions options = FastOptions(collector.Url());
  options.timeout = std::chrono::seconds(5);
  auto exporter = MakeExporter(options);
  ASSERT_NE(exporter, nullptr);
  auto start = SteadyClock::now();
  absl::Status status = exporter->Export(OrderSpans(1));
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(status.message(), HasSubstr("HTTP 503"));
  EXPECT_THAT(collector.requests(), SizeIs(1));
  // It did not sit out the timeout first.
  EXPECT_LT(SteadyClock::now() - start, options.timeout);
}

TEST(OtlpHttpExporterTest, ConnectionFailuresAreRetried) {
  OtlpHttpExporterOptions options =
      FastOptions("http://127.0.0.1:" + std::to_string(test_support::FreePort()) + "/v1/traces");
  options.max_attempts = 3;
  auto exporter = MakeExporter(options);
  ASSERT_NE(exporter, nullptr);
  EXPECT_EQ(exporter->Export(OrderSpans(1)).code(), absl::StatusCode::kUnavailable);
  OtlpHttpExporterStats stats = exporter->stats();
  EXPECT_EQ(stats.requests, 3u);
  EXPECT_EQ(stats.retries, 2u);
  EXPECT_EQ(stats.spans_failed, 1u);
}

TEST(OtlpHttpExporterTest, ShutdownInterruptsARetryWait) {
  FakeCollector collector({{503, "30"}});
  OtlpHttpExporterOptions options = FastOptions(collector.Url());
  options.timeout = std::chrono::seconds(60);
  auto exporter = MakeExporter(options);
  ASSERT_NE(exporter, nullptr);
  std::future<absl::Status> result =
      std::async(std::launch::async, [&] { return exporter->Export(OrderSpans(1)); });
  ASSERT_TRUE(collector.WaitForRequests(1));
  exporter->Shutdown();
  ASSERT_EQ(result.wait_for(kBound), std::future_status::ready);
  EXPECT_EQ(result.get().code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(collector.requests(), SizeIs(1));
  // Later exports fail without a request.
  EXPECT_EQ(exporter->Export(OrderSpans(1)).code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(collector.requests(), SizeIs(1));
}

TEST(OtlpHttpExporterTest, CreateRejectsBadEndpointsAndPolicies) {
  for (const char* endpoint :
       {"ftp://127.0.0.1/v1/traces", "127.0.0.1:4318", "http://", "http://:4318/v1/traces", ""}) {
    OtlpHttpExporterOptions options;
    options.endpoint = endpoint;
    EXPECT_EQ(OtlpHttpExporter::Create(options).status().code(), absl::StatusCode::kInvalidArgument)
        << endpoint;
  }
  OtlpHttpExporterOptions no_attempts;
  no_attempts.max_attempts = 0;
  EXPECT_FALSE(OtlpHttpExporter::Create(no_attempts).ok());
  OtlpHttpExporterOptions half_key;
  half_key.client_cert_file = "/nonexistent/cert.pem";
  EXPECT_FALSE(OtlpHttpExporter::Create(half_key).ok());
}

TEST(HttpStatusTest, MapsToCanonicalCodesAndRetriesOnlyTransientOnes) {
  EXPECT_TRUE(HttpStatusToStatus(200, "").ok());
  EXPECT_TRUE(HttpStatusToStatus(202, "").ok());
  EXPECT_EQ(HttpStatusToStatus(400, "").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HttpStatusToStatus(401, "").code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(HttpStatusToStatus(403, "").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(HttpStatusToStatus(429, "").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(HttpStatusToStatus(503, "").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(HttpStatusToStatus(500, "").code(), absl::StatusCode::kInternal);
  EXPECT_THAT(HttpStatusToStatus(400, "bad\x01span").message(), HasSubstr("bad.span"));
  for (int code : {429, 502, 503, 504}) EXPECT_TRUE(IsRetryableHttpStatus(code)) << code;
  for (int code : {200, 400, 401, 404, 413, 500, 501}) {
    EXPECT_FALSE(IsRetryableHttpStatus(code)) << code;
  }
}

// A self-signed certificate for 127.0.0.1 (subjectAltName IP), written as PEM into `dir`.
bool WriteSelfSignedCertificate(const std::filesystem::path& dir, std::string& cert_path,
                                std::string& key_path) {
  EVP_PKEY* key = EVP_EC_gen("prime256v1");
  X509* cert = X509_new();
  if (key == nullptr || cert == nullptr) return false;
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  bool ok = true;
  for (auto [nid, value] : {std::pair{NID_subject_alt_name, "IP:127.0.0.1"},
                            std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    ok = ok && ext != nullptr && X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
  }
  ok = ok && X509_sign(cert, key, EVP_sha256()) > 0;
  cert_path = (dir / "cert.pem").string();
  key_path = (dir / "key.pem").string();
  FILE* cert_file = std::fopen(cert_path.c_str(), "w");
  FILE* key_file = std::fopen(key_path.c_str(), "w");
  ok = ok && cert_file != nullptr && key_file != nullptr && PEM_write_X509(cert_file, cert) == 1 &&
       PEM_write_PrivateKey(key_file, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  if (cert_file != nullptr) std::fclose(cert_file);
  if (key_file != nullptr) std::fclose(key_file);
  X509_free(cert);
  EVP_PKEY_free(key);
  return ok;
}

class OtlpHttpsExporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "sdk-tls-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    ASSERT_TRUE(WriteSelfSignedCertificate(dir_, cert_path_, key_path_));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<httplib::Server> TlsServer() {
    auto server = std::make_unique<httplib::SSLServer>(cert_path_.c_str(), key_path_.c_str());
    EXPECT_TRUE(server->is_valid());
    return server;
  }

  std::filesystem::path dir_;
  std::string cert_path_;
  std::string key_path_;
};

TEST_F(OtlpHttpsExporterTest, ExportsOverTlsWhenTheServerCertificateIsTrusted) {
  FakeCollector collector({{503, ""}}, TlsServer());
  OtlpHttpExporterOptions options = FastOptions(collector.Url("https"));
  options.ca_cert_file = cert_path_;
  options.gzip = true;
  auto exporter = MakeExporter(options);
  ASSERT_NE(exporter, nullptr);
  absl::Status status = exporter->Export(OrderSpans(2));
  ASSERT_TRUE(status.ok()) << status;
  std::vector<ReceivedRequest> requests = collector.requests();
  ASSERT_THAT(requests, SizeIs(2));  // the retry went over TLS too
  EXPECT_THAT(DecodedNames(requests[1].body), ElementsAre("shop.submit.0", "shop.submit.1"));
}

TEST_F(OtlpHttpsExporterTest, RefusesAnUntrustedCertificateWithoutRetrying) {
  FakeCollector collector({}, TlsServer());
  OtlpHttpExporterOptions options = FastOptions(collector.Url("https"));
  // No CA file: the system trust store, which does not know the test's certificate.
  auto exporter = MakeExporter(options);
  ASSERT_NE(exporter, nullptr);
  absl::Status status = exporter->Export(OrderSpans(1));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("SSLServerVerification"));
  EXPECT_EQ(exporter->stats().requests, 1u);
  EXPECT_THAT(collector.requests(), SizeIs(0));
}

}  // namespace
}  // namespace ordertrace::sdk
