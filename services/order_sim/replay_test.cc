#include "services/order_sim/replay.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "services/common/fault_switch.h"
#include "services/common/order_transitions.h"
#include "services/order_sim/replay_delivery.h"
#include "services/order_sim/sim_faults.h"

namespace ordertrace::services::sim {
namespace {

constexpr int64_t kDayEnd = 1'780'000'000'000'000'000;  // 2026-05-28T20:26:40Z

ReplayDayOptions Options(int orders, uint64_t seed = 3) {
  ReplayDayOptions options;
  options.orders = orders;
  options.seed = seed;
  options.day_end_unix_nano = kDayEnd;
  for (const SimFaultKind& kind : ReplayFaultKinds()) options.fault_kinds.emplace_back(kind.name);
  return options;
}

std::string FaultOf(const ReplayOrder& order) {
  return order.truth.fault.has_value() ? order.truth.fault->kind : "";
}

TEST(ReplayDayTest, SameSeedSameDayAnotherSeedAnotherDay) {
  absl::StatusOr<ReplayDay> a = ReplayDay::Generate(Options(400));
  absl::StatusOr<ReplayDay> b = ReplayDay::Generate(Options(400));
  absl::StatusOr<ReplayDay> c = ReplayDay::Generate(Options(400, 4));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  ASSERT_EQ(a->span_count(), b->span_count());
  for (size_t i = 0; i < a->orders().size(); ++i) {
    EXPECT_EQ(EncodeTruth(a->orders()[i].truth), EncodeTruth(b->orders()[i].truth));
  }
  for (size_t i = 0; i < a->span_count(); ++i) {
    const ReplaySpanRef ra = a->timeline()[i], rb = b->timeline()[i];
    base::Span sa = a->MakeSpan(ra), sb = b->MakeSpan(rb);
    ASSERT_EQ(sa.span_id, sb.span_id);
    EXPECT_EQ(sa.trace_id, sb.trace_id);
    EXPECT_EQ(sa.name, sb.name);
    EXPECT_EQ(sa.end_time_unix_nano, sb.end_time_unix_nano);
    EXPECT_EQ(sa.attributes, sb.attributes);
  }
  EXPECT_NE(a->orders()[0].truth.order_id, c->orders()[0].truth.order_id);
}

TEST(ReplayDayTest, EveryFaultKindIsMadeItsShareOfTimes) {
  absl::StatusOr<ReplayDay> day = ReplayDay::Generate(Options(2000));
  ASSERT_TRUE(day.ok());
  std::map<std::string, int> counts;
  for (const ReplayOrder& order : day->orders()) ++counts[FaultOf(order)];
  const int faulted = 2000 - counts[""];
  EXPECT_EQ(faulted, 120);  // 6%
  for (const SimFaultKind& kind : ReplayFaultKinds()) {
    EXPECT_EQ(counts[std::string(kind.name)], 120 / static_cast<int>(ReplayFaultKinds().size()))
        << kind.name;
  }
}

TEST(ReplayDayTest, FewOrdersStillGetEveryKindOnce) {
  absl::StatusOr<ReplayDay> day = ReplayDay::Generate(Options(20));
  ASSERT_TRUE(day.ok());
  std::set<std::string> kinds;
  for (const ReplayOrder& order : day->orders()) kinds.insert(FaultOf(order));
  EXPECT_EQ(kinds.size(), ReplayFaultKinds().size() + 1);  // and fault-free ones
}

TEST(ReplayDayTest, RefusesBadOptions) {
  ReplayDayOptions options = Options(10);
  options.fault_kinds = {"no_such_fault"};
  EXPECT_EQ(ReplayDay::Generate(options).status().code(), absl::StatusCode::kInvalidArgument);
  options = Options(0);
  EXPECT_FALSE(ReplayDay::Generate(options).ok());
  options = Options(10);
  options.day_end_unix_nano = 0;
  EXPECT_FALSE(ReplayDay::Generate(options).ok());
}

TEST(ReplayFaultKindsTest, StatusBackwardsIsReplayOnly) {
  EXPECT_EQ(FindSimFault(kFaultStatusBackwards), nullptr);
  ASSERT_NE(FindAnyFault(kFaultStatusBackwards), nullptr);
  EXPECT_EQ(FindAnyFault(kFaultStatusBackwards)->gap_kind, "status_backwards");
  EXPECT_FALSE(ParseFaultList("status_backwards").ok());
  absl::StatusOr<std::vector<std::string>> all = ParseFaultList("all", nullptr, ReplayFaultKinds());
  ASSERT_TRUE(all.ok());
  EXPECT_THAT(*all, ::testing::Contains("status_backwards"));
}

TEST(PlanRequestsTest, EverySpanOnceOneServiceARequestInOrderPerService) {
  absl::StatusOr<ReplayDay> day = ReplayDay::Generate(Options(300));
  ASSERT_TRUE(day.ok());
  ReplayBatchingOptions batching;
  batching.batch_spans = 100;
  std::vector<ReplayRequest> requests = PlanRequests(*day, batching);
  std::set<std::pair<uint32_t, uint32_t>> seen;
  std::map<ReplayService, uint64_t> last_time;
  for (const ReplayRequest& request : requests) {
    EXPECT_LE(request.spans.size(), 100u);
    for (const ReplaySpanRef& ref : request.spans) {
      EXPECT_EQ(day->ServiceOf(ref), request.service);
      EXPECT_TRUE(seen.insert({ref.order, ref.span}).second);
      EXPECT_GE(day->EventTimeOf(ref), last_time[request.service]);
      last_time[request.service] = day->EventTimeOf(ref);
    }
  }
  EXPECT_EQ(seen.size(), day->span_count());

  base::TraceBatch batch = RequestBatch(*day, requests.front());
  ASSERT_EQ(batch.resource_spans.size(), 1u);
  const base::AnyValue* name =
      base::FindAttribute(batch.resource_spans[0].resource.attributes, "service.name");
  ASSERT_NE(name, nullptr);
  EXPECT_EQ(name->AsText(), ReplayServiceName(requests.front().service));
}

TEST(PlanRequestsTest, ShuffledKeepsEverySpanButNotTheOrder) {
  absl::StatusOr<ReplayDay> day = ReplayDay::Generate(Options(300));
  ASSERT_TRUE(day.ok());
  ReplayBatchingOptions batching;
  batching.ordering = ReplayOrdering::kShuffled;
  batching.window_spans = 500;
  batching.batch_spans = 64;
  std::vector<ReplayRequest> requests = PlanRequests(*day, batching);
  std::set<std::pair<uint32_t, uint32_t>> seen;
  int backwards = 0;
  std::map<ReplayService, uint64_t> last_time;
  for (const ReplayRequest& request : requests) {
    for (const ReplaySpanRef& ref : request.spans) {
      EXPECT_TRUE(seen.insert({ref.order, ref.span}).second);
      backwards += day->EventTimeOf(ref) < last_time[request.service] ? 1 : 0;
      last_time[request.service] = day->EventTimeOf(ref);
    }
  }
  EXPECT_EQ(seen.size(), day->span_count());
  EXPECT_GT(backwards, 100);  // spans of a service arrive out of event-time order
}

}  // namespace
}  // namespace ordertrace::services::sim
