#include "otlp/proto_codec.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace ordertrace::otlp {
namespace {

namespace pb_common = opentelemetry::proto::common::v1;
namespace pb_trace = opentelemetry::proto::trace::v1;
namespace pb_collector = opentelemetry::proto::collector::trace::v1;

using ::testing::HasSubstr;
using ::testing::SizeIs;
using T = base::AnyValue::Type;

const std::string kTraceId("\x5b\x8e\xff\xf7\x98\x03\x81\x03\xd2\x69\xb6\x33\x81\x3f\xc6\x0c", 16);
const std::string kSpanId("\xee\xe1\x9b\x7e\xc3\xc1\xb1\x74", 8);
const std::string kParentId("\xee\xe1\x9b\x7e\xc3\xc1\xb1\x73", 8);
const std::string kLinkTraceId("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10",
                               16);
const std::string kLinkSpanId("\x11\x12\x13\x14\x15\x16\x17\x18", 8);
const std::string kRawBytes("\x00\x01\xff\x80", 4);

void AddString(google::protobuf::RepeatedPtrField<pb_common::KeyValue>& attrs,
               const std::string& key, const std::string& value) {
  pb_common::KeyValue* kv = attrs.Add();
  kv->set_key(key);
  kv->mutable_value()->set_string_value(value);
}

// A span that uses every field OTLP defines, with attributes of every AnyValue type.
void FillFullSpan(pb_trace::Span& span) {
  span.set_trace_id(kTraceId);
  span.set_span_id(kSpanId);
  span.set_parent_span_id(kParentId);
  span.set_trace_state("vendor=abc,other=1");
  span.set_flags(0x301);
  span.set_name("PriceCalculation");
  span.set_kind(pb_trace::Span::SPAN_KIND_CONSUMER);
  span.set_start_time_unix_nano(1'700'000'000'123'456'789ULL);
  span.set_end_time_unix_nano(1'700'000'001'987'654'321ULL);

  auto& attrs = *span.mutable_attributes();
  AddString(attrs, "order_id", "ord-42");
  {
    pb_common::KeyValue* kv = attrs.Add();
    kv->set_key("retry");
    kv->mutable_value()->set_bool_value(true);
  }
  {
    pb_common::KeyValue* kv = attrs.Add();
    kv->set_key("count");
    kv->mutable_value()->set_int_value(-9'000'000'000'000LL);
  }
  {
    pb_common::KeyValue* kv = attrs.Add();
    kv->set_key("price");
    kv->mutable_value()->set_double_value(1234.5625);
  }
  {
    pb_common::KeyValue* kv = attrs.Add();
    kv->set_key("blob");
    kv->mutable_value()->set_bytes_value(kRawBytes);
  }
  {
    // ["a", 7, ["nested"], {inner: false}]
    pb_common::KeyValue* kv = attrs.Add();
    kv->set_key("list");
    pb_common::ArrayValue* array = kv->mutable_value()->mutable_array_value();
    array->add_values()->set_string_value("a");
    array->add_values()->set_int_value(7);
    array->add_values()->mutable_array_value()->add_values()->set_string_value("nested");
    pb_common::KeyValue* inner = array->add_values()->mutable_kvlist_value()->add_values();
    inner->set_key("inner");
    inner->mutable_value()->set_bool_value(false);
  }
  {
    // {stones: {count: 3, kind: "diamond"}, raw: bytes}
    pb_common::KeyValue* kv = attrs.Add();
    kv->set_key("map");
    pb_common::KeyValueList* list = kv->mutable_value()->mutable_kvlist_value();
    pb_common::KeyValue* stones = list->add_values();
    stones->set_key("stones");
    pb_common::KeyValueList* inner = stones->mutable_value()->mutable_kvlist_value();
    pb_common::KeyValue* count = inner->add_values();
    count->set_key("count");
    count->mutable_value()->set_int_value(3);
    AddString(*inner->mutable_values(), "kind", "diamond");
    pb_common::KeyValue* raw = list->add_values();
    raw->set_key("raw");
    raw->mutable_value()->set_bytes_value(kRawBytes);
  }
  {
    pb_common::KeyValue* kv = attrs.Add();
    kv->set_key("empty");
    kv->mutable_value();
  }
  span.set_dropped_attributes_count(2);

  pb_trace::Span::Event* event = span.add_events();
  event->set_time_unix_nano(1'700'000'000'500'000'000ULL);
  event->set_name("exception");
  AddString(*event->mutable_attributes(), "exception.type", "Timeout");
  event->set_dropped_attributes_count(1);
  span.add_events()->set_name("second");
  span.set_dropped_events_count(3);

  pb_trace::Span::Link* link = span.add_links();
  link->set_trace_id(kLinkTraceId);
  link->set_span_id(kLinkSpanId);
  link->set_trace_state("k=v");
  AddString(*link->mutable_attributes(), "link.reason", "retry");
  link->set_dropped_attributes_count(4);
  link->set_flags(1);
  span.set_dropped_links_count(5);

  span.mutable_status()->set_code(pb_trace::Status::STATUS_CODE_ERROR);
  span.mutable_status()->set_message("pricing engine timed out");
}

pb_collector::ExportTraceServiceRequest FullRequest() {
  pb_collector::ExportTraceServiceRequest request;
  pb_trace::ResourceSpans* rs = request.add_resource_spans();
  AddString(*rs->mutable_resource()->mutable_attributes(), "service.name", "crm-api");
  rs->mutable_resource()->set_dropped_attributes_count(6);
  rs->set_schema_url("https://opentelemetry.io/schemas/1.21.0");
  pb_trace::ScopeSpans* ss = rs->add_scope_spans();
  ss->mutable_scope()->set_name("crm.pricing");
  ss->mutable_scope()->set_version("2.3.4");
  AddString(*ss->mutable_scope()->mutable_attributes(), "scope.attr", "x");
  ss->mutable_scope()->set_dropped_attributes_count(7);
  ss->set_schema_url("https://opentelemetry.io/schemas/1.20.0");
  FillFullSpan(*ss->add_spans());
  return request;
}

pb_trace::Span ValidSpan(const std::string& name, char last_byte) {
  pb_trace::Span span;
  std::string trace_id = kTraceId;
  trace_id.back() = last_byte;
  std::string span_id = kSpanId;
  span_id.back() = last_byte;
  span.set_trace_id(trace_id);
  span.set_span_id(span_id);
  span.set_name(name);
  return span;
}

// Checks every field that FullRequest() set, as the model holds it.
void ExpectFullBatch(const DecodedRequest& decoded) {
  EXPECT_EQ(decoded.rejected_spans, 0);
  EXPECT_EQ(decoded.rejection_message, "");
  ASSERT_THAT(decoded.batch.resource_spans, SizeIs(1));
  const base::ResourceSpans& rs = decoded.batch.resource_spans[0];
  EXPECT_EQ(base::ServiceName(rs.resource), "crm-api");
  EXPECT_EQ(rs.resource.dropped_attributes_count, 6u);
  EXPECT_EQ(rs.schema_url, "https://opentelemetry.io/schemas/1.21.0");
  ASSERT_THAT(rs.scope_spans, SizeIs(1));
  const base::ScopeSpans& ss = rs.scope_spans[0];
  EXPECT_EQ(ss.scope.name, "crm.pricing");
  EXPECT_EQ(ss.scope.version, "2.3.4");
  ASSERT_THAT(ss.scope.attributes, SizeIs(1));
  EXPECT_EQ(ss.scope.attributes[0].key, "scope.attr");
  EXPECT_EQ(ss.scope.attributes[0].value, base::AnyValue::String("x"));
  EXPECT_EQ(ss.scope.dropped_attributes_count, 7u);
  EXPECT_EQ(ss.schema_url, "https://opentelemetry.io/schemas/1.20.0");
  ASSERT_THAT(ss.spans, SizeIs(1));

  const base::Span& span = ss.spans[0];
  EXPECT_EQ(span.trace_id.ToHex(), "5b8efff798038103d269b633813fc60c");
  EXPECT_EQ(span.span_id.ToHex(), "eee19b7ec3c1b174");
  EXPECT_EQ(span.parent_span_id.ToHex(), "eee19b7ec3c1b173");
  EXPECT_EQ(span.trace_state, "vendor=abc,other=1");
  EXPECT_EQ(span.flags, 0x301u);
  EXPECT_EQ(span.name, "PriceCalculation");
  EXPECT_EQ(span.kind, base::SpanKind::kConsumer);
  EXPECT_EQ(span.start_time_unix_nano, 1'700'000'000'123'456'789ULL);
  EXPECT_EQ(span.end_time_unix_nano, 1'700'000'001'987'654'321ULL);
  EXPECT_EQ(span.dropped_attributes_count, 2u);

  const base::Attributes& attrs = span.attributes;
  ASSERT_THAT(attrs, SizeIs(8));
  EXPECT_EQ(attrs[0].key, "order_id");
  EXPECT_EQ(attrs[0].value, base::AnyValue::String("ord-42"));
  EXPECT_EQ(attrs[1].value, base::AnyValue::Bool(true));
  EXPECT_EQ(attrs[2].value, base::AnyValue::Int(-9'000'000'000'000LL));
  EXPECT_EQ(attrs[3].value, base::AnyValue::Double(1234.5625));
  EXPECT_EQ(attrs[4].key, "blob");
  EXPECT_EQ(attrs[4].value.type, T::kBytes);
  EXPECT_EQ(attrs[4].value.string_value, kRawBytes);

  const base::AnyValue& list = attrs[5].value;
  EXPECT_EQ(attrs[5].key, "list");
  ASSERT_EQ(list.type, T::kArray);
  ASSERT_THAT(list.array_values, SizeIs(4));
  EXPECT_EQ(list.array_values[0], base::AnyValue::String("a"));
  EXPECT_EQ(list.array_values[1], base::AnyValue::Int(7));
  ASSERT_EQ(list.array_values[2].type, T::kArray);
  ASSERT_THAT(list.array_values[2].array_values, SizeIs(1));
  EXPECT_EQ(list.array_values[2].array_values[0], base::AnyValue::String("nested"));
  ASSERT_EQ(list.array_values[3].type, T::kKvList);
  ASSERT_THAT(list.array_values[3].kvlist_values, SizeIs(1));
  EXPECT_EQ(list.array_values[3].kvlist_values[0].key, "inner");
  EXPECT_EQ(list.array_values[3].kvlist_values[0].value, base::AnyValue::Bool(false));

  const base::AnyValue& map = attrs[6].value;
  EXPECT_EQ(attrs[6].key, "map");
  ASSERT_EQ(map.type, T::kKvList);
  ASSERT_THAT(map.kvlist_values, SizeIs(2));
  EXPECT_EQ(map.kvlist_values[0].key, "stones");
  const base::AnyValue& stones = map.kvlist_values[0].value;
  ASSERT_EQ(stones.type, T::kKvList);
  ASSERT_THAT(stones.kvlist_values, SizeIs(2));
  EXPECT_EQ(stones.kvlist_values[0].key, "count");
  EXPECT_EQ(stones.kvlist_values[0].value, base::AnyValue::Int(3));
  EXPECT_EQ(stones.kvlist_values[1].key, "kind");
  EXPECT_EQ(stones.kvlist_values[1].value, base::AnyValue::String("diamond"));
  EXPECT_EQ(map.kvlist_values[1].key, "raw");
  EXPECT_EQ(map.kvlist_values[1].value.type, T::kBytes);
  EXPECT_EQ(map.kvlist_values[1].value.string_value, kRawBytes);

  EXPECT_EQ(attrs[7].key, "empty");
  EXPECT_EQ(attrs[7].value.type, T::kEmpty);

  ASSERT_THAT(span.events, SizeIs(2));
  EXPECT_EQ(span.events[0].time_unix_nano, 1'700'000'000'500'000'000ULL);
  EXPECT_EQ(span.events[0].name, "exception");
  ASSERT_THAT(span.events[0].attributes, SizeIs(1));
  EXPECT_EQ(span.events[0].attributes[0].key, "exception.type");
  EXPECT_EQ(span.events[0].attributes[0].value, base::AnyValue::String("Timeout"));
  EXPECT_EQ(span.events[0].dropped_attributes_count, 1u);
  EXPECT_EQ(span.events[1].name, "second");
  EXPECT_EQ(span.dropped_events_count, 3u);

  ASSERT_THAT(span.links, SizeIs(1));
  const base::SpanLink& link = span.links[0];
  EXPECT_EQ(link.trace_id.AsBytes(), kLinkTraceId);
  EXPECT_EQ(link.span_id.AsBytes(), kLinkSpanId);
  EXPECT_EQ(link.trace_state, "k=v");
  ASSERT_THAT(link.attributes, SizeIs(1));
  EXPECT_EQ(link.attributes[0].value, base::AnyValue::String("retry"));
  EXPECT_EQ(link.dropped_attributes_count, 4u);
  EXPECT_EQ(link.flags, 1u);
  EXPECT_EQ(span.dropped_links_count, 5u);

  EXPECT_EQ(span.status.code, base::StatusCode::kError);
  EXPECT_EQ(span.status.message, "pricing engine timed out");
}

TEST(ProtoCodecTest, FromProtoKeepsEveryField) { ExpectFullBatch(FromProto(FullRequest())); }

TEST(ProtoCodecTest, DecodeProtobufRequestKeepsEveryField) {
  absl::StatusOr<DecodedRequest> decoded = DecodeProtobufRequest(FullRequest().SerializeAsString());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectFullBatch(*decoded);
}

TEST(ProtoCodecTest, EncodeProtobufRoundTripsToTheSameMessage) {
  pb_collector::ExportTraceServiceRequest original = FullRequest();
  absl::StatusOr<DecodedRequest> decoded = DecodeProtobufRequest(original.SerializeAsString());
  ASSERT_TRUE(decoded.ok()) << decoded.status();

  std::string encoded = EncodeProtobuf(decoded->batch);

  // TracesData and ExportTraceServiceRequest share the wire shape.
  pb_collector::ExportTraceServiceRequest reparsed;
  ASSERT_TRUE(reparsed.ParseFromString(encoded));
  google::protobuf::util::MessageDifferencer differencer;
  std::string differences;
  differencer.ReportDifferencesToString(&differences);
  EXPECT_TRUE(differencer.Compare(original, reparsed)) << differences;

  absl::StatusOr<DecodedRequest> again = DecodeProtobufRequest(encoded);
  ASSERT_TRUE(again.ok()) << again.status();
  ExpectFullBatch(*again);
}

// The request FullRequest() makes, plus a second trace in its scope, a second scope and a second
// resource (without schema urls), so that splitting by trace has something to split.
pb_collector::ExportTraceServiceRequest MixedRequest() {
  pb_collector::ExportTraceServiceRequest request = FullRequest();
  pb_trace::ScopeSpans* first_scope = request.mutable_resource_spans(0)->mutable_scope_spans(0);
  *first_scope->add_spans() = ValidSpan("other-trace", 2);
  pb_trace::ScopeSpans* second_scope = request.mutable_resource_spans(0)->add_scope_spans();
  second_scope->mutable_scope()->set_name("crm.audit");
  *second_scope->add_spans() = ValidSpan("audit", 2);
  FillFullSpan(*second_scope->add_spans());
  second_scope->mutable_spans(1)->set_span_id(std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  pb_trace::ResourceSpans* second_resource = request.add_resource_spans();
  AddString(*second_resource->mutable_resource()->mutable_attributes(), "service.name", "mes-api");
  *second_resource->add_scope_spans()->add_spans() = ValidSpan("mes", 1);
  return request;
}

// Each trace's part, parsed, equals the part encoded from the model alone.
void ExpectSameParts(const std::vector<EncodedTrace>& copied,
                     const std::vector<EncodedTrace>& encoded) {
  ASSERT_EQ(copied.size(), encoded.size());
  for (size_t i = 0; i < copied.size(); ++i) {
    EXPECT_EQ(copied[i].trace_id, encoded[i].trace_id);
    EXPECT_EQ(copied[i].latest_end_unix_nano, encoded[i].latest_end_unix_nano);
    pb_trace::TracesData a, b;
    ASSERT_TRUE(a.ParseFromString(copied[i].encoded));
    ASSERT_TRUE(b.ParseFromString(encoded[i].encoded));
    google::protobuf::util::MessageDifferencer differencer;
    std::string differences;
    differencer.ReportDifferencesToString(&differences);
    EXPECT_TRUE(differencer.Compare(b, a)) << "part " << i << ": " << differences;
  }
}

TEST(ProtoCodecTest, SpansDecodedWithTheirBodyPointIntoIt) {
  auto body = std::make_shared<const std::string>(MixedRequest().SerializeAsString());
  absl::StatusOr<DecodedRequest> decoded = DecodeProtobufRequest(body);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->batch.SpanCount(), 5u);
  EXPECT_EQ(decoded->received.body(), body);
  const std::vector<base::ResourceSpans>& resources = decoded->batch.resource_spans;
  for (size_t r = 0; r < resources.size(); ++r) {
    for (size_t s = 0; s < resources[r].scope_spans.size(); ++s) {
      for (size_t i = 0; i < resources[r].scope_spans[s].spans.size(); ++i) {
        const base::Span& span = resources[r].scope_spans[s].spans[i];
        const ReceivedBytes::Span* wire = decoded->received.Find(r, s, i);
        ASSERT_NE(wire, nullptr) << span.name;
        EXPECT_GE(wire->bytes.data(), body->data());
        EXPECT_LE(wire->bytes.data() + wire->bytes.size(), body->data() + body->size());
        EXPECT_EQ(wire->attribute_count, span.attributes.size());
        pb_trace::Span parsed;
        ASSERT_TRUE(
            parsed.ParseFromArray(wire->bytes.data(), static_cast<int>(wire->bytes.size())));
        EXPECT_EQ(parsed.name(), span.name);
      }
    }
  }
  // Without a body to keep, nothing points into one.
  absl::StatusOr<DecodedRequest> plain = DecodeProtobufRequest(std::string_view(*body));
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->received.body(), nullptr);
  EXPECT_EQ(plain->received.Find(0, 0, 0), nullptr);
}

