#include "store/order_record_codec.h"

#include <google/protobuf/arena.h>

#include "ordertrace/store/v1/order_record.pb.h"

namespace ordertrace::store {
namespace {

namespace pb = ordertrace::store::v1;

template <typename IdT>
IdT IdFrom(const std::string& bytes) {
  auto id = IdT::FromBytes(bytes);
  return id ? *id : IdT{};
}

void ToProto(const model::Operation& op, pb::Operation& out) {
  out.set_span_name(op.span_name);
  out.set_service(op.service);
  out.set_at_unix_nano(op.at_unix_nano);
  out.set_trace_id(op.trace_id.AsBytes().data(), op.trace_id.AsBytes().size());
  out.set_span_id(op.span_id.AsBytes().data(), op.span_id.AsBytes().size());
  out.set_error_code(op.error_code);
  out.set_error_message(op.error_message);
  out.set_reported_status(op.reported_status);
}

model::Operation FromProto(const pb::Operation& in) {
  model::Operation op;
  op.span_name = in.span_name();
  op.service = in.service();
  op.at_unix_nano = in.at_unix_nano();
  op.trace_id = IdFrom<model::TraceId>(in.trace_id());
  op.span_id = IdFrom<model::SpanId>(in.span_id());
  op.error_code = in.error_code();
  op.error_message = in.error_message();
  op.reported_status = in.reported_status();
  return op;
}

}  // namespace

std::string EncodeOrderRecord(const model::OrderRecord& r) {
  // One message per thread, cleared and refilled: a cleared message keeps its strings and
  // repeated elements, so encoding a record allocates nothing but the result (an arena per
  // record, built and torn down, was about a tenth of the ingest writer's time).
  thread_local pb::OrderRecord scratch;
  pb::OrderRecord* out = &scratch;
  out->Clear();
  out->set_order_id(r.order_id);
  out->set_trace_id(r.trace_id.AsBytes().data(), r.trace_id.AsBytes().size());
  for (const model::TraceId& t : r.trace_ids)
    out->add_trace_ids(t.AsBytes().data(), t.AsBytes().size());
  out->set_partner_id(r.partner_id);
  out->set_first_seen_unix_nano(r.first_seen_unix_nano);
  out->set_last_seen_unix_nano(r.last_seen_unix_nano);
  for (const model::StatusReached& s : r.statuses) {
    pb::StatusReached* o = out->add_statuses();
    o->set_status(s.status);
    o->set_prev_status(s.prev_status);
    o->set_at_unix_nano(s.at_unix_nano);
    o->set_event_version(s.event_version);
    o->set_service(s.service);
    o->set_span_name(s.span_name);
    o->set_span_id(s.span_id.AsBytes().data(), s.span_id.AsBytes().size());
  }
  if (r.last_success) ToProto(*r.last_success, *out->mutable_last_success());
  if (r.last_error) ToProto(*r.last_error, *out->mutable_last_error());
  for (const model::MessageHop& m : r.messages) {
    pb::MessageHop* o = out->add_messages();
    o->set_message_id(m.message_id);
    o->set_queue(m.queue);
    o->set_published_at_unix_nano(m.published_at_unix_nano);
    o->set_consumed_at_unix_nano(m.consumed_at_unix_nano);
    o->set_retry_count(m.retry_count);
  }
  return out->SerializeAsString();
}

absl::StatusOr<model::OrderRecord> DecodeOrderRecord(std::string_view bytes) {
  google::protobuf::Arena arena;
  auto* in = google::protobuf::Arena::CreateMessage<pb::OrderRecord>(&arena);
  if (!in->ParseFromArray(bytes.data(), static_cast<int>(bytes.size())) || in->order_id().empty()) {
    return absl::DataLossError("stored order record is corrupt");
  }
  model::OrderRecord r;
  r.order_id = in->order_id();
  r.trace_id = IdFrom<model::TraceId>(in->trace_id());
  for (const std::string& t : in->trace_ids()) r.trace_ids.push_back(IdFrom<model::TraceId>(t));
  r.partner_id = in->partner_id();
  r.first_seen_unix_nano = in->first_seen_unix_nano();
  r.last_seen_unix_nano = in->last_seen_unix_nano();
  for (const pb::StatusReached& s : in->statuses()) {
    model::StatusReached st;
    st.status = s.status();
    st.prev_status = s.prev_status();
    st.at_unix_nano = s.at_unix_nano();
    st.event_version = s.event_version();
    st.service = s.service();
    st.span_name = s.span_name();
    st.span_id = IdFrom<model::SpanId>(s.span_id());
    r.statuses.push_back(std::move(st));
  }
  if (in->has_last_success()) r.last_success = FromProto(in->last_success());
  if (in->has_last_error()) r.last_error = FromProto(in->last_error());
  for (const pb::MessageHop& m : in->messages()) {
    model::MessageHop hop;
    hop.message_id = m.message_id();
    hop.queue = m.queue();
    hop.published_at_unix_nano = m.published_at_unix_nano();
    hop.consumed_at_unix_nano = m.consumed_at_unix_nano();
    hop.retry_count = m.retry_count();
    r.messages.push_back(std::move(hop));
  }
  return r;
}

}  // namespace ordertrace::store
