#include "otlp/json_codec.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "opentelemetry/proto/trace/v1/trace.pb.h"
#include "otlp/proto_codec.h"

namespace ordertrace::otlp {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;
using T = base::AnyValue::Type;

// Differences between two batches, empty when they are equal. The model has no operator==
// for spans, so both go through the protobuf encoder (tested on its own in
// proto_codec_test.cc) and are compared field by field.
std::string BatchDifferences(const base::TraceBatch& expected, const base::TraceBatch& actual) {
  opentelemetry::proto::trace::v1::TracesData a, b;
  if (!a.ParseFromString(EncodeProtobuf(expected)) || !b.ParseFromString(EncodeProtobuf(actual))) {
    return "unparseable encoding";
  }
  google::protobuf::util::MessageDifferencer differencer;
  std::string differences;
  differencer.ReportDifferencesToString(&differences);
  if (differencer.Compare(a, b)) return std::string();
  return differences.empty() ? "differ" : differences;
}

const base::Span& OnlySpan(const DecodedRequest& decoded) {
  static const base::Span kNone;
  if (decoded.batch.resource_spans.empty() || decoded.batch.resource_spans[0].scope_spans.empty() ||
      decoded.batch.resource_spans[0].scope_spans[0].spans.empty()) {
    ADD_FAILURE() << "no span decoded";
    return kNone;
  }
  return decoded.batch.resource_spans[0].scope_spans[0].spans[0];
}

// OTLP/JSON as the specification writes it: lowerCamelCase, upper-case hex (ids are
// case-insensitive), 64-bit integers as strings, enums as integers.
constexpr char kCamelCase[] = R"({
  "resourceSpans": [{
    "resource": {
      "attributes": [{"key": "service.name", "value": {"stringValue": "shop-api"}}],
      "droppedAttributesCount": 1
    },
    "schemaUrl": "https://opentelemetry.io/schemas/1.21.0",
    "scopeSpans": [{
      "scope": {"name": "shop.orders", "version": "1.0.0",
                "attributes": [{"key": "lib", "value": {"stringValue": "own"}}]},
      "schemaUrl": "https://opentelemetry.io/schemas/1.20.0",
      "spans": [{
        "traceId": "5B8EFFF798038103D269B633813FC60C",
        "spanId": "EEE19B7EC3C1B174",
        "parentSpanId": "eee19b7ec3c1b173",
        "traceState": "vendor=1",
        "flags": 257,
        "name": "POST /orders",
        "kind": 2,
        "startTimeUnixNano": "1700000000123456789",
        "endTimeUnixNano": "1700000001000000000",
        "attributes": [
          {"key": "order_id", "value": {"stringValue": "ord-1"}},
          {"key": "http.status_code", "value": {"intValue": "201"}},
          {"key": "paid", "value": {"boolValue": true}},
          {"key": "price", "value": {"doubleValue": 99.5}},
          {"key": "blob", "value": {"bytesValue": "AAH/gA=="}},
          {"key": "list", "value": {"arrayValue": {"values": [
            {"stringValue": "a"}, {"intValue": "-5"},
            {"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": false}}]}}]}}}
        ],
        "droppedAttributesCount": 2,
        "events": [{"timeUnixNano": "1700000000500000000", "name": "validated",
                    "attributes": [{"key": "rule", "value": {"stringValue": "size"}}]}],
        "droppedEventsCount": 3,
        "links": [{"traceId": "0102030405060708090A0B0C0D0E0F10", "spanId": "1112131415161718",
                   "traceState": "k=v", "flags": 1}],
        "droppedLinksCount": 4,
        "status": {"code": 2, "message": "payment declined"}
      }]
    }]
  }]
})";

