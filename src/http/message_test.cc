#include "http/message.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace ordertrace::http {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

using Query = std::vector<std::pair<std::string, std::string>>;

TEST(PercentDecodeTest, DecodesHexPairs) {
  EXPECT_EQ(PercentDecode("a%20b%2Fc", false), "a b/c");
  EXPECT_EQ(PercentDecode("%41%62%7e", false), "Ab~");
  EXPECT_EQ(PercentDecode("%FF%00", false), std::string("\xff\0", 2));
}

TEST(PercentDecodeTest, PlusIsASpaceOnlyInQueries) {
  EXPECT_EQ(PercentDecode("a+b", true), "a b");
  EXPECT_EQ(PercentDecode("a+b", false), "a+b");
  EXPECT_EQ(PercentDecode("a%2Bb", true), "a+b");
}

TEST(PercentDecodeTest, KeepsAPercentWithoutTwoHexDigits) {
  EXPECT_EQ(PercentDecode("100%", false), "100%");
  EXPECT_EQ(PercentDecode("%4", false), "%4");
  EXPECT_EQ(PercentDecode("%zz%4g", false), "%zz%4g");
  EXPECT_EQ(PercentDecode("a%41", false), "aA");  // a pair at the very end still decodes
}

TEST(ParseTargetTest, SplitsPathAndDecodedQuery) {
  std::string path;
  Query query;
  ParseTarget("/api/search?service=shop%2Dapi&q=a+b%26c&limit=20", path, query);
  EXPECT_EQ(path, "/api/search");
  EXPECT_THAT(query,
              ElementsAre(Pair("service", "shop-api"), Pair("q", "a b&c"), Pair("limit", "20")));
}

TEST(ParseTargetTest, PathIsDecodedWithoutPlus) {
  std::string path;
  Query query;
  ParseTarget("/api/v1/orders/a+b%20c%FF", path, query);
  EXPECT_EQ(path, "/api/v1/orders/a+b c\xff");
  EXPECT_THAT(query, IsEmpty());
}

TEST(ParseTargetTest, EdgeCasesOfTheQuery) {
  std::string path;
  Query query = {{"stale", "x"}};
  ParseTarget("/p?&flag&empty=&=v&a=1=2#frag&b=2", path, query);
  EXPECT_EQ(path, "/p");
  EXPECT_THAT(query,
              ElementsAre(Pair("flag", ""), Pair("empty", ""), Pair("", "v"), Pair("a", "1=2")));
  ParseTarget("/q?", path, query);
  EXPECT_EQ(path, "/q");
  EXPECT_THAT(query, IsEmpty());
}

TEST(RequestTest, HeadersAreCaseInsensitiveAndFirstWins) {
  Request request;
  request.headers = {{"Content-Type", "application/json"}, {"X-Dup", "1"}, {"x-dup", "2"}};
  EXPECT_EQ(request.Header("content-type"), "application/json");
  EXPECT_EQ(request.Header("X-DUP"), "1");
  EXPECT_TRUE(request.HasHeader("CONTENT-TYPE"));
  EXPECT_FALSE(request.HasHeader("Content-Length"));
  EXPECT_EQ(request.Header("Content-Length"), "");
  EXPECT_FALSE(request.HasHeader("Content-Typ"));
}

TEST(RequestTest, ParamsAreCaseSensitive) {
  Request request;
  ParseTarget("/x?limit=5&Limit=6&flag", request.path, request.query);
  EXPECT_EQ(request.Param("limit"), "5");
  EXPECT_EQ(request.Param("Limit"), "6");
  EXPECT_TRUE(request.HasParam("flag"));
  EXPECT_EQ(request.Param("flag"), "");
  EXPECT_FALSE(request.HasParam("LIMIT"));
}

TEST(RequestTest, PathParamPastTheLastIsEmpty) {
  Request request;
  request.path_params = {"a", "b"};
  EXPECT_EQ(request.PathParam(0), "a");
  EXPECT_EQ(request.PathParam(1), "b");
  EXPECT_EQ(request.PathParam(2), "");
}

TEST(ResponseTest, SetContentAndHeaders) {
  Response response;
  EXPECT_EQ(response.status, 200);
  response.SetContent("{}", "application/json");
  response.SetHeader("Retry-After", "1");
  EXPECT_EQ(response.body, "{}");
  EXPECT_EQ(response.content_type, "application/json");
  EXPECT_THAT(response.headers, ElementsAre(Pair("Retry-After", "1")));
}

TEST(ReasonPhraseTest, KnownAndUnknownCodes) {
  EXPECT_EQ(ReasonPhrase(429), "Too Many Requests");
  EXPECT_EQ(ReasonPhrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(ReasonPhrase(503), "Service Unavailable");
  EXPECT_EQ(ReasonPhrase(299), "");
}

}  // namespace
}  // namespace ordertrace::http
