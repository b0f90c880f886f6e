#include "query/traceql.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace ordertrace::query::traceql {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kMs = 1'000'000;

base::KeyValue Str(std::string key, std::string value) {
  return base::KeyValue{std::move(key), base::AnyValue::String(std::move(value))};
}

// A span of shop-api's: 150 ms, a server span, status error.
struct Sample {
  base::Span span;
  base::Resource resource;
  Sample() {
    span.name = "shop.submit";
    span.kind = base::SpanKind::kServer;
    span.status.code = base::StatusCode::kError;
    span.status.message = "price service down";
    span.start_time_unix_nano = 1'000 * kMs;
    span.end_time_unix_nano = 1'150 * kMs;
    span.attributes = {Str("order_id", "A-1"),
                       Str("http.method", "POST"),
                       {"http.status_code", base::AnyValue::Int(503)},
                       {"price", base::AnyValue::Double(12.5)},
                       {"retried", base::AnyValue::Bool(true)},
                       Str("note", "say \"hi\"\n"),
                       Str("tier", "gold")};
    resource.attributes = {
        Str("service.name", "shop-api"), Str("tier", "silver"), {"shard", base::AnyValue::Int(3)}};
  }
};

// Whether `query` parses and matches the sample span.
bool Matches(const std::string& query) {
  absl::StatusOr<Filter> filter = Filter::Parse(query);
  EXPECT_TRUE(filter.ok()) << query << ": " << filter.status();
  if (!filter.ok()) return false;
  Sample s;
  return filter->Matches(s.span, s.resource);
}