TEST(ProtoCodecTest, CopiedSpanBytesEncodeAsTheModelWould) {
  auto body = std::make_shared<const std::string>(MixedRequest().SerializeAsString());
  absl::StatusOr<DecodedRequest> decoded = DecodeProtobufRequest(body);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  std::vector<EncodedTrace> copied = EncodeProtobufByTrace(decoded->batch, &decoded->received);
  EXPECT_EQ(copied.size(), 3u);
  ExpectSameParts(copied, EncodeProtobufByTrace(decoded->batch));
}

TEST(ProtoCodecTest, AttributesAddedAfterDecodingAreStoredAfterTheReceivedOnes) {
  auto body = std::make_shared<const std::string>(MixedRequest().SerializeAsString());
  absl::StatusOr<DecodedRequest> decoded = DecodeProtobufRequest(body);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  base::Span& span = decoded->batch.resource_spans[0].scope_spans[0].spans[0];
  const size_t received = span.attributes.size();
  base::AnyValue list;
  list.type = T::kArray;
  list.array_values = {base::AnyValue::String("x"), base::AnyValue::Int(2)};
  span.attributes.push_back({"stage_duration", base::AnyValue::Double(1.25)});
  span.attributes.push_back({"derived.text", base::AnyValue::String("ok")});
  span.attributes.push_back({"derived.count", base::AnyValue::Int(-3)});
  span.attributes.push_back({"derived.flag", base::AnyValue::Bool(true)});
  span.attributes.push_back({"derived.list", list});
  span.attributes.push_back({"derived.empty", base::AnyValue()});
  // Lengths past 127 take two varint bytes, in the key and in the value.
  span.attributes.push_back({std::string(130, 'k'), base::AnyValue::String(std::string(300, 'v'))});

  std::vector<EncodedTrace> copied = EncodeProtobufByTrace(decoded->batch, &decoded->received);
  ExpectSameParts(copied, EncodeProtobufByTrace(decoded->batch));

  auto part = std::find_if(copied.begin(), copied.end(),
                           [&](const EncodedTrace& p) { return p.trace_id == span.trace_id; });
  ASSERT_NE(part, copied.end());
  absl::StatusOr<DecodedRequest> stored = DecodeProtobufRequest(part->encoded);
  ASSERT_TRUE(stored.ok());
  const base::Span& back = stored->batch.resource_spans[0].scope_spans[0].spans[0];
  ASSERT_EQ(back.attributes.size(), received + 7);
  EXPECT_EQ(back.attributes[received + 6].value.string_value, std::string(300, 'v'));
  EXPECT_EQ(back.attributes[received].key, "stage_duration");
  EXPECT_EQ(back.attributes[received].value, base::AnyValue::Double(1.25));
  EXPECT_EQ(back.attributes[received + 4].value, list);
  EXPECT_EQ(back.attributes[received + 5].value.type, T::kEmpty);

  // One span alone, as the sampler holds it, carries them too.
  absl::StatusOr<base::Span> alone = DecodeSpan(EncodeSpan(span, decoded->received.Find(0, 0, 0)));
  ASSERT_TRUE(alone.ok()) << alone.status();
  EXPECT_EQ(alone->attributes, span.attributes);
  EXPECT_EQ(alone->name, span.name);
}

