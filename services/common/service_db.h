// A service's SQLite database with the mutex that serialises its use, so that HTTP handlers,
// consumers and the outbox relay can share one connection and keep transactions whole.
// Thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "services/common/sqlite_db.h"

namespace ordertrace::services {

class ServiceDb {
 public:
  // Opens `path` and runs `schema_sql` (CREATE TABLE IF NOT EXISTS ...) plus the outbox and
  // inbox tables every service has.
  static absl::StatusOr<std::unique_ptr<ServiceDb>> Open(const std::string& path,
                                                         std::string_view schema_sql);

  // Runs `work(SqliteDb&)` with the database to itself and returns what it returns.
  template <typename Work>
  auto Run(Work&& work) {
    std::lock_guard<std::mutex> lock(mu_);
    return std::forward<Work>(work)(*db_);
  }

 private:
  explicit ServiceDb(std::unique_ptr<SqliteDb> db) : db_(std::move(db)) {}

  std::mutex mu_;
  std::unique_ptr<SqliteDb> db_;  // guarded by mu_
};

}  // namespace ordertrace::services
