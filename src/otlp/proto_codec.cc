#include "otlp/proto_codec.h"

#include <google/protobuf/arena.h>

#include <map>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace ordertrace::otlp {
namespace {

namespace pb_common = opentelemetry::proto::common::v1;
namespace pb_trace = opentelemetry::proto::trace::v1;
namespace pb_collector = opentelemetry::proto::collector::trace::v1;

model::AnyValue ToModel(const pb_common::AnyValue& in);

// A span gains at most three derived attributes (the price calculation is also a transition).
constexpr size_t kDerivedAttributeRoom = 3;

model::Attributes ToModel(const google::protobuf::RepeatedPtrField<pb_common::KeyValue>& in,
                          size_t room = 0) {
  model::Attributes out;
  out.reserve(in.size() + room);
  for (const pb_common::KeyValue& kv : in) {
    out.push_back(model::KeyValue{kv.key(), ToModel(kv.value())});
  }
  return out;
}

model::AnyValue ToModel(const pb_common::AnyValue& in) {
  using T = model::AnyValue::Type;
  model::AnyValue out;
  switch (in.value_case()) {
    case pb_common::AnyValue::kStringValue:
      out.type = T::kString;
      out.string_value = in.string_value();
      break;
    case pb_common::AnyValue::kBoolValue:
      out.type = T::kBool;
      out.bool_value = in.bool_value();
      break;
    case pb_common::AnyValue::kIntValue:
      out.type = T::kInt;
      out.int_value = in.int_value();
      break;
    case pb_common::AnyValue::kDoubleValue:
      out.type = T::kDouble;
      out.double_value = in.double_value();
      break;
    case pb_common::AnyValue::kArrayValue:
      out.type = T::kArray;
      out.array_values.reserve(in.array_value().values_size());
      for (const auto& v : in.array_value().values()) out.array_values.push_back(ToModel(v));
      break;
    case pb_common::AnyValue::kKvlistValue:
      out.type = T::kKvList;
      out.kvlist_values = ToModel(in.kvlist_value().values());
      break;
    case pb_common::AnyValue::kBytesValue:
      out.type = T::kBytes;
      out.string_value = in.bytes_value();
      break;
    case pb_common::AnyValue::VALUE_NOT_SET:
      break;
  }
  return out;
}

// Converts one span; false (with a reason) when OTLP calls it invalid.
bool ToModel(const pb_trace::Span& in, model::Span& out, std::string& reason) {
  auto trace_id = model::TraceId::FromBytes(in.trace_id());
  if (!trace_id || !trace_id->IsValid()) {
    reason = "span has an invalid trace_id (must be 16 bytes, not all zero)";
    return false;
  }
  auto span_id = model::SpanId::FromBytes(in.span_id());
  if (!span_id || !span_id->IsValid()) {
    reason = "span has an invalid span_id (must be 8 bytes, not all zero)";
    return false;
  }
  if (!in.parent_span_id().empty()) {
    auto parent = model::SpanId::FromBytes(in.parent_span_id());
    if (!parent) {
      reason = "span has an invalid parent_span_id (must be empty or 8 bytes)";
      return false;
    }
    out.parent_span_id = *parent;
  }
  if (in.name().empty()) {
    reason = "span has no name";
    return false;
  }
  out.trace_id = *trace_id;
  out.span_id = *span_id;
  out.trace_state = in.trace_state();
  out.flags = in.flags();
  out.name = in.name();
  out.kind = static_cast<model::SpanKind>(in.kind());
  out.start_time_unix_nano = in.start_time_unix_nano();
  out.end_time_unix_nano = in.end_time_unix_nano();
  // Room for the attributes ingest derives (lifecycle/derived_attributes.h), so adding them
  // does not move every attribute (a measurable share of ingest CPU otherwise).
  out.attributes = ToModel(in.attributes(), kDerivedAttributeRoom);
  out.dropped_attributes_count = in.dropped_attributes_count();
  out.events.reserve(in.events_size());
  for (const auto& e : in.events()) {
    out.events.push_back(model::SpanEvent{e.time_unix_nano(), e.name(), ToModel(e.attributes()),
                                          e.dropped_attributes_count()});
  }
  out.dropped_events_count = in.dropped_events_count();
  out.links.reserve(in.links_size());
  for (const auto& l : in.links()) {
    auto link_trace = model::TraceId::FromBytes(l.trace_id());
    auto link_span = model::SpanId::FromBytes(l.span_id());
    if (!link_trace || !link_span) {
      ++out.dropped_links_count;  // a malformed link costs the link, not the span
      continue;
    }
    out.links.push_back(model::SpanLink{*link_trace, *link_span, l.trace_state(),
                                        ToModel(l.attributes()), l.dropped_attributes_count(),
                                        l.flags()});
  }
  out.dropped_links_count += in.dropped_links_count();
  out.status.code = static_cast<model::StatusCode>(in.status().code());
  out.status.message = in.status().message();
  return true;
}

template <typename ResourceSpansList>
DecodedRequest ConvertResourceSpans(const ResourceSpansList& list) {
  DecodedRequest out;
  out.batch.resource_spans.reserve(list.size());
  std::string reason;
  for (const pb_trace::ResourceSpans& rs_in : list) {
    model::ResourceSpans rs;
    rs.resource.attributes = ToModel(rs_in.resource().attributes());
    rs.resource.dropped_attributes_count = rs_in.resource().dropped_attributes_count();
    rs.schema_url = rs_in.schema_url();
    rs.scope_spans.reserve(rs_in.scope_spans_size());
    for (const pb_trace::ScopeSpans& ss_in : rs_in.scope_spans()) {
      model::ScopeSpans ss;
      ss.scope.name = ss_in.scope().name();
      ss.scope.version = ss_in.scope().version();
      ss.scope.attributes = ToModel(ss_in.scope().attributes());
      ss.scope.dropped_attributes_count = ss_in.scope().dropped_attributes_count();
      ss.schema_url = ss_in.schema_url();
      ss.spans.reserve(ss_in.spans_size());
      for (const pb_trace::Span& span_in : ss_in.spans()) {
        model::Span span;
        if (ToModel(span_in, span, reason)) {
          ss.spans.push_back(std::move(span));
        } else {
          out.Reject(reason);
        }
      }
      if (!ss.spans.empty()) rs.scope_spans.push_back(std::move(ss));
    }
    if (!rs.scope_spans.empty()) out.batch.resource_spans.push_back(std::move(rs));
  }
  return out;
}

void ToProto(const model::AnyValue& in, pb_common::AnyValue& out);

void ToProto(const model::Attributes& in,
             google::protobuf::RepeatedPtrField<pb_common::KeyValue>& out) {
  out.Reserve(static_cast<int>(in.size()));
  for (const model::KeyValue& kv : in) {
    pb_common::KeyValue* o = out.Add();
    o->set_key(kv.key);
    ToProto(kv.value, *o->mutable_value());
  }
}

void ToProto(const model::AnyValue& in, pb_common::AnyValue& out) {
  using T = model::AnyValue::Type;
  switch (in.type) {
    case T::kString:
      out.set_string_value(in.string_value);
      break;
    case T::kBool:
      out.set_bool_value(in.bool_value);
      break;
    case T::kInt:
      out.set_int_value(in.int_value);
      break;
    case T::kDouble:
      out.set_double_value(in.double_value);
      break;
    case T::kArray:
      for (const auto& v : in.array_values) ToProto(v, *out.mutable_array_value()->add_values());
      out.mutable_array_value();
      break;
    case T::kKvList:
      ToProto(in.kvlist_values, *out.mutable_kvlist_value()->mutable_values());
      break;
    case T::kBytes:
      out.set_bytes_value(in.string_value);
      break;
    case T::kEmpty:
      break;
  }
}

void ToProto(const model::Span& in, pb_trace::Span& out) {
  out.set_trace_id(std::string(in.trace_id.AsBytes()));
  out.set_span_id(std::string(in.span_id.AsBytes()));
  out.set_trace_state(in.trace_state);
  if (in.parent_span_id.IsValid()) out.set_parent_span_id(std::string(in.parent_span_id.AsBytes()));
  out.set_flags(in.flags);
  out.set_name(in.name);
  out.set_kind(static_cast<pb_trace::Span::SpanKind>(in.kind));
  out.set_start_time_unix_nano(in.start_time_unix_nano);
  out.set_end_time_unix_nano(in.end_time_unix_nano);
  ToProto(in.attributes, *out.mutable_attributes());
  out.set_dropped_attributes_count(in.dropped_attributes_count);
  for (const model::SpanEvent& e : in.events) {
    pb_trace::Span::Event* o = out.add_events();
    o->set_time_unix_nano(e.time_unix_nano);
    o->set_name(e.name);
    ToProto(e.attributes, *o->mutable_attributes());
    o->set_dropped_attributes_count(e.dropped_attributes_count);
  }
  out.set_dropped_events_count(in.dropped_events_count);
  for (const model::SpanLink& l : in.links) {
    pb_trace::Span::Link* o = out.add_links();
    o->set_trace_id(std::string(l.trace_id.AsBytes()));
    o->set_span_id(std::string(l.span_id.AsBytes()));
    o->set_trace_state(l.trace_state);
    ToProto(l.attributes, *o->mutable_attributes());
    o->set_dropped_attributes_count(l.dropped_attributes_count);
    o->set_flags(l.flags);
  }
  out.set_dropped_links_count(in.dropped_links_count);
  if (in.status.code != model::StatusCode::kUnset || !in.status.message.empty()) {
    out.mutable_status()->set_code(static_cast<pb_trace::Status::StatusCode>(in.status.code));
    out.mutable_status()->set_message(in.status.message);
  }
}

}  // namespace