// The parse error's message (empty when the query parsed).
std::string ErrorOf(std::string_view query, const Limits& limits = {}) {
  absl::StatusOr<Filter> filter = Filter::Parse(query, limits);
  if (filter.ok()) return "";
  EXPECT_EQ(filter.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(filter.status().message());
}

TEST(TraceQlParse, EmptyAndTrueMatchEverything) {
  for (const char* q : {"{}", "{ }", " { true } ", "{true}"}) {
    absl::StatusOr<Filter> f = Filter::Parse(q);
    ASSERT_TRUE(f.ok()) << q << f.status();
    EXPECT_TRUE(f->MatchesEverything()) << q;
    EXPECT_TRUE(Matches(q)) << q;
  }
  EXPECT_FALSE(Matches("{ false }"));
  EXPECT_FALSE(Filter::Parse("{ .a = \"b\" }")->MatchesEverything());
}

TEST(TraceQlEval, StringOperators) {
  EXPECT_TRUE(Matches(R"({ span.http.method = "POST" })"));
  EXPECT_FALSE(Matches(R"({ span.http.method = "GET" })"));
  EXPECT_TRUE(Matches(R"({ span.http.method != "GET" })"));
  EXPECT_FALSE(Matches(R"({ span.http.method != "POST" })"));
  EXPECT_TRUE(Matches(R"({ span.http.method =~ "PO.*" })"));
  EXPECT_FALSE(Matches(R"({ span.http.method =~ "O" })")) << "regexes are fully anchored";
  EXPECT_TRUE(Matches(R"({ span.http.method !~ "GET|PUT" })"));
  EXPECT_FALSE(Matches(R"({ span.http.method !~ "POST|PUT" })"));
  EXPECT_TRUE(Matches(R"({ span.http.method > "GET" })"));
  EXPECT_TRUE(Matches(R"({ span.http.method >= "POST" })"));
  EXPECT_TRUE(Matches(R"({ span.http.method < "PUT" })"));
  EXPECT_TRUE(Matches(R"({ span.http.method <= "POST" })"));
  EXPECT_FALSE(Matches(R"({ span.http.method < "POST" })"));
  // A missing attribute satisfies no comparison, not even !=.
  EXPECT_FALSE(Matches(R"({ span.nope != "x" })"));
  EXPECT_TRUE(Matches(R"({ span.nope = nil })"));
  EXPECT_TRUE(Matches(R"({ .order_id != nil })"));
}

TEST(TraceQlEval, NumbersCompareNumericallyAndNeverWithStrings) {
  EXPECT_TRUE(Matches("{ span.http.status_code = 503 }"));
  EXPECT_TRUE(Matches("{ span.http.status_code >= 500 }"));
  EXPECT_TRUE(Matches("{ span.http.status_code > 500 && span.http.status_code < 504 }"));
  EXPECT_FALSE(Matches("{ span.http.status_code <= 500 }"));
  EXPECT_TRUE(Matches("{ span.http.status_code != 200 }"));
  EXPECT_TRUE(Matches("{ span.http.status_code > 502.5 }"));
  EXPECT_TRUE(Matches("{ span.price = 12.5 }"));
  EXPECT_TRUE(Matches("{ span.price > 12 }"));
  EXPECT_TRUE(Matches("{ span.price < 1.3e1 }"));
  EXPECT_TRUE(Matches("{ span.price > -1 }"));
  // A number against a string attribute is false, and so is a string against a number.
  EXPECT_FALSE(Matches("{ span.http.method > 1 }"));
  EXPECT_FALSE(Matches("{ span.http.method != 1 }"));
  EXPECT_FALSE(Matches(R"({ span.http.status_code = "503" })"));
  EXPECT_TRUE(Matches("{ span.retried = true }"));
  EXPECT_TRUE(Matches("{ span.retried != false }"));
  EXPECT_FALSE(Matches("{ span.retried = false }"));
  EXPECT_FALSE(Matches("{ span.http.method = true }"));
}

TEST(TraceQlEval, Scopes) {
  EXPECT_TRUE(Matches(R"({ resource.service.name = "shop-api" })"));
  EXPECT_FALSE(Matches(R"({ span.service.name = "shop-api" })"));
  EXPECT_TRUE(Matches(R"({ .service.name = "shop-api" })"));
  EXPECT_TRUE(Matches(R"({ span.order_id = "A-1" })"));
  EXPECT_FALSE(Matches(R"({ resource.order_id = "A-1" })"));
  EXPECT_TRUE(Matches(R"({ .order_id = "A-1" })"));
  // Both carry `tier`: unscoped holds when either does; scoped looks at its own only.
  EXPECT_TRUE(Matches(R"({ .tier = "gold" })"));
  EXPECT_TRUE(Matches(R"({ .tier = "silver" })"));
  EXPECT_FALSE(Matches(R"({ span.tier = "silver" })"));
  EXPECT_FALSE(Matches(R"({ resource.tier = "gold" })"));
  EXPECT_TRUE(Matches("{ resource.shard = 3 }"));
}

TEST(TraceQlEval, Intrinsics) {
  EXPECT_TRUE(Matches(R"({ name = "shop.submit" })"));
  EXPECT_TRUE(Matches(R"({ name =~ "shop\\..*" })"));
  EXPECT_FALSE(Matches(R"({ name != "shop.submit" })"));
  EXPECT_TRUE(Matches(R"({ span:name = "shop.submit" })"));
  EXPECT_TRUE(Matches("{ status = error }"));
  EXPECT_FALSE(Matches("{ status = ok }"));
  EXPECT_TRUE(Matches("{ status != unset }"));
  EXPECT_TRUE(Matches(R"({ statusMessage =~ ".*down" })"));
  EXPECT_TRUE(Matches("{ kind = server }"));
  EXPECT_FALSE(Matches("{ kind = client }"));
  EXPECT_TRUE(Matches("{ kind != consumer }"));
  for (const char* k : {"producer", "internal", "unspecified"}) {
    EXPECT_FALSE(Matches(std::string("{ kind = ") + k + " }")) << k;
  }
  EXPECT_TRUE(Matches("{ duration = 150ms }"));
  EXPECT_TRUE(Matches("{ duration > 100ms }"));
  EXPECT_TRUE(Matches("{ duration >= 150000us }"));
  EXPECT_TRUE(Matches("{ duration < 0.2s }"));
  EXPECT_TRUE(Matches("{ duration <= 150000000ns }"));
  EXPECT_FALSE(Matches("{ duration > 1.5s }"));
  EXPECT_FALSE(Matches("{ duration > 2m }"));
  EXPECT_FALSE(Matches("{ duration > 1h }"));
  EXPECT_TRUE(Matches("{ duration < 1h30m }"));
  EXPECT_TRUE(Matches("{ duration > 500us }"));
  EXPECT_TRUE(Matches("{ duration > 10ns }"));
  EXPECT_TRUE(Matches("{ duration = 150000000 }"));
  EXPECT_TRUE(Matches("{ span:duration > 149ms }"));
}

TEST(TraceQlParse, TraceIntrinsicsInBothSpellings) {
  struct Case {
    const char* query;
    Intrinsic intrinsic;
  };
  const Case cases[] = {
      {"{ traceDuration > 5s }", Intrinsic::kTraceDuration},
      {"{ trace:duration <= 1h }", Intrinsic::kTraceDuration},
      {R"({ rootName = "order.root" })", Intrinsic::kRootName},
      {R"({ trace:rootName !~ ".*perf.*" })", Intrinsic::kRootName},
      {R"({ rootServiceName =~ "shop-.*" })", Intrinsic::kRootServiceName},
      {R"({ trace:rootService != "crm" })", Intrinsic::kRootServiceName},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Filter> filter = Filter::Parse(c.query);
    ASSERT_TRUE(filter.ok()) << c.query << ": " << filter.status();
    ASSERT_EQ(filter->conditions().size(), 1u) << c.query;
    EXPECT_EQ(filter->conditions()[0].field.intrinsic, c.intrinsic) << c.query;
    EXPECT_TRUE(filter->NeedsTraceFacts()) << c.query;
  }
  for (const char* q :
       {"{}", R"({ name = "x" || .a = 1 })", "{ duration > 1s }", R"({ span:name = "x" })"}) {
    absl::StatusOr<Filter> filter = Filter::Parse(q);
    ASSERT_TRUE(filter.ok()) << q;
    EXPECT_FALSE(filter->NeedsTraceFacts()) << q;
  }
  // A trace intrinsic anywhere (under || too) needs the facts.
  EXPECT_TRUE(Filter::Parse(R"({ name = "x" || (.a = 1 && rootName = "y") })")->NeedsTraceFacts());
}

// The sample span in a 2 s trace whose root is shop-api's "order.root".
bool MatchesInTrace(const std::string& query) {
  absl::StatusOr<Filter> filter = Filter::Parse(query);
  EXPECT_TRUE(filter.ok()) << query << ": " << filter.status();
  if (!filter.ok()) return false;
  Sample s;
  const TraceFacts trace{"order.root", "shop-api", 2'000 * kMs};
  return filter->Matches(s.span, s.resource, &trace);
}

TEST(TraceQlEval, TraceIntrinsicsCompareTheTraceNotTheSpan) {
  EXPECT_TRUE(MatchesInTrace("{ traceDuration > 1s }"));
  EXPECT_TRUE(MatchesInTrace("{ trace:duration = 2s }"));
  EXPECT_TRUE(MatchesInTrace("{ traceDuration >= 2000ms && traceDuration <= 2000000us }"));
  EXPECT_TRUE(MatchesInTrace("{ traceDuration != 150ms }"));
  EXPECT_FALSE(MatchesInTrace("{ traceDuration < 2.5 }"));  // a bare number is nanoseconds
  EXPECT_TRUE(MatchesInTrace("{ traceDuration > 1.5e9 }"));
  EXPECT_FALSE(MatchesInTrace("{ traceDuration > 2s }"));
  EXPECT_FALSE(MatchesInTrace("{ traceDuration < 150ms }"));
  // The span's own 150 ms is not the trace's 2 s.
  EXPECT_FALSE(MatchesInTrace("{ trace:duration = 150ms }"));
  EXPECT_TRUE(MatchesInTrace("{ duration = 150ms && traceDuration = 2s }"));

  EXPECT_TRUE(MatchesInTrace(R"({ rootName = "order.root" })"));
  EXPECT_FALSE(MatchesInTrace(R"({ rootName = "shop.submit" })"));  // the span's own name
  EXPECT_TRUE(MatchesInTrace(R"({ trace:rootName =~ "order\\..*" })"));
  EXPECT_TRUE(MatchesInTrace(R"({ rootName !~ ".*perf.*" })"));
  EXPECT_TRUE(MatchesInTrace(R"({ rootServiceName = "shop-api" })"));
  EXPECT_TRUE(MatchesInTrace(R"({ trace:rootService != "crm" })"));
  EXPECT_FALSE(MatchesInTrace(R"({ rootServiceName != "shop-api" })"));
  EXPECT_FALSE(MatchesInTrace(R"({ rootServiceName =~ "crm|billing" })"));
  EXPECT_TRUE(MatchesInTrace(R"({ rootServiceName = "crm" || name = "shop.submit" })"));
  EXPECT_FALSE(MatchesInTrace(R"({ rootServiceName = "shop-api" && status = ok })"));

  // Without the facts no trace condition holds, not even a negated one; span conditions still do.
  EXPECT_FALSE(Matches("{ traceDuration > 1s }"));
  EXPECT_FALSE(Matches(R"({ rootServiceName != "crm" })"));
  EXPECT_FALSE(Matches(R"({ rootName !~ "x" })"));
  EXPECT_TRUE(Matches(R"({ rootName = "x" || name = "shop.submit" })"));
}

TEST(TraceQlEval, AndBindsTighterThanOrAndParenthesesRegroup) {
  // true || (false && false) = true; (true || false) && false = false.
  EXPECT_TRUE(Matches(R"({ name = "shop.submit" || kind = client && status = ok })"));
  EXPECT_FALSE(Matches(R"({ (name = "shop.submit" || kind = client) && status = ok })"));
  // (false && true) || true = true.
  EXPECT_TRUE(Matches(R"({ kind = client && status = error || .tier = "gold" })"));
  EXPECT_TRUE(Matches(R"({ ((((kind = server)))) })"));
  EXPECT_TRUE(Matches(R"({ true && kind = server })"));
  EXPECT_FALSE(Matches(R"({ false || kind = client })"));
}

TEST(TraceQlEval, StringEscapes) {
  EXPECT_TRUE(Matches(R"({ span.note = "say \"hi\"\n" })"));
  EXPECT_TRUE(Matches(R"({ span.note = "say \x22hi\u0022\n" })"));
  EXPECT_TRUE(Matches("{ span.note =~ `(?s)say \"hi\".*` }"));
  EXPECT_FALSE(Matches("{ span.note =~ `say \"hi\".*` }")) << "'.' does not match a newline";
  EXPECT_TRUE(Matches(R"({ span.http.method = "P\u004fST" })"));
  EXPECT_TRUE(Matches(R"({ resource.service.name = "shop\/api" || true })"));
}

TEST(TraceQlParse, SelectIsAcceptedAndChangesNothing) {
  EXPECT_TRUE(Matches(R"({ kind = server } | select(span.http.method, resource.service.name))"));
  EXPECT_TRUE(Matches(R"({} | select(.order_id, name, status))"));
  EXPECT_THAT(ErrorOf("{} | select(event.x)"),
              HasSubstr("attribute scope 'event.' not supported at offset 12"));
}

TEST(TraceQlParse, PinnedValueIsAnEqualityUnderAndOnly) {
  auto pin = [](const char* q) { return Filter::Parse(q)->PinnedValue("order_id"); };
  EXPECT_EQ(pin(R"({ .order_id = "A-1" })"), "A-1");
  EXPECT_EQ(pin(R"({ span.order_id = "A-1" && kind = server })"), "A-1");
  EXPECT_EQ(pin(R"({ kind = server && (resource.order_id = "A-2" && true) })"), "A-2");
  EXPECT_EQ(pin(R"({ .order_id = "A-1" || kind = server })"), std::nullopt);
  EXPECT_EQ(pin(R"({ .order_id =~ "A-1" })"), std::nullopt);
  EXPECT_EQ(pin(R"({ .order_id != "A-1" })"), std::nullopt);
  EXPECT_EQ(pin("{ .order_id = 5 }"), std::nullopt);
  EXPECT_EQ(pin("{}"), std::nullopt);
}

TEST(TraceQlParse, UnsupportedPartsAreNamedWithTheirOffset) {
  struct Case {
    const char* query;
    const char* message;
  };
  const Case cases[] = {
      {"{} | count() > 2", "pipeline stage 'count' not supported at offset 5"},
      {"{ .a = 1 } | avg(duration) > 1s", "pipeline stage 'avg' not supported at offset 13"},
      {"{ .a = 1 } >> { .b = 2 }", "structural operator '>>' not supported at offset 11"},
      {"{ .a = 1 } ~ { .b = 2 }", "structural operator '~' not supported at offset 11"},
      {"{ .a = 1 } && { .b = 2 }", "combining spansets with '&&' not supported at offset 11"},
      {"{ .a = 1 } || { .b = 2 }", "combining spansets with '||' not supported at offset 11"},
      {"rate()", "function or keyword 'rate' not supported at offset 0"},
      {"{ .a = 1 } | rate()", "pipeline stage 'rate' not supported at offset 13"},
      {"{ trace:id = \"x\" }", "intrinsic 'trace:id' not supported at offset 2"},
      {"{ trace:rootServiceName = \"x\" }",
       "intrinsic 'trace:rootServiceName' not supported at offset 2"},
      {"{ span:rootName = \"x\" }", "intrinsic 'span:rootName' not supported at offset 2"},
      {"{ traceDuration =~ \"1s\" }", "operator '=~' on this intrinsic not supported at offset 2"},
      {"{ childCount > 1 }", "intrinsic 'childCount' not supported at offset 2"},
      {"{ event.name = \"x\" }", "attribute scope 'event.' not supported at offset 2"},
      {"{ link.x = 1 }", "attribute scope 'link.' not supported at offset 2"},
      {"{ .a + 1 = 2 }", "arithmetic '+' not supported at offset 5"},
      {"{ .a = 1 * 2 }", "arithmetic '*' not supported at offset 9"},
      {"{ .a = .b }", "comparing two fields not supported at offset 7"},
      {"{ .a = name }", "comparing two fields not supported at offset 7"},
      {"{ !(.a = 1) }", "negation '!' not supported at offset 2"},
      {"{ .a }", "a field without a comparison not supported at offset 2"},
      {"{ { .a = 1 } }", "a spanset inside a spanset not supported at offset 2"},
      {"{ 1 = .a }", "a value on the left of a comparison not supported at offset 2"},
      {"{ status > error }", "operator '>' on status not supported at offset 2"},
      {"{ kind =~ \"server\" }", "operator '=~' on this intrinsic not supported at offset 2"},
      {"{ .a > true }", "operator '>' with true or false not supported at offset 7"},
      {"{ duration > -1s }", "a negative duration not supported at offset 13"},
      {"{ count(.a) > 1 }", "function 'count' not supported at offset 2"},
  };
  for (const Case& c : cases) EXPECT_THAT(ErrorOf(c.query), HasSubstr(c.message)) << c.query;
}

TEST(TraceQlParse, MalformedQueriesSayWhatWasExpected) {
  struct Case {
    const char* query;
    const char* message;
  };
  const Case cases[] = {
      {"", "expected '{' at offset 0"},
      {".a = 1", "expected '{', found '.' at offset 0"},
      {"{ .a = 1", "expected '}' or an operator (&&, ||), found the end of the query at offset 8"},
      {"{ .a = 1 } x", "expected the end of the query or '|', found 'x' at offset 11"},
      {"{ .a = }",
       "expected a value (a quoted string, a number, a duration, true or false), "
       "found '}' at offset 7"},
      {"{ .a == 1 }", "expected a value"},
      {"{ .a 1 }", "expected a comparison (=, !=, =~, !~, >, >=, <, <=), found '1' at offset 5"},
      {"{ . = 1 }", "expected an attribute name after '.' at offset 2"},
      {"{ foo = 1 }", "unknown field 'foo'"},
      {"{ foo.bar = 1 }", "unknown attribute scope 'foo.' at offset 2"},
      {"{ .a = \"x }", "unterminated string at offset 7"},
      {"{ .a = \"\\q\" }", "invalid escape '\\q' at offset 8"},
      {"{ .a = \"\\u12\" }", "invalid escape"},
      {"{ (.a = 1 }", "expected ')' or an operator (&&, ||), found '}' at offset 10"},
      {"{ .a = 1 && }", "expected a field"},
      {"{ status = \"error\" }",
       "status compares with error, ok or unset (not quoted) at offset 11"},
      {"{ .a = error }", "a status (error, ok, unset) compares with status only at offset 7"},
      {"{ .a = server }", "a span kind compares with kind only"},
      {"{ kind = 1 }", "kind compares with server, client"},
      {"{ name = 1 }", "this intrinsic compares with a string at offset 9"},
      {"{ duration > \"1s\" }", "duration compares with a duration such as 150ms"},
      {"{ traceDuration > \"1s\" }", "duration compares with a duration such as 150ms"},
      {"{ trace:duration > ok }", "a status (error, ok, unset) compares with status only"},
      {"{ rootServiceName = 1 }", "this intrinsic compares with a string at offset 20"},
      {"{ rootName = server }", "a span kind compares with kind only"},
      {"{ trace:rootService = nil }", "nil compares with an attribute by = or != only"},
      {"{ .a =~ 1 }", "'=~' takes a quoted regular expression at offset 8"},
      {"{ .a =~ \"(\" }", "invalid regular expression"},
      {"{ duration > 5x }", "unexpected character after the number"},
      {"{ duration > 5m3 }", "expected a duration unit"},
      {"{ name < nil }", "nil compares with an attribute by = or != only"},
  };
  for (const Case& c : cases) EXPECT_THAT(ErrorOf(c.query), HasSubstr(c.message)) << c.query;
}

TEST(TraceQlParse, ParseFieldTakesTempoIdentifiers) {
  absl::StatusOr<Field> f = ParseField("resource.service.name");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->scope, Scope::kResource);
  EXPECT_EQ(f->attribute, "service.name");
  f = ParseField(".order_id");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->scope, Scope::kSpanOrResource);
  EXPECT_EQ(f->attribute, "order_id");
  f = ParseField("span.http.method");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->scope, Scope::kSpan);
  f = ParseField("status");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->intrinsic, Intrinsic::kStatus);
  EXPECT_EQ(ParseField("kind")->intrinsic, Intrinsic::kKind);
  EXPECT_EQ(ParseField("name")->intrinsic, Intrinsic::kName);
  EXPECT_EQ(ParseField("traceDuration")->intrinsic, Intrinsic::kTraceDuration);
  EXPECT_EQ(ParseField("trace:rootService")->intrinsic, Intrinsic::kRootServiceName);
  EXPECT_EQ(ParseField("rootName")->intrinsic, Intrinsic::kRootName);
  EXPECT_FALSE(ParseField("trace:id").ok());
  EXPECT_FALSE(ParseField("service.name").ok());
  EXPECT_FALSE(ParseField("resource.").ok());
  EXPECT_FALSE(ParseField(".a b").ok());
  EXPECT_FALSE(ParseField("").ok());
}

