#include "services/common/sqlite_db.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ordertrace::services {
namespace {

std::unique_ptr<SqliteDb> OpenMemory() {
  absl::StatusOr<std::unique_ptr<SqliteDb>> db = SqliteDb::Open(":memory:");
  EXPECT_TRUE(db.ok()) << db.status();
  return db.ok() ? *std::move(db) : nullptr;
}

// A database file in a fresh folder under the test's temporary directory, removed afterwards.
class TempFolder {
 public:
  TempFolder() {
    const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::path(::testing::TempDir()) /
            ("sqlite_db_test_" + std::to_string(getpid()) + "_" + test->name());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempFolder() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

int64_t CountRows(SqliteDb& db, const std::string& table) {
  absl::StatusOr<std::vector<SqlRow>> rows = db.Query("SELECT COUNT(*) FROM " + table);
  EXPECT_TRUE(rows.ok()) << rows.status();
  return rows.ok() && !rows->empty() ? rows->front().Int(0) : -1;
}

TEST(SqliteDbTest, BindsEachValueTypeWithItsStorageClass) {
  std::unique_ptr<SqliteDb> db = OpenMemory();
  ASSERT_NE(db, nullptr);
  absl::StatusOr<std::vector<SqlRow>> rows =
      db->Query("SELECT typeof(?1), ?1, typeof(?2), ?2, typeof(?3), ?3, typeof(?4), ?4",
                {int64_t{-42}, 2.5, std::string("ring"), std::monostate{}});
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 1u);
  const SqlRow& row = rows->front();
  ASSERT_EQ(row.size(), 8u);
  EXPECT_EQ(row.Text(0), "integer");
  EXPECT_EQ(row.Int(1), -42);
  EXPECT_EQ(row.Text(2), "real");
  EXPECT_DOUBLE_EQ(row.Double(3), 2.5);
  EXPECT_EQ(row.Text(4), "text");
  EXPECT_EQ(row.Text(5), "ring");
  EXPECT_EQ(row.Text(6), "null");
  EXPECT_TRUE(row.IsNull(7));
  EXPECT_FALSE(row.IsNull(1));
}

TEST(SqliteDbTest, KeepsExtremeIntegersAndTextWithNulAndUtf8) {
  std::unique_ptr<SqliteDb> db = OpenMemory();
  ASSERT_NE(db, nullptr);
  const std::string text_with_nul("a\0b", 3);
  const std::string utf8 =
      "Ringgr\xc3\xb6\xc3\x9f"
      "e \xe2\x82\xac";
  absl::StatusOr<std::vector<SqlRow>> rows =
      db->Query("SELECT ?1, ?2, ?3, ?4, length(CAST(?3 AS BLOB))",
                {std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min(),
                 text_with_nul, utf8});
  ASSERT_TRUE(rows.ok()) << rows.status();
  const SqlRow& row = rows->front();
  EXPECT_EQ(row.Int(0), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(row.Int(1), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(row.Text(2), text_with_nul);
  EXPECT_EQ(row.Text(3), utf8);
  EXPECT_EQ(row.Int(4), 3);
}

TEST(SqliteDbTest, StoresAndReadsBackEveryTypeThroughATable) {
  std::unique_ptr<SqliteDb> db = OpenMemory();
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->ExecScript("CREATE TABLE t (i INTEGER, d REAL, s TEXT, n TEXT)").ok());
  absl::StatusOr<int64_t> inserted =
      db->Execute("INSERT INTO t (i, d, s, n) VALUES (?1, ?2, ?3, ?4)",
                  {int64_t{7}, 0.25, std::string("seven"), SqlValue()});
  ASSERT_TRUE(inserted.ok()) << inserted.status();
  EXPECT_EQ(*inserted, 1);
  absl::StatusOr<std::vector<SqlRow>> rows = db->Query(
      "SELECT i, d, s, n FROM t WHERE i = ?1 AND s = ?2", {int64_t{7}, std::string("seven")});
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].Int(0), 7);
  EXPECT_DOUBLE_EQ((*rows)[0].Double(1), 0.25);
  EXPECT_EQ((*rows)[0].Text(2), "seven");
  EXPECT_TRUE((*rows)[0].IsNull(3));

