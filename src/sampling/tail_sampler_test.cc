#include "sampling/tail_sampler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/attribute_names.h"
#include "base/clock.h"
#include "otlp/proto_codec.h"

namespace ordertrace::sampling {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr uint64_t kSecond = base::kNanosPerSecond;
constexpr uint64_t kMilli = kSecond / 1000;
constexpr uint64_t kNow = 1'704'067'200ULL * kSecond;  // 2024-01-01T00:00Z
constexpr uint64_t kWait = 30 * kSecond;

// A trace the default ratio keeps: its random part (the rightmost 7 bytes) is 1.
base::TraceId SampledTrace(uint8_t n) {
  base::TraceId id;
  id.bytes[0] = n;
  id.bytes[15] = 1;
  return id;
}

// A trace no ratio below 0.99 keeps: its random part starts with 0xff.
base::TraceId UnsampledTrace(uint8_t n) {
  base::TraceId id;
  id.bytes[0] = n;
  id.bytes[9] = 0xff;
  return id;
}

base::SpanId SpanIdOf(uint8_t n) {
  base::SpanId id;
  id.bytes[7] = n;
  return id;
}

// A child span of 10 ms: detail unless marked otherwise.
base::Span Detail(const base::TraceId& trace_id, std::string name,
                  uint64_t duration = 10 * kMilli) {
  base::Span span;
  span.trace_id = trace_id;
  span.span_id = SpanIdOf(static_cast<uint8_t>(name.size() + name[0]));
  span.parent_span_id = SpanIdOf(1);
  span.name = std::move(name);
  span.start_time_unix_nano = kNow - duration;
  span.end_time_unix_nano = kNow;
  return span;
}

base::Span Slow(const base::TraceId& trace_id, std::string name) {
  return Detail(trace_id, std::move(name), 5 * kSecond + 1);
}

base::Span WithAttribute(base::Span span, const char* key) {
  span.attributes.push_back({key, base::AnyValue::String("x")});
  return span;
}

base::Span Failed(const base::TraceId& trace_id, std::string name) {
  base::Span span = Detail(trace_id, std::move(name));
  span.status.code = base::StatusCode::kError;
  return span;
}

base::Resource ResourceOf(const std::string& service) {
  base::Resource resource;
  resource.attributes.push_back({"service.name", base::AnyValue::String(service)});
  return resource;
}

base::TraceBatch BatchOf(std::vector<base::Span> spans, const std::string& service = "mes-api",
                         const std::string& scope = "mes") {
  base::TraceBatch batch;
  batch.resource_spans.emplace_back();
  batch.resource_spans[0].resource = ResourceOf(service);
  batch.resource_spans[0].scope_spans.emplace_back();
  batch.resource_spans[0].scope_spans[0].scope.name = scope;
  batch.resource_spans[0].scope_spans[0].spans = std::move(spans);
  return batch;
}

std::vector<std::string> NamesOf(const base::TraceBatch& batch) {
  std::vector<std::string> names;
  for (const auto& rs : batch.resource_spans) {
    for (const auto& ss : rs.scope_spans) {
      for (const auto& span : ss.spans) names.push_back(span.name);
    }
  }
  return names;
}

class TailSamplerTest : public ::testing::Test {
 protected:
  base::ManualClock clock_{kNow};
};

TEST(IsLifecycleSpanTest, EachKindIsLifecycleAndPlainChildIsNot) {
  const base::TraceId t = UnsampledTrace(1);
  EXPECT_FALSE(IsLifecycleSpan(Detail(t, "plain")));
  for (const char* key :
       {base::kNewStatusKey, base::kMessagingSystemKey, base::kMessagingMessageIdKey,
        base::kMessageIdKey, base::kQueueKey, base::kErrorCodeKey}) {
    EXPECT_TRUE(IsLifecycleSpan(WithAttribute(Detail(t, "marked"), key))) << key;
  }
  EXPECT_TRUE(IsLifecycleSpan(Failed(t, "failed")));
  base::Span root = Detail(t, "root");
  root.parent_span_id = base::SpanId{};
  EXPECT_TRUE(IsLifecycleSpan(root));
  // Other attributes do not make a span lifecycle.
  EXPECT_FALSE(IsLifecycleSpan(WithAttribute(Detail(t, "other"), base::kOrderIdKey)));
}

TEST(RatioKeepsTest, SameTraceIdSameAnswerAndOnlyTheRandomPartCounts) {
  std::mt19937_64 random(7);
  for (int i = 0; i < 1000; ++i) {
    base::TraceId id;
    for (uint8_t& b : id.bytes) b = static_cast<uint8_t>(random());
    const bool keeps = RatioKeeps(id, 0.3);
    EXPECT_EQ(RatioKeeps(id, 0.3), keeps);
    base::TraceId other_left = id;
    for (size_t b = 0; b < 9; ++b) other_left.bytes[b] ^= 0x5a;
    EXPECT_EQ(RatioKeeps(other_left, 0.3), keeps);
  }
}

TEST(RatioKeepsTest, KeepsTheRatioShareOfRandomTraceIds) {
  std::mt19937_64 random(42);
  constexpr int kTraces = 20000;
  int kept = 0;
  for (int i = 0; i < kTraces; ++i) {
    base::TraceId id;
    for (uint8_t& b : id.bytes) b = static_cast<uint8_t>(random());
    if (RatioKeeps(id, 0.10)) ++kept;
  }
  // The binomial's standard deviation is 0.0021: 0.01 is more than four of them.
  EXPECT_NEAR(static_cast<double>(kept) / kTraces, 0.10, 0.01);
}

TEST(RatioKeepsTest, ZeroKeepsNoneAndOneKeepsAll) {
  base::TraceId lowest;  // random part 0
  base::TraceId highest;
  for (uint8_t& b : highest.bytes) b = 0xff;
  EXPECT_FALSE(RatioKeeps(lowest, 0));
  EXPECT_FALSE(RatioKeeps(highest, 0));
  EXPECT_TRUE(RatioKeeps(lowest, 1));
  EXPECT_TRUE(RatioKeeps(highest, 1));
}

TEST(RatioKeepsTest, ComparesTheRightmostSevenBytesBigEndian) {
  base::TraceId below_half;  // r = 0x7fffffffffffff
  for (size_t b = 9; b < 16; ++b) below_half.bytes[b] = 0xff;
  below_half.bytes[9] = 0x7f;
  below_half.bytes[8] = 0xff;  // not part of r
  base::TraceId half;          // r = 0x80000000000000 = 2^55
  half.bytes[9] = 0x80;
  base::TraceId low_byte_set;  // r = 0x80: big-endian, so small
  low_byte_set.bytes[15] = 0x80;
  EXPECT_TRUE(RatioKeeps(below_half, 0.5));
  EXPECT_FALSE(RatioKeeps(half, 0.5));
  EXPECT_TRUE(RatioKeeps(low_byte_set, 0.5));
}

TEST_F(TailSamplerTest, LifecycleSpansOfEveryKindAreAlwaysKept) {
  TailSampler sampler({.ratio = 0}, clock_);
  const base::TraceId t = UnsampledTrace(1);
  base::Span root = Detail(t, "root");
  root.parent_span_id = base::SpanId{};
  std::vector<base::Span> spans = {
      WithAttribute(Detail(t, "status"), base::kNewStatusKey),
      WithAttribute(Detail(t, "messaging"), base::kMessagingSystemKey),
      WithAttribute(Detail(t, "message.id"), base::kMessagingMessageIdKey),
      WithAttribute(Detail(t, "message_id"), base::kMessageIdKey),
      WithAttribute(Detail(t, "queue"), base::kQueueKey),
      WithAttribute(Detail(t, "error_code"), base::kErrorCodeKey),
      Failed(t, "failed"),
      root,
  };
  EXPECT_THAT(NamesOf(sampler.Admit(BatchOf(spans))),
              ElementsAre("status", "messaging", "message.id", "message_id", "queue", "error_code",
                          "failed", "root"));

  // Also in a trace decided drop.
  const base::TraceId dropped = UnsampledTrace(2);
  EXPECT_THAT(NamesOf(sampler.Admit(BatchOf({Detail(dropped, "detail")}))), IsEmpty());
  clock_.Advance(kWait);
  sampler.ExpirePending();
  for (base::Span& span : spans) span.trace_id = dropped;
  EXPECT_EQ(sampler.Admit(BatchOf(spans)).SpanCount(), spans.size());
  EXPECT_EQ(sampler.Stats().lifecycle_spans, 2 * spans.size());
}

TEST_F(TailSamplerTest, BatchWithoutDetailComesBackMovedNotCopied) {
  TailSampler sampler({}, clock_);
  base::TraceBatch batch =
      BatchOf({WithAttribute(Detail(UnsampledTrace(1), "status"), base::kNewStatusKey),
               WithAttribute(Detail(UnsampledTrace(2), "hop"), base::kQueueKey)});
  const base::Span* spans_before = batch.resource_spans[0].scope_spans[0].spans.data();
  const base::ResourceSpans* resources_before = batch.resource_spans.data();
  base::TraceBatch out = sampler.Admit(std::move(batch));
  ASSERT_EQ(out.SpanCount(), 2u);
  EXPECT_EQ(out.resource_spans.data(), resources_before);
  EXPECT_EQ(out.resource_spans[0].scope_spans[0].spans.data(), spans_before);
}

TEST_F(TailSamplerTest, RatioHitTraceKeepsItsDetailAtOnce) {
  TailSampler sampler({}, clock_);
  const base::TraceId t = SampledTrace(1);
  EXPECT_THAT(NamesOf(sampler.Admit(BatchOf({Detail(t, "a")}))), ElementsAre("a"));
  EXPECT_THAT(NamesOf(sampler.Admit(BatchOf({Detail(t, "b")}))), ElementsAre("b"));
  SamplingStats s = sampler.Stats();
  EXPECT_EQ(s.traces_kept, 1u);
  EXPECT_EQ(s.kept_detail_spans, 2u);
  EXPECT_EQ(s.pending_spans, 0u);
  EXPECT_EQ(s.remembered_traces, 1u);
}

TEST_F(TailSamplerTest, SlowSpanKeepsWholeTraceWithEarlierAndLaterDetail) {
  TailSampler sampler({}, clock_);
  const base::TraceId t = UnsampledTrace(1);
  const base::TraceId other = UnsampledTrace(2);
  EXPECT_THAT(NamesOf(sampler.Admit(BatchOf({Detail(t, "a"), Detail(other, "o")}))), IsEmpty());
  EXPECT_EQ(sampler.Stats().pending_spans, 2u);

  EXPECT_THAT(NamesOf(sampler.Admit(BatchOf({Slow(t, "slow")}))),
              UnorderedElementsAre("slow", "a"));
  EXPECT_THAT(NamesOf(sampler.Admit(BatchOf({Detail(t, "late")}))), ElementsAre("late"));
  SamplingStats s = sampler.Stats();
  EXPECT_EQ(s.traces_kept, 1u);
  EXPECT_EQ(s.kept_detail_spans, 3u);
  EXPECT_EQ(s.pending_spans, 1u);  // the other trace waits on
  EXPECT_EQ(s.pending_traces, 1u);
}

TEST_F(TailSamplerTest, SlowSpanKeepsDetailBeforeItInTheSameBatchInPlace) {
  TailSampler sampler({}, clock_);
  const base::TraceId t = UnsampledTrace(1);
  EXPECT_THAT(NamesOf(sampler.Admit(BatchOf({Detail(t, "a"), Slow(t, "slow"), Detail(t, "c")}))),
              ElementsAre("a", "slow", "c"));
  EXPECT_EQ(sampler.Stats().pending_spans, 0u);
}

// The spans not returned come back whole in `dropped` (for the caller to free), kept ones stay
// in their order, and none is in both.
TEST_F(TailSamplerTest, SpansNotKeptAreHandedBackWhole) {
  TailSampler sampler({}, clock_);
  const base::TraceId waiting = UnsampledTrace(1);
  const base::TraceId sampled = SampledTrace(2);
  base::Span root = Detail(waiting, "root");
  root.parent_span_id = base::SpanId{};  // a root: lifecycle, always kept
  std::vector<base::Span> dropped;
  base::TraceBatch kept = sampler.Admit(
      BatchOf({WithAttribute(Detail(waiting, "w1"), "note"), root, Detail(sampled, "s1"),
               Detail(waiting, "w2"), WithAttribute(Detail(sampled, "s2"), "note")}),
      &dropped);
  EXPECT_THAT(NamesOf(kept), ElementsAre("root", "s1", "s2"));
  ASSERT_EQ(dropped.size(), 2u);
  EXPECT_THAT((std::vector<std::string>{dropped[0].name, dropped[1].name}),
              UnorderedElementsAre("w1", "w2"));
  for (const base::Span& span : dropped) {
    EXPECT_EQ(span.trace_id, waiting);
    if (span.name == "w1") {
      ASSERT_EQ(span.attributes.size(), 1u);
      EXPECT_EQ(span.attributes[0].key, "note");
    }
  }
  // Buffered all the same: a slow span of their trace releases them.
  EXPECT_THAT(NamesOf(sampler.Admit(BatchOf({Slow(waiting, "slow")}))),
              UnorderedElementsAre("slow", "w1", "w2"));
}

TEST_F(TailSamplerTest, SpanExactlyAtTheThresholdIsNotSlow) {
  TailSampler sampler({}, clock_);
  EXPECT_THAT(NamesOf(sampler.Admit(BatchOf({Detail(UnsampledTrace(1), "a", 5 * kSecond)}))),
              IsEmpty());
}

TEST_F(TailSamplerTest, FailedSpanKeepsWholeTraceWithEarlierAndLaterDetail) {
  TailSampler sampler({}, clock_);
  const base::TraceId by_status = UnsampledTrace(1);
  const base::TraceId by_error_code = UnsampledTrace(2);
  EXPECT_THAT(NamesOf(sampler.Admit(BatchOf({Detail(by_status, "a"), Detail(by_error_code, "b")}))),
              IsEmpty());

  EXPECT_THAT(NamesOf(sampler.Admit(BatchOf({Failed(by_status, "failed")}))),
              UnorderedElementsAre("failed", "a"));
  EXPECT_THAT(NamesOf(sampler.Admit(
                  BatchOf({WithAttribute(Detail(by_error_code, "refused"), base::kErrorCodeKey)}))),
              UnorderedElementsAre("refused", "b"));
  EXPECT_THAT(NamesOf(sampler.Admit(BatchOf({Detail(by_status, "c"), Detail(by_error_code, "d")}))),
              ElementsAre("c", "d"));
  SamplingStats s = sampler.Stats();
  EXPECT_EQ(s.traces_kept, 2u);
  EXPECT_EQ(s.lifecycle_spans, 2u);
  EXPECT_EQ(s.kept_detail_spans, 4u);
  EXPECT_EQ(s.pending_spans, 0u);
}

TEST_F(TailSamplerTest, PendingDetailDroppedWhenTheDecisionWaitPasses) {
  TailSampler sampler({}, clock_);
  const base::TraceId t = UnsampledTrace(1);
  EXPECT_FALSE(sampler.NextExpiryUnixNano().has_value());
  sampler.Admit(BatchOf({Detail(t, "a")}));
  clock_.Advance(20 * kSecond);
  sampler.Admit(BatchOf({Detail(t, "b")}));  // the wait counts from "a"
  EXPECT_EQ(sampler.NextExpiryUnixNano(), kNow + kWait);

  clock_.Set(kNow + kWait - 1);
  sampler.ExpirePending();
  EXPECT_EQ(sampler.Stats().pending_spans, 2u);
  clock_.Set(kNow + kWait);
  sampler.ExpirePending();
  SamplingStats s = sampler.Stats();
  EXPECT_EQ(s.pending_spans, 0u);
  EXPECT_EQ(s.pending_traces, 0u);
  EXPECT_EQ(s.traces_dropped, 1u);
  EXPECT_EQ(s.dropped_detail_spans, 2u);
  EXPECT_FALSE(sampler.NextExpiryUnixNano().has_value());

  EXPECT_THAT(NamesOf(sampler.Admit(BatchOf({Detail(t, "late")}))), IsEmpty());
  EXPECT_EQ(sampler.Stats().dropped_detail_spans, 3u);
  EXPECT_EQ(sampler.Stats().pending_spans, 0u);
  EXPECT_EQ(sampler.TakeReleased().SpanCount(), 0u);
}

TEST_F(TailSamplerTest, AdmitAppliesAPassedWaitBeforeTheCallerExpires) {
  TailSampler sampler({}, clock_);
  const base::TraceId t = UnsampledTrace(1);
  sampler.Admit(BatchOf({Detail(t, "a")}));
  clock_.Advance(kWait + kSecond);
  EXPECT_THAT(NamesOf(sampler.Admit(BatchOf({Detail(t, "late")}))), IsEmpty());
  SamplingStats s = sampler.Stats();
  EXPECT_EQ(s.traces_dropped, 1u);
  EXPECT_EQ(s.dropped_detail_spans, 2u);
  EXPECT_EQ(s.pending_spans, 0u);
}

TEST_F(TailSamplerTest, LateSlowOrFailedSpanUpgradesADroppedTrace) {
  TailSampler sampler({}, clock_);
  const base::TraceId slow = UnsampledTrace(1);
  const base::TraceId failed = UnsampledTrace(2);
  sampler.Admit(BatchOf({Detail(slow, "a"), Detail(failed, "b")}));
  clock_.Advance(kWait);
  sampler.ExpirePending();
  ASSERT_EQ(sampler.Stats().traces_dropped, 2u);

  EXPECT_THAT(NamesOf(sampler.Admit(BatchOf({Slow(slow, "slow"), Failed(failed, "failed")}))),
              ElementsAre("slow", "failed"));
  EXPECT_THAT(NamesOf(sampler.Admit(BatchOf({Detail(slow, "c"), Detail(failed, "d")}))),
              ElementsAre("c", "d"));
  SamplingStats s = sampler.Stats();
  EXPECT_EQ(s.upgrades, 2u);
  EXPECT_EQ(s.traces_kept, 0u);
  EXPECT_EQ(s.traces_dropped, 2u);
  EXPECT_EQ(s.kept_detail_spans, 3u);  // slow, c, d
  EXPECT_EQ(s.dropped_detail_spans, 2u);
}

TEST_F(TailSamplerTest, ForceKeepReleasesBufferedDetailAndKeepsLaterSpans) {
  TailSampler sampler({}, clock_);
  const base::TraceId t = UnsampledTrace(1);
  sampler.Admit(BatchOf({Detail(t, "a")}));
  sampler.Admit(BatchOf({Detail(t, "b")}));
  sampler.ForceKeep(t);
  EXPECT_EQ(sampler.Stats().pending_spans, 0u);
  EXPECT_THAT(NamesOf(sampler.TakeReleased()), ElementsAre("a", "b"));
  EXPECT_EQ(sampler.TakeReleased().SpanCount(), 0u);
  EXPECT_THAT(NamesOf(sampler.Admit(BatchOf({Detail(t, "c")}))), ElementsAre("c"));
  sampler.ForceKeep(t);  // already kept: not counted again
  SamplingStats s = sampler.Stats();
  EXPECT_EQ(s.traces_forced, 1u);
  EXPECT_EQ(s.traces_kept, 0u);
  EXPECT_EQ(s.kept_detail_spans, 3u);

  // The wait passing later does not drop a forced trace.
  clock_.Advance(2 * kWait);
  sampler.ExpirePending();
  EXPECT_THAT(NamesOf(sampler.Admit(BatchOf({Detail(t, "d")}))), ElementsAre("d"));
}

TEST_F(TailSamplerTest, ForceKeepOfUnseenOrDroppedTraceKeepsItsLaterDetail) {
  TailSampler sampler({}, clock_);
  const base::TraceId unseen = UnsampledTrace(1);
  const base::TraceId dropped = UnsampledTrace(2);
  sampler.Admit(BatchOf({Detail(dropped, "gone")}));
  clock_.Advance(kWait);
  sampler.ExpirePending();

  sampler.ForceKeep(unseen);
  sampler.ForceKeep(dropped);
  EXPECT_EQ(sampler.TakeReleased().SpanCount(), 0u);
  EXPECT_THAT(NamesOf(sampler.Admit(BatchOf({Detail(unseen, "a"), Detail(dropped, "b")}))),
              ElementsAre("a", "b"));
  EXPECT_EQ(sampler.Stats().traces_forced, 2u);
}

TEST_F(TailSamplerTest, ReleasedSpansKeepTheirResourceAndScopeWithoutDuplicates) {
  TailSampler sampler({}, clock_);
  const base::TraceId t = UnsampledTrace(1);
  const base::TraceId u = UnsampledTrace(2);
  sampler.Admit(BatchOf({Detail(t, "a"), Detail(u, "b")}, "shop-api", "shop"));
  sampler.Admit(BatchOf({Detail(t, "c")}, "mes-api", "mes"));
  sampler.ForceKeep(t);
  sampler.ForceKeep(u);
  base::TraceBatch released = sampler.TakeReleased();
  ASSERT_EQ(released.resource_spans.size(), 2u);
  EXPECT_EQ(base::ServiceName(released.resource_spans[0].resource), "shop-api");
  ASSERT_EQ(released.resource_spans[0].scope_spans.size(), 1u);
  EXPECT_EQ(released.resource_spans[0].scope_spans[0].scope.name, "shop");
  EXPECT_EQ(base::ServiceName(released.resource_spans[1].resource), "mes-api");
  ASSERT_EQ(released.resource_spans[1].scope_spans.size(), 1u);
  EXPECT_EQ(released.resource_spans[1].scope_spans[0].scope.name, "mes");
  std::vector<std::string> shop;
  for (const auto& span : released.resource_spans[0].scope_spans[0].spans) {
    shop.push_back(span.name);
  }
  EXPECT_THAT(shop, UnorderedElementsAre("a", "b"));
  ASSERT_EQ(released.resource_spans[1].scope_spans[0].spans.size(), 1u);
  EXPECT_EQ(released.resource_spans[1].scope_spans[0].spans[0].name, "c");
  EXPECT_EQ(released.resource_spans[1].scope_spans[0].spans[0].trace_id, t);
}

TEST_F(TailSamplerTest, ReleasedSpansJoinAnEqualResourceAndScopeOfTheBatch) {
  TailSampler sampler({}, clock_);
  const base::TraceId t = UnsampledTrace(1);
  sampler.Admit(BatchOf({Detail(t, "a")}, "mes-api", "mes"));
  base::TraceBatch out = sampler.Admit(BatchOf({Slow(t, "slow")}, "mes-api", "mes"));
  ASSERT_EQ(out.resource_spans.size(), 1u);
  ASSERT_EQ(out.resource_spans[0].scope_spans.size(), 1u);
  EXPECT_THAT(NamesOf(out), ElementsAre("slow", "a"));
}

TEST_F(TailSamplerTest, ScopesAndResourcesEmptiedBySamplingAreLeftOut) {
  TailSampler sampler({}, clock_);
  base::TraceBatch batch = BatchOf({Detail(UnsampledTrace(1), "buffered")}, "shop-api", "shop");
  base::TraceBatch lifecycle = BatchOf(
      {WithAttribute(Detail(UnsampledTrace(1), "status"), base::kNewStatusKey)}, "mes-api", "mes");
  batch.resource_spans.push_back(std::move(lifecycle.resource_spans[0]));
  base::TraceBatch out = sampler.Admit(std::move(batch));
  ASSERT_EQ(out.resource_spans.size(), 1u);
  EXPECT_EQ(base::ServiceName(out.resource_spans[0].resource), "mes-api");
  EXPECT_THAT(NamesOf(out), ElementsAre("status"));
}

TEST_F(TailSamplerTest, FullBufferDropsTheOldestTracesEarly) {
  TailSampler sampler({.max_pending_spans = 3}, clock_);
  const base::TraceId oldest = UnsampledTrace(1);
  const base::TraceId second = UnsampledTrace(2);
  const base::TraceId newest = UnsampledTrace(3);
  sampler.Admit(BatchOf({Detail(oldest, "a1"), Detail(oldest, "a2")}));
  clock_.Advance(kSecond);
  sampler.Admit(BatchOf({Detail(second, "b1")}));
  EXPECT_EQ(sampler.Stats().pending_spans, 3u);
  clock_.Advance(kSecond);
  sampler.Admit(BatchOf({Detail(newest, "c1")}));

  SamplingStats s = sampler.Stats();
  EXPECT_EQ(s.dropped_pending_full_spans, 2u);
  EXPECT_EQ(s.dropped_detail_spans, 0u);
  EXPECT_EQ(s.traces_dropped, 1u);
  EXPECT_EQ(s.pending_spans, 2u);
  EXPECT_EQ(s.pending_traces, 2u);
  EXPECT_EQ(sampler.NextExpiryUnixNano(), kNow + kSecond + kWait);
  // The oldest trace is decided drop; the others wait on.
  EXPECT_THAT(NamesOf(sampler.Admit(BatchOf({Detail(oldest, "a3")}))), IsEmpty());
  EXPECT_EQ(sampler.Stats().dropped_detail_spans, 1u);
  sampler.ForceKeep(second);
  sampler.ForceKeep(newest);
  EXPECT_THAT(NamesOf(sampler.TakeReleased()), ElementsAre("b1", "c1"));
}

TEST_F(TailSamplerTest, FullBufferDropsTheAdmittedTraceWhenItIsTheOldest) {
  TailSampler sampler({.max_pending_spans = 1}, clock_);
  const base::TraceId t = UnsampledTrace(1);
  sampler.Admit(BatchOf({Detail(t, "a"), Detail(t, "b")}));
  SamplingStats s = sampler.Stats();
  EXPECT_EQ(s.dropped_pending_full_spans, 2u);
  EXPECT_EQ(s.traces_dropped, 1u);
  EXPECT_EQ(s.pending_spans, 0u);
  EXPECT_EQ(s.remembered_traces, 1u);
}

TEST_F(TailSamplerTest, RememberedDecisionsAreBoundedAndForgottenOnesFallBackToTheRule) {
  TailSampler sampler({.max_remembered_traces = 2}, clock_);
  const base::TraceId first = UnsampledTrace(1);
  const base::TraceId sampled = SampledTrace(2);
  sampler.ForceKeep(first);
  sampler.Admit(BatchOf({Detail(sampled, "s1")}));  // decided keep by the ratio
  sampler.ForceKeep(UnsampledTrace(3));
  sampler.ForceKeep(UnsampledTrace(4));
  EXPECT_EQ(sampler.Stats().remembered_traces, 2u);

  // Both decisions were forgotten: the ratio rule decides again.
  EXPECT_THAT(NamesOf(sampler.Admit(BatchOf({Detail(first, "f"), Detail(sampled, "s2")}))),
              ElementsAre("s2"));
  SamplingStats s = sampler.Stats();
  EXPECT_EQ(s.pending_spans, 1u);
  EXPECT_EQ(s.pending_traces, 1u);
  EXPECT_EQ(s.traces_kept, 2u);
  EXPECT_EQ(s.remembered_traces, 2u);
  // The newest decision is still followed.
  EXPECT_THAT(NamesOf(sampler.Admit(BatchOf({Detail(UnsampledTrace(4), "kept")}))),
              ElementsAre("kept"));
}

TEST_F(TailSamplerTest, TraceBufferedAgainAfterItsDecisionWasForgottenExpiresAgain) {
  TailSampler sampler({.max_remembered_traces = 1}, clock_);
  const base::TraceId t = UnsampledTrace(1);
  sampler.Admit(BatchOf({Detail(t, "a")}));
  sampler.ForceKeep(t);
  sampler.ForceKeep(UnsampledTrace(2));  // forgets t
  sampler.TakeReleased();
  clock_.Advance(kSecond);
  sampler.Admit(BatchOf({Detail(t, "b")}));
  EXPECT_EQ(sampler.NextExpiryUnixNano(), kNow + kSecond + kWait);
  clock_.Advance(kWait);
  sampler.ExpirePending();
  SamplingStats s = sampler.Stats();
  EXPECT_EQ(s.traces_dropped, 1u);
  EXPECT_EQ(s.dropped_detail_spans, 1u);
  EXPECT_EQ(s.pending_spans, 0u);
}

TEST_F(TailSamplerTest, NextExpiryFollowsTheOldestTraceStillBuffered) {
  TailSampler sampler({}, clock_);
  const base::TraceId first = UnsampledTrace(1);
  const base::TraceId second = UnsampledTrace(2);
  sampler.Admit(BatchOf({Detail(first, "a")}));
  clock_.Advance(kSecond);
  sampler.Admit(BatchOf({Detail(second, "b")}));
  EXPECT_EQ(sampler.NextExpiryUnixNano(), kNow + kWait);
  sampler.Admit(BatchOf({Slow(first, "slow")}));
  EXPECT_EQ(sampler.NextExpiryUnixNano(), kNow + kSecond + kWait);
  sampler.ForceKeep(second);
  EXPECT_FALSE(sampler.NextExpiryUnixNano().has_value());
}

TEST_F(TailSamplerTest, ManyTracesDecidedEarlyLeaveNothingBehind) {
  TailSampler sampler({}, clock_);
  for (int i = 0; i < 5000; ++i) {
    base::TraceId t = UnsampledTrace(static_cast<uint8_t>(i));
    t.bytes[1] = static_cast<uint8_t>(i >> 8);
    sampler.Admit(BatchOf({Detail(t, "a")}));
    sampler.Admit(BatchOf({Slow(t, "slow")}));
  }
  SamplingStats s = sampler.Stats();
  EXPECT_EQ(s.traces_kept, 5000u);
  EXPECT_EQ(s.kept_detail_spans, 10000u);
  EXPECT_EQ(s.pending_spans, 0u);
  EXPECT_FALSE(sampler.NextExpiryUnixNano().has_value());
}

TEST_F(TailSamplerTest, TracesDecidedBehindAWaitingOneLeaveItsExpiryAndTheNextIntact) {
  TailSampler sampler({}, clock_);
  const base::TraceId waiting = UnsampledTrace(1);
  const base::TraceId last = UnsampledTrace(2);
  sampler.Admit(BatchOf({Detail(waiting, "w")}));
  // Enough traces decided early, behind the waiting one, to make the sampler compact them.
  for (int i = 0; i < 1000; ++i) {
    base::TraceId t = UnsampledTrace(static_cast<uint8_t>(i));
    t.bytes[1] = static_cast<uint8_t>((i >> 8) + 1);
    sampler.Admit(BatchOf({Detail(t, "a")}));
    sampler.ForceKeep(t);
  }
  clock_.Advance(kSecond);
  sampler.Admit(BatchOf({Detail(last, "l")}));
  EXPECT_EQ(sampler.Stats().pending_traces, 2u);
  EXPECT_EQ(sampler.NextExpiryUnixNano(), kNow + kWait);

  clock_.Set(kNow + kWait);
  sampler.ExpirePending();
  EXPECT_EQ(sampler.Stats().pending_traces, 1u);
  EXPECT_EQ(sampler.NextExpiryUnixNano(), kNow + kSecond + kWait);
  clock_.Set(kNow + kSecond + kWait);
  sampler.ExpirePending();
  SamplingStats s = sampler.Stats();
  EXPECT_EQ(s.pending_traces, 0u);
  EXPECT_EQ(s.traces_dropped, 2u);
  EXPECT_EQ(s.traces_forced, 1000u);
  EXPECT_EQ(sampler.TakeReleased().SpanCount(), 1000u);
}

TEST_F(TailSamplerTest, DisabledPassesEverythingAndCountsOnlyKeptSpans) {
  TailSampler sampler({.enabled = false}, clock_);
  const base::TraceId t = UnsampledTrace(1);
  base::TraceBatch out = sampler.Admit(BatchOf(
      {Detail(t, "a"), WithAttribute(Detail(t, "status"), base::kNewStatusKey), Slow(t, "s")}));
  EXPECT_THAT(NamesOf(out), ElementsAre("a", "status", "s"));
  sampler.ForceKeep(t);
  EXPECT_EQ(sampler.TakeReleased().SpanCount(), 0u);
  SamplingStats s = sampler.Stats();
  EXPECT_EQ(s.lifecycle_spans, 1u);
  EXPECT_EQ(s.kept_detail_spans, 2u);
  EXPECT_EQ(s.traces_kept, 0u);
  EXPECT_EQ(s.traces_dropped, 0u);
  EXPECT_EQ(s.traces_forced, 0u);
  EXPECT_EQ(s.upgrades, 0u);
  EXPECT_EQ(s.dropped_detail_spans, 0u);
  EXPECT_EQ(s.dropped_pending_full_spans, 0u);
  EXPECT_EQ(s.pending_spans, 0u);
  EXPECT_EQ(s.pending_traces, 0u);
  EXPECT_EQ(s.remembered_traces, 0u);
  EXPECT_FALSE(sampler.NextExpiryUnixNano().has_value());
}

TEST_F(TailSamplerTest, StatsCountEveryOutcome) {
  TailSampler sampler({.max_pending_spans = 3}, clock_);
  const base::TraceId ratio = SampledTrace(1);
  const base::TraceId slow = UnsampledTrace(2);
  const base::TraceId expired = UnsampledTrace(3);
  const base::TraceId forced = UnsampledTrace(4);
  const base::TraceId evicted = UnsampledTrace(5);
  const base::TraceId waiting = UnsampledTrace(6);

  sampler.Admit(BatchOf({Detail(evicted, "e1"), Detail(evicted, "e2")}));
  clock_.Advance(kSecond);
  // x1 finds the buffer full (3): "evicted" goes, its two spans counted apart.
  sampler.Admit(BatchOf({WithAttribute(Detail(ratio, "status"), base::kNewStatusKey),
                         Detail(ratio, "r1"), Detail(slow, "s1"), Detail(expired, "x1")}));
  sampler.Admit(BatchOf({Detail(forced, "f1"), Slow(slow, "s2")}));
  sampler.ForceKeep(forced);
  clock_.Advance(kWait);
  sampler.Admit(BatchOf({Detail(waiting, "w1"), Detail(expired, "x2")}));

  SamplingStats s = sampler.Stats();
  EXPECT_EQ(s.traces_kept, 2u);     // ratio, slow
  EXPECT_EQ(s.traces_dropped, 2u);  // evicted, expired
  EXPECT_EQ(s.traces_forced, 1u);   // forced
  EXPECT_EQ(s.upgrades, 0u);
  EXPECT_EQ(s.lifecycle_spans, 1u);             // status
  EXPECT_EQ(s.kept_detail_spans, 4u);           // r1, s1, s2, f1
  EXPECT_EQ(s.dropped_detail_spans, 2u);        // x1, x2
  EXPECT_EQ(s.dropped_pending_full_spans, 2u);  // e1, e2
  EXPECT_EQ(s.pending_spans, 1u);               // w1
  EXPECT_EQ(s.pending_traces, 1u);
  EXPECT_EQ(s.remembered_traces, 5u);
}

TEST_F(TailSamplerTest, EveryDetailSpanIsKeptDroppedOrPendingUnderConcurrentForceKeep) {
  TailSampler sampler({.max_pending_spans = 500}, clock_);
  constexpr int kTraces = 4000;
  auto trace_of = [](int i) {
    base::TraceId t = UnsampledTrace(static_cast<uint8_t>(i));
    t.bytes[1] = static_cast<uint8_t>(i >> 8);
    return t;
  };
  std::atomic<int> admitted_traces{0};
  std::atomic<bool> done{false};
  std::atomic<uint64_t> kept{0};
  std::thread gap_detector([&] {
    // Forces every third trace admitted so far, while Admit runs.
    int next = 0;
    while (!done.load()) {
      const int upto = admitted_traces.load();
      for (; next < upto; ++next) {
        if (next % 3 == 0) sampler.ForceKeep(trace_of(next));
      }
      (void)sampler.Stats();
      std::this_thread::yield();
    }
  });
  for (int i = 0; i < kTraces; ++i) {
    const base::TraceId t = trace_of(i);
    kept += sampler.Admit(BatchOf({Detail(t, "a"), Detail(t, "b")})).SpanCount();
    admitted_traces.store(i + 1);
    if (i % 7 == 0) kept += sampler.Admit(BatchOf({Slow(t, "slow")})).SpanCount();
    if (i % 50 == 0) kept += sampler.TakeReleased().SpanCount();
  }
  done.store(true);
  gap_detector.join();
  kept += sampler.TakeReleased().SpanCount();

  SamplingStats s = sampler.Stats();
  const uint64_t admitted = 2 * kTraces + (kTraces + 6) / 7;
  EXPECT_EQ(kept, s.kept_detail_spans);
  EXPECT_EQ(
      s.kept_detail_spans + s.dropped_detail_spans + s.dropped_pending_full_spans + s.pending_spans,
      admitted);
  EXPECT_GT(s.traces_forced, 0u);
  EXPECT_LE(s.pending_spans, 500u);
}

base::Span WithBigAttribute(base::Span span, size_t bytes) {
  span.attributes.push_back({"payload", base::AnyValue::String(std::string(bytes, 'p'))});
  return span;
}

TEST_F(TailSamplerTest, ByteBoundDropsTheOldestTracesBeforeHoldingMore) {
  // Three 64 KB spans fit in 200 KB; the fourth makes the oldest trace go first.
  TailSampler sampler({.max_pending_bytes = 200 << 10}, clock_);
  for (uint8_t n = 1; n <= 4; ++n) {
    sampler.Admit(BatchOf({WithBigAttribute(Detail(UnsampledTrace(n), "d"), 64 << 10)}));
    EXPECT_LE(sampler.Stats().pending_bytes, size_t{200} << 10);
  }
  SamplingStats s = sampler.Stats();
  EXPECT_EQ(s.pending_spans, 3u);
  EXPECT_GT(s.pending_bytes, size_t{3} * (64 << 10));
  EXPECT_EQ(s.dropped_pending_full_spans, 1u);
  EXPECT_EQ(s.traces_dropped, 1u);
  sampler.ForceKeep(UnsampledTrace(1));  // decided drop: nothing to release
  EXPECT_THAT(NamesOf(sampler.TakeReleased()), IsEmpty());
}

TEST_F(TailSamplerTest, SpanLargerThanTheByteBoundIsRefusedWithoutEmptyingTheBuffer) {
  TailSampler sampler({.max_pending_bytes = 100 << 10}, clock_);
  sampler.Admit(BatchOf({Detail(UnsampledTrace(1), "small")}));
  sampler.Admit(BatchOf({WithBigAttribute(Detail(UnsampledTrace(2), "huge"), 200 << 10)}));
  SamplingStats s = sampler.Stats();
  EXPECT_EQ(s.pending_spans, 1u);
  EXPECT_EQ(s.dropped_pending_full_spans, 1u);
  EXPECT_LT(s.pending_bytes, size_t{100} << 10);
  sampler.ForceKeep(UnsampledTrace(1));
  EXPECT_THAT(NamesOf(sampler.TakeReleased()), ElementsAre("small"));
  EXPECT_EQ(sampler.Stats().pending_bytes, 0u);
}

// What a durable caller stores: each buffered part as TracesData, keyed as the delta says.
struct StoredPart {
  BufferedPart part;
  std::string encoded;
};

std::vector<StoredPart> StorePartsOf(PendingDelta& delta) {
  std::vector<StoredPart> out;
  for (otlp::EncodedTrace& trace : otlp::EncodeProtobufByTrace(delta.buffered)) {
    for (const BufferedPart& part : delta.parts) {
      if (part.trace_id == trace.trace_id) out.push_back({part, std::move(trace.encoded)});
    }
  }
  return out;
}

// The received bytes move with their spans: the kept ones' stay with the returned batch, the
// buffered ones' go to the delta; a kept span's entry is its own, not a buffered neighbour's.
TEST_F(TailSamplerTest, ReceivedBytesFollowTheirSpans) {
  TailSampler sampler({}, clock_);
  const base::TraceId t = UnsampledTrace(1);
  base::Span root = Detail(t, "root");
  root.parent_span_id = base::SpanId{};
  auto body = std::make_shared<const std::string>(
      otlp::EncodeProtobuf(BatchOf({Detail(t, "a"), root, Detail(t, "b")})));
  absl::StatusOr<otlp::DecodedRequest> decoded = otlp::DecodeProtobufRequest(body);
  ASSERT_TRUE(decoded.ok());
  PendingDelta delta;
  base::TraceBatch kept =
      sampler.Admit(std::move(decoded->batch), nullptr, &delta, &decoded->received);
  ASSERT_THAT(NamesOf(kept), ElementsAre("root"));
  ASSERT_THAT(NamesOf(delta.buffered), ElementsAre("a", "b"));
  auto name_in = [](const otlp::ReceivedBytes& received, size_t span) {
    const otlp::ReceivedBytes::Span* entry = received.Find(0, 0, span);
    if (entry == nullptr) return std::string("none");
    absl::StatusOr<base::Span> decoded_span = otlp::DecodeSpan(entry->bytes);
    return decoded_span.ok() ? decoded_span->name : std::string("invalid");
  };
  EXPECT_EQ(name_in(decoded->received, 0), "root");
  EXPECT_EQ(name_in(decoded->received, 1), "none");
  EXPECT_EQ(name_in(delta.received, 0), "a");
  EXPECT_EQ(name_in(delta.received, 1), "b");
  EXPECT_EQ(delta.received.body(), body);
}

TEST_F(TailSamplerTest, DurableAdmitMovesBufferedSpansOutWithTheirParts) {
  TailSampler sampler({}, clock_);
  const base::TraceId t = UnsampledTrace(1);
  PendingDelta first;
  std::vector<base::Span> dropped;
  sampler.Admit(BatchOf({Detail(t, "a"), Detail(t, "b")}), &dropped, &first);
  ASSERT_EQ(first.parts.size(), 1u);
  EXPECT_EQ(first.parts[0].part, 0u);
  EXPECT_EQ(first.parts[0].deadline_unix_nano, kNow + kWait);
  EXPECT_THAT(NamesOf(first.buffered), ElementsAre("a", "b"));
  PendingDelta second;
  sampler.Admit(BatchOf({Detail(t, "c")}), nullptr, &second);
  ASSERT_EQ(second.parts.size(), 1u);
  EXPECT_EQ(second.parts[0].buffering, first.parts[0].buffering);
  EXPECT_EQ(second.parts[0].part, 1u);
  // Kept: the buffering is reported decided keep with its spans in the returned batch.
  PendingDelta third;
  base::TraceBatch kept = sampler.Admit(BatchOf({Failed(t, "boom")}), nullptr, &third);
  EXPECT_THAT(NamesOf(kept), UnorderedElementsAre("boom", "a", "b", "c"));
  ASSERT_EQ(third.kept.size(), 1u);
  EXPECT_EQ(third.kept[0].first, first.parts[0].buffering);
  EXPECT_TRUE(third.parts.empty());
}

TEST_F(TailSamplerTest, TakeReleasedTellsHowFarEveryBufferingIsDecided) {
  TailSampler sampler({}, clock_);
  PendingDelta a, b;
  sampler.Admit(BatchOf({Detail(UnsampledTrace(1), "a")}), nullptr, &a);
  clock_.Advance(kSecond);
  sampler.Admit(BatchOf({Detail(UnsampledTrace(2), "b")}), nullptr, &b);
  PendingDelta none;
  sampler.TakeReleased(&none);
  const uint64_t first = a.parts[0].buffering;
  EXPECT_EQ(none.decided_below, first);  // nothing below the oldest buffered, told once
  PendingDelta again;
  sampler.TakeReleased(&again);
  EXPECT_EQ(again.decided_below, 0u);
  sampler.ForceKeep(UnsampledTrace(1));
  PendingDelta forced;
  EXPECT_THAT(NamesOf(sampler.TakeReleased(&forced)), ElementsAre("a"));
  ASSERT_EQ(forced.kept.size(), 1u);
  EXPECT_EQ(forced.kept[0].first, first);
  EXPECT_EQ(forced.decided_below, b.parts[0].buffering);
  clock_.Advance(kWait);
  sampler.ExpirePending();
  PendingDelta expired;
  sampler.TakeReleased(&expired);
  EXPECT_GT(expired.decided_below, b.parts[0].buffering);
}

// The kill -9 case: detail stored as the delta said, a new sampler after the restart.
TEST_F(TailSamplerTest, RestoredDetailIsDecidedAsIfThereHadBeenNoRestart) {
  const base::TraceId failing = UnsampledTrace(1);
  const base::TraceId quiet = UnsampledTrace(2);
  std::vector<StoredPart> stored;
  {
    TailSampler before({}, clock_);
    PendingDelta delta;
    before.Admit(BatchOf({Detail(failing, "f1"), Detail(quiet, "q1")}), nullptr, &delta);
    stored = StorePartsOf(delta);
    clock_.Advance(kSecond);
    PendingDelta later;
    before.Admit(BatchOf({Detail(failing, "f2")}), nullptr, &later);
    for (StoredPart& p : StorePartsOf(later)) stored.push_back(std::move(p));
  }
  ASSERT_EQ(stored.size(), 3u);
  clock_.Advance(10 * kSecond);
  TailSampler after({}, clock_);
  for (const StoredPart& p : stored) ASSERT_TRUE(after.RestorePending(p.part, p.encoded).ok());
  EXPECT_EQ(after.Stats().pending_spans, 3u);
  EXPECT_EQ(after.NextExpiryUnixNano(), kNow + kWait);  // the original deadline
  // Before the deadline, a failed span keeps the detail that waited across the restart.
  base::TraceBatch kept = after.Admit(BatchOf({Failed(failing, "boom")}));
  EXPECT_THAT(NamesOf(kept), UnorderedElementsAre("boom", "f1", "f2"));
  // After it, the other trace is dropped as it would have been; a late failure finds nothing.
  clock_.Set(kNow + kWait);
  after.ExpirePending();
  EXPECT_THAT(NamesOf(after.Admit(BatchOf({Failed(quiet, "late")}))), ElementsAre("late"));
  EXPECT_EQ(after.Stats().dropped_detail_spans, 1u);
  // New bufferings number above the restored ones.
  PendingDelta fresh;
  after.Admit(BatchOf({Detail(UnsampledTrace(3), "n")}), nullptr, &fresh);
  ASSERT_EQ(fresh.parts.size(), 1u);
  EXPECT_GT(fresh.parts[0].buffering, stored.back().part.buffering);
}

TEST_F(TailSamplerTest, RestoreRefusesBytesThatAreNotTracesData) {
  TailSampler sampler({}, clock_);
  BufferedPart part{UnsampledTrace(1), 7, 0, kNow + kWait};
  EXPECT_FALSE(sampler.RestorePending(part, "\xff\xff\xff").ok());
  EXPECT_EQ(sampler.Stats().pending_spans, 0u);
}

}  // namespace
}  // namespace ordertrace::sampling
