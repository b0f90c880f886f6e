#include "otlp/proto_codec.h"

#include <google/protobuf/arena.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <functional>
#include <tuple>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otlp/wire_format.h"

namespace ordertrace::otlp {
namespace {

namespace pb_common = opentelemetry::proto::common::v1;
namespace pb_trace = opentelemetry::proto::trace::v1;
namespace pb_collector = opentelemetry::proto::collector::trace::v1;

base::AnyValue ToModel(const pb_common::AnyValue& in);

// A span gains at most three derived attributes (the price calculation is also a transition).
constexpr size_t kDerivedAttributeRoom = 3;

base::Attributes ToModel(const google::protobuf::RepeatedPtrField<pb_common::KeyValue>& in,
                          size_t room = 0) {
  base::Attributes out;
  out.reserve(in.size() + room);
  for (const pb_common::KeyValue& kv : in) {
    out.push_back(base::KeyValue{kv.key(), ToModel(kv.value())});
  }
  return out;
}

base::AnyValue ToModel(const pb_common::AnyValue& in) {
  using T = base::AnyValue::Type;
  base::AnyValue out;
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
bool ToModel(const pb_trace::Span& in, base::Span& out, std::string& reason) {
  auto trace_id = base::TraceId::FromBytes(in.trace_id());
  if (!trace_id || !trace_id->IsValid()) {
    reason = "span has an invalid trace_id (must be 16 bytes, not all zero)";
    return false;
  }
  auto span_id = base::SpanId::FromBytes(in.span_id());
  if (!span_id || !span_id->IsValid()) {
    reason = "span has an invalid span_id (must be 8 bytes, not all zero)";
    return false;
  }
  if (!in.parent_span_id().empty()) {
    auto parent = base::SpanId::FromBytes(in.parent_span_id());
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
  out.kind = static_cast<base::SpanKind>(in.kind());
  out.start_time_unix_nano = in.start_time_unix_nano();
  out.end_time_unix_nano = in.end_time_unix_nano();
  // Room for the attributes ingest derives (lifecycle/derived_attributes.h), so adding them
  // does not move every attribute (a measurable share of ingest CPU otherwise).
  out.attributes = ToModel(in.attributes(), kDerivedAttributeRoom);
  out.dropped_attributes_count = in.dropped_attributes_count();
  out.events.reserve(in.events_size());
  for (const auto& e : in.events()) {
    out.events.push_back(base::SpanEvent{e.time_unix_nano(), e.name(), ToModel(e.attributes()),
                                          e.dropped_attributes_count()});
  }
  out.dropped_events_count = in.dropped_events_count();
  out.links.reserve(in.links_size());
  for (const auto& l : in.links()) {
    auto link_trace = base::TraceId::FromBytes(l.trace_id());
    auto link_span = base::SpanId::FromBytes(l.span_id());
    if (!link_trace || !link_span) {
      ++out.dropped_links_count;  // a malformed link costs the link, not the span
      continue;
    }
    out.links.push_back(base::SpanLink{*link_trace, *link_span, l.trace_state(),
                                        ToModel(l.attributes()), l.dropped_attributes_count(),
                                        l.flags()});
  }
  out.dropped_links_count += in.dropped_links_count();
  out.status.code = static_cast<base::StatusCode>(in.status().code());
  out.status.message = in.status().message();
  return true;
}

// The received bytes of every span in `body`, in order (refused ones included), or an empty
// vector when the walk does not find them (then spans are encoded again when stored).
std::vector<std::string_view> SpanBytes(std::string_view body) {
  using wire::WireType;
  std::vector<std::string_view> spans;
  // ExportTraceServiceRequest.resource_spans = 1, ResourceSpans.scope_spans = 2,
  // ScopeSpans.spans = 2 (the same numbers in TracesData).
  auto in_scope = [&](uint32_t field, WireType type, std::string_view value) {
    if (field == 2 && type == WireType::kLen) spans.push_back(value);
    return true;
  };
  auto in_resource = [&](uint32_t field, WireType type, std::string_view value) {
    return field != 2 || type != WireType::kLen || wire::ForEachField(value, in_scope);
  };
  auto in_request = [&](uint32_t field, WireType type, std::string_view value) {
    return field != 1 || type != WireType::kLen || wire::ForEachField(value, in_resource);
  };
  if (!wire::ForEachField(body, in_request)) spans.clear();
  return spans;
}

// `span_bytes`: SpanBytes() of the body the list was parsed from, kept alive by `body`; empty
// when the body is not kept.
template <typename ResourceSpansList>
DecodedRequest ConvertResourceSpans(const ResourceSpansList& list,
                                    const std::vector<std::string_view>& span_bytes = {},
                                    const std::shared_ptr<const std::string>& body = nullptr) {
  size_t span_index = 0;
  const bool with_wire = body != nullptr && !span_bytes.empty();
  DecodedRequest out;
  out.batch.resource_spans.reserve(list.size());
  std::string reason;
  for (const pb_trace::ResourceSpans& rs_in : list) {
    base::ResourceSpans rs;
    rs.resource.attributes = ToModel(rs_in.resource().attributes());
    rs.resource.dropped_attributes_count = rs_in.resource().dropped_attributes_count();
    rs.schema_url = rs_in.schema_url();
    if (with_wire) rs.wire_body = body;
    rs.scope_spans.reserve(rs_in.scope_spans_size());
    for (const pb_trace::ScopeSpans& ss_in : rs_in.scope_spans()) {
      base::ScopeSpans ss;
      ss.scope.name = ss_in.scope().name();
      ss.scope.version = ss_in.scope().version();
      ss.scope.attributes = ToModel(ss_in.scope().attributes());
      ss.scope.dropped_attributes_count = ss_in.scope().dropped_attributes_count();
      ss.schema_url = ss_in.schema_url();
      ss.spans.reserve(ss_in.spans_size());
      for (const pb_trace::Span& span_in : ss_in.spans()) {
        base::Span span;
        const size_t index = span_index++;
        if (ToModel(span_in, span, reason)) {
          if (with_wire && index < span_bytes.size()) {
            span.wire =
                base::SpanWire{span_bytes[index], static_cast<uint32_t>(span.attributes.size())};
          }
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

void ToProto(const base::AnyValue& in, pb_common::AnyValue& out);

void ToProto(const base::Attributes& in,
             google::protobuf::RepeatedPtrField<pb_common::KeyValue>& out) {
  out.Reserve(static_cast<int>(in.size()));
  for (const base::KeyValue& kv : in) {
    pb_common::KeyValue* o = out.Add();
    o->set_key(kv.key);
    ToProto(kv.value, *o->mutable_value());
  }
}

void ToProto(const base::AnyValue& in, pb_common::AnyValue& out) {
  using T = base::AnyValue::Type;
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

void ToProto(const base::Span& in, pb_trace::Span& out) {
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
  for (const base::SpanEvent& e : in.events) {
    pb_trace::Span::Event* o = out.add_events();
    o->set_time_unix_nano(e.time_unix_nano);
    o->set_name(e.name);
    ToProto(e.attributes, *o->mutable_attributes());
    o->set_dropped_attributes_count(e.dropped_attributes_count);
  }
  out.set_dropped_events_count(in.dropped_events_count);
  for (const base::SpanLink& l : in.links) {
    pb_trace::Span::Link* o = out.add_links();
    o->set_trace_id(std::string(l.trace_id.AsBytes()));
    o->set_span_id(std::string(l.span_id.AsBytes()));
    o->set_trace_state(l.trace_state);
    ToProto(l.attributes, *o->mutable_attributes());
    o->set_dropped_attributes_count(l.dropped_attributes_count);
    o->set_flags(l.flags);
  }
  out.set_dropped_links_count(in.dropped_links_count);
  if (in.status.code != base::StatusCode::kUnset || !in.status.message.empty()) {
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

absl::StatusOr<DecodedRequest> DecodeProtobufRequest(std::shared_ptr<const std::string> body) {
  if (body == nullptr) return absl::InvalidArgumentError("no request body");
  google::protobuf::Arena arena;
  auto* request =
      google::protobuf::Arena::CreateMessage<pb_collector::ExportTraceServiceRequest>(&arena);
  if (!request->ParseFromArray(body->data(), static_cast<int>(body->size()))) {
    return absl::InvalidArgumentError("request body is not a valid OTLP protobuf message");
  }
  std::vector<std::string_view> span_bytes = SpanBytes(*body);
  // The walk sees what libprotobuf saw; if the counts ever disagree, encode instead.
  size_t parsed = 0;
  for (const auto& rs : request->resource_spans()) {
    for (const auto& ss : rs.scope_spans()) parsed += static_cast<size_t>(ss.spans_size());
  }
  if (parsed != span_bytes.size()) span_bytes.clear();
  return ConvertResourceSpans(request->resource_spans(), span_bytes, body);
}

DecodedRequest FromProto(const pb_collector::ExportTraceServiceRequest& request) {
  return ConvertResourceSpans(request.resource_spans());
}

std::string EncodeSpan(const base::Span& span) {
  google::protobuf::Arena arena;
  auto* message = google::protobuf::Arena::CreateMessage<pb_trace::Span>(&arena);
  ToProto(span, *message);
  return message->SerializeAsString();
}

absl::StatusOr<base::Span> DecodeSpan(std::string_view encoded) {
  google::protobuf::Arena arena;
  auto* message = google::protobuf::Arena::CreateMessage<pb_trace::Span>(&arena);
  if (!message->ParseFromArray(encoded.data(), static_cast<int>(encoded.size()))) {
    return absl::InvalidArgumentError("not a valid OTLP span");
  }
  base::Span span;
  std::string reason;
  if (!ToModel(*message, span, reason)) return absl::InvalidArgumentError(reason);
  return span;
}

void ToProto(const base::ResourceSpans& rs, pb_trace::ResourceSpans& out) {
  ToProto(rs.resource.attributes, *out.mutable_resource()->mutable_attributes());
  out.mutable_resource()->set_dropped_attributes_count(rs.resource.dropped_attributes_count);
  out.set_schema_url(rs.schema_url);
}

void ToProto(const base::ScopeSpans& ss, pb_trace::ScopeSpans& out) {
  out.mutable_scope()->set_name(ss.scope.name);
  out.mutable_scope()->set_version(ss.scope.version);
  ToProto(ss.scope.attributes, *out.mutable_scope()->mutable_attributes());
  out.mutable_scope()->set_dropped_attributes_count(ss.scope.dropped_attributes_count);
  out.set_schema_url(ss.schema_url);
}

namespace {

// A span's encoding as two pieces: its received bytes (may be empty) followed by `tail`, which
// holds the attributes appended since it was received, or the whole span encoded again.
struct SpanPieces {
  std::string_view received;
  std::string tail;

  size_t size() const { return received.size() + tail.size(); }
};

// A Span.attributes entry (field 9: a repeated field, so appending entries to a span's bytes
// extends it). Scalars (all the derived attributes are doubles) are written directly, sizes
// computed rather than measured on temporaries: a protobuf message, or even a string, per
// attribute cost more than copying the span it is appended to.

// The AnyValue of a scalar: string_value = 1, bool_value = 2, int_value = 3, double_value = 4.
// Zero for the other kinds, which go through a KeyValue message.
size_t ScalarValueSize(const base::AnyValue& value) {
  using T = base::AnyValue::Type;
  switch (value.type) {
    case T::kString:
      return wire::LenFieldSize(1, value.string_value.size());
    case T::kBool:
      return 2;
    case T::kInt:
      return 1 + wire::VarintSize(static_cast<uint64_t>(value.int_value));
    case T::kDouble:
      return 9;
    default:
      return 0;
  }
}

std::string KeyValueMessageBytes(const base::KeyValue& kv) {
  google::protobuf::Arena arena;
  auto* message = google::protobuf::Arena::CreateMessage<pb_common::KeyValue>(&arena);
  message->set_key(kv.key);
  ToProto(kv.value, *message->mutable_value());
  return message->SerializeAsString();
}

// The bytes AppendAttributeField writes for `kv`.
size_t AttributeFieldSize(const base::KeyValue& kv) {
  const size_t value_size = ScalarValueSize(kv.value);
  if (value_size == 0) return wire::LenFieldSize(9, KeyValueMessageBytes(kv).size());
  // KeyValue: key = 1, value = 2.
  return wire::LenFieldSize(
      9, wire::LenFieldSize(1, kv.key.size()) + wire::LenFieldSize(2, value_size));
}

void AppendAttributeField(std::string& out, const base::KeyValue& kv) {
  using T = base::AnyValue::Type;
  const size_t value_size = ScalarValueSize(kv.value);
  if (value_size == 0) {
    const std::string encoded = KeyValueMessageBytes(kv);
    wire::AppendLenHeader(out, 9, encoded.size());
    out += encoded;
    return;
  }
  // KeyValue: key = 1, value = 2.
  wire::AppendLenHeader(out, 9,
                        wire::LenFieldSize(1, kv.key.size()) + wire::LenFieldSize(2, value_size));
  wire::AppendLenHeader(out, 1, kv.key.size());
  out += kv.key;
  wire::AppendLenHeader(out, 2, value_size);
  switch (kv.value.type) {
    case T::kString:
      wire::AppendLenHeader(out, 1, kv.value.string_value.size());
      out += kv.value.string_value;
      break;
    case T::kBool:
      out.push_back(2 << 3);
      out.push_back(kv.value.bool_value ? 1 : 0);
      break;
    case T::kInt:
      out.push_back(3 << 3);
      wire::AppendVarint(out, static_cast<uint64_t>(kv.value.int_value));
      break;
    default: {  // kDouble: fixed64, little-endian
      out.push_back((4 << 3) | 1);
      uint64_t bits = 0;
      static_assert(sizeof(bits) == sizeof(kv.value.double_value));
      std::memcpy(&bits, &kv.value.double_value, sizeof(bits));
      char bytes[8];
      for (int byte = 0; byte < 8; ++byte) bytes[byte] = static_cast<char>(bits >> (8 * byte));
      out.append(bytes, sizeof(bytes));
      break;
    }
  }
}

bool HasUsableWire(const base::Span& span, const base::ResourceSpans& rs) {
  if (span.wire.bytes.empty() || rs.wire_body == nullptr) return false;
  // The bytes must lie inside the body this ResourceSpans keeps alive: a span moved into
  // another batch must not be read through a view of a body that may be gone.
  // std::less: the pointers may belong to unrelated buffers.
  const std::less<const char*> before;
  const char* begin = rs.wire_body->data();
  const char* end = begin + rs.wire_body->size();
  const char* data = span.wire.bytes.data();
  return !before(data, begin) && !before(end, data) &&
         span.wire.bytes.size() <= static_cast<size_t>(end - data) &&
         span.wire.attribute_count <= span.attributes.size();
}

SpanPieces PiecesOf(const base::Span& span, const base::ResourceSpans& rs) {
  SpanPieces pieces;
  if (!HasUsableWire(span, rs)) {
    pieces.tail = EncodeSpan(span);
    return pieces;
  }
  pieces.received = span.wire.bytes;
  for (size_t i = span.wire.attribute_count; i < span.attributes.size(); ++i) {
    AppendAttributeField(pieces.tail, span.attributes[i]);
  }
  return pieces;
}

std::string ResourceBytes(const base::ResourceSpans& rs) {
  google::protobuf::Arena arena;
  auto* out = google::protobuf::Arena::CreateMessage<pb_trace::ResourceSpans>(&arena);
  otlp::ToProto(rs, *out);
  return out->resource().SerializeAsString();
}

std::string ScopeBytes(const base::ScopeSpans& ss) {
  google::protobuf::Arena arena;
  auto* out = google::protobuf::Arena::CreateMessage<pb_trace::ScopeSpans>(&arena);
  otlp::ToProto(ss, *out);
  return out->scope().SerializeAsString();
}

}  // namespace

std::string EncodeSpan(const base::Span& span, const base::ResourceSpans& resource_spans) {
  SpanPieces pieces = PiecesOf(span, resource_spans);
  if (pieces.received.empty()) return std::move(pieces.tail);
  std::string out;
  out.reserve(pieces.size());
  out.append(pieces.received);
  out.append(pieces.tail);
  return out;
}

std::vector<EncodedTrace> EncodeProtobufByTrace(const base::TraceBatch& batch) {
  // Written at the wire level: TracesData { ResourceSpans resource_spans = 1 }, ResourceSpans
  // { Resource resource = 1; ScopeSpans scope_spans = 2; string schema_url = 3 }, ScopeSpans
  // { InstrumentationScope scope = 1; Span spans = 2; string schema_url = 3 }. A resource's
  // and a scope's bytes are encoded once per batch; each span's received bytes are copied
  // straight into its trace's part, followed by the attributes appended since (or, without
  // received bytes, the span encoded again). One flat list of the batch's spans, sorted by
  // trace, instead of a container per trace: this runs for every stored request.
  struct Entry {
    base::TraceId trace_id;
    uint32_t position;  // in the batch: keeps a trace's spans in the order they came
    uint32_t rs;
    uint32_t ss;  // index within the batch's flattened scopes
    const base::Span* span;
    size_t size;           // the span's encoded bytes
    size_t encoded_again;  // 1 + index in `encoded_again`; 0: its received bytes are used
  };
  std::vector<const base::ResourceSpans*> resources;
  std::vector<const base::ScopeSpans*> scopes;
  std::vector<Entry> entries;
  std::vector<std::string> encoded_again;
  entries.reserve(batch.SpanCount());
  for (const base::ResourceSpans& rs : batch.resource_spans) {
    resources.push_back(&rs);
    for (const base::ScopeSpans& ss : rs.scope_spans) {
      scopes.push_back(&ss);
      for (const base::Span& span : ss.spans) {
        Entry entry{span.trace_id,
                    static_cast<uint32_t>(entries.size()),
                    static_cast<uint32_t>(resources.size() - 1),
                    static_cast<uint32_t>(scopes.size() - 1),
                    &span,
                    0,
                    0};
        if (HasUsableWire(span, rs)) {
          entry.size = span.wire.bytes.size();
          for (size_t i = span.wire.attribute_count; i < span.attributes.size(); ++i) {
            entry.size += AttributeFieldSize(span.attributes[i]);
          }
        } else {
          encoded_again.push_back(EncodeSpan(span));
          entry.size = encoded_again.back().size();
          entry.encoded_again = encoded_again.size();
        }
        entries.push_back(entry);
      }
    }
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.trace_id, a.position) < std::tie(b.trace_id, b.position);
  });
  std::vector<std::string> resource_bytes(resources.size());
  std::vector<bool> resource_done(resources.size());
  std::vector<std::string> scope_bytes(scopes.size());
  std::vector<bool> scope_done(scopes.size());

  // Runs of entries of one scope make a ScopeSpans; runs of one resource a ResourceSpans.
  struct Run {
    size_t begin, end, size;
  };
  std::vector<Run> scope_runs;
  std::vector<Run> resource_runs;  // over scope_runs
  std::vector<EncodedTrace> out;
  for (size_t trace_begin = 0; trace_begin < entries.size();) {
    const base::TraceId& trace_id = entries[trace_begin].trace_id;
    size_t trace_end = trace_begin;
    uint64_t latest_end = 0;
    for (; trace_end < entries.size() && entries[trace_end].trace_id == trace_id; ++trace_end) {
      latest_end = std::max(latest_end, entries[trace_end].span->end_time_unix_nano);
    }
    // Sizes first (a length precedes each message), then the bytes.
    scope_runs.clear();
    for (size_t i = trace_begin; i < trace_end;) {
      size_t j = i;
      size_t size = 0;
      const size_t ss = entries[i].ss;
      if (!scope_done[ss]) {
        scope_bytes[ss] = ScopeBytes(*scopes[ss]);
        scope_done[ss] = true;
      }
      size += wire::LenFieldSize(1, scope_bytes[ss].size());
      for (; j < trace_end && entries[j].ss == ss; ++j) {
        size += wire::LenFieldSize(2, entries[j].size);
      }
      if (!scopes[ss]->schema_url.empty()) {
        size += wire::LenFieldSize(3, scopes[ss]->schema_url.size());
      }
      scope_runs.push_back(Run{i, j, size});
      i = j;
    }
    resource_runs.clear();
    size_t total = 0;
    for (size_t i = 0; i < scope_runs.size();) {
      const size_t rs = entries[scope_runs[i].begin].rs;
      if (!resource_done[rs]) {
        resource_bytes[rs] = ResourceBytes(*resources[rs]);
        resource_done[rs] = true;
      }
      size_t size = wire::LenFieldSize(1, resource_bytes[rs].size());
      size_t j = i;
      for (; j < scope_runs.size() && entries[scope_runs[j].begin].rs == rs; ++j) {
        size += wire::LenFieldSize(2, scope_runs[j].size);
      }
      if (!resources[rs]->schema_url.empty()) {
        size += wire::LenFieldSize(3, resources[rs]->schema_url.size());
      }
      resource_runs.push_back(Run{i, j, size});
      total += wire::LenFieldSize(1, size);
      i = j;
    }
    std::string encoded;
    encoded.reserve(total);
    for (const Run& resource_run : resource_runs) {
      const size_t rs = entries[scope_runs[resource_run.begin].begin].rs;
      wire::AppendLenHeader(encoded, 1, resource_run.size);
      wire::AppendLenHeader(encoded, 1, resource_bytes[rs].size());
      encoded += resource_bytes[rs];
      for (size_t k = resource_run.begin; k < resource_run.end; ++k) {
        const Run& scope_run = scope_runs[k];
        const size_t ss = entries[scope_run.begin].ss;
        wire::AppendLenHeader(encoded, 2, scope_run.size);
        wire::AppendLenHeader(encoded, 1, scope_bytes[ss].size());
        encoded += scope_bytes[ss];
        for (size_t e = scope_run.begin; e < scope_run.end; ++e) {
          const Entry& entry = entries[e];
          wire::AppendLenHeader(encoded, 2, entry.size);
          if (entry.encoded_again != 0) {
            encoded += encoded_again[entry.encoded_again - 1];
            continue;
          }
          const base::Span& span = *entry.span;
          encoded.append(span.wire.bytes);
          for (size_t i = span.wire.attribute_count; i < span.attributes.size(); ++i) {
            AppendAttributeField(encoded, span.attributes[i]);
          }
        }
        if (!scopes[ss]->schema_url.empty()) {
          wire::AppendLenHeader(encoded, 3, scopes[ss]->schema_url.size());
          encoded += scopes[ss]->schema_url;
        }
      }
      if (!resources[rs]->schema_url.empty()) {
        wire::AppendLenHeader(encoded, 3, resources[rs]->schema_url.size());
        encoded += resources[rs]->schema_url;
      }
    }
    assert(encoded.size() == total);
    out.push_back(EncodedTrace{trace_id, latest_end, std::move(encoded)});
    trace_begin = trace_end;
  }
  return out;
}

std::string EncodeProtobuf(const base::TraceBatch& batch) {
  google::protobuf::Arena arena;
  auto* data = google::protobuf::Arena::CreateMessage<pb_trace::TracesData>(&arena);
  for (const base::ResourceSpans& rs : batch.resource_spans) {
    pb_trace::ResourceSpans* rs_out = data->add_resource_spans();
    ToProto(rs, *rs_out);
    for (const base::ScopeSpans& ss : rs.scope_spans) {
      pb_trace::ScopeSpans* ss_out = rs_out->add_scope_spans();
      ToProto(ss, *ss_out);
      for (const base::Span& span : ss.spans) ToProto(span, *ss_out->add_spans());
    }
  }
  return data->SerializeAsString();
}

}  // namespace ordertrace::otlp