  // A bound NULL never equals anything, so it matches no row.
  absl::StatusOr<std::vector<SqlRow>> none =
      db->Query("SELECT i FROM t WHERE n = ?1", {SqlValue()});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  absl::StatusOr<std::vector<SqlRow>> is_null =
      db->Query("SELECT i FROM t WHERE n IS ?1", {SqlValue()});
  ASSERT_TRUE(is_null.ok());
  EXPECT_EQ(is_null->size(), 1u);
}

TEST(SqliteDbTest, NullReadsAsZeroAndEmptyAndIntegersReadAsText) {
  std::unique_ptr<SqliteDb> db = OpenMemory();
  ASSERT_NE(db, nullptr);
  absl::StatusOr<std::vector<SqlRow>> rows = db->Query("SELECT NULL, 123, 4.75, '12abc'");
  ASSERT_TRUE(rows.ok()) << rows.status();
  const SqlRow& row = rows->front();
  EXPECT_TRUE(row.IsNull(0));
  EXPECT_EQ(row.Int(0), 0);
  EXPECT_DOUBLE_EQ(row.Double(0), 0);
  EXPECT_EQ(row.Text(0), "");
  EXPECT_EQ(row.Text(1), "123");
  EXPECT_DOUBLE_EQ(row.Double(1), 123.0);
  EXPECT_EQ(row.Int(2), 4);   // truncated
  EXPECT_EQ(row.Int(3), 12);  // the leading digits
  // A column past the end is NULL, not a crash.
  EXPECT_TRUE(row.IsNull(4));
  EXPECT_EQ(row.Int(4), 0);
  EXPECT_EQ(row.Text(4), "");
}

TEST(SqliteDbTest, EmptyResultIsNotAnError) {
  std::unique_ptr<SqliteDb> db = OpenMemory();
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->ExecScript("CREATE TABLE t (x INTEGER)").ok());
  absl::StatusOr<std::vector<SqlRow>> rows =
      db->Query("SELECT x FROM t WHERE x = ?1", {int64_t{1}});
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_TRUE(rows->empty());
}

TEST(SqliteDbTest, ExecuteCountsChangedRowsAndLastInsertRowId) {
  std::unique_ptr<SqliteDb> db = OpenMemory();
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->ExecScript("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)").ok());
  for (int64_t v : {10, 20, 30}) {
    ASSERT_TRUE(db->Execute("INSERT INTO t (v) VALUES (?1)", {v}).ok());
  }
  EXPECT_EQ(db->LastInsertRowId(), 3);
  absl::StatusOr<int64_t> updated =
      db->Execute("UPDATE t SET v = v + 1 WHERE v >= ?1", {int64_t{20}});
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(*updated, 2);
  absl::StatusOr<int64_t> none = db->Execute("DELETE FROM t WHERE v = ?1", {int64_t{999}});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0);
  // An upsert whose DO UPDATE ... WHERE is false changes nothing (ApplyStatusEvent relies on it).
  absl::StatusOr<int64_t> upsert = db->Execute(
      "INSERT INTO t (id, v) VALUES (1, 5) ON CONFLICT (id) DO UPDATE SET v = excluded.v"
      " WHERE excluded.v > t.v");
  ASSERT_TRUE(upsert.ok()) << upsert.status();
  EXPECT_EQ(*upsert, 0);
  EXPECT_EQ(CountRows(*db, "t"), 3);
}

