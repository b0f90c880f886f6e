#include "scrub/operator_id_hasher.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ordertrace::scrub {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;

std::filesystem::path TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "hasher-XXXXXX").string();
  char* made = mkdtemp(pattern.data());
  EXPECT_NE(made, nullptr);
  return pattern;
}

base::KeyValue Str(std::string key, std::string value) {
  return {std::move(key), base::AnyValue::String(std::move(value))};
}

TEST(OperatorIdHasherTest, StableTruncatedAndKeyed) {
  OperatorIdHasher a("secret-one-0123456789");
  OperatorIdHasher b("secret-two-0123456789");
  EXPECT_EQ(a.Hash("op-17"), a.Hash("op-17"));
  EXPECT_THAT(a.Hash("op-17"), MatchesRegex("hmac:[0-9a-f]{32}"));
  EXPECT_NE(a.Hash("op-17"), a.Hash("op-18"));
  EXPECT_NE(a.Hash("op-17"), b.Hash("op-17"));
  // RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?") starts with
  // 5bdcc146bf60754e6a042426089575c7.
  EXPECT_EQ(OperatorIdHasher("Jefe").Hash("what do ya want for nothing?"),
            "hmac:5bdcc146bf60754e6a042426089575c7");
}

TEST(OperatorIdHasherTest, SecretFromConfigThenEnvironmentThenKeyFile) {
  std::filesystem::path dir = TempDir();
  OperatorIdHasherOptions options;
  options.env_var = "ORDERTRACE_TEST_OPERATOR_SECRET";
  options.key_file = (dir / "operator_id.key").string();
  options.secret = "from-config-0123456789";
  ::setenv(options.env_var.c_str(), "from-env-0123456789", 1);
  auto from_config = OperatorIdHasher::Create(options);
  ASSERT_TRUE(from_config.ok());
  EXPECT_EQ((*from_config)->Hash("x"), OperatorIdHasher("from-config-0123456789").Hash("x"));
  options.secret.clear();
  auto from_env = OperatorIdHasher::Create(options);
  ASSERT_TRUE(from_env.ok());
  EXPECT_EQ((*from_env)->Hash("x"), OperatorIdHasher("from-env-0123456789").Hash("x"));
  EXPECT_FALSE(std::filesystem::exists(options.key_file));
  ::unsetenv(options.env_var.c_str());
  std::filesystem::remove_all(dir);
}

TEST(OperatorIdHasherTest, KeyFileIsCreatedPrivateAndReused) {
  std::filesystem::path dir = TempDir();
  OperatorIdHasherOptions options;
  options.env_var = "ORDERTRACE_TEST_OPERATOR_SECRET_UNSET";
  options.key_file = (dir / "sub" / "operator_id.key").string();
  auto first = OperatorIdHasher::Create(options);
  ASSERT_TRUE(first.ok()) << first.status();
  struct stat st;
  ASSERT_EQ(::stat(options.key_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_EQ(st.st_size, 65);  // 32 bytes in hex and a newline
  auto second = OperatorIdHasher::Create(options);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ((*first)->Hash("op-1"), (*second)->Hash("op-1"));

  // Another data folder: another key, other hashes.
  OperatorIdHasherOptions other = options;
  other.key_file = (dir / "other.key").string();
  auto third = OperatorIdHasher::Create(other);
  ASSERT_TRUE(third.ok());
  EXPECT_NE((*first)->Hash("op-1"), (*third)->Hash("op-1"));

  // The file's content is the secret: usable as the environment variable elsewhere.
  std::ifstream in(options.key_file);
  std::string hex;
  in >> hex;
  EXPECT_EQ(OperatorIdHasher(hex).Hash("op-1"), (*first)->Hash("op-1"));

  std::ofstream(other.key_file, std::ios::trunc) << "short\n";
  auto refused = OperatorIdHasher::Create(other);
  EXPECT_FALSE(refused.ok());
  std::filesystem::remove_all(dir);
}

TEST(OperatorIdHasherTest, HashOperatorIdsReplacesEveryClearValue) {
  OperatorIdHasher hasher("k-0123456789abcdef");
  base::TraceBatch batch;
  batch.resource_spans.emplace_back();
  base::ResourceSpans& rs = batch.resource_spans[0];
  rs.resource.attributes = {Str("operator_id", "op-res")};
  rs.scope_spans.emplace_back();
  base::Span span;
  span.name = "approve";
  span.attributes = {Str("operator_id", "op-7"), {"n", base::AnyValue::Int(1)}};
  span.events.push_back({1, "e", {{"operator_id", base::AnyValue::Int(42)}}, 0});
  rs.scope_spans[0].spans.push_back(span);
  std::vector<SpanPosition> changed;
  EXPECT_EQ(hasher.HashOperatorIds(batch, &changed), 3u);
  const base::Span& s = rs.scope_spans[0].spans[0];
  EXPECT_EQ(rs.resource.attributes[0].value.string_value, hasher.Hash("op-res"));
  EXPECT_EQ(s.attributes[0].value.string_value, hasher.Hash("op-7"));
  EXPECT_EQ(s.events[0].attributes[0].value.string_value, hasher.Hash("42"));
  EXPECT_THAT(changed, ElementsAre(SpanPosition{0, 0, 0}));  // its received bytes would leak
}

TEST(OperatorIdHasherTest, AddOperatorIdHashesKeepsTheClearValueAndAppends) {
  OperatorIdHasher hasher("k-0123456789abcdef");
  base::TraceBatch batch;
  batch.resource_spans.emplace_back();
  batch.resource_spans[0].scope_spans.emplace_back();
  base::Span with;
  with.attributes = {Str("operator_id", "op-7")};
  base::Span without;
  without.attributes = {Str("order.id", "ord-1")};
  batch.resource_spans[0].scope_spans[0].spans = {with, without};
  EXPECT_EQ(hasher.AddOperatorIdHashes(batch), 1u);
  EXPECT_EQ(hasher.AddOperatorIdHashes(batch), 0u);  // not twice
  const auto& spans = batch.resource_spans[0].scope_spans[0].spans;
  ASSERT_EQ(spans[0].attributes.size(), 2u);
  EXPECT_EQ(spans[0].attributes[0].value.string_value, "op-7");
  EXPECT_EQ(spans[0].attributes[1].key, "operator_id.hash");
  EXPECT_EQ(spans[0].attributes[1].value.string_value, hasher.Hash("op-7"));
  // Appended after the received attributes: the span's received bytes plus the appended one
  // encode it (otlp::EncodeProtobufByTrace), so no span is reported changed.
  EXPECT_EQ(spans[1].attributes.size(), 1u);
}

}  // namespace
}  // namespace ordertrace::scrub
