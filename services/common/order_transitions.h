// The Alexandrite order lifecycle as the services enforce it (docs/services.md): the statuses in
// order, which service sets each, the span that carries each transition, and the status each
// transition must start from. Plain constants and pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ordertrace::services {

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

// One step of the lifecycle.
struct LifecycleStep {
  std::string_view status;
  std::string_view service;    // "shop-api", "crm-api" or "mes-api"
  std::string_view span_name;  // the span that carries the transition
};

// Every status, in lifecycle order. A transition is legal only from the step before.
inline constexpr LifecycleStep kLifecycle[] = {
    {kInitiated, "shop-api", "shop.init"},
    {kFileUploaded, "shop-api", "shop.upload"},
    {kSubmitted, "shop-api", "shop.submit"},
    {kPriceCalculationStarted, "mes-api", "mes.price.start"},
    {kPriceCalculated, "mes-api", "mes.price.calc"},
    {kManufacturingApproved, "crm-api", "crm.approve.manufacturing"},
    {kManufacturingStarted, "mes-api", "mes.manufacturing.start"},
    {kManufacturingCompleted, "mes-api", "mes.manufacturing.complete"},
    {kPackaging, "mes-api", "mes.packaging"},
    {kShipped, "mes-api", "mes.shipped"},
    {kClosed, "crm-api", "crm.close"},
};

// The step for `status`; nullopt for a status the lifecycle does not know.
std::optional<LifecycleStep> FindStep(std::string_view status);

// The status a transition to `status` must start from; "" for INITIATED (no predecessor) and
// for unknown statuses.
std::string_view PreviousStatus(std::string_view status);

// Position in the lifecycle (INITIATED = 0); -1 for an unknown status.
int LifecycleIndex(std::string_view status);

// The routing key of `status`'s status event: "status.<status in lower case>".
std::string StatusRoutingKey(std::string_view status);

}  // namespace ordertrace::services
