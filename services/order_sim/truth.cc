#include "services/order_sim/truth.h"

#include <fstream>
#include <nlohmann/json.hpp>

namespace ordertrace::services::sim {

using nlohmann::json;

std::string EncodeTruth(const TruthRecord& record) {
  json line = {{"order_id", record.order_id},
               {"customer_id", record.customer_id},
               {"partner_id", record.partner_id.empty() ? json() : json(record.partner_id)},
               {"polygon_count", record.polygon_count},
               {"time_scale", record.time_scale},
               {"outcome", record.outcome},
               {"last_status", record.last_status},
               {"note", record.note},
               {"started_at_unix_nano", record.started_at_unix_nano},
               {"finished_at_unix_nano", record.finished_at_unix_nano}};
  if (record.fault.has_value()) {
    line["fault"] = {{"kind", record.fault->kind},
                     {"stage", record.fault->stage},
                     {"service", record.fault->service},
                     {"param", record.fault->param},
                     {"at_unix_nano", record.fault->at_unix_nano}};
  } else {
    line["fault"] = nullptr;
  }
  if (!record.trace_id.empty()) line["trace_id"] = record.trace_id;
  if (record.expected_gaps.has_value()) {
    json gaps = json::array();
    for (const TruthGap& gap : *record.expected_gaps) {
      gaps.push_back({{"kind", gap.kind}, {"stage", gap.stage}, {"state", gap.state}});
    }
    line["expected_gaps"] = std::move(gaps);
  }
  return line.dump();
}

absl::StatusOr<TruthRecord> DecodeTruth(const std::string& line) {
  json document = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded() || !document.is_object()) {
    return absl::InvalidArgumentError("not a JSON object");
  }
  try {
    TruthRecord record;
    record.order_id = document.at("order_id").get<std::string>();
    record.customer_id = document.value("customer_id", "");
    if (document.contains("partner_id") && document["partner_id"].is_string()) {
      record.partner_id = document["partner_id"].get<std::string>();
    }
    record.polygon_count = document.value("polygon_count", int64_t{0});
    record.time_scale = document.value("time_scale", 1.0);
    record.outcome = document.at("outcome").get<std::string>();
    record.last_status = document.value("last_status", "");
    record.note = document.value("note", "");
    record.started_at_unix_nano = document.value("started_at_unix_nano", int64_t{0});
    record.finished_at_unix_nano = document.value("finished_at_unix_nano", int64_t{0});
    if (document.contains("fault") && document["fault"].is_object()) {
      const json& fault = document["fault"];
      record.fault = TruthFault{fault.at("kind").get<std::string>(), fault.value("stage", ""),
                                fault.value("service", ""), fault.value("param", ""),
                                fault.value("at_unix_nano", int64_t{0})};
    }
    record.trace_id = document.value("trace_id", "");
    if (document.contains("expected_gaps") && document["expected_gaps"].is_array()) {
      std::vector<TruthGap> gaps;
      for (const json& gap : document["expected_gaps"]) {
        gaps.push_back(TruthGap{gap.at("kind").get<std::string>(), gap.value("stage", ""),
                                gap.value("state", "open")});
      }
      record.expected_gaps = std::move(gaps);
    }
    return record;
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(e.what());
  }
}

absl::StatusOr<std::vector<TruthRecord>> ReadTruthFile(const std::string& path) {
  std::ifstream file(path);
  if (!file) return absl::NotFoundError("cannot read truth file " + path);
  std::vector<TruthRecord> records;
  std::string line;
  int number = 0;
  while (std::getline(file, line)) {
    ++number;
    if (line.empty()) continue;
    absl::StatusOr<TruthRecord> record = DecodeTruth(line);
    if (!record.ok()) {
      return absl::InvalidArgumentError(path + ":" + std::to_string(number) + ": " +
                                        std::string(record.status().message()));
    }
    records.push_back(*std::move(record));
  }
  return records;
}

}  // namespace ordertrace::services::sim
