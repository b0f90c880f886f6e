// Request body content codings (RFC 9110 8.4): identity, gzip and deflate, decoded with zlib
// under a bound on the decoded size, so a small compressed body cannot expand without limit.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace ordertrace::http {

// True for the codings DecodeContent understands (case-insensitive; "" is identity).
bool IsSupportedContentCoding(std::string_view coding);

// Decodes `body` of the given coding. Errors: ResourceExhausted when the decoded body would
// pass `max_decoded_bytes`, InvalidArgument when the body is not valid for its coding or the
// coding is unknown.
absl::StatusOr<std::string> DecodeContent(std::string body, std::string_view coding,
                                          size_t max_decoded_bytes);

}  // namespace ordertrace::http