// The same request as lenient senders write it: snake_case keys, lower-case hex, 64-bit
// integers as JSON numbers, enums as names.
constexpr char kSnakeCase[] = R"({
  "resource_spans": [{
    "resource": {
      "attributes": [{"key": "service.name", "value": {"string_value": "shop-api"}}],
      "dropped_attributes_count": 1
    },
    "schema_url": "https://opentelemetry.io/schemas/1.21.0",
    "scope_spans": [{
      "scope": {"name": "shop.orders", "version": "1.0.0",
                "attributes": [{"key": "lib", "value": {"string_value": "own"}}]},
      "schema_url": "https://opentelemetry.io/schemas/1.20.0",
      "spans": [{
        "trace_id": "5b8efff798038103d269b633813fc60c",
        "span_id": "eee19b7ec3c1b174",
        "parent_span_id": "EEE19B7EC3C1B173",
        "trace_state": "vendor=1",
        "flags": 257,
        "name": "POST /orders",
        "kind": "SPAN_KIND_SERVER",
        "start_time_unix_nano": 1700000000123456789,
        "end_time_unix_nano": 1700000001000000000,
        "attributes": [
          {"key": "order_id", "value": {"string_value": "ord-1"}},
          {"key": "http.status_code", "value": {"int_value": 201}},
          {"key": "paid", "value": {"bool_value": true}},
          {"key": "price", "value": {"double_value": 99.5}},
          {"key": "blob", "value": {"bytes_value": "AAH/gA=="}},
          {"key": "list", "value": {"array_value": {"values": [
            {"string_value": "a"}, {"int_value": -5},
            {"kvlist_value": {"values": [{"key": "k", "value": {"bool_value": false}}]}}]}}}
        ],
        "dropped_attributes_count": 2,
        "events": [{"time_unix_nano": 1700000000500000000, "name": "validated",
                    "attributes": [{"key": "rule", "value": {"string_value": "size"}}]}],
        "dropped_events_count": 3,
        "links": [{"trace_id": "0102030405060708090a0b0c0d0e0f10", "span_id": "1112131415161718",
                   "trace_state": "k=v", "flags": 1}],
        "dropped_links_count": 4,
        "status": {"code": "STATUS_CODE_ERROR", "message": "payment declined"}
      }]
    }]
  }]
})";

void ExpectDecodedExample(const DecodedRequest& decoded) {
  EXPECT_EQ(decoded.rejected_spans, 0);
  ASSERT_THAT(decoded.batch.resource_spans, SizeIs(1));
  const base::ResourceSpans& rs = decoded.batch.resource_spans[0];
  EXPECT_EQ(base::ServiceName(rs.resource), "shop-api");
  EXPECT_EQ(rs.resource.dropped_attributes_count, 1u);
  EXPECT_EQ(rs.schema_url, "https://opentelemetry.io/schemas/1.21.0");
  ASSERT_THAT(rs.scope_spans, SizeIs(1));
  const base::ScopeSpans& ss = rs.scope_spans[0];
  EXPECT_EQ(ss.scope.name, "shop.orders");
  EXPECT_EQ(ss.scope.version, "1.0.0");
  ASSERT_THAT(ss.scope.attributes, SizeIs(1));
  EXPECT_EQ(ss.scope.attributes[0].value, base::AnyValue::String("own"));
  EXPECT_EQ(ss.schema_url, "https://opentelemetry.io/schemas/1.20.0");
  ASSERT_THAT(ss.spans, SizeIs(1));

  const base::Span& span = ss.spans[0];
  EXPECT_EQ(span.trace_id.ToHex(), "5b8efff798038103d269b633813fc60c");
  EXPECT_EQ(span.span_id.ToHex(), "eee19b7ec3c1b174");
  EXPECT_EQ(span.parent_span_id.ToHex(), "eee19b7ec3c1b173");
  EXPECT_EQ(span.trace_state, "vendor=1");
  EXPECT_EQ(span.flags, 257u);
  EXPECT_EQ(span.name, "POST /orders");
  EXPECT_EQ(span.kind, base::SpanKind::kServer);
  EXPECT_EQ(span.start_time_unix_nano, 1'700'000'000'123'456'789ULL);
  EXPECT_EQ(span.end_time_unix_nano, 1'700'000'001'000'000'000ULL);

  ASSERT_THAT(span.attributes, SizeIs(6));
  EXPECT_EQ(span.attributes[0].value, base::AnyValue::String("ord-1"));
  EXPECT_EQ(span.attributes[1].value, base::AnyValue::Int(201));
  EXPECT_EQ(span.attributes[2].value, base::AnyValue::Bool(true));
  EXPECT_EQ(span.attributes[3].value, base::AnyValue::Double(99.5));
  EXPECT_EQ(span.attributes[4].value.type, T::kBytes);
  EXPECT_EQ(span.attributes[4].value.string_value, std::string("\x00\x01\xff\x80", 4));
  const base::AnyValue& list = span.attributes[5].value;
  ASSERT_EQ(list.type, T::kArray);
  ASSERT_THAT(list.array_values, SizeIs(3));
  EXPECT_EQ(list.array_values[0], base::AnyValue::String("a"));
  EXPECT_EQ(list.array_values[1], base::AnyValue::Int(-5));
  ASSERT_EQ(list.array_values[2].type, T::kKvList);
  ASSERT_THAT(list.array_values[2].kvlist_values, SizeIs(1));
  EXPECT_EQ(list.array_values[2].kvlist_values[0].key, "k");
  EXPECT_EQ(list.array_values[2].kvlist_values[0].value, base::AnyValue::Bool(false));
  EXPECT_EQ(span.dropped_attributes_count, 2u);

  ASSERT_THAT(span.events, SizeIs(1));
  EXPECT_EQ(span.events[0].time_unix_nano, 1'700'000'000'500'000'000ULL);
  EXPECT_EQ(span.events[0].name, "validated");
  ASSERT_THAT(span.events[0].attributes, SizeIs(1));
  EXPECT_EQ(span.dropped_events_count, 3u);

  ASSERT_THAT(span.links, SizeIs(1));
  EXPECT_EQ(span.links[0].trace_id.ToHex(), "0102030405060708090a0b0c0d0e0f10");
  EXPECT_EQ(span.links[0].span_id.ToHex(), "1112131415161718");
  EXPECT_EQ(span.links[0].trace_state, "k=v");
  EXPECT_EQ(span.links[0].flags, 1u);
  EXPECT_EQ(span.dropped_links_count, 4u);

  EXPECT_EQ(span.status.code, base::StatusCode::kError);
  EXPECT_EQ(span.status.message, "payment declined");
}

