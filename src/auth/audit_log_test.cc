#include "auth/audit_log.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace ordertrace::auth {
namespace {

std::vector<nlohmann::json> Lines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

AuditEntry Read(std::string target, int status) {
  AuditEntry entry;
  entry.at_unix_nano = 1'780'000'000'123'000'000ULL;
  entry.token_name = "acme";
  entry.role = "partner_readonly";
  entry.partner_id = "P-7";
  entry.method = "GET";
  entry.target = std::move(target);
  entry.order_id = "ord-1";
  entry.status = status;
  return entry;
}

TEST(AuditLogTest, WritesOneJsonLinePerRequestReadableByItsOwnerOnly) {
  test_support::TempDir dir("audit-log-test");
  const std::string path = dir.path() + "/audit/audit.log";
  absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open({path});
  ASSERT_TRUE(log.ok()) << log.status();
  (*log)->Record(Read("/api/v1/orders/ord-1", 200));
  AuditEntry refused;
  refused.method = "GET";
  refused.target = "/api/v1/orders/\xff";
  refused.status = 401;
  refused.refusal = "unknown";
  (*log)->Record(refused);

  std::vector<nlohmann::json> lines = Lines(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["time"], "2026-05-28T20:26:40.123Z");
  EXPECT_EQ(lines[0]["token"], "acme");
  EXPECT_EQ(lines[0]["role"], "partner_readonly");
  EXPECT_EQ(lines[0]["partner_id"], "P-7");
  EXPECT_EQ(lines[0]["order_id"], "ord-1");
  EXPECT_EQ(lines[0]["status"], 200);
  EXPECT_EQ(lines[1]["token"], "");
  EXPECT_EQ(lines[1]["refused"], "unknown");
  EXPECT_EQ(lines[1]["target"], "/api/v1/orders/\xef\xbf\xbd") << "bad bytes replaced";
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ((*log)->Stats().lines, 2u);
}

TEST(AuditLogTest, RotatesBySizeKeepingTheNewestFiles) {
  test_support::TempDir dir("audit-log-test");
  const std::string path = dir.path() + "/audit.log";
  AuditLogOptions options{path};
  options.max_bytes = 1000;
  options.keep_files = 2;
  absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open(options);
  ASSERT_TRUE(log.ok()) << log.status();
  for (int i = 0; i < 100; ++i) (*log)->Record(Read("/api/v1/orders/" + std::to_string(i), 200));

  EXPECT_TRUE(std::filesystem::exists(path + ".1"));
  EXPECT_TRUE(std::filesystem::exists(path + ".2"));
  EXPECT_FALSE(std::filesystem::exists(path + ".3"));
  for (const std::string& file : {path, path + ".1", path + ".2"}) {
    EXPECT_LE(std::filesystem::file_size(file), 1000u) << file;
  }
  std::vector<nlohmann::json> newest = Lines(path);
  ASSERT_FALSE(newest.empty());
  EXPECT_EQ(newest.back()["target"], "/api/v1/orders/99");
  EXPECT_GT((*log)->Stats().rotations, 2u);
}

TEST(AuditLogTest, RedactsTheTargetBeforeWriting) {
  test_support::TempDir dir("audit-log-test");
  AuditLogOptions options{dir.path() + "/audit.log"};
  options.redact = [](std::string& target) {
    const size_t at = target.find("jane@example.com");
    if (at != std::string::npos) target.replace(at, 16, "[email]");
  };
  absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open(options);
  ASSERT_TRUE(log.ok());
  (*log)->Record(Read("/api/search?tags=customer.email=jane@example.com", 200));
  std::vector<nlohmann::json> lines = Lines(options.path);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["target"], "/api/search?tags=customer.email=[email]");
}

TEST(AuditLogTest, AnUnwritablePathIsAClearError) {
  absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open({"/proc/no/such/audit.log"});
  ASSERT_FALSE(log.ok());
  EXPECT_NE(log.status().message().find("/proc/no/such/audit.log"), std::string::npos);
}

}  // namespace
}  // namespace ordertrace::auth
