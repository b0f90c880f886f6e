// The services' exporter over TLS (docs/security.md): the SDK's OtlpHttpExporter, configured as
// ServiceRuntime configures it from --otlp-ca-file and --otlp-header, exports to an embedded
// ordertrace serving TLS with a CA made at test time (tests/support/make_test_ca.sh); the spans
// are read back through the API over https. With tls.client_ca_file, an exporter without a
// client certificate is refused and one with it is accepted.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <stdlib.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "sdk/otlp_http_exporter.h"
#include "sdk/span_data.h"
#include "server/ordertrace_server.h"
#include "tests/support/embedded_server.h"

namespace ordertrace {
namespace {

using ::testing::HasSubstr;

class SdkExporterTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // As the services' main() does: a refused TLS client writes to a closed socket through
    // OpenSSL's write(), which raises SIGPIPE.
    std::signal(SIGPIPE, SIG_IGN);
    std::string pattern = ::testing::TempDir() + "ordertrace_sdk_tls_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = new std::string(pattern);
    const std::string command = std::string("bash ") + ORDERTRACE_SOURCE_DIR +
                                "/tests/support/make_test_ca.sh '" + *dir_ + "/ca' >/dev/null";
    ASSERT_EQ(std::system(command.c_str()), 0);
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }
  static std::string Ca(const std::string& name) { return *dir_ + "/ca/" + name; }

  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  // Starts ordertrace with TLS on every listener (client certificates for OTLP when asked).
  void StartServer(bool client_certificates) {
    const std::string data =
        *dir_ + "/data-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    server::ServerConfig config = test_support::LoopbackConfig(data);
    config.sampling.enabled = false;  // every span stored at once, for the read-back
    config.tls = {Ca("server.pem"), Ca("server.key"), client_certificates ? Ca("ca.pem") : ""};
    server_ = std::make_unique<server::OrdertraceServer>(config);
    absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started;
  }

  sdk::OtlpHttpExporterOptions ExporterOptions() const {
    sdk::OtlpHttpExporterOptions options;
    options.endpoint =
        "https://127.0.0.1:" + std::to_string(server_->ports().otlp_http) + "/v1/traces";
    options.ca_cert_file = Ca("ca.pem");
    options.headers = {{"authorization", "Bearer test-token"}};
    options.timeout = std::chrono::seconds(5);
    options.max_attempts = 1;
    return options;
  }

  // One span of a trace whose id ends in `tag`.
  static std::vector<sdk::SpanData> Spans(uint8_t tag) {
    sdk::SpanData data;
    data.span.trace_id.bytes[0] = 0x7a;
    data.span.trace_id.bytes[15] = tag;
    data.span.span_id.bytes[7] = 1;
    data.span.name = "shop.submit";
    data.span.kind = base::SpanKind::kServer;
    data.span.start_time_unix_nano = test_support::NowUnixNano() - 1'000'000;
    data.span.end_time_unix_nano = data.span.start_time_unix_nano + 500'000;
    data.resource = std::make_shared<const base::Resource>(
        base::Resource{{{"service.name", base::AnyValue::String("shop-api")}}, 0});
    data.scope = std::make_shared<const base::InstrumentationScope>(
        base::InstrumentationScope{"shop", "1.0", {}, 0});
    return {std::move(data)};
  }

  // GET /api/traces/<id> over https (verifying against the test CA) until it answers 200.
  bool TraceReadBack(uint8_t tag) {
    httplib::SSLClient client("127.0.0.1", server_->ports().http);
    client.set_ca_cert_path(Ca("ca.pem").c_str());
    client.enable_server_certificate_verification(true);
    client.set_connection_timeout(5, 0);
    char id[33];
    std::snprintf(id, sizeof id, "7a%028x%02x", 0, tag);
    for (int i = 0; i < 100; ++i) {
      httplib::Result result = client.Get(std::string("/api/traces/") + id);
      if (result && result->status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  static std::string* dir_;
  std::unique_ptr<server::OrdertraceServer> server_;
};

std::string* SdkExporterTlsTest::dir_ = nullptr;

TEST_F(SdkExporterTlsTest, ServicesExportOverTlsWithTheirCaFileAndHeaders) {
  StartServer(/*client_certificates=*/false);
  auto exporter = sdk::OtlpHttpExporter::Create(ExporterOptions());
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  absl::Status exported = (*exporter)->Export(Spans(1));
  ASSERT_TRUE(exported.ok()) << exported;
  EXPECT_TRUE(TraceReadBack(1)) << "the exported span was not stored";

  // The system's CAs do not know the test CA: refused, not sent in clear.
  sdk::OtlpHttpExporterOptions untrusting = ExporterOptions();
  untrusting.ca_cert_file.clear();
  auto refused = sdk::OtlpHttpExporter::Create(untrusting);
  ASSERT_TRUE(refused.ok());
  absl::Status status = (*refused)->Export(Spans(2));
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("SSLServerVerification"));

  // Plain http:// to the TLS port gets no answer.
  sdk::OtlpHttpExporterOptions plain = ExporterOptions();
  plain.endpoint = "http://127.0.0.1:" + std::to_string(server_->ports().otlp_http) + "/v1/traces";
  auto plain_exporter = sdk::OtlpHttpExporter::Create(plain);
  ASSERT_TRUE(plain_exporter.ok());
  EXPECT_FALSE((*plain_exporter)->Export(Spans(3)).ok());
}

TEST_F(SdkExporterTlsTest, AClientCertificateIsNeededWhenOrdertraceAsksForOne) {
  StartServer(/*client_certificates=*/true);
  auto without = sdk::OtlpHttpExporter::Create(ExporterOptions());
  ASSERT_TRUE(without.ok());
  EXPECT_FALSE((*without)->Export(Spans(4)).ok());

  sdk::OtlpHttpExporterOptions options = ExporterOptions();
  options.client_cert_file = Ca("client.pem");
  options.client_key_file = Ca("client.key");
  auto with = sdk::OtlpHttpExporter::Create(options);
  ASSERT_TRUE(with.ok()) << with.status();
  absl::Status exported = (*with)->Export(Spans(5));
  ASSERT_TRUE(exported.ok()) << exported;
  EXPECT_TRUE(TraceReadBack(5));
}

}  // namespace
}  // namespace ordertrace