// Hostile queries: each is refused (or answered) in bounded time, without a crash.
class TraceQlHostile : public ::testing::Test {
 protected:
  // The error of `query`, which must take well under a second to parse.
  std::string Refusal(std::string_view query) {
    auto begin = std::chrono::steady_clock::now();
    std::string error = ErrorOf(query);
    EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(1));
    return error;
  }
};

TEST_F(TraceQlHostile, DeepNestingIsRefusedAtTheDepthLimit) {
  std::string deep = "{ " + std::string(10'000, '(') + ".a = 1" + std::string(10'000, ')') + " }";
  EXPECT_THAT(Refusal(deep), HasSubstr("a query longer than 4096 bytes is not supported"));
  std::string under_length =
      "{ " + std::string(2'000, '(') + ".a = 1" + std::string(2'000, ')') + " }";
  EXPECT_THAT(Refusal(under_length),
              HasSubstr("nesting deeper than 32 parentheses is not supported at offset 34"));
  std::string at_limit = "{ " + std::string(32, '(') + ".a = 1" + std::string(32, ')') + " }";
  EXPECT_EQ(Refusal(at_limit), "");
  // The same depth with no limit on length still stops at the depth.
  Limits unlimited_length;
  unlimited_length.max_query_bytes = 1 << 30;
  EXPECT_THAT(ErrorOf(deep, unlimited_length), HasSubstr("nesting deeper than 32"));
}

TEST_F(TraceQlHostile, HugeQueryIsRefusedByLength) {
  std::string huge = "{ .a = \"" + std::string(1 << 20, 'x') + "\" }";
  EXPECT_THAT(Refusal(huge), HasSubstr("a query longer than 4096 bytes is not supported at offset "
                                       "4096"));
}

TEST_F(TraceQlHostile, TooManyConditions) {
  std::string q = "{ .a = 0";
  for (int i = 1; i < 64; ++i) q += " || .a = " + std::to_string(i);
  EXPECT_EQ(Refusal(q + " }"), "");
  EXPECT_THAT(Refusal(q + " || .a = 64 }"), HasSubstr("more than 64 conditions are not supported"));
}

TEST_F(TraceQlHostile, CatastrophicRegexRunsInLinearTime) {
  absl::StatusOr<Filter> f = Filter::Parse(R"({ span.v =~ "(a+)+$" })");
  ASSERT_TRUE(f.ok()) << f.status();
  Sample s;
  s.span.attributes = {Str("v", std::string(100'000, 'a') + "!")};
  auto begin = std::chrono::steady_clock::now();
  EXPECT_FALSE(f->Matches(s.span, s.resource));
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(1));
  s.span.attributes = {Str("v", std::string(100'000, 'a'))};
  EXPECT_TRUE(f->Matches(s.span, s.resource));
}

TEST_F(TraceQlHostile, OversizedRegexesAreRefused) {
  EXPECT_THAT(Refusal("{ .a =~ \"" + std::string(2000, 'a') + "\" }"),
              HasSubstr("a regular expression longer than 1024 bytes is not supported"));
  EXPECT_THAT(Refusal(R"({ .a =~ "((a{100}){100}){100}" })"), HasSubstr("regular expression"));
  EXPECT_THAT(Refusal(R"({ .a =~ "(\\w{50}){50}" })"), HasSubstr("invalid repetition size"));
  EXPECT_THAT(Refusal(R"({ .a =~ "\\w{1000}\\w{1000}" })"),
              HasSubstr("a regular expression this complex (program size 6"));
  EXPECT_THAT(Refusal(R"({ .a =~ "\\pL{200}" })"), HasSubstr("pattern too large"));
  EXPECT_EQ(Refusal(R"({ .a =~ "\\w{1000}" })"), "");
}

TEST_F(TraceQlHostile, NulBytesAndInvalidUtf8) {
  using namespace std::string_literals;
  EXPECT_THAT(Refusal("{ .a\0 = 1 }"s), HasSubstr("'\\x00' at offset 4"));
  EXPECT_THAT(Refusal("\0{}"s), HasSubstr("found '\\x00' at offset 0"));
  EXPECT_THAT(Refusal("{ .a = 1 }\xff"s), HasSubstr("'\\xff' at offset 10"));
  EXPECT_THAT(Refusal("{ \xc3\x28 = 1 }"s), HasSubstr("expected a field"));
  // Inside a string any byte is a byte: it parses and compares.
  absl::StatusOr<Filter> f = Filter::Parse("{ span.v = \"a\0\xff\" }"s);
  ASSERT_TRUE(f.ok()) << f.status();
  Sample s;
  s.span.attributes = {Str("v", "a\0\xff"s)};
  EXPECT_TRUE(f->Matches(s.span, s.resource));
  // A regex of invalid UTF-8 is refused by RE2, not crashed on.
  EXPECT_THAT(Refusal("{ span.v =~ \"\xff\" }"s), HasSubstr("invalid regular expression"));
}

TEST_F(TraceQlHostile, HugeNumbers) {
  EXPECT_THAT(Refusal("{ .a = 99999999999999999999999 }"), HasSubstr("number out of range"));
  EXPECT_THAT(Refusal("{ .a = -99999999999999999999999 }"), HasSubstr("number out of range"));
  EXPECT_THAT(Refusal("{ .a = 1e999 }"), HasSubstr("number out of range"));
  EXPECT_THAT(Refusal("{ duration > 99999999999999h }"), HasSubstr("duration out of range"));
  EXPECT_THAT(Refusal("{ duration > 1e300s }"), HasSubstr("duration out of range"));
  EXPECT_EQ(Refusal("{ .a = 9223372036854775807 }"), "");
  EXPECT_EQ(Refusal("{ .a = -9223372036854775808 }"), "");
  EXPECT_EQ(Refusal("{ duration < 2562047h }"), "");
}

TEST_F(TraceQlHostile, EveryPrefixOfAGoodQueryParsesOrFails) {
  const std::string good =
      R"({ (resource.service.name = "shop-api" && span.http.status_code >= 500) || )"
      R"(name =~ "a.*" && duration > 1.5s && kind = server && status != ok } | select(.a))";
  ASSERT_EQ(Refusal(good), "");
  for (size_t n = 0; n < good.size(); ++n) Refusal(good.substr(0, n));
}

}  // namespace
}  // namespace ordertrace::query::traceql
