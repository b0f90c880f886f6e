// The console on the API port: its files, GET /api/v1/whoami and GET /api/v1/charts, over
// loopback on a real store, with and without tokens.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "auth/token_authenticator.h"
#include "base/clock.h"
#include "metrics/history.h"
#include "metrics/registry.h"
#include "server/api_server.h"
#include "server/console_files.h"
#include "store/rocks_store.h"
#include "tests/support/temp_dir.h"

namespace ordertrace::server {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

auth::TokenEntry Entry(std::string name, auth::Role role, const std::string& token,
                       std::string partner = "") {
  auth::TokenEntry entry;
  entry.name = std::move(name);
  entry.role = role;
  entry.partner_id = std::move(partner);
  entry.sha256 = *auth::ParseSha256Hex(auth::Sha256Hex(token));
  return entry;
}

base::TraceId TraceIdOf(uint8_t last) {
  base::TraceId id;
  id.bytes[15] = last;
  return id;
}

// An API with a console read from a folder, a registry with one charted histogram, and
// optionally tokens.
class ConsoleApiTest : public testing::Test {
 protected:
  void Start(bool with_tokens) {
    ASSERT_FALSE(dir_.path().empty());
    WriteFile("web/index.html", "<!doctype html><title>ordertrace</title>");
    WriteFile("web/assets/app.js", "export const x = 1;\n");
    WriteFile("web/assets/.secret", "no");
    WriteFile("web/README.md", "not an asset");
    store::RocksStoreOptions options;
    options.path = dir_.path() + "/store";
    absl::StatusOr<std::unique_ptr<store::Store>> store = store::OpenRocksStore(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    orders_ = std::make_unique<query::OrderQuery>(*store_, clock_);
    traces_ = std::make_unique<query::TraceQuery>(*store_, clock_);

    metrics::Histogram& stages = registry_.AddHistogram(
        {"stage_duration_seconds", "stage", {"from_status", "to_status"}}, {1, 10, 100});
    metrics::Exemplar slow{TraceIdOf(7), {}, 50};
    for (double v : {0.5, 2.0, 3.0, 50.0}) {
      stages.Observe({"SUBMITTED", "APPROVED"}, v, v == 50.0 ? &slow : nullptr);
    }
    registry_.AddGauge({"stage_sla_seconds", "sla", {"stage"}}).Set({"SUBMITTED"}, 30);
    metrics::Counter& errors =
        registry_.AddCounter({"order_errors_total", "errors", {"service", "error_code"}});
    history_ =
        std::make_unique<metrics::MetricHistory>(registry_, metrics::ConsoleHistoryOptions());
    history_->Sample();
    errors.Add({"mes-api", "TIMEOUT"}, 3);
    history_->Sample();

    if (with_tokens) {
      tokens_ = std::make_unique<auth::TokenAuthenticator>(
          auth::AuthOptions{{Entry("ops-1", auth::Role::kOps, "ops-secret"),
                             Entry("desk", auth::Role::kSupport, "support-secret"),
                             Entry("acme", auth::Role::kPartnerReadonly, "acme-secret", "P-7")}});
    }
    absl::StatusOr<std::shared_ptr<const ConsoleFiles>> files =
        ConsoleFiles::FromDirectory(dir_.path() + "/web");
    ASSERT_TRUE(files.ok()) << files.status();
    ApiAccess access;
    access.tokens = tokens_.get();
    http::ServerOptions http_options;
    http_options.worker_threads = 2;
    api_ = std::make_unique<ApiServer>(
        *orders_, *traces_, [] { return true; }, std::move(http_options), nullptr, nullptr,
        &registry_, std::move(access), ApiConsole{*files, history_.get(), 90'000'000'000});
    absl::StatusOr<base::ListenAddress> address = base::ParseListenAddress("127.0.0.1:0");
    ASSERT_TRUE(address.ok());
    absl::StatusOr<int> port = api_->Start(*address);
    ASSERT_TRUE(port.ok()) << port.status();
    client_ = std::make_unique<httplib::Client>("127.0.0.1", *port);
  }

  void TearDown() override {
    if (api_) api_->Shutdown();
  }

  void WriteFile(const std::string& relative, const std::string& content) {
    std::string path = dir_.path() + "/" + relative;
    std::string folder = path.substr(0, path.rfind('/'));
    ASSERT_EQ(system(("mkdir -p '" + folder + "'").c_str()), 0);
    std::ofstream(path) << content;
  }

  httplib::Result Get(const std::string& path, const std::string& token = "") {
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    return client_->Get(path, headers);
  }

  test_support::TempDir dir_{"console_api_test"};
  base::SystemClock clock_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<query::OrderQuery> orders_;
  std::unique_ptr<query::TraceQuery> traces_;
  metrics::Registry registry_;
  std::unique_ptr<metrics::MetricHistory> history_;
  std::unique_ptr<auth::TokenAuthenticator> tokens_;
  std::unique_ptr<ApiServer> api_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(ConsoleApiTest, EveryConsoleRouteAnswersTheOnePageWithItsPolicy) {
  Start(/*with_tokens=*/false);
  for (const char* route :
       {"/", "/orders/A-1", "/orders/with%2Fslash", "/traces/abc", "/gaps", "/charts", "/login"}) {
    httplib::Result res = Get(route);
    ASSERT_TRUE(res) << route;
    EXPECT_EQ(res->status, 200) << route;
    EXPECT_THAT(res->body, HasSubstr("<title>ordertrace</title>")) << route;
    EXPECT_THAT(res->get_header_value("Content-Type"), HasSubstr("text/html")) << route;
    EXPECT_THAT(res->get_header_value("Content-Security-Policy"), HasSubstr("script-src 'self'"));
    EXPECT_EQ(res->get_header_value("X-Content-Type-Options"), "nosniff");
  }
  httplib::Result js = Get("/assets/app.js");
  ASSERT_TRUE(js);
  EXPECT_EQ(js->status, 200);
  EXPECT_THAT(js->get_header_value("Content-Type"), HasSubstr("text/javascript"));
  EXPECT_EQ(js->body, "export const x = 1;\n");
}

TEST_F(ConsoleApiTest, NoFileOutsideTheAssetsAndNoHiddenOne) {
  Start(/*with_tokens=*/false);
  for (const char* path : {"/assets/../README.md", "/assets/%2e%2e/README.md", "/assets/.secret",
                           "/assets/", "/assets/missing.js", "/assets//app.js",
                           "/assets/app.js%00.png", "/README.md", "/index.html/x"}) {
    httplib::Result res = Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 404) << path;
    EXPECT_THAT(res->body, testing::Not(HasSubstr("not an asset"))) << path;
  }
}

TEST_F(ConsoleApiTest, TheFilesNeedNoTokenButTheFiguresDo) {
  Start(/*with_tokens=*/true);
  EXPECT_EQ(Get("/")->status, 200);
  EXPECT_EQ(Get("/assets/app.js")->status, 200);
  EXPECT_EQ(Get("/api/v1/whoami")->status, 401);
  EXPECT_EQ(Get("/api/v1/whoami", "wrong")->status, 401);
  EXPECT_EQ(Get("/api/v1/charts")->status, 401);
}

TEST_F(ConsoleApiTest, WhoamiSaysWhoTheTokenIsAndWhatItMayOpen) {
  Start(/*with_tokens=*/true);
  httplib::Result partner = Get("/api/v1/whoami", "acme-secret");
  ASSERT_TRUE(partner);
  ASSERT_EQ(partner->status, 200);
  json who = json::parse(partner->body);
  EXPECT_EQ(who["auth"], true);
  EXPECT_EQ(who["token_name"], "acme");
  EXPECT_EQ(who["role"], "partner_readonly");
  EXPECT_EQ(who["partner_id"], "P-7");
  EXPECT_EQ(who["may"],
            json({{"orders", true}, {"sla", true}, {"charts", false}, {"metrics", false}}));
  json support = json::parse(Get("/api/v1/whoami", "support-secret")->body);
  EXPECT_EQ(support["role"], "support");
  EXPECT_EQ(support["may"]["charts"], true);
  EXPECT_EQ(support["may"]["metrics"], false);
}

TEST_F(ConsoleApiTest, WithoutTokensEveryoneReadsAsOps) {
  Start(/*with_tokens=*/false);
  json who = json::parse(Get("/api/v1/whoami")->body);
  EXPECT_EQ(who["auth"], false);
  EXPECT_EQ(who["role"], "ops");
  EXPECT_TRUE(who["token_name"].is_null());
}

TEST_F(ConsoleApiTest, ChartsCarryQuantilesExemplarsSlasAndTheFiguresOverTime) {
  Start(/*with_tokens=*/true);
  EXPECT_EQ(Get("/api/v1/charts", "acme-secret")->status, 403);  // every partner's figures
  httplib::Result res = Get("/api/v1/charts", "support-secret");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  json charts = json::parse(res->body);
  ASSERT_EQ(charts["histograms"].size(), 1u);  // the only charted family this registry has
  const json& stages = charts["histograms"][0];
  EXPECT_EQ(stages["name"], "stage_duration_seconds");
  EXPECT_EQ(stages["label_names"], json({"from_status", "to_status"}));
  ASSERT_EQ(stages["series"].size(), 1u);
  const json& series = stages["series"][0];
  EXPECT_EQ(series["labels"], json({{"from_status", "SUBMITTED"}, {"to_status", "APPROVED"}}));
  EXPECT_EQ(series["count"], 4);
  EXPECT_DOUBLE_EQ(series["sum"].get<double>(), 55.5);
  // Ranks: p50 is the 2nd of 4, in the (1, 10] bucket holding the 2nd and 3rd.
  EXPECT_DOUBLE_EQ(series["p50"].get<double>(), 5.5);
  EXPECT_EQ(series["buckets"].back(), json({{"le", "+Inf"}, {"count", 4}}));
  ASSERT_EQ(series["exemplars"].size(), 1u);
  EXPECT_EQ(series["exemplars"][0]["trace_id"], TraceIdOf(7).ToHex());
  EXPECT_DOUBLE_EQ(series["exemplars"][0]["value"].get<double>(), 50.0);
  EXPECT_EQ(charts["sla_seconds"]["stages"], json({{"SUBMITTED", 30.0}}));
  EXPECT_EQ(charts["sla_seconds"]["message"], 90.0);
  const json& points = charts["over_time"]["points"];
  ASSERT_EQ(points.size(), 2u);
  EXPECT_EQ(points[0]["order_errors"], 0.0);
  EXPECT_EQ(points[1]["order_errors"], 3.0);
}

TEST(ConsoleFilesTest, PlainPathsOnly) {
  EXPECT_TRUE(IsPlainAssetPath("index.html"));
  EXPECT_TRUE(IsPlainAssetPath("assets/pages/order.js"));
  for (const char* bad : {"", "/etc/passwd", "assets/../x", "..", ".hidden", "assets/.x",
                          "assets//x", "assets/", "a\\b", "a b", "a%2e"}) {
    EXPECT_FALSE(IsPlainAssetPath(bad)) << bad;
  }
  EXPECT_FALSE(IsPlainAssetPath(std::string("a\0b", 3)));
  EXPECT_FALSE(IsPlainAssetPath(std::string(300, 'a')));
}

TEST(ConsoleFilesTest, ContentTypesByExtension) {
  EXPECT_EQ(ContentTypeForPath("a/b.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(ContentTypeForPath("style.css"), "text/css; charset=utf-8");
  EXPECT_EQ(ContentTypeForPath("index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(ContentTypeForPath("x.bin"), "application/octet-stream");
}

TEST(ConsoleFilesTest, AFolderWithoutIndexIsRefused) {
  absl::StatusOr<std::shared_ptr<const ConsoleFiles>> files =
      ConsoleFiles::FromDirectory("/nonexistent-console");
  ASSERT_FALSE(files.ok());
  EXPECT_THAT(std::string(files.status().message()), HasSubstr("index.html"));
}

TEST(ConsoleFilesTest, TheBuildCarriesTheRepositorysConsole) {
  std::shared_ptr<const ConsoleFiles> files = ConsoleFiles::Embedded();
  std::optional<ConsoleFile> index = files->Read("index.html");
  ASSERT_TRUE(index.has_value()) << "web/index.html was not built in";
  EXPECT_THAT(index->content, HasSubstr("/assets/"));
  EXPECT_FALSE(files->Read("README.md").has_value());
}

}  // namespace
}  // namespace ordertrace::server
