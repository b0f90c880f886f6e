// The audit log: one JSON line per API request that names who asked (token name, role,
// partner), what (method, path, the order or trace it named) and the answer's status, in a
// file rotated by size. Lines carry no request bodies and no query values that a redactor
// (PII rules) flags.
//
// Thread-safety: Record from any thread; lines are written whole, in the order recorded.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"

namespace ordertrace::auth {

struct AuditLogOptions {
  // The file; rotated files are `<path>.1` (newest) to `<path>.<keep_files>`.
  std::string path;
  size_t max_bytes = 64 << 20;
  size_t keep_files = 5;
  // Applied to the path and query before they are written (e.g. the PII scrubber's masking);
  // may be null.
  std::function<void(std::string&)> redact;
};

struct AuditEntry {
  uint64_t at_unix_nano = 0;
  std::string token_name;  // empty when the request had no valid token
  std::string role;        // empty then too
  std::string partner_id;
  std::string method;
  std::string target;  // path and query as sent
  std::string order_id;
  std::string trace_id;
  int status = 0;
  std::string refusal;  // why the token was refused (missing, malformed, unknown, forbidden)
};

struct AuditLogStats {
  uint64_t lines = 0;
  uint64_t rotations = 0;
  uint64_t write_errors = 0;
};

class AuditLog {
 public:
  // Opens (appending) or creates the file, mode 0600; an error names the path.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(AuditLogOptions options);
  ~AuditLog();

  // Writes one line; a write error is counted and logged, never thrown at the request.
  void Record(AuditEntry entry);

  AuditLogStats Stats() const;

 private:
  AuditLog(AuditLogOptions options, std::FILE* file, size_t size);
  // Shifts `<path>.N` up and reopens a fresh file. Under mu_.
  void RotateLocked();

  // Constant after construction.
  const AuditLogOptions options_;

  mutable std::mutex mu_;
  std::FILE* file_;      // guarded by mu_
  size_t size_;          // guarded by mu_
  AuditLogStats stats_;  // guarded by mu_
};

}  // namespace ordertrace::auth
