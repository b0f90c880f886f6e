#include "services/common/sqlite_db.h"

#include <sqlite3.h>

#include <charconv>
#include <string>

#include "absl/strings/str_cat.h"

namespace ordertrace::services {
namespace {

// Long enough for a writer's transaction on another thread; short enough that a stuck database
// shows up as an error rather than a hung request.
constexpr int kBusyTimeoutMs = 5000;

}  // namespace

bool SqlRow::IsNull(size_t column) const {
  return column >= values_.size() || std::holds_alternative<std::monostate>(values_[column]);
}

int64_t SqlRow::Int(size_t column) const {
  if (column >= values_.size()) return 0;
  const SqlValue& value = values_[column];
  if (const auto* i = std::get_if<int64_t>(&value)) return *i;
  if (const auto* d = std::get_if<double>(&value)) return static_cast<int64_t>(*d);
  if (const auto* s = std::get_if<std::string>(&value)) {
    int64_t parsed = 0;
    std::from_chars(s->data(), s->data() + s->size(), parsed);
    return parsed;
  }
  return 0;
}

double SqlRow::Double(size_t column) const {
  if (column >= values_.size()) return 0;
  const SqlValue& value = values_[column];
  if (const auto* d = std::get_if<double>(&value)) return *d;
  if (const auto* i = std::get_if<int64_t>(&value)) return static_cast<double>(*i);
  return 0;
}

std::string SqlRow::Text(size_t column) const {
  if (column >= values_.size()) return "";
  const SqlValue& value = values_[column];
  if (const auto* s = std::get_if<std::string>(&value)) return *s;
  if (const auto* i = std::get_if<int64_t>(&value)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&value)) return std::to_string(*d);
  return "";
}

absl::StatusOr<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string& path) {
  sqlite3* raw = nullptr;
  int code =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (code != SQLITE_OK) {
    std::string message = raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(code);
    sqlite3_close(raw);
    return absl::UnavailableError(absl::StrCat("cannot open database ", path, ": ", message));
  }
  std::unique_ptr<SqliteDb> db(new SqliteDb(raw));
  sqlite3_busy_timeout(raw, kBusyTimeoutMs);
  sqlite3_extended_result_codes(raw, 1);
  absl::Status status =
      db->ExecScript("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
  if (!status.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot use database ", path, ": ", status.message()));
  }
  return db;
}

SqliteDb::~SqliteDb() { sqlite3_close_v2(db_); }

absl::Status SqliteDb::ErrorStatus(int code, const char* what) const {
  std::string message = absl::StrCat(what, ": ", sqlite3_errmsg(db_));
  switch (code & 0xff) {
    case SQLITE_ERROR:
      return absl::InvalidArgumentError(message);
    case SQLITE_CONSTRAINT:
      return absl::AlreadyExistsError(message);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
      return absl::UnavailableError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::Status SqliteDb::ExecScript(std::string_view sql) {
  std::string text(sql);
  char* error = nullptr;
  int code = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &error);
  if (code == SQLITE_OK) return absl::OkStatus();
  std::string message = error != nullptr ? error : sqlite3_errstr(code);
  sqlite3_free(error);
  absl::Status status = ErrorStatus(code, "sql");
  return absl::Status(status.code(), absl::StrCat("sql: ", message));
}

absl::StatusOr<sqlite3_stmt*> SqliteDb::Prepare(std::string_view sql,
                                                const std::vector<SqlValue>& params) {
  sqlite3_stmt* statement = nullptr;
  int code = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &statement, nullptr);
  if (code != SQLITE_OK) return ErrorStatus(code, "prepare");
  for (size_t i = 0; i < params.size(); ++i) {
    int index = static_cast<int>(i) + 1;
    const SqlValue& value = params[i];
    if (const auto* v = std::get_if<int64_t>(&value)) {
      code = sqlite3_bind_int64(statement, index, *v);
    } else if (const auto* d = std::get_if<double>(&value)) {
      code = sqlite3_bind_double(statement, index, *d);
    } else if (const auto* s = std::get_if<std::string>(&value)) {
      code = sqlite3_bind_text(statement, index, s->data(), static_cast<int>(s->size()),
                               SQLITE_TRANSIENT);
    } else {
      code = sqlite3_bind_null(statement, index);
    }
    if (code != SQLITE_OK) {
      absl::Status status = ErrorStatus(code, "bind");
      sqlite3_finalize(statement);
      return status;
    }
  }
  return statement;
}

absl::StatusOr<std::vector<SqlRow>> SqliteDb::Query(std::string_view sql,
                                                    const std::vector<SqlValue>& params) {
  absl::StatusOr<sqlite3_stmt*> prepared = Prepare(sql, params);
  if (!prepared.ok()) return prepared.status();
  sqlite3_stmt* statement = *prepared;
  std::vector<SqlRow> rows;
  while (true) {
    int code = sqlite3_step(statement);
    if (code == SQLITE_DONE) break;
    if (code != SQLITE_ROW) {
      absl::Status status = ErrorStatus(code, "step");
      sqlite3_finalize(statement);
      return status;
    }
    int columns = sqlite3_column_count(statement);
    std::vector<SqlValue> values;
    values.reserve(columns);
    for (int c = 0; c < columns; ++c) {
      switch (sqlite3_column_type(statement, c)) {
        case SQLITE_INTEGER:
          values.emplace_back(static_cast<int64_t>(sqlite3_column_int64(statement, c)));
          break;
        case SQLITE_FLOAT:
          values.emplace_back(sqlite3_column_double(statement, c));
          break;
        case SQLITE_NULL:
          values.emplace_back(std::monostate{});
          break;
        default: {
          const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(statement, c));
          values.emplace_back(
              std::string(text != nullptr ? text : "", sqlite3_column_bytes(statement, c)));
        }
      }
    }
    rows.emplace_back(std::move(values));
  }
  sqlite3_finalize(statement);
  return rows;
}

absl::StatusOr<int64_t> SqliteDb::Execute(std::string_view sql,
                                          const std::vector<SqlValue>& params) {
  absl::StatusOr<std::vector<SqlRow>> rows = Query(sql, params);
  if (!rows.ok()) return rows.status();
  return static_cast<int64_t>(sqlite3_changes64(db_));
}

int64_t SqliteDb::LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }

absl::StatusOr<SqlTransaction> SqlTransaction::Begin(SqliteDb& db) {
  absl::Status status = db.ExecScript("BEGIN IMMEDIATE");
  if (!status.ok()) return status;
  return SqlTransaction(&db);
}

SqlTransaction::SqlTransaction(SqlTransaction&& other) noexcept : db_(other.db_) {
  other.db_ = nullptr;
}

SqlTransaction::~SqlTransaction() {
  if (db_ != nullptr) db_->ExecScript("ROLLBACK").IgnoreError();
}

absl::Status SqlTransaction::Commit() {
  if (db_ == nullptr) return absl::FailedPreconditionError("transaction already finished");
  absl::Status status = db_->ExecScript("COMMIT");
  if (status.ok()) db_ = nullptr;
  return status;
}

}  // namespace ordertrace::services
