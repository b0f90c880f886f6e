#include "lifecycle/order_timeline.h"

namespace ordertrace::lifecycle {

std::vector<Stage> Timeline(const model::OrderRecord& record, uint64_t now_unix_nano) {
  std::vector<Stage> stages;
  stages.reserve(record.statuses.size());
  for (size_t i = 0; i < record.statuses.size(); ++i) {
    const model::StatusReached& s = record.statuses[i];
    Stage stage;
    stage.status = s.status;
    stage.reached_at_unix_nano = s.at_unix_nano;
    stage.transition = &s;
    uint64_t end;
    if (i + 1 < record.statuses.size()) {
      stage.left_at_unix_nano = record.statuses[i + 1].at_unix_nano;
      end = stage.left_at_unix_nano;
    } else {
      stage.current = true;
      end = now_unix_nano;
    }
    // Clocks of different services may disagree: never report a negative stay.
    stage.duration_nanos = end > s.at_unix_nano ? end - s.at_unix_nano : 0;
    stages.push_back(std::move(stage));
  }
  return stages;
}

}  // namespace ordertrace::lifecycle