absl::StatusOr<DecodedRequest> DecodeProtobufRequest(std::string_view body) {
  google::protobuf::Arena arena;
  auto* request =
      google::protobuf::Arena::CreateMessage<pb_collector::ExportTraceServiceRequest>(&arena);
  if (!request->ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return absl::InvalidArgumentError("request body is not a valid OTLP protobuf message");
  }
  return ConvertResourceSpans(request->resource_spans());
}

DecodedRequest FromProto(const pb_collector::ExportTraceServiceRequest& request) {
  return ConvertResourceSpans(request.resource_spans());
}

std::string EncodeSpan(const model::Span& span) {
  google::protobuf::Arena arena;
  auto* message = google::protobuf::Arena::CreateMessage<pb_trace::Span>(&arena);
  ToProto(span, *message);
  return message->SerializeAsString();
}

absl::StatusOr<model::Span> DecodeSpan(std::string_view encoded) {
  google::protobuf::Arena arena;
  auto* message = google::protobuf::Arena::CreateMessage<pb_trace::Span>(&arena);
  if (!message->ParseFromArray(encoded.data(), static_cast<int>(encoded.size()))) {
    return absl::InvalidArgumentError("not a valid OTLP span");
  }
  model::Span span;
  std::string reason;
  if (!ToModel(*message, span, reason)) return absl::InvalidArgumentError(reason);
  return span;
}

