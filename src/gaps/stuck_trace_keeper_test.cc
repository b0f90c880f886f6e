#include "gaps/stuck_trace_keeper.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ordertrace::gaps {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class RecordingKeeper final : public StuckTraceKeeper {
 public:
  void KeepStuckTrace(const base::TraceId& trace_id) override { kept.push_back(trace_id.ToHex()); }
  std::vector<std::string> kept;
};

class RecordingSink final : public GapSink {
 public:
  void OnGapOpened(const Gap& gap) override { events.push_back("opened " + gap.id); }
  void OnGapResolved(const Gap& gap) override { events.push_back("resolved " + gap.id); }
  std::vector<std::string> events;
};

Gap GapOf(const std::string& id, uint8_t trace) {
  Gap gap;
  gap.id = id;
  gap.trace_id.bytes[15] = trace;
  return gap;
}

TEST(GapFanOutTest, AnOpenedGapKeepsItsTraceAndReachesTheAlerts) {
  RecordingKeeper keeper;
  RecordingSink alerts;
  GapFanOut fan_out(&alerts, &keeper);
  fan_out.OnGapOpened(GapOf("A-1/missing_transition/SUBMITTED", 1));
  fan_out.OnGapResolved(GapOf("A-1/missing_transition/SUBMITTED", 1));
  EXPECT_THAT(keeper.kept, ElementsAre(std::string(31, '0') + "1"));
  EXPECT_THAT(alerts.events, ElementsAre("opened A-1/missing_transition/SUBMITTED",
                                         "resolved A-1/missing_transition/SUBMITTED"));
}

TEST(GapFanOutTest, AGapWithoutATraceKeepsNothing) {
  RecordingKeeper keeper;
  GapFanOut fan_out(nullptr, &keeper);
  fan_out.OnGapOpened(GapOf("source_silent/mes-api/1", 0));
  EXPECT_THAT(keeper.kept, IsEmpty());
}

TEST(GapFanOutTest, EitherTargetMayBeMissing) {
  RecordingSink alerts;
  GapFanOut without_keeper(&alerts, nullptr);
  without_keeper.OnGapOpened(GapOf("B-2/message_not_consumed/PAID/m1", 2));
  EXPECT_THAT(alerts.events, ElementsAre("opened B-2/message_not_consumed/PAID/m1"));
  RecordingKeeper keeper;
  GapFanOut without_alerts(nullptr, &keeper);
  without_alerts.OnGapOpened(GapOf("B-2/message_not_consumed/PAID/m1", 2));
  without_alerts.OnGapResolved(GapOf("B-2/message_not_consumed/PAID/m1", 2));
  EXPECT_THAT(keeper.kept, ElementsAre(std::string(31, '0') + "2"));
}

}  // namespace
}  // namespace ordertrace::gaps
