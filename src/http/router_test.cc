#include "http/router.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ordertrace::http {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

Request MakeRequest(std::string method, std::string target) {
  Request request;
  request.method = std::move(method);
  request.target = std::move(target);
  ParseTarget(request.target, request.path, request.query);
  return request;
}

// A router whose handlers answer with their name and the path parameters they saw.
Router TestRouter() {
  Router router;
  auto named = [](std::string name) {
    return [name](Request& request, Response& response) {
      std::string body = name;
      for (const std::string& param : request.path_params) body += "|" + param;
      response.SetContent(body, "text/plain");
    };
  };
  router.Get("/healthz", named("healthz"));
  router.Get("/api/traces/{}", named("trace"));
  router.Get("/api/v1/orders/{*}", named("order"));
  router.Get("/a/{}/b/{}", named("two"));
  router.Post("/v1/traces", named("export"));
  router.Put("/v1/traces", named("replace"));
  return router;
}

Response Route(const Router& router, std::string method, std::string target) {
  Request request = MakeRequest(std::move(method), std::move(target));
  Response response;
  router.Handle(request, response);
  return response;
}

TEST(RouterTest, LiteralPathRunsItsHandler) {
  Router router = TestRouter();
  Response response = Route(router, "GET", "/healthz");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "healthz");
}

TEST(RouterTest, PlaceholderTakesOneDecodedSegment) {
  Router router = TestRouter();
  EXPECT_EQ(Route(router, "GET", "/api/traces/abc").body, "trace|abc");
  EXPECT_EQ(Route(router, "GET", "/api/traces/a%20b").body, "trace|a b");
  EXPECT_EQ(Route(router, "GET", "/a/1/b/2").body, "two|1|2");
  // "{}" never matches an empty segment, nor one with a slash in it.
  EXPECT_EQ(Route(router, "GET", "/api/traces/").status, 404);
  EXPECT_EQ(Route(router, "GET", "/api/traces/a/b").status, 404);
  EXPECT_EQ(Route(router, "GET", "/a/1/b").status, 404);
}

TEST(RouterTest, RestPlaceholderTakesSlashes) {
  Router router = TestRouter();
  EXPECT_EQ(Route(router, "GET", "/api/v1/orders/x/y/z").body, "order|x/y/z");
  // An encoded slash is decoded before matching, and kept in the parameter.
  EXPECT_EQ(Route(router, "GET", "/api/v1/orders/a%2Fb").body, "order|a/b");
  EXPECT_EQ(Route(router, "GET", "/api/v1/orders/").status, 404);
}

TEST(RouterTest, UnknownPathIsJson404) {
  Router router = TestRouter();
  Response response = Route(router, "GET", "/nope");
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.content_type, "application/json");
  nlohmann::json body = nlohmann::json::parse(response.body);
  EXPECT_THAT(body["error"].get<std::string>(), HasSubstr("/nope"));
  // Paths need a leading slash and match whole segments.
  EXPECT_EQ(Route(router, "GET", "/healthz/").status, 404);
  EXPECT_EQ(Route(router, "GET", "/healthzz").status, 404);
  EXPECT_EQ(Route(router, "GET", "healthz").status, 404);
}

TEST(RouterTest, NonUtf8PathIsAnsweredAsValidJson) {
  Router router = TestRouter();
  Response response = Route(router, "GET", "/%FF%FE%C3");
  EXPECT_EQ(response.status, 404);
  nlohmann::json body;
  ASSERT_NO_THROW(body = nlohmann::json::parse(response.body));
  EXPECT_TRUE(body["error"].is_string());
  // The same for a known pattern, on a 405.
  Response not_allowed = Route(router, "DELETE", "/api/traces/%FF");
  EXPECT_EQ(not_allowed.status, 405);
  ASSERT_NO_THROW(nlohmann::json::parse(not_allowed.body));
}

TEST(RouterTest, KnownPathWithOtherMethodIs405WithAllow) {
  Router router = TestRouter();
  Response response = Route(router, "GET", "/v1/traces");
  EXPECT_EQ(response.status, 405);
  EXPECT_THAT(response.headers, ElementsAre(Pair("Allow", "POST, PUT")));
  EXPECT_THAT(nlohmann::json::parse(response.body)["error"].get<std::string>(), HasSubstr("GET"));

  Response post_to_get = Route(router, "POST", "/healthz");
  EXPECT_EQ(post_to_get.status, 405);
  EXPECT_THAT(post_to_get.headers, ElementsAre(Pair("Allow", "GET")));
}

TEST(RouterTest, HeadRunsTheGetRoute) {
  Router router = TestRouter();
  Response response = Route(router, "HEAD", "/api/traces/abc");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "trace|abc");  // the server leaves it out on the wire
  EXPECT_EQ(Route(router, "HEAD", "/v1/traces").status, 405);
}

TEST(RouterTest, FirstMatchingRouteWins) {
  Router router;
  router.Get("/x/{}", [](Request&, Response& response) { response.body = "first"; });
  router.Get("/x/literal", [](Request&, Response& response) { response.body = "second"; });
  EXPECT_EQ(Route(router, "GET", "/x/literal").body, "first");
}

TEST(RouterTest, CustomErrorWriterFormatsRefusals) {
  Router router = TestRouter();
  std::vector<int> seen;
  router.SetErrorWriter(
      [&seen](const Request&, Response& response, int status, const std::string& message) {
        seen.push_back(status);
        response.status = status;
        response.SetContent("custom: " + message, "text/plain");
      });
  Response missing = Route(router, "GET", "/missing");
  EXPECT_EQ(missing.status, 404);
  EXPECT_THAT(missing.body, HasSubstr("custom: "));
  Response not_allowed = Route(router, "GET", "/v1/traces");
  EXPECT_EQ(not_allowed.status, 405);
  EXPECT_THAT(not_allowed.headers, ElementsAre(Pair("Allow", "POST, PUT")));
  EXPECT_THAT(seen, ElementsAre(404, 405));
}

TEST(RouterTest, PathParamsAreResetPerRequest) {
  Router router = TestRouter();
  Request request = MakeRequest("GET", "/healthz");
  request.path_params = {"stale"};
  Response response;
  router.Handle(request, response);
  EXPECT_THAT(request.path_params, IsEmpty());
  EXPECT_EQ(request.PathParam(0), "");
}

}  // namespace
}  // namespace ordertrace::http