// A span whose entry is forgotten (it changed after decoding) is encoded from the model, never
// copied from its received bytes.
TEST(ProtoCodecTest, ASpanWithoutItsEntryIsEncodedFromTheModel) {
  auto body = std::make_shared<const std::string>(MixedRequest().SerializeAsString());
  absl::StatusOr<DecodedRequest> decoded = DecodeProtobufRequest(body);
  ASSERT_TRUE(decoded.ok());
  base::Span& changed = decoded->batch.resource_spans[0].scope_spans[0].spans[1];
  changed.name = "renamed";
  decoded->received.Forget(0, 0, 1);

  std::vector<EncodedTrace> parts = EncodeProtobufByTrace(decoded->batch, &decoded->received);
  auto part = std::find_if(parts.begin(), parts.end(),
                           [&](const EncodedTrace& p) { return p.trace_id == changed.trace_id; });
  ASSERT_NE(part, parts.end());
  absl::StatusOr<DecodedRequest> back = DecodeProtobufRequest(part->encoded);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->batch.resource_spans[0].scope_spans[0].spans[0].name, "renamed");
  ExpectSameParts(parts, EncodeProtobufByTrace(decoded->batch));
}

// Interleaved traces over two resources and three scopes: each part holds exactly its trace's
// spans, in the order they came, under their own resource and scope; parts come by trace id.
TEST(ProtoCodecTest, EachTracesPartHoldsItsSpansInOrderUnderTheirResourceAndScope) {
  auto trace = [](uint8_t n) {
    base::TraceId id;
    id.bytes[0] = 0x10;
    id.bytes[15] = n;
    return id;
  };
  base::TraceBatch batch;
  // (resource, scope, trace, name, end): traces 3, 1, 2 interleaved.
  const struct {
    const char* service;
    const char* scope;
    uint8_t trace;
    const char* name;
    uint64_t end;
  } spans[] = {{"shop-api", "http", 3, "s1", 50}, {"shop-api", "http", 1, "s2", 70},
               {"shop-api", "http", 3, "s3", 40}, {"shop-api", "amqp", 1, "s4", 90},
               {"shop-api", "amqp", 2, "s5", 10}, {"mes-api", "http", 3, "s6", 60},
               {"mes-api", "http", 1, "s7", 20}};
  uint8_t span_number = 1;
  for (const auto& s : spans) {
    if (batch.resource_spans.empty() ||
        base::ServiceNameView(batch.resource_spans.back().resource) != s.service) {
      batch.resource_spans.emplace_back();
      batch.resource_spans.back().resource.attributes.push_back(
          {"service.name", base::AnyValue::String(s.service)});
    }
    base::ResourceSpans& rs = batch.resource_spans.back();
    if (rs.scope_spans.empty() || rs.scope_spans.back().scope.name != s.scope) {
      rs.scope_spans.emplace_back();
      rs.scope_spans.back().scope.name = s.scope;
    }
    base::Span span;
    span.trace_id = trace(s.trace);
    span.span_id.bytes[7] = span_number++;
    span.name = s.name;
    span.start_time_unix_nano = 1;
    span.end_time_unix_nano = s.end;
    rs.scope_spans.back().spans.push_back(span);
  }

  std::vector<EncodedTrace> parts = EncodeProtobufByTrace(batch);
  ASSERT_EQ(parts.size(), 3u);
  // "service/scope/name" of each span of a part, in order.
  auto flatten = [](const EncodedTrace& part) {
    absl::StatusOr<DecodedRequest> back = DecodeProtobufRequest(part.encoded);
    EXPECT_TRUE(back.ok()) << back.status();
    std::vector<std::string> out;
    if (!back.ok()) return out;
    for (const base::ResourceSpans& rs : back->batch.resource_spans) {
      for (const base::ScopeSpans& ss : rs.scope_spans) {
        for (const base::Span& span : ss.spans) {
          EXPECT_EQ(span.trace_id, part.trace_id) << span.name;
          out.push_back(std::string(base::ServiceNameView(rs.resource)) + "/" + ss.scope.name +
                        "/" + span.name);
        }
      }
    }
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(parts[0].trace_id, trace(1));
  EXPECT_EQ(flatten(parts[0]), (V{"shop-api/http/s2", "shop-api/amqp/s4", "mes-api/http/s7"}));
  EXPECT_EQ(parts[0].latest_end_unix_nano, 90u);
  EXPECT_EQ(parts[1].trace_id, trace(2));
  EXPECT_EQ(flatten(parts[1]), (V{"shop-api/amqp/s5"}));
  EXPECT_EQ(parts[1].latest_end_unix_nano, 10u);
  EXPECT_EQ(parts[2].trace_id, trace(3));
  EXPECT_EQ(flatten(parts[2]), (V{"shop-api/http/s1", "shop-api/http/s3", "mes-api/http/s6"}));
  EXPECT_EQ(parts[2].latest_end_unix_nano, 60u);
}

TEST(ProtoCodecTest, RootSpanHasAllZeroParentAndEncodesWithoutOne) {
  pb_collector::ExportTraceServiceRequest request;
  *request.add_resource_spans()->add_scope_spans()->add_spans() = ValidSpan("root", 1);
  DecodedRequest decoded = FromProto(request);
  ASSERT_EQ(decoded.batch.SpanCount(), 1u);
  const base::Span& span = decoded.batch.resource_spans[0].scope_spans[0].spans[0];
  EXPECT_FALSE(span.parent_span_id.IsValid());

  pb_trace::TracesData reparsed;
  ASSERT_TRUE(reparsed.ParseFromString(EncodeProtobuf(decoded.batch)));
  EXPECT_TRUE(reparsed.resource_spans(0).scope_spans(0).spans(0).parent_span_id().empty());
}

TEST(ProtoCodecTest, UndecodableBytesAreInvalidArgument) {
  // A length-delimited field 1 that claims 5 bytes but carries 2, and a field numbered 0.
  for (const std::string& body : {std::string("\x0a\x05"
                                              "ab",
                                              4),
                                  std::string("\x00\x01", 2), std::string("\xff\xff\xff")}) {
    SCOPED_TRACE(testing::PrintToString(body));
    absl::StatusOr<DecodedRequest> decoded = DecodeProtobufRequest(body);
    ASSERT_FALSE(decoded.ok());
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_FALSE(decoded.status().message().empty());
  }
}

TEST(ProtoCodecTest, EmptyRequestHasNoSpansAndNoError) {
  absl::StatusOr<DecodedRequest> decoded = DecodeProtobufRequest("");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->batch.SpanCount(), 0u);
  EXPECT_TRUE(decoded->batch.resource_spans.empty());
  EXPECT_EQ(decoded->rejected_spans, 0);
  EXPECT_EQ(decoded->rejection_message, "");

  DecodedRequest from_proto = FromProto(pb_collector::ExportTraceServiceRequest());
  EXPECT_EQ(from_proto.batch.SpanCount(), 0u);
  EXPECT_EQ(from_proto.rejected_spans, 0);
}