TEST(JsonCodecTest, DecodesLowerCamelCaseRequest) {
  absl::StatusOr<DecodedRequest> decoded = DecodeJsonRequest(kCamelCase);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectDecodedExample(*decoded);
}

TEST(JsonCodecTest, DecodesSnakeCaseRequestWithNumbersAndEnumNames) {
  absl::StatusOr<DecodedRequest> decoded = DecodeJsonRequest(kSnakeCase);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectDecodedExample(*decoded);
}

TEST(JsonCodecTest, BothSpellingsDecodeToTheSameBatch) {
  absl::StatusOr<DecodedRequest> camel = DecodeJsonRequest(kCamelCase);
  absl::StatusOr<DecodedRequest> snake = DecodeJsonRequest(kSnakeCase);
  ASSERT_TRUE(camel.ok()) << camel.status();
  ASSERT_TRUE(snake.ok()) << snake.status();
  EXPECT_EQ(BatchDifferences(camel->batch, snake->batch), "");
}

TEST(JsonCodecTest, EnumsAsIntegersAndAsNamesAgree) {
  const char* kinds[][2] = {{"0", "\"SPAN_KIND_UNSPECIFIED\""}, {"1", "\"SPAN_KIND_INTERNAL\""},
                            {"2", "\"SPAN_KIND_SERVER\""},      {"3", "\"SPAN_KIND_CLIENT\""},
                            {"4", "\"SPAN_KIND_PRODUCER\""},    {"5", "\"SPAN_KIND_CONSUMER\""}};
  const char* codes[][2] = {
      {"0", "\"STATUS_CODE_UNSET\""}, {"1", "\"STATUS_CODE_OK\""}, {"2", "\"STATUS_CODE_ERROR\""}};
  auto decode = [](const std::string& kind, const std::string& code) {
    std::string body =
        R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"s","kind":)" +
        kind + R"(,"status":{"code":)" + code + "}}]}]}]}";
    absl::StatusOr<DecodedRequest> decoded = DecodeJsonRequest(body);
    EXPECT_TRUE(decoded.ok()) << body << ": " << decoded.status();
    return decoded.ok() ? OnlySpan(*decoded) : base::Span();
  };
  for (int i = 0; i < 6; ++i) {
    SCOPED_TRACE(kinds[i][1]);
    EXPECT_EQ(decode(kinds[i][0], "0").kind, static_cast<base::SpanKind>(i));
    EXPECT_EQ(decode(kinds[i][1], "0").kind, static_cast<base::SpanKind>(i));
  }
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(codes[i][1]);
    EXPECT_EQ(decode("0", codes[i][0]).status.code, static_cast<base::StatusCode>(i));
    EXPECT_EQ(decode("0", codes[i][1]).status.code, static_cast<base::StatusCode>(i));
  }
}

