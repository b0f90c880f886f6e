#include "sdk/sampler.h"

#include <gtest/gtest.h>

#include <random>

namespace ordertrace::sdk {
namespace {

// A trace id whose lower 8 bytes are `low` (big-endian); the upper 8 are fixed noise that the
// sampler must ignore.
base::TraceId TraceIdWithLow(uint64_t low) {
  base::TraceId id;
  for (size_t i = 0; i < 8; ++i) id.bytes[i] = static_cast<uint8_t>(0xa5 ^ i);
  for (size_t i = 0; i < 8; ++i) id.bytes[15 - i] = static_cast<uint8_t>(low >> (8 * i));
  return id;
}

bool Samples(const Sampler& sampler, const base::TraceId& id,
             const std::optional<SpanContext>& parent = std::nullopt) {
  return sampler.ShouldSample(parent, id, "span", base::SpanKind::kInternal) ==
         SamplingDecision::kRecordAndSample;
}

TEST(TraceIdRatioBasedSamplerTest, RatioZeroSamplesNothingAndOneEverything) {
  TraceIdRatioBasedSampler none(0.0);
  TraceIdRatioBasedSampler all(1.0);
  for (uint64_t low : {uint64_t{0}, uint64_t{1}, uint64_t{1} << 62, ~uint64_t{0}}) {
    EXPECT_FALSE(Samples(none, TraceIdWithLow(low))) << low;
    EXPECT_TRUE(Samples(all, TraceIdWithLow(low))) << low;
  }
  // Out-of-range ratios are clamped.
  EXPECT_FALSE(Samples(TraceIdRatioBasedSampler(-3), TraceIdWithLow(0)));
  EXPECT_TRUE(Samples(TraceIdRatioBasedSampler(7), TraceIdWithLow(~uint64_t{0})));
}

TEST(TraceIdRatioBasedSamplerTest, HalfSplitsOnTheTopBitOfTheLowerEightBytes) {
  TraceIdRatioBasedSampler half(0.5);
  // The low 8 bytes shifted right by one are compared with 2^62.
  EXPECT_TRUE(Samples(half, TraceIdWithLow(0)));
  EXPECT_TRUE(Samples(half, TraceIdWithLow((uint64_t{1} << 63) - 1)));
  EXPECT_FALSE(Samples(half, TraceIdWithLow(uint64_t{1} << 63)));
  EXPECT_FALSE(Samples(half, TraceIdWithLow(~uint64_t{0})));
}

TEST(TraceIdRatioBasedSamplerTest, DecisionDependsOnlyOnTheTraceId) {
  TraceIdRatioBasedSampler a(0.5);
  TraceIdRatioBasedSampler b(0.5);
  std::mt19937_64 engine(42);
  for (int i = 0; i < 1000; ++i) {
    base::TraceId id = TraceIdWithLow(engine());
    bool first = Samples(a, id);
    EXPECT_EQ(Samples(a, id), first);
    EXPECT_EQ(Samples(b, id), first);  // another service decides the same
  }
}

TEST(TraceIdRatioBasedSamplerTest, HalfSamplesAboutHalfOfRandomIds) {
  TraceIdRatioBasedSampler half(0.5);
  TraceIdRatioBasedSampler tenth(0.1);
  std::mt19937_64 engine(7);  // fixed seed: the same ids, and result, every run
  int sampled_half = 0;
  int sampled_tenth = 0;
  constexpr int kIds = 20000;
  for (int i = 0; i < kIds; ++i) {
    base::TraceId id = TraceIdWithLow(engine());
    sampled_half += Samples(half, id);
    sampled_tenth += Samples(tenth, id);
  }
  // Binomial standard deviation is about 71 and 42: a 5-sigma band.
  EXPECT_NEAR(sampled_half, kIds / 2, 355);
  EXPECT_NEAR(sampled_tenth, kIds / 10, 210);
}

TEST(TraceIdRatioBasedSamplerTest, Description) {
  EXPECT_EQ(TraceIdRatioBasedSampler(0.25).Description(), "TraceIdRatioBased{0.250000}");
}

SpanContext Parent(bool sampled) {
  SpanContext parent;
  parent.trace_id = TraceIdWithLow(~uint64_t{0});
  parent.span_id.bytes[7] = 1;
  parent.trace_flags = sampled ? kTraceFlagSampled : 0;
  parent.is_remote = true;
  return parent;
}

TEST(ParentBasedSamplerTest, FollowsTheParentsSampledFlag) {
  // Ratio 0 at the root, yet a sampled parent's child is sampled; and ratio 1 at the root, yet
  // an unsampled parent's child is dropped.
  std::unique_ptr<Sampler> never = MakeParentBasedTraceIdRatioSampler(0.0);
  std::unique_ptr<Sampler> always = MakeParentBasedTraceIdRatioSampler(1.0);
  base::TraceId id = TraceIdWithLow(0);
  EXPECT_TRUE(Samples(*never, id, Parent(true)));
  EXPECT_FALSE(Samples(*always, id, Parent(false)));
}

TEST(ParentBasedSamplerTest, AsksTheRootSamplerWithoutAValidParent) {
  std::unique_ptr<Sampler> half = MakeParentBasedTraceIdRatioSampler(0.5);
  EXPECT_TRUE(Samples(*half, TraceIdWithLow(0)));
  EXPECT_FALSE(Samples(*half, TraceIdWithLow(~uint64_t{0})));
  // An invalid parent counts as none, even when its flag says sampled.
  SpanContext invalid;
  invalid.trace_flags = kTraceFlagSampled;
  EXPECT_FALSE(Samples(*half, TraceIdWithLow(~uint64_t{0}), invalid));
  EXPECT_EQ(half->Description(), "ParentBased{root=TraceIdRatioBased{0.500000}}");
}

}  // namespace
}  // namespace ordertrace::sdk
