// Just enough of the protobuf wire format to find sub-messages in bytes libprotobuf has already
// parsed, and to splice received bytes into new messages. libprotobuf parses into objects and
// serializes objects; it does not say where a parsed sub-message sat in its input, and copying
// a span's bytes is several times cheaper than converting it back to a message and encoding it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace ordertrace::otlp::wire {

enum class WireType : uint8_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

// Calls `visit(field_number, type, value)` for each field of a message, in order; for kLen the
// value is the field's payload, for the others its encoded bytes. False when the bytes are not
// a well-formed message (groups, which OTLP never uses, count as malformed) or `visit` said stop.
bool ForEachField(std::string_view message,
                  const std::function<bool(uint32_t, WireType, std::string_view)>& visit);

size_t VarintSize(uint64_t value);
void AppendVarint(std::string& out, uint64_t value);
// The tag and length of a length-delimited field; its `length` payload bytes follow.
void AppendLenHeader(std::string& out, uint32_t field_number, size_t length);
size_t LenFieldSize(uint32_t field_number, size_t length);

}  // namespace ordertrace::otlp::wire
