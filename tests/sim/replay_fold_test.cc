// order-sim's replay against ordertrace's own fold: a simulated day's spans, folded as ingest
// folds them (lifecycle::ApplySpan), give every fault-free order its whole lifecycle inside the
// SLAs and every faulted one the record its fault implies. A cross-part test: order-sim may not
// use the server's parts, so it lives here rather than beside the replay.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "lifecycle/order_record_builder.h"
#include "services/common/fault_switch.h"
#include "services/common/order_transitions.h"
#include "services/order_sim/replay.h"
#include "services/order_sim/sim_faults.h"

namespace ordertrace::services::sim {
namespace {

constexpr int64_t kMinute = 60'000'000'000;
constexpr int64_t kDayEnd = 1'780'000'000'000'000'000;  // 2026-05-28T20:26:40Z

ReplayDayOptions Options(int orders, uint64_t seed = 3) {
  ReplayDayOptions options;
  options.orders = orders;
  options.seed = seed;
  options.day_end_unix_nano = kDayEnd;
  for (const SimFaultKind& kind : ReplayFaultKinds()) options.fault_kinds.emplace_back(kind.name);
  return options;
}

// The order's record as ordertrace folds its spans (lifecycle/order_record_builder.h).
model::OrderRecord Fold(const ReplayDay& day, uint32_t order) {
  model::OrderRecord record;
  record.order_id = day.orders()[order].truth.order_id;
  for (uint32_t s = 0; s < day.orders()[order].spans.size(); ++s) {
    base::Resource resource;
    resource.attributes.push_back(
        {"service.name",
         base::AnyValue::String(std::string(ReplayServiceName(day.ServiceOf({order, s}))))});
    lifecycle::ApplySpan(day.MakeSpan({order, s}), resource, record);
  }
  return record;
}

const model::StatusReached* Reached(const model::OrderRecord& record, std::string_view status) {
  for (const model::StatusReached& reached : record.statuses) {
    if (reached.status == status) return &reached;
  }
  return nullptr;
}

std::string FaultOf(const ReplayOrder& order) {
  return order.truth.fault.has_value() ? order.truth.fault->kind : "";
}

TEST(ReplayDayTest, EveryFaultFreeOrderClosesWithinTheDayInsideItsSlas) {
  absl::StatusOr<ReplayDay> day = ReplayDay::Generate(Options(1000));
  ASSERT_TRUE(day.ok());
  int checked = 0;
  for (uint32_t o = 0; o < day->orders().size(); ++o) {
    const ReplayOrder& order = day->orders()[o];
    if (order.truth.fault.has_value()) continue;
    ++checked;
    EXPECT_EQ(order.truth.outcome, "closed");
    ASSERT_TRUE(order.truth.expected_gaps.has_value());
    EXPECT_TRUE(order.truth.expected_gaps->empty());
    EXPECT_GE(order.truth.started_at_unix_nano, day->day_start_unix_nano());
    EXPECT_LE(order.truth.finished_at_unix_nano, day->day_end_unix_nano() - 30 * kMinute);
    model::OrderRecord record = Fold(*day, o);
    ASSERT_EQ(record.statuses.size(), std::size(kDefaultLifecycle)) << order.truth.order_id;
    for (size_t i = 0; i < record.statuses.size(); ++i) {
      EXPECT_EQ(record.statuses[i].status, kDefaultLifecycle[i].status);
      EXPECT_EQ(record.statuses[i].event_version, static_cast<int64_t>(i + 1));
      EXPECT_EQ(record.statuses[i].service, kDefaultLifecycle[i].service);
      EXPECT_EQ(record.statuses[i].span_name, kDefaultLifecycle[i].span_name);
    }
    // Each stage well inside its SLA (ordertrace.yaml's default lifecycle).
    const int64_t sla_minutes[] = {30, 30, 10, 30, 120, 120, 480, 60, 240, 720};
    for (size_t i = 0; i + 1 < record.statuses.size(); ++i) {
      EXPECT_LT(static_cast<int64_t>(record.statuses[i + 1].at_unix_nano -
                                     record.statuses[i].at_unix_nano),
                sla_minutes[i] * kMinute * 9 / 10)
          << record.statuses[i].status;
    }
    ASSERT_EQ(record.messages.size(), 2u);
    for (const model::MessageHop& hop : record.messages) {
      EXPECT_NE(hop.consumed_at_unix_nano, 0u);
      EXPECT_LT(hop.consumed_at_unix_nano - hop.published_at_unix_nano, 60'000'000'000u);
      EXPECT_EQ(hop.retry_count, 0);
    }
    EXPECT_FALSE(record.last_error.has_value());
  }
  EXPECT_GT(checked, 900);
}

TEST(ReplayDayTest, EachFaultIsInTheSpansAsOrdertraceReadsThem) {
  absl::StatusOr<ReplayDay> day = ReplayDay::Generate(Options(400));
  ASSERT_TRUE(day.ok());
  std::set<std::string> seen;
  for (uint32_t o = 0; o < day->orders().size(); ++o) {
    const ReplayOrder& order = day->orders()[o];
    const std::string kind = FaultOf(order);
    if (kind.empty()) continue;
    seen.insert(kind);
    SCOPED_TRACE(kind + " " + order.truth.order_id);
    const model::OrderRecord record = Fold(*day, o);
    const model::StatusReached* current = record.CurrentStatus();
    ASSERT_NE(current, nullptr);
    EXPECT_EQ(order.truth.expected_gaps, ExpectedGaps(kind));
    if (order.truth.outcome == "stopped") {
      // A stuck order's deadlines have all passed before the day ends.
      EXPECT_LE(order.truth.finished_at_unix_nano, day->day_end_unix_nano() - 30 * kMinute);
      EXPECT_EQ(current->status, order.truth.last_status);
    }
    auto unconsumed = [&record] {
      int count = 0;
      for (const model::MessageHop& hop : record.messages) {
        count += hop.published_at_unix_nano != 0 && hop.consumed_at_unix_nano == 0 ? 1 : 0;
      }
      return count;
    };
    if (kind == kFaultLostPriceRequest) {
      EXPECT_EQ(current->status, kSubmitted);
      EXPECT_EQ(unconsumed(), 1);
    } else if (kind == kFaultLostStatusEvent) {
      EXPECT_EQ(current->status, kPriceCalculated);
      EXPECT_EQ(unconsumed(), 1);
    } else if (kind == kFaultCalculatorHang) {
      EXPECT_EQ(current->status, kPriceCalculationStarted);
    } else if (kind == kFaultCalculatorSlow) {
      const uint64_t took = Reached(record, kPriceCalculated)->at_unix_nano -
                            Reached(record, kPriceCalculationStarted)->at_unix_nano;
      EXPECT_GT(took, 35 * kMinute);
      EXPECT_EQ(current->status, kClosed);
    } else if (kind == "operator_no_show") {
      EXPECT_EQ(current->status, kManufacturingApproved);
    } else if (kind == kFaultConsumerCrash) {
      EXPECT_EQ(current->status, kClosed);
      EXPECT_EQ(record.messages.front().retry_count, 1);
      EXPECT_EQ(unconsumed(), 0);
    } else if (kind == kFaultMissedStatusWrite) {
      EXPECT_EQ(current->status, kPriceCalculated);
      ASSERT_TRUE(record.last_error.has_value());
      EXPECT_EQ(record.last_error->service, "crm-api");
      EXPECT_EQ(record.last_error->reported_status, kPriceCalculationStarted);
      EXPECT_FALSE(record.last_error->error_code.empty());
      EXPECT_GE(record.last_error->at_unix_nano, current->at_unix_nano);
    } else if (kind == kFaultSkippedStatus) {
      EXPECT_EQ(Reached(record, kPackaging), nullptr);
      EXPECT_EQ(Reached(record, kShipped)->prev_status, kManufacturingCompleted);
      EXPECT_EQ(current->status, kClosed);
    } else if (kind == kFaultPartnerOrderDropped) {
      EXPECT_EQ(current->status, kInitiated);
      EXPECT_FALSE(record.partner_id.empty());
    } else if (kind == kFaultStatusBackwards) {
      // The last span: SHIPPED again, after CLOSED, with a newer version, in the day's last 3 h.
      const ReplaySpanPlan& last = order.spans.back();
      EXPECT_EQ(last.new_status, kShipped);
      EXPECT_EQ(last.prev_status, kClosed);
      EXPECT_EQ(last.event_version, Reached(record, kClosed)->event_version + 1);
      EXPECT_GE(static_cast<int64_t>(last.end_unix_nano), day->day_end_unix_nano() - 180 * kMinute);
    }
  }
  EXPECT_EQ(seen.size(), ReplayFaultKinds().size());
}

}  // namespace
}  // namespace ordertrace::services::sim