TEST(SqliteDbTest, SqlThatDoesNotCompileIsInvalidArgument) {
  std::unique_ptr<SqliteDb> db = OpenMemory();
  ASSERT_NE(db, nullptr);
  absl::StatusOr<std::vector<SqlRow>> syntax = db->Query("SELEC 1");
  EXPECT_EQ(syntax.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(syntax.status().message().find("syntax error"), std::string::npos) << syntax.status();
  absl::StatusOr<int64_t> missing_table =
      db->Execute("INSERT INTO nowhere VALUES (?1)", {int64_t{1}});
  EXPECT_EQ(missing_table.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(missing_table.status().message().find("nowhere"), std::string::npos);
  absl::Status script = db->ExecScript("CREATE TABLE ok (x); CREATE TABLE (");
  EXPECT_EQ(script.code(), absl::StatusCode::kInvalidArgument);
  // Binding more parameters than the statement has is a range error, not a crash.
  absl::StatusOr<std::vector<SqlRow>> extra = db->Query("SELECT ?1", {int64_t{1}, int64_t{2}});
  EXPECT_FALSE(extra.ok());
}

TEST(SqliteDbTest, ConstraintViolationIsAlreadyExistsAndWritesNothing) {
  std::unique_ptr<SqliteDb> db = OpenMemory();
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->ExecScript("CREATE TABLE t (id TEXT PRIMARY KEY, v TEXT NOT NULL)").ok());
  ASSERT_TRUE(
      db->Execute("INSERT INTO t VALUES (?1, ?2)", {std::string("a"), std::string("x")}).ok());
  absl::StatusOr<int64_t> duplicate =
      db->Execute("INSERT INTO t VALUES (?1, ?2)", {std::string("a"), std::string("y")});
  EXPECT_EQ(duplicate.status().code(), absl::StatusCode::kAlreadyExists);
  absl::StatusOr<int64_t> null_value =
      db->Execute("INSERT INTO t VALUES (?1, ?2)", {std::string("b"), SqlValue()});
  EXPECT_EQ(null_value.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(CountRows(*db, "t"), 1);
}

TEST(SqliteDbTest, OpenOfAnUnreachablePathIsUnavailable) {
  absl::StatusOr<std::unique_ptr<SqliteDb>> db =
      SqliteDb::Open("/nonexistent-folder-for-sqlite-db-test/x.db");
  EXPECT_EQ(db.status().code(), absl::StatusCode::kUnavailable);
}

TEST(SqliteDbTest, FileDatabaseIsInWalModeAndKeepsCommittedRows) {
  TempFolder folder;
  const std::string path = folder.File("orders.db");
  {
    absl::StatusOr<std::unique_ptr<SqliteDb>> db = SqliteDb::Open(path);
    ASSERT_TRUE(db.ok()) << db.status();
    absl::StatusOr<std::vector<SqlRow>> mode = (*db)->Query("PRAGMA journal_mode");
    ASSERT_TRUE(mode.ok()) << mode.status();
    EXPECT_EQ(mode->front().Text(0), "wal");
    ASSERT_TRUE((*db)->ExecScript("CREATE TABLE t (x INTEGER)").ok());
    ASSERT_TRUE((*db)->Execute("INSERT INTO t VALUES (?1)", {int64_t{5}}).ok());
  }
  absl::StatusOr<std::unique_ptr<SqliteDb>> reopened = SqliteDb::Open(path);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  absl::StatusOr<std::vector<SqlRow>> rows = (*reopened)->Query("SELECT x FROM t");
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->front().Int(0), 5);
}

TEST(SqlTransactionTest, RollsBackOnDestructionWithoutCommit) {
  std::unique_ptr<SqliteDb> db = OpenMemory();
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->ExecScript("CREATE TABLE t (x INTEGER)").ok());
  {
    absl::StatusOr<SqlTransaction> transaction = SqlTransaction::Begin(*db);
    ASSERT_TRUE(transaction.ok()) << transaction.status();
    ASSERT_TRUE(db->Execute("INSERT INTO t VALUES (1)").ok());
    ASSERT_TRUE(db->Execute("INSERT INTO t VALUES (2)").ok());
    EXPECT_EQ(CountRows(*db, "t"), 2);  // visible inside the transaction
  }
  EXPECT_EQ(CountRows(*db, "t"), 0);
  // The connection is out of the transaction: a new one can begin.
  absl::StatusOr<SqlTransaction> next = SqlTransaction::Begin(*db);
  EXPECT_TRUE(next.ok()) << next.status();
}

