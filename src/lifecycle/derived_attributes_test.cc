#include "lifecycle/derived_attributes.h"

#include <gtest/gtest.h>

#include "base/attribute_names.h"
#include "base/clock.h"

namespace ordertrace::lifecycle {
namespace {

constexpr uint64_t kBase = 1'700'000'000ULL * base::kNanosPerSecond;
constexpr uint64_t kSecond = base::kNanosPerSecond;

base::SpanId SpanIdOf(uint8_t n) {
  base::SpanId id;
  id.bytes[0] = 0x01;
  id.bytes[7] = n;
  return id;
}

std::optional<double> DoubleAttr(const base::Span& span, std::string_view key) {
  const base::AnyValue* v = base::FindAttribute(span.attributes, key);
  if (v == nullptr || v->type != base::AnyValue::Type::kDouble) return std::nullopt;
  return v->double_value;
}

base::Span Transition(const std::string& prev, const std::string& next, uint64_t start,
                      uint64_t end, uint8_t id) {
  base::Span s;
  s.span_id = SpanIdOf(id);
  s.name = "t";
  s.start_time_unix_nano = start;
  s.end_time_unix_nano = end;
  s.attributes.push_back({base::kPrevStatusKey, base::AnyValue::String(prev)});
  s.attributes.push_back({base::kNewStatusKey, base::AnyValue::String(next)});
  return s;
}

model::OrderRecord RecordWith(uint64_t submitted_at, uint64_t started_at) {
  model::OrderRecord r;
  model::StatusReached a;
  a.status = "SUBMITTED";
  a.at_unix_nano = submitted_at;
  a.span_id = SpanIdOf(1);
  model::StatusReached b;
  b.status = "PRICE_CALCULATION_STARTED";
  b.prev_status = "SUBMITTED";
  b.at_unix_nano = started_at;
  b.span_id = SpanIdOf(2);
  r.statuses = {a, b};
  return r;
}

TEST(DerivedAttributes, StageAndTransitionLatencyOnTheReachingSpan) {
  base::Span span = Transition("SUBMITTED", "PRICE_CALCULATION_STARTED", kBase + 299 * kSecond,
                               kBase + 300 * kSecond, 2);
  AddDerivedAttributes(span, RecordWith(kBase, kBase + 300 * kSecond), "mes.price.calc");
  EXPECT_EQ(DoubleAttr(span, kStageDurationKey), 300.0);
  EXPECT_EQ(DoubleAttr(span, kStatusTransitionLatencyKey), 1.0);
  EXPECT_FALSE(DoubleAttr(span, kCalcDurationKey));
}

TEST(DerivedAttributes, NoStageWhenTheSpanDidNotReachTheStatusOrPrevIsUnknown) {
  // A duplicate transition span (another span reached the status first).
  base::Span late = Transition("SUBMITTED", "PRICE_CALCULATION_STARTED", kBase, kBase + 1, 9);
  AddDerivedAttributes(late, RecordWith(kBase, kBase + 300 * kSecond), "");
  EXPECT_FALSE(DoubleAttr(late, kStageDurationKey));
  model::OrderRecord only_second = RecordWith(kBase, kBase + 300 * kSecond);
  only_second.statuses.erase(only_second.statuses.begin());
  base::Span span = Transition("SUBMITTED", "PRICE_CALCULATION_STARTED", kBase, kBase + 1, 2);
  AddDerivedAttributes(span, only_second, "");
  EXPECT_FALSE(DoubleAttr(span, kStageDurationKey));
  EXPECT_TRUE(DoubleAttr(span, kStatusTransitionLatencyKey));
}

TEST(DerivedAttributes, PublishToConsumeOnTheConsumer) {
  model::OrderRecord r;
  model::MessageHop hop;
  hop.message_id = "m-1";
  hop.published_at_unix_nano = kBase;
  r.messages = {hop};
  base::Span consume;
  consume.kind = base::SpanKind::kConsumer;
  consume.start_time_unix_nano = kBase + 2 * kSecond;
  consume.end_time_unix_nano = kBase + 3 * kSecond;
  consume.attributes.push_back({base::kMessagingMessageIdKey, base::AnyValue::String("m-1")});
  AddDerivedAttributes(consume, r, "");
  EXPECT_EQ(DoubleAttr(consume, kPublishToConsumeLatencyKey), 2.0);
}

TEST(DerivedAttributes, CalcDurationAndNeverReplacesAnAttribute) {
  base::Span calc;
  calc.name = "mes.price.calc";
  calc.start_time_unix_nano = kBase;
  calc.end_time_unix_nano = kBase + 90 * kSecond;
  AddDerivedAttributes(calc, model::OrderRecord{}, "mes.price.calc");
  EXPECT_EQ(DoubleAttr(calc, kCalcDurationKey), 90.0);
  // Applied again (a stored span re-ingested): still one attribute.
  AddDerivedAttributes(calc, model::OrderRecord{}, "mes.price.calc");
  size_t count = 0;
  for (const auto& kv : calc.attributes) count += kv.key == kCalcDurationKey;
  EXPECT_EQ(count, 1u);
}

}  // namespace
}  // namespace ordertrace::lifecycle
