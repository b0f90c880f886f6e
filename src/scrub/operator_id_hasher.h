// Pseudonymous operator ids: HMAC-SHA256 with a secret kept by ordertrace, so that roles other
// than ops, alert labels and the forward see a stable token instead of who did the work, and
// nobody without the secret can turn a known id into its hash to check a guess. Thread-safe
// (no mutable state after construction).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "base/span.h"
#include "scrub/span_position.h"

namespace ordertrace::scrub {

// The attribute that carries the operator's clear id, and the one ingest adds with its hash.
inline constexpr std::string_view kOperatorIdAttribute = "operator_id";
inline constexpr std::string_view kOperatorIdHashAttribute = "operator_id.hash";

// Where the secret comes from, first set wins: `secret` (config `pii.operator_id_secret`),
// the environment variable `env_var`, else a random 32-byte key read from (or created once at,
// mode 0600) `key_file`, so that hashes stay the same across restarts.
struct OperatorIdHasherOptions {
  std::string secret;
  std::string env_var = "ORDERTRACE_OPERATOR_ID_SECRET";
  std::string key_file;  // usually <data_dir>/operator_id.key; empty: no file
};

class OperatorIdHasher {
 public:
  // kInvalidArgument / kFailedPrecondition when there is no secret at all, or the key file can
  // be neither read nor created, or holds fewer than 16 bytes.
  static absl::StatusOr<std::unique_ptr<OperatorIdHasher>> Create(
      const OperatorIdHasherOptions& options);
  // With a given secret (tests).
  explicit OperatorIdHasher(std::string secret);

  // "hmac:" + the first 32 hex digits (128 bits) of HMAC-SHA256(secret, clear). Deterministic
  // for one secret; different secrets give unrelated hashes. Thread-safe.
  std::string Hash(std::string_view clear) const;

  // Replaces the value of every `operator_id` attribute (span, event and resource attributes,
  // string or any other type as text) by its hash. Adds to `changed` (when given), in batch
  // order, each span it changed and every span of a resource it changed: their received bytes
  // still hold the clear id. For answers to roles other than ops and for the forward. Returns
  // the number replaced.
  size_t HashOperatorIds(base::TraceBatch& batch,
                         std::vector<SpanPosition>* changed = nullptr) const;

  // Adds `operator_id.hash` = Hash(value) to every span carrying an `operator_id` attribute
  // (and not already an `operator_id.hash`); the clear value stays. Appended after the span's
  // attributes, so a span's received bytes stay usable (the store's encoder adds appended
  // attributes): no span counts as changed. Ingest calls it; returns the number added.
  size_t AddOperatorIdHashes(base::TraceBatch& batch) const;

 private:
  const std::string secret_;  // constant after construction
};

}  // namespace ordertrace::scrub
