#include "store/order_record_codec.h"

#include <nlohmann/json.hpp>

namespace ordertrace::store {
namespace {

using nlohmann::json;
using model::MessageHop;
using model::Operation;
using model::StatusReached;

template <typename IdT>
IdT IdFrom(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return IdT{};
  const auto& bin = it->get_binary();
  auto id = IdT::FromBytes(std::string_view(reinterpret_cast<const char*>(bin.data()), bin.size()));
  return id ? *id : IdT{};
}

json::binary_t Binary(std::string_view v) {
  return json::binary_t(std::vector<uint8_t>(v.begin(), v.end()));
}

json OperationToJson(const Operation& op) {
  json j = {{"n", op.span_name},
            {"s", op.service},
            {"t", op.at_unix_nano},
            {"tr", Binary(op.trace_id.AsBytes())},
            {"sp", Binary(op.span_id.AsBytes())}};
  if (!op.error_code.empty()) j["ec"] = op.error_code;
  if (!op.error_message.empty()) j["em"] = op.error_message;
  return j;
}

Operation OperationFrom(const json& j) {
  Operation op;
  op.span_name = j.value("n", "");
  op.service = j.value("s", "");
  op.at_unix_nano = j.value("t", uint64_t{0});
  op.trace_id = IdFrom<model::TraceId>(j, "tr");
  op.span_id = IdFrom<model::SpanId>(j, "sp");
  op.error_code = j.value("ec", "");
  op.error_message = j.value("em", "");
  return op;
}

}  // namespace

std::string EncodeOrderRecord(const model::OrderRecord& r) {
  json statuses = json::array();
  for (const StatusReached& s : r.statuses) {
    statuses.push_back({{"st", s.status},
                        {"pv", s.prev_status},
                        {"t", s.at_unix_nano},
                        {"v", s.event_version},
                        {"s", s.service},
                        {"n", s.span_name},
                        {"sp", Binary(s.span_id.AsBytes())}});
  }
  json messages = json::array();
  for (const MessageHop& m : r.messages) {
    messages.push_back({{"id", m.message_id},
                        {"q", m.queue},
                        {"p", m.published_at_unix_nano},
                        {"c", m.consumed_at_unix_nano},
                        {"r", m.retry_count}});
  }
  json traces = json::array();
  for (const model::TraceId& t : r.trace_ids) traces.push_back(Binary(t.AsBytes()));
  json j = {{"o", r.order_id},         {"tr", Binary(r.trace_id.AsBytes())},
            {"trs", traces},           {"pa", r.partner_id},
            {"f", r.first_seen_unix_nano}, {"l", r.last_seen_unix_nano},
            {"st", statuses},          {"m", messages}};
  if (r.last_success) j["ok"] = OperationToJson(*r.last_success);
  if (r.last_error) j["err"] = OperationToJson(*r.last_error);
  std::vector<uint8_t> bytes = json::to_msgpack(j);
  return std::string(bytes.begin(), bytes.end());
}

absl::StatusOr<model::OrderRecord> DecodeOrderRecord(std::string_view bytes) {
  try {
    json j = json::from_msgpack(bytes.begin(), bytes.end());
    model::OrderRecord r;
    r.order_id = j.at("o").get<std::string>();
    r.trace_id = IdFrom<model::TraceId>(j, "tr");
    for (const json& t : j.at("trs")) {
      const auto& bin = t.get_binary();
      auto id = model::TraceId::FromBytes(
          std::string_view(reinterpret_cast<const char*>(bin.data()), bin.size()));
      if (id) r.trace_ids.push_back(*id);
    }
    r.partner_id = j.value("pa", "");
    r.first_seen_unix_nano = j.value("f", uint64_t{0});
    r.last_seen_unix_nano = j.value("l", uint64_t{0});
    for (const json& s : j.at("st")) {
      StatusReached st;
      st.status = s.value("st", "");
      st.prev_status = s.value("pv", "");
      st.at_unix_nano = s.value("t", uint64_t{0});
      st.event_version = s.value("v", int64_t{-1});
      st.service = s.value("s", "");
      st.span_name = s.value("n", "");
      st.span_id = IdFrom<model::SpanId>(s, "sp");
      r.statuses.push_back(std::move(st));
    }
    for (const json& m : j.at("m")) {
      MessageHop hop;
      hop.message_id = m.value("id", "");
      hop.queue = m.value("q", "");
      hop.published_at_unix_nano = m.value("p", uint64_t{0});
      hop.consumed_at_unix_nano = m.value("c", uint64_t{0});
      hop.retry_count = m.value("r", int64_t{0});
      r.messages.push_back(std::move(hop));
    }
    if (j.contains("ok")) r.last_success = OperationFrom(j["ok"]);
    if (j.contains("err")) r.last_error = OperationFrom(j["err"]);
    return r;
  } catch (const json::exception& e) {
    return absl::DataLossError(std::string("stored order record is corrupt: ") + e.what());
  }
}

}  // namespace ordertrace::store
