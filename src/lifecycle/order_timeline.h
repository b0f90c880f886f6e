// The status timeline of an order: each status it reached, and how long it stayed there.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/order_record.h"

namespace ordertrace::lifecycle {

struct Stage {
  std::string status;
  uint64_t reached_at_unix_nano = 0;
  uint64_t left_at_unix_nano = 0;  // 0 while the order is still in this status
  uint64_t duration_nanos = 0;     // until it left, or until `now` for the current status
  bool current = false;
  const model::StatusReached* transition = nullptr;  // points into the record
};

// One stage per status in the record, in lifecycle order. A stage ends when the next one
// starts; the last is the current one and lasts until `now_unix_nano`.
std::vector<Stage> Timeline(const model::OrderRecord& record, uint64_t now_unix_nano);

}  // namespace ordertrace::lifecycle
