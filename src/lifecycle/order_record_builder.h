// Folds spans into an order's record. Every rule is a min or a max over the spans seen, so
// the record does not depend on the order spans arrive in, and applying a span twice
// changes nothing. Stateless free functions; thread-compatible.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/attribute_names.h"
#include "base/span.h"
#include "model/order_record.h"

namespace ordertrace::lifecycle {

// The attribute names the order model reads (from the span, else from its resource).
using base::kErrorCodeKey;
using base::kErrorMessageKey;
using base::kEventVersionKey;
using base::kNewStatusKey;
using base::kOrderIdKey;
using base::kPartnerIdKey;
using base::kPrevStatusKey;

// Order ids are 1 to kMaxOrderIdLength bytes without control characters; spans carrying
// anything else are stored but belong to no order (the API could not name it).
inline constexpr size_t kMaxOrderIdLength = 256;
bool IsValidOrderId(std::string_view order_id);

// The order a span belongs to: its `order_id` attribute, else its resource's; nullopt when
// neither carries a valid one.
std::optional<std::string> OrderIdOf(const base::Span& span, const base::Resource& resource);

// Folds `span` (emitted by `resource`) into `record`. `record.order_id` must be set.
void ApplySpan(const base::Span& span, const base::Resource& resource, model::OrderRecord& record);

}  // namespace ordertrace::lifecycle
