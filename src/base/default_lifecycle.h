// The Alexandrite order lifecycle as shipped (docs/services.md, docs/gaps.md): each status in
// order, the service that sets it, the span that carries the transition to it, and how long an
// order may stay in it before the server's default gap rules call it stuck. The one list that
// the server's defaults (gaps::DefaultStageModelOptions), the services' transition rules,
// order-sim and the benchmarks derive from; a deployment's ordertrace.yaml (`lifecycle:`) may
// configure the server with another. Plain constants; thread-safe.
#pragma once

#include <chrono>
#include <string_view>

namespace ordertrace::base {

inline constexpr std::string_view kInitiated = "INITIATED";
inline constexpr std::string_view kFileUploaded = "FILE_UPLOADED";
inline constexpr std::string_view kSubmitted = "SUBMITTED";
inline constexpr std::string_view kPriceCalculationStarted = "PRICE_CALCULATION_STARTED";
inline constexpr std::string_view kPriceCalculated = "PRICE_CALCULATED";
inline constexpr std::string_view kManufacturingApproved = "MANUFACTURING_APPROVED";
inline constexpr std::string_view kManufacturingStarted = "MANUFACTURING_STARTED";
inline constexpr std::string_view kManufacturingCompleted = "MANUFACTURING_COMPLETED";
inline constexpr std::string_view kPackaging = "PACKAGING";
inline constexpr std::string_view kShipped = "SHIPPED";
inline constexpr std::string_view kClosed = "CLOSED";

// One status of the lifecycle.
struct LifecycleStep {
  std::string_view status;
  std::string_view service;    // "shop-api", "crm-api" or "mes-api"
  std::string_view span_name;  // the span that carries the transition to `status`
  // How long an order may stay in `status` before the next status is overdue, in real-life
  // time; zero for the terminal status, which has no next.
  std::chrono::minutes sla{0};
};

// Every status, in lifecycle order: each may follow only the one before it, and the last
// (CLOSED) is terminal. The SLAs are the shop floor's usual times (a price calculation takes 2
// to 30 minutes).
inline constexpr LifecycleStep kDefaultLifecycle[] = {
    {kInitiated, "shop-api", "shop.init", std::chrono::minutes(30)},
    {kFileUploaded, "shop-api", "shop.upload", std::chrono::minutes(30)},
    {kSubmitted, "shop-api", "shop.submit", std::chrono::minutes(10)},
    {kPriceCalculationStarted, "mes-api", "mes.price.start", std::chrono::minutes(30)},
    {kPriceCalculated, "mes-api", "mes.price.calc", std::chrono::hours(2)},
    {kManufacturingApproved, "crm-api", "crm.approve.manufacturing", std::chrono::hours(2)},
    {kManufacturingStarted, "mes-api", "mes.manufacturing.start", std::chrono::hours(8)},
    {kManufacturingCompleted, "mes-api", "mes.manufacturing.complete", std::chrono::hours(1)},
    {kPackaging, "mes-api", "mes.packaging", std::chrono::hours(4)},
    {kShipped, "mes-api", "mes.shipped", std::chrono::hours(12)},
    {kClosed, "crm-api", "crm.close", std::chrono::minutes(0)},
};

}  // namespace ordertrace::base
