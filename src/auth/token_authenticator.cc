#include "auth/token_authenticator.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <set>

namespace ordertrace::auth {
namespace {

constexpr std::string_view kRoleNames[] = {"support", "dev", "ops", "partner_readonly", "ingest"};
constexpr std::string_view kFailureNames[] = {"missing", "malformed", "unknown", "forbidden"};
static_assert(std::size(kFailureNames) == static_cast<size_t>(AuthFailure::kCount));

// RFC 6750's b64token: letters, digits and -._~+/ then any '='.
bool IsBearerToken(std::string_view token) {
  size_t i = 0;
  auto token_char = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
  };
  while (i < token.size() && token_char(token[i])) ++i;
  if (i == 0) return false;
  while (i < token.size() && token[i] == '=') ++i;
  return i == token.size();
}

bool StartsWithBearer(std::string_view header) {
  // The scheme is case-insensitive (RFC 7235).
  constexpr std::string_view kScheme = "bearer ";
  if (header.size() < kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) != kScheme[i]) return false;
  }
  return true;
}

std::array<uint8_t, 32> Sha256(std::string_view text) {
  std::array<uint8_t, 32> out = {};
  unsigned int size = 0;
  EVP_Digest(text.data(), text.size(), out.data(), &size, EVP_sha256(), nullptr);
  return out;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string_view RoleName(Role role) { return kRoleNames[static_cast<size_t>(role)]; }

std::optional<Role> ParseRole(std::string_view name) {
  for (size_t i = 0; i < std::size(kRoleNames); ++i) {
    if (kRoleNames[i] == name) return static_cast<Role>(i);
  }
  return std::nullopt;
}

std::string_view AuthFailureName(AuthFailure failure) {
  return kFailureNames[static_cast<size_t>(failure)];
}

std::string Sha256Hex(std::string_view token) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (uint8_t byte : Sha256(token)) {
    out.push_back(kDigits[byte >> 4]);
    out.push_back(kDigits[byte & 15]);
  }
  return out;
}

std::optional<std::array<uint8_t, 32>> ParseSha256Hex(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  std::array<uint8_t, 32> out = {};
  for (size_t i = 0; i < 32; ++i) {
    const int high = HexDigit(hex[2 * i]);
    const int low = HexDigit(hex[2 * i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    out[i] = static_cast<uint8_t>(high * 16 + low);
  }
  return out;
}

absl::Status ValidateTokens(const std::vector<TokenEntry>& tokens) {
  std::set<std::string> names;
  std::set<std::array<uint8_t, 32>> hashes;
  for (const TokenEntry& t : tokens) {
    if (t.name.empty()) return absl::InvalidArgumentError("auth.tokens: a token has no name");
    if (!names.insert(t.name).second) {
      return absl::InvalidArgumentError("auth.tokens: the name '" + t.name + "' is used twice");
    }
    if (!hashes.insert(t.sha256).second) {
      return absl::InvalidArgumentError("auth.tokens: '" + t.name +
                                        "' has the same sha256 as another token");
    }
    if (t.role == Role::kPartnerReadonly && t.partner_id.empty()) {
      return absl::InvalidArgumentError("auth.tokens: '" + t.name +
                                        "' is partner_readonly and needs a partner_id");
    }
    if (t.role != Role::kPartnerReadonly && !t.partner_id.empty()) {
      return absl::InvalidArgumentError("auth.tokens: '" + t.name +
                                        "' has a partner_id but is not partner_readonly");
    }
  }
  return absl::OkStatus();
}

TokenAuthenticator::TokenAuthenticator(AuthOptions options) : options_(std::move(options)) {}

Principal TokenAuthenticator::Anonymous() { return Principal{"anonymous", Role::kOps, ""}; }

Authentication TokenAuthenticator::Authenticate(std::string_view authorization,
                                                std::string_view where) const {
  Authentication result;
  if (!enabled()) {
    result.principal = Anonymous();
    return result;
  }
  if (authorization.empty()) {
    result.failure = AuthFailure::kMissing;
    result.message = "a bearer token is required (Authorization: Bearer <token>)";
    CountFailure(result.failure, where, "no token");
    return result;
  }
  std::string_view token;
  if (StartsWithBearer(authorization)) token = authorization.substr(7);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  if (token.empty() || token.size() > kMaxTokenLength || !IsBearerToken(token)) {
    result.failure = AuthFailure::kMalformed;
    result.message = "the Authorization header is not a bearer token";
    CountFailure(result.failure, where, "a malformed Authorization header");
    return result;
  }
  // Every entry is compared, with CRYPTO_memcmp, whatever matched: the time taken depends on
  // the number of tokens only.
  const std::array<uint8_t, 32> presented = Sha256(token);
  const TokenEntry* match = nullptr;
  for (const TokenEntry& entry : options_.tokens) {
    if (CRYPTO_memcmp(entry.sha256.data(), presented.data(), presented.size()) == 0) {
      match = &entry;
    }
  }
  if (match == nullptr) {
    result.failure = AuthFailure::kUnknown;
    result.message = "the bearer token is not valid";
    CountFailure(result.failure, where, "an unknown token");
    return result;
  }
  accepted_.fetch_add(1, std::memory_order_relaxed);
  result.principal = Principal{match->name, match->role, match->partner_id};
  return result;
}

void TokenAuthenticator::CountForbidden(const Principal& who, std::string_view what) const {
  CountFailure(
      AuthFailure::kForbidden, what,
      std::string("token '") + who.token_name + "' (" + std::string(RoleName(who.role)) + ")");
}

// Logged at the 1st, 10th, 100th... refusal of each reason, so that a flood of wrong tries is
// seen however fast it comes, and otherwise at most once per ten seconds.
void TokenAuthenticator::CountFailure(AuthFailure failure, std::string_view where,
                                      std::string_view detail) const {
  const uint64_t count =
      failures_[static_cast<size_t>(failure)].fetch_add(1, std::memory_order_relaxed) + 1;
  uint64_t power = 1;
  while (power < count && power <= UINT64_MAX / 10) power *= 10;
  bool log = power == count;
  {
    std::lock_guard<std::mutex> lock(log_mu_);
    const int64_t now = NowSeconds();
    if (last_log_unix_sec_ == 0 || now - last_log_unix_sec_ >= 10) log = true;
    if (log) last_log_unix_sec_ = now;
  }
  if (!log) return;
  spdlog::warn("auth: {} refused at {} ({} {} refusals since start)", detail, where, count,
               AuthFailureName(failure));
}

AuthStats TokenAuthenticator::Stats() const {
  AuthStats stats;
  stats.accepted = accepted_.load(std::memory_order_relaxed);
  for (size_t i = 0; i < std::size(stats.failures); ++i) {
    stats.failures[i] = failures_[i].load(std::memory_order_relaxed);
  }
  return stats;
}

}  // namespace ordertrace::auth
