#include "otlp/proto_codec.h"

#include <google/protobuf/arena.h>

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>
#include <optional>
#include <tuple>
#include <utility>

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

// A resource as the model holds it, without its scopes.
base::ResourceSpans ResourceShell(const pb_trace::ResourceSpans& in) {
  base::ResourceSpans out;
  out.resource.attributes = ToModel(in.resource().attributes());
  out.resource.dropped_attributes_count = in.resource().dropped_attributes_count();
  out.schema_url = in.schema_url();
  out.scope_spans.reserve(in.scope_spans_size());
  return out;
}

// A scope as the model holds it, without its spans.
base::ScopeSpans ScopeShell(const pb_trace::ScopeSpans& in) {
  base::ScopeSpans out;
  out.scope.name = in.scope().name();
  out.scope.version = in.scope().version();
  out.scope.attributes = ToModel(in.scope().attributes());
  out.scope.dropped_attributes_count = in.scope().dropped_attributes_count();
  out.schema_url = in.schema_url();
  out.spans.reserve(in.spans_size());
  return out;
}

// `span_bytes`: SpanBytes() of `body`, the body the list was parsed from; empty when the body
// is not kept. Then the request's `received` says where each valid span's bytes are.
template <typename ResourceSpansList>
DecodedRequest ConvertResourceSpans(const ResourceSpansList& list,
                                    const std::vector<std::string_view>& span_bytes = {},
                                    std::shared_ptr<const std::string> body = nullptr) {
  DecodedRequest out;
  const bool with_bytes = body != nullptr && !span_bytes.empty();
  if (with_bytes) out.received = ReceivedBytes(std::move(body));
  out.batch.resource_spans.reserve(list.size());
  size_t span_index = 0;  // in span_bytes, which holds the refused spans too
  std::string reason;
  for (const pb_trace::ResourceSpans& rs_in : list) {
    base::ResourceSpans rs = ResourceShell(rs_in);
    ReceivedBytes::Resource entries;
    if (with_bytes) entries.reserve(rs_in.scope_spans_size());
    for (const pb_trace::ScopeSpans& ss_in : rs_in.scope_spans()) {
      base::ScopeSpans& ss = rs.scope_spans.emplace_back(ScopeShell(ss_in));
      ReceivedBytes::Scope* scope_entries = nullptr;
      if (with_bytes) {
        scope_entries = &entries.emplace_back();
        scope_entries->reserve(ss_in.spans_size());
      }
      for (const pb_trace::Span& span_in : ss_in.spans()) {
        const size_t index = span_index++;
        base::Span span;
        if (!ToModel(span_in, span, reason)) {
          out.Reject(reason);
          continue;
        }
        if (scope_entries != nullptr) {
          scope_entries->push_back(
              index < span_bytes.size()
                  ? ReceivedBytes::Span{span_bytes[index],
                                        static_cast<uint32_t>(span.attributes.size())}
                  : ReceivedBytes::Span{});
        }
        ss.spans.push_back(std::move(span));
      }
    }
    out.Add(std::move(rs), std::move(entries));
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
  return ConvertResourceSpans(request->resource_spans(), span_bytes, std::move(body));
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

// `received`, when it may stand for `span`: attributes are only ever appended after decoding
// (anything else drops the entry), so the span must still have those its bytes hold.
const ReceivedBytes::Span* Usable(const ReceivedBytes::Span* received, const base::Span& span) {
  if (received == nullptr || received->bytes.empty()) return nullptr;
  return received->attribute_count <= span.attributes.size() ? received : nullptr;
}

// The size of `span` encoded from its received bytes and the attributes appended since.
size_t ReceivedSize(const ReceivedBytes::Span& received, const base::Span& span) {
  size_t size = received.bytes.size();
  for (size_t i = received.attribute_count; i < span.attributes.size(); ++i) {
    size += AttributeFieldSize(span.attributes[i]);
  }
  return size;
}

void AppendReceived(std::string& out, const ReceivedBytes::Span& received, const base::Span& span) {
  out.append(received.bytes);
  for (size_t i = received.attribute_count; i < span.attributes.size(); ++i) {
    AppendAttributeField(out, span.attributes[i]);
  }
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

// EncodeProtobufByTrace's work, written at the wire level: TracesData { ResourceSpans
// resource_spans = 1 }, ResourceSpans { Resource resource = 1; ScopeSpans scope_spans = 2;
// string schema_url = 3 }, ScopeSpans { InstrumentationScope scope = 1; Span spans = 2; string
// schema_url = 3 }. A resource's and a scope's bytes are encoded once per batch; each span's
// received bytes are copied straight into its trace's part, followed by the attributes appended
// since (or, without received bytes, the span encoded again). One flat list of the batch's
// spans, sorted by trace, instead of a container per trace: this runs for every stored request.
class TraceSplitter {
 public:
  TraceSplitter(const base::TraceBatch& batch, const ReceivedBytes* received) {
    Gather(batch, received);
    std::sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) {
      return std::tie(a.trace_key, a.position) < std::tie(b.trace_key, b.position);
    });
  }

  std::vector<EncodedTrace> EncodeTraces() {
    std::vector<EncodedTrace> out;
    for (size_t begin = 0; begin < entries_.size();) {
      const size_t end = TraceEnd(begin);
      out.push_back(EncodeTrace(begin, end));
      begin = end;
    }
    return out;
  }

 private:
  // The trace id as two big-endian words: the same order as its bytes, compared without
  // memcmp (which the sort otherwise calls a dozen times per span).
  using TraceKey = std::pair<uint64_t, uint64_t>;
  static TraceKey KeyOf(const base::TraceId& id) {
    auto word = [&](size_t from) {
      uint64_t w = 0;
      std::memcpy(&w, id.bytes.data() + from, sizeof(w));
      if constexpr (std::endian::native == std::endian::little) w = __builtin_bswap64(w);
      return w;
    };
    return {word(0), word(8)};
  }

  // 56 bytes, sorted by value: kept small, as the sort moves them.
  struct Entry {
    TraceKey trace_key;
    uint32_t position;  // in the batch: keeps a trace's spans in the order they came
    uint32_t rs;
    uint32_t ss;             // index within the batch's flattened scopes
    uint32_t encoded_again;  // its index in encoded_again_, when `received` is null
    const base::Span* span;
    const ReceivedBytes::Span* received;  // null: encoded again
    size_t size;                          // the span's encoded bytes
  };
  // Runs of entries of one scope make a ScopeSpans; runs of one resource a ResourceSpans.
  struct Run {
    size_t begin, end, size;
  };

  // Flattens the batch into entries_, each span measured (or encoded again) on the way.
  void Gather(const base::TraceBatch& batch, const ReceivedBytes* received) {
    entries_.reserve(batch.SpanCount());
    for (size_t r = 0; r < batch.resource_spans.size(); ++r) {
      resources_.push_back(&batch.resource_spans[r]);
      const std::vector<base::ScopeSpans>& scopes = batch.resource_spans[r].scope_spans;
      for (size_t s = 0; s < scopes.size(); ++s) {
        scopes_.push_back(&scopes[s]);
        const ReceivedBytes::Scope* scope_received =
            received != nullptr ? received->ScopeOf(r, s) : nullptr;
        for (size_t i = 0; i < scopes[s].spans.size(); ++i) {
          const base::Span& span = scopes[s].spans[i];
          const bool has_entry = scope_received != nullptr && i < scope_received->size();
          Entry entry{KeyOf(span.trace_id),
                      static_cast<uint32_t>(entries_.size()),
                      static_cast<uint32_t>(resources_.size() - 1),
                      static_cast<uint32_t>(scopes_.size() - 1),
                      0,
                      &span,
                      Usable(has_entry ? &(*scope_received)[i] : nullptr, span),
                      0};
          if (entry.received != nullptr) {
            entry.size = ReceivedSize(*entry.received, span);
          } else {
            entry.encoded_again = static_cast<uint32_t>(encoded_again_.size());
            entry.size = encoded_again_.emplace_back(EncodeSpan(span)).size();
          }
          entries_.push_back(entry);
        }
      }
    }
    resource_bytes_.resize(resources_.size());
    scope_bytes_.resize(scopes_.size());
  }

  // The end of the trace that starts at entries_[begin].
  size_t TraceEnd(size_t begin) const {
    size_t end = begin;
    while (end < entries_.size() && entries_[end].trace_key == entries_[begin].trace_key) ++end;
    return end;
  }

  // Sizes first (a length precedes each message), then the bytes.
  EncodedTrace EncodeTrace(size_t begin, size_t end) {
    uint64_t latest_end = 0;
    for (size_t e = begin; e < end; ++e) {
      latest_end = std::max(latest_end, entries_[e].span->end_time_unix_nano);
    }
    MeasureScopeRuns(begin, end);
    const size_t total = MeasureResourceRuns();
    std::string encoded;
    encoded.reserve(total);
    for (const Run& resource_run : resource_runs_) WriteResourceRun(resource_run, encoded);
    assert(encoded.size() == total);
    return EncodedTrace{entries_[begin].span->trace_id, latest_end, std::move(encoded)};
  }

  // Splits entries [begin, end) into runs of one scope, each with its ScopeSpans' size.
  void MeasureScopeRuns(size_t begin, size_t end) {
    scope_runs_.clear();
    for (size_t i = begin; i < end;) {
      const size_t ss = entries_[i].ss;
      size_t size = wire::LenFieldSize(1, ScopeBytesOf(ss).size());
      size_t j = i;
      for (; j < end && entries_[j].ss == ss; ++j) size += wire::LenFieldSize(2, entries_[j].size);
      if (!scopes_[ss]->schema_url.empty()) {
        size += wire::LenFieldSize(3, scopes_[ss]->schema_url.size());
      }
      scope_runs_.push_back(Run{i, j, size});
      i = j;
    }
  }

  // Splits the scope runs into runs of one resource, each with its ResourceSpans' size; returns
  // the size of the whole TracesData.
  size_t MeasureResourceRuns() {
    resource_runs_.clear();
    size_t total = 0;
    for (size_t i = 0; i < scope_runs_.size();) {
      const size_t rs = ResourceOfRun(scope_runs_[i]);
      size_t size = wire::LenFieldSize(1, ResourceBytesOf(rs).size());
      size_t j = i;
      for (; j < scope_runs_.size() && ResourceOfRun(scope_runs_[j]) == rs; ++j) {
        size += wire::LenFieldSize(2, scope_runs_[j].size);
      }
      if (!resources_[rs]->schema_url.empty()) {
        size += wire::LenFieldSize(3, resources_[rs]->schema_url.size());
      }
      resource_runs_.push_back(Run{i, j, size});
      total += wire::LenFieldSize(1, size);
      i = j;
    }
    return total;
  }

  void WriteResourceRun(const Run& run, std::string& out) const {
    const size_t rs = ResourceOfRun(scope_runs_[run.begin]);
    wire::AppendLenHeader(out, 1, run.size);
    wire::AppendLenHeader(out, 1, resource_bytes_[rs]->size());
    out += *resource_bytes_[rs];
    for (size_t k = run.begin; k < run.end; ++k) WriteScopeRun(scope_runs_[k], out);
    if (!resources_[rs]->schema_url.empty()) {
      wire::AppendLenHeader(out, 3, resources_[rs]->schema_url.size());
      out += resources_[rs]->schema_url;
    }
  }

  void WriteScopeRun(const Run& run, std::string& out) const {
    const size_t ss = entries_[run.begin].ss;
    wire::AppendLenHeader(out, 2, run.size);
    wire::AppendLenHeader(out, 1, scope_bytes_[ss]->size());
    out += *scope_bytes_[ss];
    for (size_t e = run.begin; e < run.end; ++e) {
      const Entry& entry = entries_[e];
      wire::AppendLenHeader(out, 2, entry.size);
      if (entry.received != nullptr) {
        AppendReceived(out, *entry.received, *entry.span);
      } else {
        out += encoded_again_[entry.encoded_again];
      }
    }
    if (!scopes_[ss]->schema_url.empty()) {
      wire::AppendLenHeader(out, 3, scopes_[ss]->schema_url.size());
      out += scopes_[ss]->schema_url;
    }
  }

  size_t ResourceOfRun(const Run& scope_run) const { return entries_[scope_run.begin].rs; }

  // Encoded when a trace first needs them, once per batch.
  const std::string& ScopeBytesOf(size_t ss) {
    if (!scope_bytes_[ss]) scope_bytes_[ss] = ScopeBytes(*scopes_[ss]);
    return *scope_bytes_[ss];
  }
  const std::string& ResourceBytesOf(size_t rs) {
    if (!resource_bytes_[rs]) resource_bytes_[rs] = ResourceBytes(*resources_[rs]);
    return *resource_bytes_[rs];
  }

  std::vector<const base::ResourceSpans*> resources_;
  std::vector<const base::ScopeSpans*> scopes_;
  std::vector<Entry> entries_;
  std::vector<std::string> encoded_again_;
  std::vector<std::optional<std::string>> resource_bytes_;
  std::vector<std::optional<std::string>> scope_bytes_;
  std::vector<Run> scope_runs_;
  std::vector<Run> resource_runs_;  // over scope_runs_
};

}  // namespace

std::string EncodeSpan(const base::Span& span, const ReceivedBytes::Span* received) {
  received = Usable(received, span);
  if (received == nullptr) return EncodeSpan(span);
  std::string out;
  out.reserve(ReceivedSize(*received, span));
  AppendReceived(out, *received, span);
  return out;
}

std::vector<EncodedTrace> EncodeProtobufByTrace(const base::TraceBatch& batch,
                                                const ReceivedBytes* received) {
  return TraceSplitter(batch, received).EncodeTraces();
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
