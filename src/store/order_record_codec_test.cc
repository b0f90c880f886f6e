#include "store/order_record_codec.h"

#include <gtest/gtest.h>

#include <limits>
#include <random>

#include "ordertrace/store/v1/order_record.pb.h"

namespace ordertrace::store {
namespace {

namespace pb = ordertrace::store::v1;

// The record as libprotobuf's generated message serializes it: what EncodeOrderRecord writes by
// hand must be byte for byte the same.
void Fill(const model::Operation& op, pb::Operation& out) {
  out.set_span_name(op.span_name);
  out.set_service(op.service);
  out.set_at_unix_nano(op.at_unix_nano);
  out.set_trace_id(std::string(op.trace_id.AsBytes()));
  out.set_span_id(std::string(op.span_id.AsBytes()));
  out.set_error_code(op.error_code);
  out.set_error_message(op.error_message);
  out.set_reported_status(op.reported_status);
  out.set_attempted_status(op.attempted_status);
}

std::string SerializedByLibprotobuf(const model::OrderRecord& r) {
  pb::OrderRecord out;
  out.set_order_id(r.order_id);
  out.set_trace_id(std::string(r.trace_id.AsBytes()));
  for (const base::TraceId& t : r.trace_ids) out.add_trace_ids(std::string(t.AsBytes()));
  out.set_partner_id(r.partner_id);
  out.set_first_seen_unix_nano(r.first_seen_unix_nano);
  out.set_last_seen_unix_nano(r.last_seen_unix_nano);
  auto fill_status = [](const model::StatusReached& s, pb::StatusReached* o) {
    o->set_status(s.status);
    o->set_prev_status(s.prev_status);
    o->set_at_unix_nano(s.at_unix_nano);
    o->set_event_version(s.event_version);
    o->set_service(s.service);
    o->set_span_name(s.span_name);
    o->set_span_id(std::string(s.span_id.AsBytes()));
  };
  for (const model::StatusReached& s : r.statuses) fill_status(s, out.add_statuses());
  if (r.last_success) Fill(*r.last_success, *out.mutable_last_success());
  if (r.last_error) Fill(*r.last_error, *out.mutable_last_error());
  for (const model::MessageHop& m : r.messages) {
    pb::MessageHop* o = out.add_messages();
    o->set_message_id(m.message_id);
    o->set_queue(m.queue);
    o->set_published_at_unix_nano(m.published_at_unix_nano);
    o->set_consumed_at_unix_nano(m.consumed_at_unix_nano);
    o->set_retry_count(m.retry_count);
    if (m.published_by.IsValid())
      o->set_published_by_span_id(std::string(m.published_by.AsBytes()));
  }
  for (const model::StatusReached& s : r.revisits) fill_status(s, out.add_revisits());
  return out.SerializeAsString();
}

template <typename IdT>
IdT RandomId(std::mt19937_64& rng) {
  IdT id;
  for (auto& b : id.bytes) b = static_cast<uint8_t>(rng());
  return id;
}

// UTF-8 text (proto3 strings must be; ingest only ever has such) of 0 to about 200 bytes, so
// that past 127 a length takes two bytes; NULs and two-byte characters included.
std::string RandomText(std::mt19937_64& rng) {
  std::string text;
  for (size_t n = rng() % 4 == 0 ? 0 : rng() % 150; n > 0; --n) {
    if (rng() % 8 == 0) {
      text += "\xc3\xa9";  // é
    } else {
      text.push_back(static_cast<char>(rng() % 128));
    }
  }
  return text;
}

// Zero half the time (proto3 leaves it out), else anything up to the full 64 bits.
uint64_t RandomNumber(std::mt19937_64& rng) { return rng() % 2 == 0 ? 0 : rng() >> (rng() % 64); }

model::Operation RandomOperation(std::mt19937_64& rng) {
  model::Operation op;
  op.span_name = RandomText(rng);
  op.service = RandomText(rng);
  op.at_unix_nano = RandomNumber(rng);
  op.trace_id = RandomId<base::TraceId>(rng);
  op.span_id = RandomId<base::SpanId>(rng);
  op.error_code = RandomText(rng);
  op.error_message = RandomText(rng);
  op.reported_status = RandomText(rng);
  op.attempted_status = RandomText(rng);
  return op;
}

model::OrderRecord RandomRecord(std::mt19937_64& rng) {
  model::OrderRecord r;
  r.order_id = "ord-" + std::to_string(rng());
  r.trace_id = RandomId<base::TraceId>(rng);
  for (size_t i = rng() % 4; i > 0; --i) r.trace_ids.push_back(RandomId<base::TraceId>(rng));
  r.partner_id = RandomText(rng);
  r.first_seen_unix_nano = RandomNumber(rng);
  r.last_seen_unix_nano = RandomNumber(rng);
  for (size_t i = rng() % 14; i > 0; --i) {
    model::StatusReached s;
    s.status = RandomText(rng);
    s.prev_status = RandomText(rng);
    s.at_unix_nano = RandomNumber(rng);
    const int64_t versions[] = {-1,
                                0,
                                1,
                                11,
                                -70000,
                                std::numeric_limits<int64_t>::min(),
                                std::numeric_limits<int64_t>::max()};
    s.event_version = versions[rng() % std::size(versions)];
    s.service = RandomText(rng);
    s.span_name = RandomText(rng);
    s.span_id = RandomId<base::SpanId>(rng);
    // Some reports of a status are revisits (a status reached again).
    if (rng() % 4 == 0) {
      r.revisits.push_back(std::move(s));
    } else {
      r.statuses.push_back(std::move(s));
    }
  }
  if (rng() % 2 == 0) r.last_success = RandomOperation(rng);
  if (rng() % 2 == 0) r.last_error = rng() % 4 == 0 ? model::Operation{} : RandomOperation(rng);
  for (size_t i = rng() % 5; i > 0; --i) {
    model::MessageHop m;
    m.message_id = RandomText(rng);
    m.queue = RandomText(rng);
    m.published_at_unix_nano = RandomNumber(rng);
    m.consumed_at_unix_nano = RandomNumber(rng);
    const int64_t counts[] = {0, 1, 3, 300, -1, std::numeric_limits<int64_t>::min()};
    m.retry_count = counts[rng() % std::size(counts)];
    if (rng() % 2 == 0) m.published_by.bytes[rng() % 8] = static_cast<uint8_t>(1 + rng() % 255);
    r.messages.push_back(std::move(m));
  }
  return r;
}

TEST(OrderRecordCodecTest, WritesExactlyTheBytesOfTheGeneratedMessage) {
  std::mt19937_64 rng(20261206);
  for (int i = 0; i < 2000; ++i) {
    const model::OrderRecord record = RandomRecord(rng);
    ASSERT_EQ(EncodeOrderRecord(record), SerializedByLibprotobuf(record)) << "record " << i;
  }
}

TEST(OrderRecordCodecTest, EveryFieldReadsBack) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 500; ++i) {
    const model::OrderRecord record = RandomRecord(rng);
    absl::StatusOr<model::OrderRecord> decoded = DecodeOrderRecord(EncodeOrderRecord(record));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    ASSERT_EQ(*decoded, record) << "record " << i;
  }
}

TEST(OrderRecordCodecTest, AnEmptyOperationIsStillThere) {
  model::OrderRecord record;
  record.order_id = "ord-1";
  record.last_error = model::Operation{};
  absl::StatusOr<model::OrderRecord> decoded = DecodeOrderRecord(EncodeOrderRecord(record));
  ASSERT_TRUE(decoded.ok());
  EXPECT_TRUE(decoded->last_error.has_value());
  EXPECT_FALSE(decoded->last_success.has_value());
}

TEST(OrderRecordCodecTest, CorruptBytesAreDataLoss) {
  model::OrderRecord record;
  record.order_id = "ord-1";
  record.partner_id = "partner-12345";  // the last field: cut, its length runs past the end
  std::string bytes = EncodeOrderRecord(record);
  bytes.pop_back();
  EXPECT_EQ(DecodeOrderRecord(bytes).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeOrderRecord("").status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace ordertrace::store