struct InvalidSpanCase {
  const char* what;
  void (*spoil)(pb_trace::Span&);
  const char* reason_mentions;
};

const InvalidSpanCase kInvalidSpans[] = {
    {"trace id of 15 bytes", [](pb_trace::Span& s) { s.set_trace_id(kTraceId.substr(1)); },
     "trace_id"},
    {"trace id of 17 bytes", [](pb_trace::Span& s) { s.set_trace_id(kTraceId + "x"); }, "trace_id"},
    {"missing trace id", [](pb_trace::Span& s) { s.clear_trace_id(); }, "trace_id"},
    {"all-zero trace id", [](pb_trace::Span& s) { s.set_trace_id(std::string(16, '\0')); },
     "trace_id"},
    {"span id of 7 bytes", [](pb_trace::Span& s) { s.set_span_id(kSpanId.substr(1)); }, "span_id"},
    {"missing span id", [](pb_trace::Span& s) { s.clear_span_id(); }, "span_id"},
    {"all-zero span id", [](pb_trace::Span& s) { s.set_span_id(std::string(8, '\0')); }, "span_id"},
    {"parent id of 5 bytes",
     [](pb_trace::Span& s) { s.set_parent_span_id("\x01\x02\x03\x04\x05"); }, "parent_span_id"},
    {"empty name", [](pb_trace::Span& s) { s.clear_name(); }, "name"},
};

