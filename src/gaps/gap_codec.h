// Gaps as stored (GapStore): JSON with times in unix nanoseconds, so that a newer ordertrace
// still reads what an older one wrote (unknown fields are ignored, missing ones default).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "gaps/gap.h"

namespace ordertrace::gaps {

std::string EncodeGap(const Gap& gap);
absl::StatusOr<Gap> DecodeGap(const std::string& encoded);

}  // namespace ordertrace::gaps
