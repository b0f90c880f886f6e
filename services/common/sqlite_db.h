// A thin RAII adapter over SQLite's C API for the services' embedded databases: open a file in
// WAL mode, run statements with bound parameters, and group them in transactions. sqlite3 types
// stay in sqlite_db.cc. We write this small wrapper ourselves because no C++ SQLite wrapper is
// packaged in Debian 12 besides SQLiteCpp, whose exceptions the house style keeps out of our code.
//
// Errors are absl::Status values: kNotFound never (an empty result is not an error),
// kInvalidArgument for SQL that does not compile, kAlreadyExists for a violated constraint,
// kUnavailable when the database is busy or the disk fails, kInternal otherwise.
//
// Thread-safety: SqliteDb is thread-safe for single statements (SQLite's serialized mode), but a
// Transaction must not interleave with statements of other threads: callers serialise through
// their own mutex (each service holds one around its database work).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct sqlite3;
struct sqlite3_stmt;

namespace ordertrace::services {

// A value bound to, or read from, a statement. std::monostate is SQL NULL.
using SqlValue = std::variant<std::monostate, int64_t, double, std::string>;

// One result row, columns in SELECT order.
class SqlRow {
 public:
  explicit SqlRow(std::vector<SqlValue> values) : values_(std::move(values)) {}
  size_t size() const { return values_.size(); }
  bool IsNull(size_t column) const;
  // NULL reads as 0 / "" ; an integer column read as text gives its decimal form.
  int64_t Int(size_t column) const;
  double Double(size_t column) const;
  std::string Text(size_t column) const;

 private:
  std::vector<SqlValue> values_;
};

class SqliteDb {
 public:
  // Opens (creating when missing) the database at `path`, in WAL mode with
  // synchronous=NORMAL (a process crash loses nothing committed) and a busy timeout.
  static absl::StatusOr<std::unique_ptr<SqliteDb>> Open(const std::string& path);
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  // Runs one or more statements without parameters (schema, pragmas).
  absl::Status ExecScript(std::string_view sql);

  // Runs one statement with `params` bound to ?1, ?2, ...; returns every result row.
  absl::StatusOr<std::vector<SqlRow>> Query(std::string_view sql,
                                            const std::vector<SqlValue>& params = {});
  // Runs one INSERT, UPDATE or DELETE; returns the number of rows it changed.
  absl::StatusOr<int64_t> Execute(std::string_view sql, const std::vector<SqlValue>& params = {});
  // The rowid of the last INSERT on this connection.
  int64_t LastInsertRowId() const;

 private:
  explicit SqliteDb(sqlite3* db) : db_(db) {}
  absl::Status ErrorStatus(int code, const char* what) const;
  absl::StatusOr<sqlite3_stmt*> Prepare(std::string_view sql, const std::vector<SqlValue>& params);

  sqlite3* db_;  // owned
};

// BEGIN IMMEDIATE ... COMMIT; rolls back on destruction unless committed.
class SqlTransaction {
 public:
  static absl::StatusOr<SqlTransaction> Begin(SqliteDb& db);
  SqlTransaction(SqlTransaction&& other) noexcept;
  SqlTransaction& operator=(SqlTransaction&&) = delete;
  ~SqlTransaction();
  absl::Status Commit();

 private:
  explicit SqlTransaction(SqliteDb* db) : db_(db) {}
  SqliteDb* db_;  // null once committed or moved from
};

}  // namespace ordertrace::services
