// Who is asking: bearer tokens checked against SHA-256 hashes from the config, and the role
// each token carries. Tokens are never held in clear: the config lists `sha256` of each, and a
// presented token is hashed before it is compared, so the comparison's time depends neither on
// the stored hashes nor on how much of a token was right.
//
// Thread-safety: Authenticate and Stats from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace ordertrace::auth {

// The design's roles (section 4), and `ingest` for exporters.
enum class Role { kSupport, kDev, kOps, kPartnerReadonly, kIngest };

// "support", "dev", "ops", "partner_readonly", "ingest".
std::string_view RoleName(Role role);
std::optional<Role> ParseRole(std::string_view name);

// One token of the config: `{name: acme, role: partner_readonly, partner_id: P-7, sha256: <hex>}`.
struct TokenEntry {
  std::string name;
  Role role = Role::kSupport;
  std::string partner_id;  // partner_readonly only, and required there
  std::array<uint8_t, 32> sha256 = {};
};

// The `auth:` section. No tokens: ordertrace is open, as it is on loopback by default.
struct AuthOptions {
  std::vector<TokenEntry> tokens;
};

// Checks that the tokens can be told apart and that each role has what it needs (a partner's
// partner_id); the first problem is named.
absl::Status ValidateTokens(const std::vector<TokenEntry>& tokens);

// The SHA-256 of a token as 64 lowercase hex digits: what `auth.tokens[].sha256` holds (the
// same as `printf %s "$TOKEN" | sha256sum`).
std::string Sha256Hex(std::string_view token);

// Parses the 64 hex digits of a SHA-256 (either case).
std::optional<std::array<uint8_t, 32>> ParseSha256Hex(std::string_view hex);

// The one asking, once its token is known.
struct Principal {
  std::string token_name;
  Role role = Role::kSupport;
  std::string partner_id;  // set for partner_readonly
};

// Why a request carries no usable token.
enum class AuthFailure {
  kMissing,    // no Authorization header
  kMalformed,  // not "Bearer <token>" with a token of RFC 6750's characters, or too long
  kUnknown,    // a well-formed token that no entry hashes to
  kForbidden,  // a known token whose role may not do this (counted by the caller)
  kCount
};
std::string_view AuthFailureName(AuthFailure failure);

// What Authenticate found: a principal, or why there is none (with a message for the client
// that never echoes the token).
struct Authentication {
  std::optional<Principal> principal;
  AuthFailure failure = AuthFailure::kMissing;
  std::string message;
};

struct AuthStats {
  uint64_t accepted = 0;
  uint64_t failures[static_cast<size_t>(AuthFailure::kCount)] = {};
};

class TokenAuthenticator {
 public:
  explicit TokenAuthenticator(AuthOptions options);

  // False when no token is configured: every request is let through as an anonymous ops
  // principal (the loopback default).
  bool enabled() const { return !options_.tokens.empty(); }

  // The principal of an `Authorization` header's value (empty: absent). Failures are counted
  // by reason and logged at the 1st, 10th, 100th... of each reason and otherwise at most once
  // per ten seconds, so a flood of wrong tries neither goes unnoticed nor fills the log.
  // `where` names the listener in that line.
  Authentication Authenticate(std::string_view authorization, std::string_view where) const;

  // Counts a known token refused for its role.
  void CountForbidden(const Principal& who, std::string_view what) const;

  AuthStats Stats() const;

  // The principal used when authentication is off.
  static Principal Anonymous();

  // Longest token accepted; longer ones are malformed without being hashed.
  static constexpr size_t kMaxTokenLength = 4096;

 private:
  void CountFailure(AuthFailure failure, std::string_view where, std::string_view detail) const;

  // Constant after construction.
  const AuthOptions options_;

  mutable std::atomic<uint64_t> accepted_{0};
  mutable std::atomic<uint64_t> failures_[static_cast<size_t>(AuthFailure::kCount)] = {};
  mutable std::mutex log_mu_;
  mutable int64_t last_log_unix_sec_ = 0;  // guarded by log_mu_
};

}  // namespace ordertrace::auth