void ToProto(const model::ResourceSpans& rs, pb_trace::ResourceSpans& out) {
  ToProto(rs.resource.attributes, *out.mutable_resource()->mutable_attributes());
  out.mutable_resource()->set_dropped_attributes_count(rs.resource.dropped_attributes_count);
  out.set_schema_url(rs.schema_url);
}

void ToProto(const model::ScopeSpans& ss, pb_trace::ScopeSpans& out) {
  out.mutable_scope()->set_name(ss.scope.name);
  out.mutable_scope()->set_version(ss.scope.version);
  ToProto(ss.scope.attributes, *out.mutable_scope()->mutable_attributes());
  out.mutable_scope()->set_dropped_attributes_count(ss.scope.dropped_attributes_count);
  out.set_schema_url(ss.schema_url);
}

std::vector<EncodedTrace> EncodeProtobufByTrace(const model::TraceBatch& batch) {
  google::protobuf::Arena arena;
  struct Part {
    pb_trace::TracesData* data;
    uint64_t latest_end = 0;
    // The entries for the resource and scope being walked; reset when they change.
    const model::ResourceSpans* rs_of = nullptr;
    pb_trace::ResourceSpans* rs = nullptr;
    const model::ScopeSpans* ss_of = nullptr;
    pb_trace::ScopeSpans* ss = nullptr;
  };
  std::map<model::TraceId, Part> parts;
  for (const model::ResourceSpans& rs : batch.resource_spans) {
    for (const model::ScopeSpans& ss : rs.scope_spans) {
      for (const model::Span& span : ss.spans) {
        Part& part = parts[span.trace_id];
        if (part.data == nullptr) {
          part.data = google::protobuf::Arena::CreateMessage<pb_trace::TracesData>(&arena);
        }
        if (part.rs_of != &rs) {
          part.rs_of = &rs;
          part.rs = part.data->add_resource_spans();
          ToProto(rs, *part.rs);
          part.ss_of = nullptr;
        }
        if (part.ss_of != &ss) {
          part.ss_of = &ss;
          part.ss = part.rs->add_scope_spans();
          ToProto(ss, *part.ss);
        }
        ToProto(span, *part.ss->add_spans());
        part.latest_end = std::max(part.latest_end, span.end_time_unix_nano);
      }
    }
  }
  std::vector<EncodedTrace> out;
  out.reserve(parts.size());
  for (auto& [trace_id, part] : parts) {
    out.push_back(EncodedTrace{trace_id, part.latest_end, part.data->SerializeAsString()});
  }
  return out;
}

std::string EncodeProtobuf(const model::TraceBatch& batch) {
  google::protobuf::Arena arena;
  auto* data = google::protobuf::Arena::CreateMessage<pb_trace::TracesData>(&arena);
  for (const model::ResourceSpans& rs : batch.resource_spans) {
    pb_trace::ResourceSpans* rs_out = data->add_resource_spans();
    ToProto(rs, *rs_out);
    for (const model::ScopeSpans& ss : rs.scope_spans) {
      pb_trace::ScopeSpans* ss_out = rs_out->add_scope_spans();
      ToProto(ss, *ss_out);
      for (const model::Span& span : ss.spans) ToProto(span, *ss_out->add_spans());
    }
  }
  return data->SerializeAsString();
}

}  // namespace ordertrace::otlp
