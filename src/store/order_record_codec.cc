#include "store/order_record_codec.h"

#include <google/protobuf/arena.h>
#include <google/protobuf/io/coded_stream.h>

#include <cassert>
#include <cstring>

#include "ordertrace/store/v1/order_record.pb.h"

namespace ordertrace::store {
namespace {

namespace pb = ordertrace::store::v1;

template <typename IdT>
IdT IdFrom(const std::string& bytes) {
  auto id = IdT::FromBytes(bytes);
  return id ? *id : IdT{};
}

// The wire form of order_record.proto, field by field: proto3 leaves out strings, bytes and
// numbers that hold their default, writes set sub-messages (even empty) and every element of a
// repeated field, and orders fields by number.
using Coded = google::protobuf::io::CodedOutputStream;

constexpr uint32_t kVarint = 0, kFixed64 = 1, kLen = 2;
constexpr uint32_t Tag(uint32_t field, uint32_t wire_type) { return field << 3 | wire_type; }

size_t LenFieldSize(uint32_t field, size_t length) {
  return Coded::VarintSize32(Tag(field, kLen)) + Coded::VarintSize64(length) + length;
}
size_t TextSize(uint32_t field, std::string_view text) {
  return text.empty() ? 0 : LenFieldSize(field, text.size());
}
size_t Fixed64Size(uint32_t field, uint64_t value) {
  return value == 0 ? 0 : Coded::VarintSize32(Tag(field, kFixed64)) + 8;
}
size_t VarintFieldSize(uint32_t field, uint64_t value) {
  return value == 0 ? 0 : Coded::VarintSize32(Tag(field, kVarint)) + Coded::VarintSize64(value);
}
uint64_t ZigZag(int64_t value) {
  return (static_cast<uint64_t>(value) << 1) ^ static_cast<uint64_t>(value >> 63);
}

uint8_t* WriteLenHeader(uint32_t field, size_t length, uint8_t* p) {
  p = Coded::WriteTagToArray(Tag(field, kLen), p);
  return Coded::WriteVarint64ToArray(length, p);
}
// A string or bytes field; `always` for bytes that proto3 writes even when empty (repeated).
uint8_t* WriteText(uint32_t field, std::string_view text, uint8_t* p, bool always = false) {
  if (text.empty() && !always) return p;
  p = WriteLenHeader(field, text.size(), p);
  std::memcpy(p, text.data(), text.size());
  return p + text.size();
}
uint8_t* WriteFixed64(uint32_t field, uint64_t value, uint8_t* p) {
  if (value == 0) return p;
  p = Coded::WriteTagToArray(Tag(field, kFixed64), p);
  return Coded::WriteLittleEndian64ToArray(value, p);
}
uint8_t* WriteVarintField(uint32_t field, uint64_t value, uint8_t* p) {
  if (value == 0) return p;
  p = Coded::WriteTagToArray(Tag(field, kVarint), p);
  return Coded::WriteVarint64ToArray(value, p);
}

// StatusReached: status 1, prev_status 2, at_unix_nano 3, event_version 4 (sint64), service 5,
// span_name 6, span_id 7.
size_t StatusSize(const model::StatusReached& s) {
  return TextSize(1, s.status) + TextSize(2, s.prev_status) + Fixed64Size(3, s.at_unix_nano) +
         VarintFieldSize(4, ZigZag(s.event_version)) + TextSize(5, s.service) +
         TextSize(6, s.span_name) + TextSize(7, s.span_id.AsBytes());
}
uint8_t* WriteStatus(const model::StatusReached& s, uint8_t* p) {
  p = WriteText(1, s.status, p);
  p = WriteText(2, s.prev_status, p);
  p = WriteFixed64(3, s.at_unix_nano, p);
  p = WriteVarintField(4, ZigZag(s.event_version), p);
  p = WriteText(5, s.service, p);
  p = WriteText(6, s.span_name, p);
  return WriteText(7, s.span_id.AsBytes(), p);
}

// Operation: span_name 1, service 2, at_unix_nano 3, trace_id 4, span_id 5, error_code 6,
// error_message 7, reported_status 8, attempted_status 9.
size_t OperationSize(const model::Operation& op) {
  return TextSize(1, op.span_name) + TextSize(2, op.service) + Fixed64Size(3, op.at_unix_nano) +
         TextSize(4, op.trace_id.AsBytes()) + TextSize(5, op.span_id.AsBytes()) +
         TextSize(6, op.error_code) + TextSize(7, op.error_message) +
         TextSize(8, op.reported_status) + TextSize(9, op.attempted_status);
}
uint8_t* WriteOperation(const model::Operation& op, uint8_t* p) {
  p = WriteText(1, op.span_name, p);
  p = WriteText(2, op.service, p);
  p = WriteFixed64(3, op.at_unix_nano, p);
  p = WriteText(4, op.trace_id.AsBytes(), p);
  p = WriteText(5, op.span_id.AsBytes(), p);
  p = WriteText(6, op.error_code, p);
  p = WriteText(7, op.error_message, p);
  p = WriteText(8, op.reported_status, p);
  return WriteText(9, op.attempted_status, p);
}

// MessageHop: message_id 1, queue 2, published_at_unix_nano 3, consumed_at_unix_nano 4,
// retry_count 5 (int64: a negative count takes ten bytes, as libprotobuf writes it),
// published_by_span_id 6 (left out when there is none).
size_t HopSize(const model::MessageHop& m) {
  return TextSize(1, m.message_id) + TextSize(2, m.queue) +
         Fixed64Size(3, m.published_at_unix_nano) + Fixed64Size(4, m.consumed_at_unix_nano) +
         VarintFieldSize(5, static_cast<uint64_t>(m.retry_count)) +
         (m.published_by.IsValid() ? TextSize(6, m.published_by.AsBytes()) : 0);
}
uint8_t* WriteHop(const model::MessageHop& m, uint8_t* p) {
  p = WriteText(1, m.message_id, p);
  p = WriteText(2, m.queue, p);
  p = WriteFixed64(3, m.published_at_unix_nano, p);
  p = WriteFixed64(4, m.consumed_at_unix_nano, p);
  p = WriteVarintField(5, static_cast<uint64_t>(m.retry_count), p);
  if (m.published_by.IsValid()) p = WriteText(6, m.published_by.AsBytes(), p);
  return p;
}

// OrderRecord: order_id 1, trace_id 2, trace_ids 3, partner_id 4, first_seen_unix_nano 5,
// last_seen_unix_nano 6, statuses 7, last_success 8, last_error 9, messages 10, revisits 11.
size_t RecordSize(const model::OrderRecord& r) {
  size_t size = TextSize(1, r.order_id) + TextSize(2, r.trace_id.AsBytes()) +
                TextSize(4, r.partner_id) + Fixed64Size(5, r.first_seen_unix_nano) +
                Fixed64Size(6, r.last_seen_unix_nano);
  for (const base::TraceId& t : r.trace_ids) size += LenFieldSize(3, t.AsBytes().size());
  for (const model::StatusReached& s : r.statuses) size += LenFieldSize(7, StatusSize(s));
  if (r.last_success) size += LenFieldSize(8, OperationSize(*r.last_success));
  if (r.last_error) size += LenFieldSize(9, OperationSize(*r.last_error));
  for (const model::MessageHop& m : r.messages) size += LenFieldSize(10, HopSize(m));
  for (const model::StatusReached& s : r.revisits) size += LenFieldSize(11, StatusSize(s));
  return size;
}
uint8_t* WriteRecord(const model::OrderRecord& r, uint8_t* p) {
  p = WriteText(1, r.order_id, p);
  p = WriteText(2, r.trace_id.AsBytes(), p);
  for (const base::TraceId& t : r.trace_ids) p = WriteText(3, t.AsBytes(), p, /*always=*/true);
  p = WriteText(4, r.partner_id, p);
  p = WriteFixed64(5, r.first_seen_unix_nano, p);
  p = WriteFixed64(6, r.last_seen_unix_nano, p);
  for (const model::StatusReached& s : r.statuses) {
    p = WriteStatus(s, WriteLenHeader(7, StatusSize(s), p));
  }
  if (r.last_success) {
    p = WriteOperation(*r.last_success, WriteLenHeader(8, OperationSize(*r.last_success), p));
  }
  if (r.last_error) {
    p = WriteOperation(*r.last_error, WriteLenHeader(9, OperationSize(*r.last_error), p));
  }
  for (const model::MessageHop& m : r.messages) p = WriteHop(m, WriteLenHeader(10, HopSize(m), p));
  for (const model::StatusReached& s : r.revisits) {
    p = WriteStatus(s, WriteLenHeader(11, StatusSize(s), p));
  }
  return p;
}

model::Operation FromProto(const pb::Operation& in) {
  model::Operation op;
  op.span_name = in.span_name();
  op.service = in.service();
  op.at_unix_nano = in.at_unix_nano();
  op.trace_id = IdFrom<base::TraceId>(in.trace_id());
  op.span_id = IdFrom<base::SpanId>(in.span_id());
  op.error_code = in.error_code();
  op.error_message = in.error_message();
  op.reported_status = in.reported_status();
  op.attempted_status = in.attempted_status();
  return op;
}

model::StatusReached FromProto(const pb::StatusReached& in) {
  model::StatusReached st;
  st.status = in.status();
  st.prev_status = in.prev_status();
  st.at_unix_nano = in.at_unix_nano();
  st.event_version = in.event_version();
  st.service = in.service();
  st.span_name = in.span_name();
  st.span_id = IdFrom<base::SpanId>(in.span_id());
  return st;
}

}  // namespace

std::string EncodeOrderRecord(const model::OrderRecord& r) {
  // Written field by field with libprotobuf's coded-stream primitives, into a string sized
  // once: filling a generated message copied every string into it before serializing them
  // again, a visible share of the ingest writer's time (a record is written on every change).
  // The bytes are exactly what the generated OrderRecord serializes (a test compares them), so
  // DecodeOrderRecord and any protobuf reader parse them as before.
  std::string out(RecordSize(r), '\0');
  uint8_t* begin = reinterpret_cast<uint8_t*>(out.data());
  uint8_t* end = WriteRecord(r, begin);
  assert(end == begin + out.size());
  (void)end;
  return out;
}

absl::StatusOr<model::OrderRecord> DecodeOrderRecord(std::string_view bytes) {
  google::protobuf::Arena arena;
  auto* in = google::protobuf::Arena::CreateMessage<pb::OrderRecord>(&arena);
  if (!in->ParseFromArray(bytes.data(), static_cast<int>(bytes.size())) || in->order_id().empty()) {
    return absl::DataLossError("stored order record is corrupt");
  }
  model::OrderRecord r;
  r.order_id = in->order_id();
  r.trace_id = IdFrom<base::TraceId>(in->trace_id());
  for (const std::string& t : in->trace_ids()) r.trace_ids.push_back(IdFrom<base::TraceId>(t));
  r.partner_id = in->partner_id();
  r.first_seen_unix_nano = in->first_seen_unix_nano();
  r.last_seen_unix_nano = in->last_seen_unix_nano();
  for (const pb::StatusReached& s : in->statuses()) r.statuses.push_back(FromProto(s));
  for (const pb::StatusReached& s : in->revisits()) r.revisits.push_back(FromProto(s));
  if (in->has_last_success()) r.last_success = FromProto(in->last_success());
  if (in->has_last_error()) r.last_error = FromProto(in->last_error());
  for (const pb::MessageHop& m : in->messages()) {
    model::MessageHop hop;
    hop.message_id = m.message_id();
    hop.queue = m.queue();
    hop.published_at_unix_nano = m.published_at_unix_nano();
    hop.consumed_at_unix_nano = m.consumed_at_unix_nano();
    hop.retry_count = m.retry_count();
    hop.published_by = IdFrom<base::SpanId>(m.published_by_span_id());
    r.messages.push_back(std::move(hop));
  }
  return r;
}

}  // namespace ordertrace::store