TEST(JsonCodecTest, Int64ValuesBeyondDoublePrecisionSurviveAsStringsAndNumbers) {
  // 2^63-1 and 2^64-1 are not representable as doubles; both forms must be exact.
  constexpr char kBody[] = R"({"resourceSpans":[{"scopeSpans":[{"spans":[
    {"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"a",
     "startTimeUnixNano":"18446744073709551615","endTimeUnixNano":18446744073709551615,
     "attributes":[{"key":"s","value":{"intValue":"9223372036854775807"}},
                   {"key":"n","value":{"intValue":9223372036854775807}},
                   {"key":"neg","value":{"intValue":"-9223372036854775808"}}]}]}]}]})";
  absl::StatusOr<DecodedRequest> decoded = DecodeJsonRequest(kBody);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  const base::Span& span = OnlySpan(*decoded);
  EXPECT_EQ(span.start_time_unix_nano, 18446744073709551615ULL);
  EXPECT_EQ(span.end_time_unix_nano, 18446744073709551615ULL);
  ASSERT_THAT(span.attributes, SizeIs(3));
  EXPECT_EQ(span.attributes[0].value, base::AnyValue::Int(9223372036854775807LL));
  EXPECT_EQ(span.attributes[1].value, base::AnyValue::Int(9223372036854775807LL));
  EXPECT_EQ(span.attributes[2].value, base::AnyValue::Int(INT64_MIN));
}

void ExpectInvalidArgument(std::string_view body, std::string_view mentions) {
  absl::StatusOr<DecodedRequest> decoded = DecodeJsonRequest(body);
  ASSERT_FALSE(decoded.ok()) << body;
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(decoded.status().message()), HasSubstr(std::string(mentions)));
}

TEST(JsonCodecTest, MalformedBodiesAreInvalidArgumentWithAMessage) {
  ExpectInvalidArgument("this is not json", "not valid JSON");
  ExpectInvalidArgument("{\"resourceSpans\": [", "not valid JSON");
  ExpectInvalidArgument("", "not valid JSON");
  ExpectInvalidArgument(R"([{"resourceSpans": []}])", "must be a JSON object");
  ExpectInvalidArgument(R"({"resourceSpans": {"scopeSpans": []}})",
                        "resourceSpans must be an array");
  ExpectInvalidArgument(R"({"resourceSpans": "x"})", "resourceSpans must be an array");
  ExpectInvalidArgument(
      R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10",
          "spanId":"0102030405060708","name":"a","startTimeUnixNano":"abc"}]}]}]})",
      "startTimeUnixNano");
  ExpectInvalidArgument(
      R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10",
          "spanId":"0102030405060708","name":"a","endTimeUnixNano":"-1"}]}]}]})",
      "endTimeUnixNano");
  ExpectInvalidArgument(
      R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10",
          "spanId":"0102030405060708","name":"a","kind":"SPAN_KIND_BOGUS"}]}]}]})",
      "kind");
  ExpectInvalidArgument(
      R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10",
          "spanId":"0102030405060708","name":"a",
          "attributes":[{"key":"b","value":{"bytesValue":"***"}}]}]}]}]})",
      "bytesValue");
}

std::string Nested(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(JsonCodecTest, NestingDeeperThanTheLimitIsRefused) {
  ExpectInvalidArgument(Nested(kMaxJsonDepth + 1), "nested deeper");
  ExpectInvalidArgument(Nested(100000), "nested deeper");

  // At the limit the body is parsed (and refused for its shape, not its depth).
  absl::StatusOr<DecodedRequest> at_limit = DecodeJsonRequest(Nested(kMaxJsonDepth));
  ASSERT_FALSE(at_limit.ok());
  EXPECT_THAT(std::string(at_limit.status().message()), Not(HasSubstr("nested deeper")));
}

TEST(JsonCodecTest, BracketsInsideStringsDoNotCountAsNesting) {
  std::string name(500, '{');
  name += std::string(500, '[') + "\\\"";
  std::string body =
      R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":")" +
      name + R"("}]}]}]})";
  absl::StatusOr<DecodedRequest> decoded = DecodeJsonRequest(body);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(OnlySpan(*decoded).name, std::string(500, '{') + std::string(500, '[') + "\"");
}

