#include "sdk/trace_context.h"

#include <algorithm>

#include "absl/status/status.h"

namespace ordertrace::sdk {
namespace {

// Layout of a version 00 traceparent: "vv-<32>-<16>-ff".
constexpr size_t kVersionLength = 2;
constexpr size_t kTraceIdOffset = 3;
constexpr size_t kSpanIdOffset = kTraceIdOffset + 2 * base::TraceId::kSize + 1;  // 36
constexpr size_t kFlagsOffset = kSpanIdOffset + 2 * base::SpanId::kSize + 1;     // 53
constexpr size_t kTraceparentLength = kFlagsOffset + 2;                          // 55

// W3C limits for tracestate keys (simple-key: 256; tenant@system: 241 and 14).
constexpr size_t kMaxSimpleKeyLength = 256;
constexpr size_t kMaxTenantIdLength = 241;
constexpr size_t kMaxSystemIdLength = 14;
constexpr size_t kMaxValueLength = 256;

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

bool IsLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return IsLowerHex(c); });
}

int LowerHexValue(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

bool IsLcAlpha(char c) { return c >= 'a' && c <= 'z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsKeyChar(char c) {
  return IsLcAlpha(c) || IsDigit(c) || c == '_' || c == '-' || c == '*' || c == '/';
}
bool IsOws(char c) { return c == ' ' || c == '\t'; }

// The tail of a key after its first character: only key characters, total length in bounds.
bool IsKeyPart(std::string_view part, size_t max_length) {
  return !part.empty() && part.size() <= max_length &&
         std::all_of(part.begin() + 1, part.end(), IsKeyChar);
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && IsOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsOws(s.back())) s.remove_suffix(1);
  return s;
}

template <typename IdT>
std::optional<IdT> ParseLowerHexId(std::string_view hex) {
  if (hex.size() != 2 * IdT::kSize || !IsLowerHex(hex)) return std::nullopt;
  return IdT::FromHex(hex);
}

absl::Status Invalid(std::string_view what) {
  return absl::InvalidArgumentError(std::string("traceparent: ") + std::string(what));
}

}  // namespace

bool TraceState::IsValidKey(std::string_view key) {
  size_t at = key.find('@');
  if (at == std::string_view::npos) {
    return !key.empty() && IsLcAlpha(key[0]) && IsKeyPart(key, kMaxSimpleKeyLength);
  }
  std::string_view tenant = key.substr(0, at);
  std::string_view system = key.substr(at + 1);
  return !tenant.empty() && (IsLcAlpha(tenant[0]) || IsDigit(tenant[0])) &&
         IsKeyPart(tenant, kMaxTenantIdLength) && !system.empty() && IsLcAlpha(system[0]) &&
         IsKeyPart(system, kMaxSystemIdLength);
}

bool TraceState::IsValidValue(std::string_view value) {
  if (value.empty() || value.size() > kMaxValueLength || value.back() == ' ') return false;
  return std::all_of(value.begin(), value.end(),
                     [](char c) { return c >= 0x20 && c <= 0x7e && c != ',' && c != '='; });
}

