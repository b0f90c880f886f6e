// The transitions the services enforce (docs/services.md): an order moves to a status of the
// default lifecycle (base/default_lifecycle.h) only from the status before it, set by the
// service that owns it on the span that carries it; and the routing key of each status event.
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/default_lifecycle.h"

namespace ordertrace::services {

// The services speak the default lifecycle's names unqualified.
using base::kClosed;
using base::kDefaultLifecycle;
using base::kFileUploaded;
using base::kInitiated;
using base::kManufacturingApproved;
using base::kManufacturingCompleted;
using base::kManufacturingStarted;
using base::kPackaging;
using base::kPriceCalculated;
using base::kPriceCalculationStarted;
using base::kShipped;
using base::kSubmitted;
using base::LifecycleStep;

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