TEST(JsonCodecTest, InvalidIdsRejectTheSpanAloneAndCountIt) {
  constexpr char kBody[] = R"({"resourceSpans":[{"scopeSpans":[{"spans":[
    {"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"first"},
    {"traceId":"zz02030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"bad hex"},
    {"traceId":"0102030405060708090a0b0c0d0e0f1","spanId":"0102030405060708","name":"31 digits"},
    {"traceId":"00000000000000000000000000000000","spanId":"0102030405060708","name":"zero"},
    {"spanId":"0102030405060708","name":"no trace id"},
    {"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"01020304050607","name":"short span"},
    {"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708",
     "parentSpanId":"0102030405","name":"short parent"},
    {"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":""},
    {"traceId":"0102030405060708090a0b0c0d0e0f11","spanId":"0102030405060709","name":"last"}
  ]}]}]})";
  absl::StatusOr<DecodedRequest> decoded = DecodeJsonRequest(kBody);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->rejected_spans, 7);
  EXPECT_THAT(decoded->rejection_message, HasSubstr("traceId"));
  ASSERT_EQ(decoded->batch.SpanCount(), 2u);
  const auto& spans = decoded->batch.resource_spans[0].scope_spans[0].spans;
  EXPECT_EQ(spans[0].name, "first");
  EXPECT_EQ(spans[1].name, "last");
}

TEST(JsonCodecTest, ReasonNamesTheParentSpanId) {
  absl::StatusOr<DecodedRequest> decoded = DecodeJsonRequest(
      R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10",
          "spanId":"0102030405060708","parentSpanId":"xyz","name":"a"}]}]}]})");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->rejected_spans, 1);
  EXPECT_THAT(decoded->rejection_message, HasSubstr("parentSpanId"));
  EXPECT_EQ(decoded->batch.SpanCount(), 0u);
}

TEST(JsonCodecTest, EmptyRequestHasNoSpans) {
  for (const char* body : {"{}", R"({"resourceSpans":[]})", R"({"resourceSpans":null})"}) {
    SCOPED_TRACE(body);
    absl::StatusOr<DecodedRequest> decoded = DecodeJsonRequest(body);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(decoded->batch.SpanCount(), 0u);
    EXPECT_EQ(decoded->rejected_spans, 0);
  }
}

base::KeyValue Kv(std::string key, base::AnyValue value) {
  return base::KeyValue{std::move(key), std::move(value)};
}

base::ResourceSpans FullResourceSpans() {
  base::ResourceSpans rs;
  rs.resource.attributes = {Kv("service.name", base::AnyValue::String("mes-api"))};
  rs.resource.dropped_attributes_count = 3;
  rs.schema_url = "https://opentelemetry.io/schemas/1.21.0";

  base::ScopeSpans ss;
  ss.scope.name = "mes.production";
  ss.scope.version = "0.9";
  ss.scope.attributes = {Kv("scope.attr", base::AnyValue::Bool(true))};
  ss.schema_url = "https://opentelemetry.io/schemas/1.20.0";

  base::Span span;
  span.trace_id = *base::TraceId::FromHex("ABCDEF0123456789abcdef0123456789");
  span.span_id = *base::SpanId::FromHex("00000000000000ff");
  span.parent_span_id = *base::SpanId::FromHex("0a0b0c0d0e0f1011");
  span.trace_state = "rojo=00f067aa0ba902b7";
  span.flags = 0x101;
  span.name = "ManufacturingApproved";
  span.kind = base::SpanKind::kProducer;
  span.start_time_unix_nano = 1'700'000'000'000'000'001ULL;
  span.end_time_unix_nano = 18'446'744'073'709'551'615ULL;

  base::AnyValue bytes;
  bytes.type = T::kBytes;
  bytes.string_value = std::string("\x00\xfe\x7f", 3);
  base::AnyValue array;
  array.type = T::kArray;
  array.array_values = {base::AnyValue::String("x"), base::AnyValue::Double(-0.25), bytes};
  base::AnyValue kvlist;
  kvlist.type = T::kKvList;
  kvlist.kvlist_values = {Kv("nested", array), Kv("flag", base::AnyValue::Bool(false))};
  span.attributes = {Kv("order_id", base::AnyValue::String("ord-9")),
                     Kv("big", base::AnyValue::Int(INT64_MIN)),
                     Kv("ok", base::AnyValue::Bool(true)),
                     Kv("ratio", base::AnyValue::Double(0.1)),
                     Kv("bytes", bytes),
                     Kv("array", array),
                     Kv("kvlist", kvlist),
                     Kv("empty", base::AnyValue())};
  span.dropped_attributes_count = 4;
  span.events = {base::SpanEvent{
      1'700'000'000'000'000'500ULL, "retry", {Kv("attempt", base::AnyValue::Int(2))}, 1}};
  span.dropped_events_count = 5;
  span.links = {base::SpanLink{*base::TraceId::FromHex("11111111111111111111111111111111"),
                               *base::SpanId::FromHex("2222222222222222"),
                               "k=v",
                               {Kv("reason", base::AnyValue::String("follows"))},
                               6,
                               1}};
  span.dropped_links_count = 7;
  span.status.code = base::StatusCode::kOk;
  span.status.message = "fine";
  ss.spans.push_back(span);

  base::Span minimal;
  minimal.trace_id = span.trace_id;
  minimal.span_id = *base::SpanId::FromHex("0000000000000001");
  minimal.name = "minimal";
  ss.spans.push_back(minimal);

  rs.scope_spans.push_back(std::move(ss));
  return rs;
}

