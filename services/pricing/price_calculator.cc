#include "services/pricing/price_calculator.h"

#include <algorithm>
#include <cmath>

namespace ordertrace::services::pricing {
namespace {

constexpr int64_t kSaturatingPolygons = 2'000'000;
constexpr std::chrono::nanoseconds kShortest = std::chrono::minutes(2);
constexpr std::chrono::nanoseconds kLongest = std::chrono::minutes(30);

}  // namespace

std::string_view ComplexityClass(int64_t polygon_count) {
  if (polygon_count < 50'000) return "simple";
  if (polygon_count < 250'000) return "moderate";
  if (polygon_count < 1'000'000) return "complex";
  return "intricate";
}

std::chrono::nanoseconds SimulatedCalculationTime(int64_t polygon_count) {
  double share = std::clamp(static_cast<double>(polygon_count) / kSaturatingPolygons, 0.0, 1.0);
  auto extra =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double, std::nano>(
          share * static_cast<double>((kLongest - kShortest).count())));
  return kShortest + extra;
}

const std::vector<CalculationPhase>& CalculationPhases() {
  static const std::vector<CalculationPhase> phases = {
      {"mes.price.calc.mesh_analysis", 0.2},
      {"mes.price.calc.metal_estimate", 0.3},
      {"mes.price.calc.stone_setting", 0.3},
      {"mes.price.calc.quote", 0.2},
  };
  return phases;
}

double QuotePrice(int64_t polygon_count) {
  // Metal and labour grow with the model's detail; rounded to whole currency units.
  double base = 150.0;
  double detail = 40.0 * std::log10(1.0 + static_cast<double>(std::max<int64_t>(polygon_count, 0)));
  double complexity = 0;
  std::string_view kind = ComplexityClass(polygon_count);
  if (kind == "moderate") complexity = 80;
  if (kind == "complex") complexity = 220;
  if (kind == "intricate") complexity = 480;
  return std::round(base + detail + complexity);
}

}  // namespace ordertrace::services::pricing
