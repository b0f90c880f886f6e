// The stored form of an OrderRecord (protobuf, proto/ordertrace/store/v1): compact, fast, and
// tolerant of fields added later. Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "model/order_record.h"

namespace ordertrace::store {

std::string EncodeOrderRecord(const model::OrderRecord& record);
absl::StatusOr<model::OrderRecord> DecodeOrderRecord(std::string_view bytes);

}  // namespace ordertrace::store