TEST(JsonCodecTest, ToJsonWritesOtlpJsonConventions) {
  nlohmann::json j = ToJson(FullResourceSpans());
  const nlohmann::json& span = j["scopeSpans"][0]["spans"][0];
  EXPECT_EQ(span["traceId"], "abcdef0123456789abcdef0123456789");
  EXPECT_EQ(span["spanId"], "00000000000000ff");
  EXPECT_EQ(span["parentSpanId"], "0a0b0c0d0e0f1011");
  ASSERT_TRUE(span["startTimeUnixNano"].is_string());
  EXPECT_EQ(span["startTimeUnixNano"], "1700000000000000001");
  EXPECT_EQ(span["endTimeUnixNano"], "18446744073709551615");
  ASSERT_TRUE(span["kind"].is_number_integer());
  EXPECT_EQ(span["kind"], 4);
  EXPECT_EQ(span["status"]["code"], 1);
  EXPECT_EQ(span["name"], "ManufacturingApproved");
  EXPECT_EQ(span["events"][0]["timeUnixNano"], "1700000000000000500");
  EXPECT_EQ(span["links"][0]["traceId"], "11111111111111111111111111111111");

  const nlohmann::json& attrs = span["attributes"];
  EXPECT_EQ(attrs[1]["key"], "big");
  EXPECT_EQ(attrs[1]["value"]["intValue"], "-9223372036854775808");
  EXPECT_EQ(attrs[4]["value"]["bytesValue"], "AP5/");
  EXPECT_EQ(j["resource"]["attributes"][0]["value"]["stringValue"], "mes-api");
  EXPECT_EQ(j["scopeSpans"][0]["scope"]["name"], "mes.production");

  // A root span carries no parentSpanId and an unset status no code.
  const nlohmann::json& minimal = j["scopeSpans"][0]["spans"][1];
  EXPECT_FALSE(minimal.contains("parentSpanId"));
  EXPECT_FALSE(minimal["status"].contains("code"));
}

TEST(JsonCodecTest, ToJsonRoundTripsThroughDecodeJsonRequest) {
  base::TraceBatch original;
  original.resource_spans.push_back(FullResourceSpans());
  nlohmann::json request = {
      {"resourceSpans", nlohmann::json::array({ToJson(original.resource_spans[0])})}};

  absl::StatusOr<DecodedRequest> decoded = DecodeJsonRequest(request.dump());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->rejected_spans, 0);
  EXPECT_EQ(BatchDifferences(original, decoded->batch), "");
}

// The model promises to serve back what a client sent; the scope's dropped attribute count
// is part of it.
TEST(JsonCodecTest, ToJsonKeepsScopeDroppedAttributesCount) {
  base::TraceBatch original;
  original.resource_spans.push_back(FullResourceSpans());
  original.resource_spans[0].scope_spans[0].scope.dropped_attributes_count = 8;

  nlohmann::json j = ToJson(original.resource_spans[0]);
  EXPECT_EQ(j["scopeSpans"][0]["scope"].value("droppedAttributesCount", 0), 8);

  nlohmann::json request = {{"resourceSpans", nlohmann::json::array({j})}};
  absl::StatusOr<DecodedRequest> decoded = DecodeJsonRequest(request.dump());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(BatchDifferences(original, decoded->batch), "");
}

}  // namespace
}  // namespace ordertrace::otlp
