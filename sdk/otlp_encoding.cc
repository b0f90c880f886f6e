#include "sdk/otlp_encoding.h"

#include <google/protobuf/arena.h>

#include <vector>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace ordertrace::sdk {
namespace {

namespace pb_collector = opentelemetry::proto::collector::trace::v1;
namespace pb_common = opentelemetry::proto::common::v1;
namespace pb_resource = opentelemetry::proto::resource::v1;
namespace pb_trace = opentelemetry::proto::trace::v1;

using PbAttributes = google::protobuf::RepeatedPtrField<pb_common::KeyValue>;

void ToProto(const base::AnyValue& in, pb_common::AnyValue& out);

void ToProto(const base::Attributes& in, PbAttributes& out) {
  out.Reserve(static_cast<int>(in.size()));
  for (const base::KeyValue& kv : in) {
    pb_common::KeyValue* added = out.Add();
    added->set_key(kv.key);
    ToProto(kv.value, *added->mutable_value());
  }
}

void ToProto(const base::AnyValue& in, pb_common::AnyValue& out) {
  using Type = base::AnyValue::Type;
  switch (in.type) {
    case Type::kString:
      out.set_string_value(in.string_value);
      break;
    case Type::kBool:
      out.set_bool_value(in.bool_value);
      break;
    case Type::kInt:
      out.set_int_value(in.int_value);
      break;
    case Type::kDouble:
      out.set_double_value(in.double_value);
      break;
    case Type::kArray: {
      // mutable_ first, so that an empty array is still sent as an array.
      pb_common::ArrayValue* array = out.mutable_array_value();
      for (const base::AnyValue& value : in.array_values) ToProto(value, *array->add_values());
      break;
    }
    case Type::kKvList:
      ToProto(in.kvlist_values, *out.mutable_kvlist_value()->mutable_values());
      break;
    case Type::kBytes:
      out.set_bytes_value(in.string_value);
      break;
    case Type::kEmpty:
      break;
  }
}

void ToProto(const base::SpanEvent& in, pb_trace::Span::Event& out) {
  out.set_time_unix_nano(in.time_unix_nano);
  out.set_name(in.name);
  ToProto(in.attributes, *out.mutable_attributes());
  out.set_dropped_attributes_count(in.dropped_attributes_count);
}

void ToProto(const base::SpanLink& in, pb_trace::Span::Link& out) {
  out.set_trace_id(in.trace_id.bytes.data(), in.trace_id.kSize);
  out.set_span_id(in.span_id.bytes.data(), in.span_id.kSize);
  out.set_trace_state(in.trace_state);
  ToProto(in.attributes, *out.mutable_attributes());
  out.set_dropped_attributes_count(in.dropped_attributes_count);
  out.set_flags(in.flags);
}

void ToProto(const base::SpanStatus& in, pb_trace::Span& out) {
  // An unset status with no message is the default: OTLP leaves the field out.
  if (in.code == base::StatusCode::kUnset && in.message.empty()) return;
  out.mutable_status()->set_code(static_cast<pb_trace::Status::StatusCode>(in.code));
  out.mutable_status()->set_message(in.message);
}

void ToProto(const base::Span& in, pb_trace::Span& out) {
  out.set_trace_id(in.trace_id.bytes.data(), in.trace_id.kSize);
  out.set_span_id(in.span_id.bytes.data(), in.span_id.kSize);
  out.set_trace_state(in.trace_state);
  // A root span has no parent field at all, not eight zero bytes.
  if (in.parent_span_id.IsValid())
    out.set_parent_span_id(in.parent_span_id.bytes.data(), in.parent_span_id.kSize);
  out.set_flags(in.flags);
  out.set_name(in.name);
  out.set_kind(static_cast<pb_trace::Span::SpanKind>(in.kind));
  out.set_start_time_unix_nano(in.start_time_unix_nano);
  out.set_end_time_unix_nano(in.end_time_unix_nano);
  ToProto(in.attributes, *out.mutable_attributes());
  out.set_dropped_attributes_count(in.dropped_attributes_count);
  for (const base::SpanEvent& event : in.events) ToProto(event, *out.add_events());
  out.set_dropped_events_count(in.dropped_events_count);
  for (const base::SpanLink& link : in.links) ToProto(link, *out.add_links());
  out.set_dropped_links_count(in.dropped_links_count);
  ToProto(in.status, out);
}

// A null resource or scope is written as an empty one, present in the message.
void ToProto(const base::Resource* in, pb_trace::ResourceSpans& out) {
  pb_resource::Resource* resource = out.mutable_resource();
  if (in == nullptr) return;
  ToProto(in->attributes, *resource->mutable_attributes());
  resource->set_dropped_attributes_count(in->dropped_attributes_count);
}

void ToProto(const base::InstrumentationScope* in, pb_trace::ScopeSpans& out) {
  pb_common::InstrumentationScope* scope = out.mutable_scope();
  if (in == nullptr) return;
  scope->set_name(in->name);
  scope->set_version(in->version);
  ToProto(in->attributes, *scope->mutable_attributes());
  scope->set_dropped_attributes_count(in->dropped_attributes_count);
}

// Where each resource's and scope's spans go in the request. A batch holds few distinct
// resources and scopes (one tracer provider, a few tracers), so a linear search beats a map.
class RequestGroups {
 public:
  explicit RequestGroups(pb_collector::ExportTraceServiceRequest& request) : request_(request) {}

  pb_trace::ScopeSpans& For(const SpanData& data) {
    size_t r = 0;
    while (r < resources_.size() && resources_[r].key != data.resource.get()) ++r;
    if (r == resources_.size()) AddResource(data.resource.get());
    ResourceGroup& group = resources_[r];

    size_t s = 0;
    while (s < group.scope_keys.size() && group.scope_keys[s] != data.scope.get()) ++s;
    if (s == group.scope_keys.size()) {
      group.scope_keys.push_back(data.scope.get());
      ToProto(data.scope.get(), *group.message->add_scope_spans());
    }
    return *group.message->mutable_scope_spans(static_cast<int>(s));
  }

 private:
  struct ResourceGroup {
    const base::Resource* key;
    pb_trace::ResourceSpans* message;
    std::vector<const base::InstrumentationScope*> scope_keys;
  };

  void AddResource(const base::Resource* key) {
    pb_trace::ResourceSpans* message = request_.add_resource_spans();
    ToProto(key, *message);
    resources_.push_back(ResourceGroup{key, message, {}});
  }

  pb_collector::ExportTraceServiceRequest& request_;
  std::vector<ResourceGroup> resources_;
};

}  // namespace

std::string EncodeExportRequest(std::span<const SpanData> spans) {
  google::protobuf::Arena arena;
  auto* request =
      google::protobuf::Arena::CreateMessage<pb_collector::ExportTraceServiceRequest>(&arena);
  RequestGroups groups(*request);
  for (const SpanData& data : spans) ToProto(data.span, *groups.For(data).add_spans());
  return request->SerializeAsString();
}

}  // namespace ordertrace::sdk