TEST(SqlTransactionTest, CommitKeepsTheRowsAndASecondCommitFails) {
  std::unique_ptr<SqliteDb> db = OpenMemory();
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->ExecScript("CREATE TABLE t (x INTEGER)").ok());
  {
    absl::StatusOr<SqlTransaction> transaction = SqlTransaction::Begin(*db);
    ASSERT_TRUE(transaction.ok()) << transaction.status();
    ASSERT_TRUE(db->Execute("INSERT INTO t VALUES (1)").ok());
    ASSERT_TRUE(transaction->Commit().ok());
    EXPECT_EQ(transaction->Commit().code(), absl::StatusCode::kFailedPrecondition);
  }  // destruction after commit must not roll anything back
  EXPECT_EQ(CountRows(*db, "t"), 1);
}

TEST(SqlTransactionTest, MovedTransactionIsOwnedByItsNewHolder) {
  std::unique_ptr<SqliteDb> db = OpenMemory();
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->ExecScript("CREATE TABLE t (x INTEGER)").ok());
  {
    absl::StatusOr<SqlTransaction> first = SqlTransaction::Begin(*db);
    ASSERT_TRUE(first.ok());
    ASSERT_TRUE(db->Execute("INSERT INTO t VALUES (1)").ok());
    SqlTransaction moved(*std::move(first));
    // The moved-from transaction neither commits nor rolls back.
    EXPECT_EQ(first->Commit().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(CountRows(*db, "t"), 1);
    ASSERT_TRUE(moved.Commit().ok());
  }
  EXPECT_EQ(CountRows(*db, "t"), 1);
  {
    absl::StatusOr<SqlTransaction> first = SqlTransaction::Begin(*db);
    ASSERT_TRUE(first.ok());
    ASSERT_TRUE(db->Execute("INSERT INTO t VALUES (2)").ok());
    SqlTransaction moved(*std::move(first));
  }  // `moved` rolls back; `first` (moved from) does nothing more
  EXPECT_EQ(CountRows(*db, "t"), 1);
}

TEST(SqlTransactionTest, FailedStatementInsideLeavesEarlierWritesToTheRollback) {
  std::unique_ptr<SqliteDb> db = OpenMemory();
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->ExecScript("CREATE TABLE t (x INTEGER PRIMARY KEY)").ok());
  {
    absl::StatusOr<SqlTransaction> transaction = SqlTransaction::Begin(*db);
    ASSERT_TRUE(transaction.ok());
    ASSERT_TRUE(db->Execute("INSERT INTO t VALUES (1)").ok());
    EXPECT_FALSE(db->Execute("INSERT INTO t VALUES (1)").ok());
  }
  EXPECT_EQ(CountRows(*db, "t"), 0);
}

TEST(SqlTransactionTest, ASecondConnectionDoesNotSeeUncommittedRows) {
  TempFolder folder;
  const std::string path = folder.File("shared.db");
  absl::StatusOr<std::unique_ptr<SqliteDb>> writer = SqliteDb::Open(path);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->ExecScript("CREATE TABLE t (x INTEGER)").ok());
  absl::StatusOr<std::unique_ptr<SqliteDb>> reader = SqliteDb::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.status();
  absl::StatusOr<SqlTransaction> transaction = SqlTransaction::Begin(**writer);
  ASSERT_TRUE(transaction.ok());
  ASSERT_TRUE((*writer)->Execute("INSERT INTO t VALUES (1)").ok());
  EXPECT_EQ(CountRows(**reader, "t"), 0);
  ASSERT_TRUE(transaction->Commit().ok());
  EXPECT_EQ(CountRows(**reader, "t"), 1);
}

}  // namespace
}  // namespace ordertrace::services
