#include "otlp/wire_format.h"

namespace ordertrace::otlp::wire {
namespace {

bool ReadVarint(std::string_view& in, uint64_t& value) {
  value = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    const auto byte = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

}  // namespace

bool ForEachField(std::string_view message,
                  const std::function<bool(uint32_t, WireType, std::string_view)>& visit) {
  while (!message.empty()) {
    uint64_t tag = 0;
    if (!ReadVarint(message, tag)) return false;
    const auto field = static_cast<uint32_t>(tag >> 3);
    if (field == 0 || tag >> 3 > 0x1fffffff) return false;
    const char* start = message.data();
    size_t size = 0;
    switch (static_cast<WireType>(tag & 7)) {
      case WireType::kVarint: {
        uint64_t ignored = 0;
        if (!ReadVarint(message, ignored)) return false;
        size = static_cast<size_t>(message.data() - start);
        if (!visit(field, WireType::kVarint, std::string_view(start, size))) return false;
        continue;
      }
      case WireType::kFixed64:
        size = 8;
        break;
      case WireType::kFixed32:
        size = 4;
        break;
      case WireType::kLen: {
        uint64_t length = 0;
        if (!ReadVarint(message, length) || length > message.size()) return false;
        size = static_cast<size_t>(length);
        break;
      }
      default:
        return false;
    }
    if (size > message.size()) return false;
    std::string_view value = message.substr(0, size);
    message.remove_prefix(size);
    if (!visit(field, static_cast<WireType>(tag & 7), value)) return false;
  }
  return true;
}

size_t VarintSize(uint64_t value) {
  size_t size = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++size;
  }
  return size;
}

void AppendVarint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void AppendLenHeader(std::string& out, uint32_t field_number, size_t length) {
  AppendVarint(out, (static_cast<uint64_t>(field_number) << 3) | 2);
  AppendVarint(out, length);
}

size_t LenFieldSize(uint32_t field_number, size_t length) {
  return VarintSize((static_cast<uint64_t>(field_number) << 3) | 2) + VarintSize(length) + length;
}

}  // namespace ordertrace::otlp::wire
