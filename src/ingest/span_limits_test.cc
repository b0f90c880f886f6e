#include "ingest/span_limits.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/clock.h"

namespace ordertrace::ingest {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr uint64_t kSecond = base::kNanosPerSecond;
constexpr uint64_t kDay = 86400 * kSecond;
constexpr uint64_t kNow = 1'704'067'200ULL * kSecond;  // 2024-01-01T00:00:00Z

base::Span SpanAt(uint8_t id, uint64_t start, base::Attributes attributes = {}) {
  base::Span span;
  span.trace_id.bytes[0] = 1;
  span.span_id.bytes[7] = id;
  span.name = "span-" + std::to_string(id);
  span.start_time_unix_nano = start;
  span.end_time_unix_nano = start + kSecond;
  span.attributes = std::move(attributes);
  return span;
}

base::KeyValue Str(std::string key, std::string value) {
  return {std::move(key), base::AnyValue::String(std::move(value))};
}

base::TraceBatch BatchOf(std::vector<base::Span> spans, base::Attributes resource = {}) {
  base::TraceBatch batch;
  base::ResourceSpans rs;
  rs.resource.attributes = std::move(resource);
  base::ScopeSpans ss;
  ss.spans = std::move(spans);
  rs.scope_spans.push_back(std::move(ss));
  batch.resource_spans.push_back(std::move(rs));
  return batch;
}

std::vector<std::string> Names(const base::TraceBatch& batch) {
  std::vector<std::string> names;
  for (const auto& rs : batch.resource_spans) {
    for (const auto& ss : rs.scope_spans) {
      for (const auto& span : ss.spans) names.push_back(span.name);
    }
  }
  return names;
}

size_t Refused(const CheckedBatch& checked, RefusalReason reason) {
  return checked.refused[static_cast<size_t>(reason)];
}

TEST(SpanLimitsTest, RefusesSpansOutsideTheTimeWindowOneByOneNamingTheReason) {
  base::TraceBatch batch = BatchOf({SpanAt(1, kNow - kSecond), SpanAt(2, 0),
                                    SpanAt(3, kNow - 15 * kDay), SpanAt(4, UINT64_MAX - kSecond),
                                    SpanAt(5, kNow + 2 * kDay), SpanAt(6, kNow + 3600 * kSecond)});
  RejectedSpans rejected;
  CheckedBatch checked = CheckSpans(batch, SpanLimits{}, kNow, rejected);

  EXPECT_THAT(Names(batch), testing::ElementsAre("span-1", "span-6"));
  EXPECT_EQ(checked.spans, 2u);
  EXPECT_EQ(rejected.count, 4);
  EXPECT_THAT(
      rejected.message,
      AllOf(HasSubstr("span 0000000000000002"), HasSubstr("start time 1970-01-01T00:00:00Z"),
            HasSubstr("older than 14d"), HasSubstr("ingest.max_span_age")));
  EXPECT_EQ(Refused(checked, RefusalReason::kTooOld), 2u);
  EXPECT_EQ(Refused(checked, RefusalReason::kInTheFuture), 2u);
}

TEST(SpanLimitsTest, TheWindowFollowsTheLimitsGiven) {
  SpanLimits limits;
  limits.max_span_age_nanos = kDay;
  limits.max_span_future_nanos = 60 * kSecond;
  base::TraceBatch batch = BatchOf({SpanAt(1, kNow - 2 * kDay), SpanAt(2, kNow + 120 * kSecond)});
  RejectedSpans rejected;
  CheckSpans(batch, limits, kNow, rejected);
  EXPECT_THAT(Names(batch), IsEmpty());
  EXPECT_THAT(batch.resource_spans, IsEmpty()) << "an emptied resource is dropped";
  EXPECT_THAT(rejected.message, HasSubstr("older than 1d"));

  batch = BatchOf({SpanAt(2, kNow + 120 * kSecond)});
  rejected = {};
  CheckSpans(batch, limits, kNow, rejected);
  EXPECT_THAT(rejected.message,
              AllOf(HasSubstr("more than 1m ahead"), HasSubstr("ingest.max_span_future")));
}

TEST(SpanLimitsTest, RefusesAnOrderIdOverItsLimitOnTheSpanOrItsResource) {
  SpanLimits limits;
  const std::string long_id(limits.max_order_id_bytes + 1, 'o');
  base::TraceBatch batch =
      BatchOf({SpanAt(1, kNow, {Str("order_id", long_id)}),
               SpanAt(2, kNow, {Str("order_id", std::string(limits.max_order_id_bytes, 'o'))})});
  RejectedSpans rejected;
  CheckedBatch checked = CheckSpans(batch, limits, kNow, rejected);
  EXPECT_THAT(Names(batch), testing::ElementsAre("span-2"));
  EXPECT_THAT(rejected.message, AllOf(HasSubstr("order_id is 257 bytes"), HasSubstr("256")));
  EXPECT_EQ(Refused(checked, RefusalReason::kOrderIdTooLong), 1u);

  batch = BatchOf({SpanAt(1, kNow), SpanAt(2, kNow)}, {Str("order_id", long_id)});
  rejected = {};
  checked = CheckSpans(batch, limits, kNow, rejected);
  EXPECT_THAT(batch.resource_spans, IsEmpty());
  EXPECT_EQ(rejected.count, 2);
  EXPECT_THAT(rejected.message, HasSubstr("resource attribute order_id"));
}

TEST(SpanLimitsTest, RefusesAttributeKeysAndValuesOverTheirLimitsWhereverTheyAre) {
  SpanLimits limits;
  limits.max_attribute_key_bytes = 8;
  limits.max_attribute_value_bytes = 10;
  base::AnyValue array;
  array.type = base::AnyValue::Type::kArray;
  for (int i = 0; i < 3; ++i) array.array_values.push_back(base::AnyValue::String("abcd"));
  base::Span in_event = SpanAt(4, kNow);
  in_event.events.push_back({kNow, "e", {Str("k", std::string(11, 'v'))}, 0});

  base::TraceBatch batch =
      BatchOf({SpanAt(1, kNow, {Str("long-key-x", "v")}), SpanAt(2, kNow, {{"arr", array}}),
               SpanAt(3, kNow, {Str("k", std::string(10, 'v'))}), std::move(in_event)});
  RejectedSpans rejected;
  CheckedBatch checked = CheckSpans(batch, limits, kNow, rejected);
  EXPECT_THAT(Names(batch), testing::ElementsAre("span-3"));
  EXPECT_EQ(rejected.count, 3);
  EXPECT_THAT(rejected.message, AllOf(HasSubstr("span 0000000000000001"),
                                      HasSubstr("ingest.max_attribute_key_bytes")));
  EXPECT_EQ(Refused(checked, RefusalReason::kAttributeTooLong), 3u);
}

TEST(SpanLimitsTest, MeasuresWhatTheKeptSpansHold) {
  base::TraceBatch small = BatchOf({SpanAt(1, kNow)});
  base::TraceBatch large = BatchOf({SpanAt(1, kNow, {Str("big", std::string(100'000, 'x'))})});
  RejectedSpans rejected;
  const size_t small_bytes = CheckSpans(small, SpanLimits{}, kNow, rejected).bytes;
  const size_t large_bytes = CheckSpans(large, SpanLimits{}, kNow, rejected).bytes;
  EXPECT_GE(small_bytes, sizeof(base::Span));
  EXPECT_GE(large_bytes, small_bytes + 100'000);
  EXPECT_EQ(rejected.count, 0);
}

}  // namespace
}  // namespace ordertrace::ingest
