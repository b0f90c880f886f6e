// The price calculator's model (docs/services.md, "The price calculator"): the complexity class
// of a model from its polygon count, how long a real calculation takes (2 to 30 minutes, growing
// with the count), its phases, and the price. Pure functions; thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>
#include <vector>

namespace ordertrace::services::pricing {

// "simple" (< 50,000 triangles), "moderate" (< 250,000), "complex" (< 1,000,000), "intricate".
std::string_view ComplexityClass(int64_t polygon_count);

// The real-life duration of a calculation: 2 minutes plus 28 minutes in proportion to the count,
// reaching 30 minutes at 2,000,000 triangles and staying there.
std::chrono::nanoseconds SimulatedCalculationTime(int64_t polygon_count);

// One phase of a calculation: its span name and its share of the total time.
struct CalculationPhase {
  std::string_view span_name;
  double share;
};
const std::vector<CalculationPhase>& CalculationPhases();

// The quoted price in the shop's currency, from the model's size and complexity.
double QuotePrice(int64_t polygon_count);

}  // namespace ordertrace::services::pricing