absl::StatusOr<TraceState> TraceState::Parse(std::string_view header) {
  TraceState state;
  while (true) {
    size_t comma = header.find(',');
    std::string_view member = TrimOws(header.substr(0, comma));
    if (!member.empty()) {
      size_t eq = member.find('=');
      if (eq == std::string_view::npos) {
        return absl::InvalidArgumentError("tracestate: list member without '='");
      }
      std::string_view key = member.substr(0, eq);
      std::string_view value = member.substr(eq + 1);
      if (!IsValidKey(key)) return absl::InvalidArgumentError("tracestate: invalid key");
      if (!IsValidValue(value)) return absl::InvalidArgumentError("tracestate: invalid value");
      if (state.Get(key).has_value()) {
        return absl::InvalidArgumentError("tracestate: duplicate key");
      }
      if (state.members_.size() == kMaxMembers) {
        return absl::InvalidArgumentError("tracestate: more than 32 list members");
      }
      state.members_.emplace_back(std::string(key), std::string(value));
    }
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return state;
}

std::string TraceState::ToHeader() const {
  std::string out;
  for (const auto& [key, value] : members_) {
    if (!out.empty()) out += ',';
    out += key;
    out += '=';
    out += value;
  }
  return out;
}

std::optional<std::string_view> TraceState::Get(std::string_view key) const {
  for (const auto& [k, v] : members_) {
    if (k == key) return std::string_view(v);
  }
  return std::nullopt;
}

absl::StatusOr<TraceState> TraceState::Set(std::string_view key, std::string_view value) const {
  if (!IsValidKey(key)) return absl::InvalidArgumentError("tracestate: invalid key");
  if (!IsValidValue(value)) return absl::InvalidArgumentError("tracestate: invalid value");
  TraceState out;
  out.members_.emplace_back(std::string(key), std::string(value));
  for (const auto& member : members_) {
    if (member.first == key) continue;
    if (out.members_.size() == kMaxMembers) break;
    out.members_.push_back(member);
  }
  return out;
}

absl::StatusOr<SpanContext> ParseTraceparent(std::string_view traceparent) {
  if (traceparent.size() < kTraceparentLength) return Invalid("too short");
  std::string_view version = traceparent.substr(0, kVersionLength);
  if (!IsLowerHex(version)) return Invalid("version is not two lower-case hex digits");
  if (version == "ff") return Invalid("version ff is forbidden");
  bool version_00 = version == "00";
  if (version_00 && traceparent.size() != kTraceparentLength) {
    return Invalid("version 00 must be exactly 55 characters");
  }
  // A later version may append fields, but only after a dash.
  if (!version_00 && traceparent.size() > kTraceparentLength &&
      traceparent[kTraceparentLength] != '-') {
    return Invalid("flags not followed by '-'");
  }
  if (traceparent[kTraceIdOffset - 1] != '-' || traceparent[kSpanIdOffset - 1] != '-' ||
      traceparent[kFlagsOffset - 1] != '-') {
    return Invalid("fields not separated by '-'");
  }

  std::optional<base::TraceId> trace_id =
      ParseLowerHexId<base::TraceId>(traceparent.substr(kTraceIdOffset, 2 * base::TraceId::kSize));
  if (!trace_id) return Invalid("trace-id is not 32 lower-case hex digits");
  if (!trace_id->IsValid()) return Invalid("trace-id is all zero");
  std::optional<base::SpanId> span_id =
      ParseLowerHexId<base::SpanId>(traceparent.substr(kSpanIdOffset, 2 * base::SpanId::kSize));
  if (!span_id) return Invalid("parent-id is not 16 lower-case hex digits");
  if (!span_id->IsValid()) return Invalid("parent-id is all zero");
  std::string_view flags = traceparent.substr(kFlagsOffset, 2);
  if (!IsLowerHex(flags)) return Invalid("trace-flags is not two lower-case hex digits");

  SpanContext context;
  context.trace_id = *trace_id;
  context.span_id = *span_id;
  context.trace_flags =
      static_cast<uint8_t>(LowerHexValue(flags[0]) << 4 | LowerHexValue(flags[1]));
  // Flags other than "sampled" are defined per version; from an unknown version keep only it.
  if (!version_00) context.trace_flags &= kTraceFlagSampled;
  context.is_remote = true;
  return context;
}

absl::StatusOr<SpanContext> ParseTraceContext(std::string_view traceparent,
                                              std::string_view tracestate) {
  absl::StatusOr<SpanContext> context = ParseTraceparent(traceparent);
  if (!context.ok()) return context;
  absl::StatusOr<TraceState> state = TraceState::Parse(tracestate);
  if (state.ok()) context->trace_state = *std::move(state);
  return context;
}

std::string FormatTraceparent(const SpanContext& context) {
  if (!context.IsValid()) return std::string();
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "00-";
  out += context.trace_id.ToHex();
  out += '-';
  out += context.span_id.ToHex();
  out += '-';
  out += kDigits[context.trace_flags >> 4];
  out += kDigits[context.trace_flags & 0xf];
  return out;
}

}  // namespace ordertrace::sdk
