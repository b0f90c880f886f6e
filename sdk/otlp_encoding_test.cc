#include "sdk/otlp_encoding.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace ordertrace::sdk {
namespace {

namespace pb_collector = opentelemetry::proto::collector::trace::v1;
namespace pb_common = opentelemetry::proto::common::v1;
namespace pb_trace = opentelemetry::proto::trace::v1;

using ::testing::ElementsAre;
using ::testing::SizeIs;

pb_collector::ExportTraceServiceRequest Decode(const std::string& body) {
  pb_collector::ExportTraceServiceRequest request;
  EXPECT_TRUE(request.ParseFromString(body));
  return request;
}

std::string Bytes(std::string_view raw) { return std::string(raw); }

base::TraceId TraceIdOf(uint8_t last) {
  base::TraceId id;
  id.bytes[0] = 0xab;
  id.bytes[15] = last;
  return id;
}

base::SpanId SpanIdOf(uint8_t last) {
  base::SpanId id;
  id.bytes[0] = 0xcd;
  id.bytes[7] = last;
  return id;
}

// Every kind of attribute value, nested ones included.
base::Attributes EveryKindOfValue() {
  base::AnyValue array;
  array.type = base::AnyValue::Type::kArray;
  array.array_values = {base::AnyValue::String("a"), base::AnyValue::Int(2)};
  base::AnyValue kvlist;
  kvlist.type = base::AnyValue::Type::kKvList;
  kvlist.kvlist_values = {{"inner", base::AnyValue::Bool(true)}};
  base::AnyValue bytes;
  bytes.type = base::AnyValue::Type::kBytes;
  bytes.string_value = std::string("\x00\xff", 2);
  return {{"s", base::AnyValue::String("text")},
          {"b", base::AnyValue::Bool(true)},
          {"i", base::AnyValue::Int(-42)},
          {"d", base::AnyValue::Double(2.5)},
          {"arr", array},
          {"kv", kvlist},
          {"bytes", bytes},
          {"empty", base::AnyValue{}}};
}

// A span with every field set to something other than its default.
base::Span FullSpan() {
  base::Span span;
  span.trace_id = TraceIdOf(1);
  span.span_id = SpanIdOf(2);
  span.trace_state = "vendor=1";
  span.parent_span_id = SpanIdOf(3);
  span.flags = 0x101;
  span.name = "mes.price.calc";
  span.kind = base::SpanKind::kConsumer;
  span.start_time_unix_nano = 1'700'000'000'000'000'001ULL;
  span.end_time_unix_nano = 1'700'000'000'500'000'002ULL;
  span.attributes = EveryKindOfValue();
  span.dropped_attributes_count = 3;
  span.events = {base::SpanEvent{1'700'000'000'100'000'000ULL,
                                 "exception",
                                 {{"exception.message", base::AnyValue::String("boom")}},
                                 4}};
  span.dropped_events_count = 5;
  span.links = {base::SpanLink{TraceIdOf(9),
                               SpanIdOf(8),
                               "other=2",
                               {{"messaging.operation", base::AnyValue::String("publish")}},
                               6,
                               0x100}};
  span.dropped_links_count = 7;
  span.status = base::SpanStatus{base::StatusCode::kError, "price request lost"};
  return span;
}

SpanData DataOf(base::Span span, std::shared_ptr<const base::Resource> resource,
                std::shared_ptr<const base::InstrumentationScope> scope) {
  return SpanData{std::move(span), std::move(resource), std::move(scope)};
}

void ExpectEveryKindOfValue(const google::protobuf::RepeatedPtrField<pb_common::KeyValue>& kvs) {
  ASSERT_THAT(kvs, SizeIs(8));
  EXPECT_EQ(kvs[0].key(), "s");
  EXPECT_EQ(kvs[0].value().string_value(), "text");
  EXPECT_TRUE(kvs[1].value().bool_value());
  EXPECT_EQ(kvs[2].value().int_value(), -42);
  EXPECT_EQ(kvs[3].value().double_value(), 2.5);
  ASSERT_TRUE(kvs[4].value().has_array_value());
  ASSERT_THAT(kvs[4].value().array_value().values(), SizeIs(2));
  EXPECT_EQ(kvs[4].value().array_value().values(0).string_value(), "a");
  EXPECT_EQ(kvs[4].value().array_value().values(1).int_value(), 2);
  ASSERT_TRUE(kvs[5].value().has_kvlist_value());
  ASSERT_THAT(kvs[5].value().kvlist_value().values(), SizeIs(1));
  EXPECT_EQ(kvs[5].value().kvlist_value().values(0).key(), "inner");
  EXPECT_TRUE(kvs[5].value().kvlist_value().values(0).value().bool_value());
  EXPECT_EQ(kvs[6].value().bytes_value(), std::string("\x00\xff", 2));
  EXPECT_EQ(kvs[7].key(), "empty");
  EXPECT_EQ(kvs[7].value().value_case(), pb_common::AnyValue::VALUE_NOT_SET);
}

TEST(OtlpEncodingTest, EverySpanFieldRoundTrips) {
  auto resource = std::make_shared<const base::Resource>(
      base::Resource{{{"service.name", base::AnyValue::String("mes-api")}}, 11});
  auto scope = std::make_shared<const base::InstrumentationScope>(
      base::InstrumentationScope{"mes", "1.2.3", {{"scope.attr", base::AnyValue::Int(1)}}, 12});
  std::vector<SpanData> spans = {DataOf(FullSpan(), resource, scope)};

  pb_collector::ExportTraceServiceRequest request = Decode(EncodeExportRequest(spans));

  ASSERT_THAT(request.resource_spans(), SizeIs(1));
  const pb_trace::ResourceSpans& rs = request.resource_spans(0);
  ASSERT_THAT(rs.resource().attributes(), SizeIs(1));
  EXPECT_EQ(rs.resource().attributes(0).key(), "service.name");
  EXPECT_EQ(rs.resource().attributes(0).value().string_value(), "mes-api");
  EXPECT_EQ(rs.resource().dropped_attributes_count(), 11u);
  ASSERT_THAT(rs.scope_spans(), SizeIs(1));
  const pb_trace::ScopeSpans& ss = rs.scope_spans(0);
  EXPECT_EQ(ss.scope().name(), "mes");
  EXPECT_EQ(ss.scope().version(), "1.2.3");
  ASSERT_THAT(ss.scope().attributes(), SizeIs(1));
  EXPECT_EQ(ss.scope().attributes(0).value().int_value(), 1);
  EXPECT_EQ(ss.scope().dropped_attributes_count(), 12u);
  ASSERT_THAT(ss.spans(), SizeIs(1));

  const base::Span want = FullSpan();
  const pb_trace::Span& got = ss.spans(0);
  EXPECT_EQ(got.trace_id(), Bytes(want.trace_id.AsBytes()));
  EXPECT_EQ(got.span_id(), Bytes(want.span_id.AsBytes()));
  EXPECT_EQ(got.trace_state(), "vendor=1");
  EXPECT_EQ(got.parent_span_id(), Bytes(want.parent_span_id.AsBytes()));
  EXPECT_EQ(got.flags(), 0x101u);
  EXPECT_EQ(got.name(), "mes.price.calc");
  EXPECT_EQ(got.kind(), pb_trace::Span::SPAN_KIND_CONSUMER);
  EXPECT_EQ(got.start_time_unix_nano(), want.start_time_unix_nano);
  EXPECT_EQ(got.end_time_unix_nano(), want.end_time_unix_nano);
  ExpectEveryKindOfValue(got.attributes());
  EXPECT_EQ(got.dropped_attributes_count(), 3u);

  ASSERT_THAT(got.events(), SizeIs(1));
  EXPECT_EQ(got.events(0).time_unix_nano(), want.events[0].time_unix_nano);
  EXPECT_EQ(got.events(0).name(), "exception");
  ASSERT_THAT(got.events(0).attributes(), SizeIs(1));
  EXPECT_EQ(got.events(0).attributes(0).value().string_value(), "boom");
  EXPECT_EQ(got.events(0).dropped_attributes_count(), 4u);
  EXPECT_EQ(got.dropped_events_count(), 5u);

  ASSERT_THAT(got.links(), SizeIs(1));
  EXPECT_EQ(got.links(0).trace_id(), Bytes(TraceIdOf(9).AsBytes()));
  EXPECT_EQ(got.links(0).span_id(), Bytes(SpanIdOf(8).AsBytes()));
  EXPECT_EQ(got.links(0).trace_state(), "other=2");
  ASSERT_THAT(got.links(0).attributes(), SizeIs(1));
  EXPECT_EQ(got.links(0).attributes(0).key(), "messaging.operation");
  EXPECT_EQ(got.links(0).dropped_attributes_count(), 6u);
  EXPECT_EQ(got.links(0).flags(), 0x100u);
  EXPECT_EQ(got.dropped_links_count(), 7u);

  ASSERT_TRUE(got.has_status());
  EXPECT_EQ(got.status().code(), pb_trace::Status::STATUS_CODE_ERROR);
  EXPECT_EQ(got.status().message(), "price request lost");
}

TEST(OtlpEncodingTest, EveryKindAndOkStatusMapToOtlp) {
  const std::vector<std::pair<base::SpanKind, pb_trace::Span::SpanKind>> kinds = {
      {base::SpanKind::kUnspecified, pb_trace::Span::SPAN_KIND_UNSPECIFIED},
      {base::SpanKind::kInternal, pb_trace::Span::SPAN_KIND_INTERNAL},
      {base::SpanKind::kServer, pb_trace::Span::SPAN_KIND_SERVER},
      {base::SpanKind::kClient, pb_trace::Span::SPAN_KIND_CLIENT},
      {base::SpanKind::kProducer, pb_trace::Span::SPAN_KIND_PRODUCER},
      {base::SpanKind::kConsumer, pb_trace::Span::SPAN_KIND_CONSUMER}};
  for (const auto& [kind, want] : kinds) {
    base::Span span;
    span.kind = kind;
    span.status.code = base::StatusCode::kOk;
    std::vector<SpanData> spans = {DataOf(span, nullptr, nullptr)};
    pb_collector::ExportTraceServiceRequest request = Decode(EncodeExportRequest(spans));
    const pb_trace::Span& got = request.resource_spans(0).scope_spans(0).spans(0);
    EXPECT_EQ(got.kind(), want);
    EXPECT_EQ(got.status().code(), pb_trace::Status::STATUS_CODE_OK);
  }
}

TEST(OtlpEncodingTest, RootSpanHasNoParentAndUnsetStatusIsLeftOut) {
  base::Span span;
  span.trace_id = TraceIdOf(1);
  span.span_id = SpanIdOf(1);
  std::vector<SpanData> spans = {DataOf(span, nullptr, nullptr)};

  pb_collector::ExportTraceServiceRequest request = Decode(EncodeExportRequest(spans));

  const pb_trace::Span& got = request.resource_spans(0).scope_spans(0).spans(0);
  EXPECT_TRUE(got.parent_span_id().empty());
  EXPECT_FALSE(got.has_status());
}

TEST(OtlpEncodingTest, GroupsByResourceThenScopeInOrderOfFirstAppearance) {
  auto shop = std::make_shared<const base::Resource>(
      base::Resource{{{"service.name", base::AnyValue::String("shop-api")}}, 0});
  auto mes = std::make_shared<const base::Resource>(
      base::Resource{{{"service.name", base::AnyValue::String("mes-api")}}, 0});
  auto http = std::make_shared<const base::InstrumentationScope>(
      base::InstrumentationScope{"http", "", {}, 0});
  auto amqp = std::make_shared<const base::InstrumentationScope>(
      base::InstrumentationScope{"amqp", "", {}, 0});
  auto named = [](std::string name) {
    base::Span span;
    span.name = std::move(name);
    return span;
  };
  std::vector<SpanData> spans = {
      DataOf(named("shop/http/1"), shop, http), DataOf(named("mes/amqp/1"), mes, amqp),
      DataOf(named("shop/amqp/1"), shop, amqp), DataOf(named("shop/http/2"), shop, http),
      DataOf(named("none/none/1"), nullptr, nullptr)};

  pb_collector::ExportTraceServiceRequest request = Decode(EncodeExportRequest(spans));

  std::vector<std::string> layout;
  for (const pb_trace::ResourceSpans& rs : request.resource_spans()) {
    std::string service = rs.resource().attributes().empty()
                              ? ""
                              : rs.resource().attributes(0).value().string_value();
    for (const pb_trace::ScopeSpans& ss : rs.scope_spans()) {
      for (const pb_trace::Span& span : ss.spans()) {
        layout.push_back(service + "|" + ss.scope().name() + "|" + span.name());
      }
    }
  }
  EXPECT_THAT(layout,
              ElementsAre("shop-api|http|shop/http/1", "shop-api|http|shop/http/2",
                          "shop-api|amqp|shop/amqp/1", "mes-api|amqp|mes/amqp/1", "||none/none/1"));
  // A span without a resource or scope still has both, empty.
  EXPECT_TRUE(request.resource_spans(2).has_resource());
  EXPECT_TRUE(request.resource_spans(2).scope_spans(0).has_scope());
}

TEST(OtlpEncodingTest, NoSpansIsAnEmptyRequest) { EXPECT_EQ(EncodeExportRequest({}), ""); }

}  // namespace
}  // namespace ordertrace::sdk