TEST(ProtoCodecTest, EachKindOfInvalidSpanIsRejectedAloneWithAReason) {
  for (const InvalidSpanCase& c : kInvalidSpans) {
    SCOPED_TRACE(c.what);
    pb_collector::ExportTraceServiceRequest request;
    pb_trace::ScopeSpans* ss = request.add_resource_spans()->add_scope_spans();
    *ss->add_spans() = ValidSpan("before", 1);
    pb_trace::Span* bad = ss->add_spans();
    *bad = ValidSpan("bad", 2);
    c.spoil(*bad);
    *ss->add_spans() = ValidSpan("after", 3);

    absl::StatusOr<DecodedRequest> decoded = DecodeProtobufRequest(request.SerializeAsString());
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(decoded->rejected_spans, 1);
    EXPECT_THAT(decoded->rejection_message, HasSubstr(c.reason_mentions));
    ASSERT_EQ(decoded->batch.SpanCount(), 2u);
    const auto& spans = decoded->batch.resource_spans[0].scope_spans[0].spans;
    EXPECT_EQ(spans[0].name, "before");
    EXPECT_EQ(spans[1].name, "after");
  }
}

TEST(ProtoCodecTest, InvalidSpansAreCountedAndTheFirstReasonIsKept) {
  pb_collector::ExportTraceServiceRequest request;
  pb_trace::ResourceSpans* rs = request.add_resource_spans();
  AddString(*rs->mutable_resource()->mutable_attributes(), "service.name", "shop-api");
  pb_trace::ScopeSpans* ss = rs->add_scope_spans();
  for (const InvalidSpanCase& c : kInvalidSpans) {
    pb_trace::Span* bad = ss->add_spans();
    *bad = ValidSpan(c.what, 9);
    c.spoil(*bad);
  }
  *ss->add_spans() = ValidSpan("survivor", 4);
  // A scope and a resource whose spans are all invalid disappear entirely.
  pb_trace::ResourceSpans* all_bad = request.add_resource_spans();
  pb_trace::Span* bad = all_bad->add_scope_spans()->add_spans();
  *bad = ValidSpan("nameless", 5);
  bad->clear_name();

  DecodedRequest decoded = FromProto(request);
  EXPECT_EQ(decoded.rejected_spans, static_cast<int64_t>(std::size(kInvalidSpans)) + 1);
  EXPECT_EQ(decoded.rejection_message,
            "span has an invalid trace_id (must be 16 bytes, not all zero)");
  ASSERT_THAT(decoded.batch.resource_spans, SizeIs(1));
  EXPECT_EQ(base::ServiceName(decoded.batch.resource_spans[0].resource), "shop-api");
  ASSERT_EQ(decoded.batch.SpanCount(), 1u);
  EXPECT_EQ(decoded.batch.resource_spans[0].scope_spans[0].spans[0].name, "survivor");

  // With the body kept, the survivor's bytes are its own, not a refused neighbour's.
  auto body = std::make_shared<const std::string>(request.SerializeAsString());
  absl::StatusOr<DecodedRequest> kept = DecodeProtobufRequest(body);
  ASSERT_TRUE(kept.ok());
  ASSERT_EQ(kept->batch.SpanCount(), 1u);
  const ReceivedBytes::Span* survivor = kept->received.Find(0, 0, 0);
  ASSERT_NE(survivor, nullptr);
  pb_trace::Span parsed;
  ASSERT_TRUE(
      parsed.ParseFromArray(survivor->bytes.data(), static_cast<int>(survivor->bytes.size())));
  EXPECT_EQ(parsed.name(), "survivor");
}

TEST(ProtoCodecTest, MalformedLinkCostsTheLinkNotTheSpan) {
  pb_collector::ExportTraceServiceRequest request;
  pb_trace::Span* span = request.add_resource_spans()->add_scope_spans()->add_spans();
  *span = ValidSpan("linked", 1);
  pb_trace::Span::Link* bad_link = span->add_links();
  bad_link->set_trace_id("short");
  bad_link->set_span_id(kLinkSpanId);
  pb_trace::Span::Link* good_link = span->add_links();
  good_link->set_trace_id(kLinkTraceId);
  good_link->set_span_id(kLinkSpanId);
  span->set_dropped_links_count(2);

  DecodedRequest decoded = FromProto(request);
  EXPECT_EQ(decoded.rejected_spans, 0);
  ASSERT_EQ(decoded.batch.SpanCount(), 1u);
  const base::Span& out = decoded.batch.resource_spans[0].scope_spans[0].spans[0];
  ASSERT_THAT(out.links, SizeIs(1));
  EXPECT_EQ(out.links[0].trace_id.AsBytes(), kLinkTraceId);
  EXPECT_EQ(out.dropped_links_count, 3u);
}

}  // namespace
}  // namespace ordertrace::otlp
