#include "gaps/gap_codec.h"

#include <nlohmann/json.hpp>

namespace ordertrace::gaps {
namespace {

using nlohmann::json;

template <typename Id>
Id IdFromHex(const json& document, const char* key) {
  auto it = document.find(key);
  if (it == document.end() || !it->is_string()) return Id{};
  std::optional<Id> id = Id::FromHex(it->get<std::string>());
  return id.value_or(Id{});
}

}  // namespace

std::string EncodeGap(const Gap& gap) {
  json document = {{"id", gap.id},
                   {"order_id", gap.order_id},
                   {"partner_id", gap.partner_id},
                   {"kind", gap.kind},
                   {"stage", gap.stage},
                   {"expected", gap.expected},
                   {"service", gap.service},
                   {"queue", gap.queue},
                   {"message_id", gap.message_id},
                   {"detail", gap.detail},
                   {"trace_id", gap.trace_id.ToHex()},
                   {"since", gap.since_unix_nano},
                   {"deadline", gap.deadline_unix_nano},
                   {"detected_at", gap.detected_at_unix_nano},
                   {"resolved_at", gap.resolved_at_unix_nano},
                   {"resolved_by", gap.resolved_by},
                   {"paged", gap.paged}};
  if (gap.last_success.has_value()) {
    const model::Operation& op = *gap.last_success;
    document["last_success"] = {{"span_name", op.span_name},
                                {"service", op.service},
                                {"at", op.at_unix_nano},
                                {"trace_id", op.trace_id.ToHex()},
                                {"span_id", op.span_id.ToHex()}};
  }
  return document.dump();
}

absl::StatusOr<Gap> DecodeGap(const std::string& encoded) {
  json document = json::parse(encoded, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded() || !document.is_object()) {
    return absl::DataLossError("gap record is not a JSON object");
  }
  try {
    Gap gap;
    gap.id = document.at("id").get<std::string>();
    gap.order_id = document.at("order_id").get<std::string>();
    gap.partner_id = document.value("partner_id", "");
    gap.kind = document.at("kind").get<std::string>();
    gap.stage = document.value("stage", "");
    if (document.contains("expected")) {
      gap.expected = document["expected"].get<std::vector<std::string>>();
    }
    gap.service = document.value("service", "");
    gap.queue = document.value("queue", "");
    gap.message_id = document.value("message_id", "");
    gap.detail = document.value("detail", "");
    gap.trace_id = IdFromHex<base::TraceId>(document, "trace_id");
    gap.since_unix_nano = document.value("since", uint64_t{0});
    gap.deadline_unix_nano = document.value("deadline", uint64_t{0});
    gap.detected_at_unix_nano = document.value("detected_at", uint64_t{0});
    gap.resolved_at_unix_nano = document.value("resolved_at", uint64_t{0});
    gap.resolved_by = document.value("resolved_by", "");
    // Written before resolved_by existed: resolved when it has a resolution time.
    if (gap.resolved_by.empty() && gap.resolved_at_unix_nano != 0) gap.resolved_by = "resolved";
    gap.paged = document.value("paged", !document.contains("resolved_by"));
    if (document.contains("last_success") && document["last_success"].is_object()) {
      const json& op = document["last_success"];
      model::Operation operation;
      operation.span_name = op.value("span_name", "");
      operation.service = op.value("service", "");
      operation.at_unix_nano = op.value("at", uint64_t{0});
      operation.trace_id = IdFromHex<base::TraceId>(op, "trace_id");
      operation.span_id = IdFromHex<base::SpanId>(op, "span_id");
      gap.last_success = operation;
    }
    return gap;
  } catch (const json::exception& e) {
    return absl::DataLossError(std::string("gap record: ") + e.what());
  }
}

}  // namespace ordertrace::gaps
