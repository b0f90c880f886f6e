#include "services/pricing/price_calculator.h"

#include <gtest/gtest.h>

namespace ordertrace::services::pricing {
namespace {

using std::chrono::minutes;

TEST(PriceCalculatorTest, ComplexityClassBoundaries) {
  EXPECT_EQ(ComplexityClass(0), "simple");
  EXPECT_EQ(ComplexityClass(49'999), "simple");
  EXPECT_EQ(ComplexityClass(50'000), "moderate");
  EXPECT_EQ(ComplexityClass(249'999), "moderate");
  EXPECT_EQ(ComplexityClass(250'000), "complex");
  EXPECT_EQ(ComplexityClass(1'000'000), "intricate");
}

TEST(PriceCalculatorTest, DurationGrowsFromTwoToThirtyMinutes) {
  EXPECT_EQ(SimulatedCalculationTime(0), minutes(2));
  EXPECT_EQ(SimulatedCalculationTime(1'000'000), minutes(16));
  EXPECT_EQ(SimulatedCalculationTime(2'000'000), minutes(30));
  EXPECT_EQ(SimulatedCalculationTime(50'000'000), minutes(30));
  EXPECT_LT(SimulatedCalculationTime(10'000), SimulatedCalculationTime(500'000));
}

TEST(PriceCalculatorTest, PhasesCoverTheWholeCalculation) {
  double total = 0;
  for (const CalculationPhase& phase : CalculationPhases()) total += phase.share;
  EXPECT_DOUBLE_EQ(total, 1.0);
}

TEST(PriceCalculatorTest, PriceRisesWithDetail) {
  EXPECT_GT(QuotePrice(10'000), 0);
  EXPECT_LT(QuotePrice(10'000), QuotePrice(100'000));
  EXPECT_LT(QuotePrice(100'000), QuotePrice(1'500'000));
}

}  // namespace
}  // namespace ordertrace::services::pricing
