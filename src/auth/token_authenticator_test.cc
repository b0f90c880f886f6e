#include "auth/token_authenticator.h"

#include <gtest/gtest.h>

#include <string>

#include "auth/access_policy.h"

namespace ordertrace::auth {
namespace {

TokenEntry Entry(std::string name, Role role, const std::string& token, std::string partner = "") {
  TokenEntry entry;
  entry.name = std::move(name);
  entry.role = role;
  entry.partner_id = std::move(partner);
  entry.sha256 = *ParseSha256Hex(Sha256Hex(token));
  return entry;
}

TokenAuthenticator Tokens() {
  return TokenAuthenticator(
      AuthOptions{{Entry("ops-1", Role::kOps, "ops-secret"),
                   Entry("acme", Role::kPartnerReadonly, "acme-secret", "P-7"),
                   Entry("exporters", Role::kIngest, "ingest-secret")}});
}

TEST(TokenAuthenticatorTest, Sha256HexIsWhatSha256sumPrints) {
  // printf %s abc | sha256sum
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_TRUE(ParseSha256Hex("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
  EXPECT_FALSE(ParseSha256Hex("ba7816bf"));
  EXPECT_FALSE(ParseSha256Hex(std::string(64, 'g')));
}

TEST(TokenAuthenticatorTest, KnownTokensGiveTheirPrincipal) {
  TokenAuthenticator tokens = Tokens();
  Authentication ops = tokens.Authenticate("Bearer ops-secret", "test");
  ASSERT_TRUE(ops.principal);
  EXPECT_EQ(ops.principal->token_name, "ops-1");
  EXPECT_EQ(ops.principal->role, Role::kOps);
  Authentication acme = tokens.Authenticate("bearer   acme-secret ", "test");
  ASSERT_TRUE(acme.principal) << "the scheme is case-insensitive, spaces around are allowed";
  EXPECT_EQ(acme.principal->partner_id, "P-7");
  EXPECT_EQ(tokens.Stats().accepted, 2u);
}

TEST(TokenAuthenticatorTest, HostileHeadersAreRefusedAndCountedByReason) {
  TokenAuthenticator tokens = Tokens();
  struct Case {
    std::string header;
    AuthFailure failure;
  };
  const Case cases[] = {
      {"", AuthFailure::kMissing},
      {"Bearer", AuthFailure::kMalformed},
      {"Bearer ", AuthFailure::kMalformed},
      {"Basic b3BzLXNlY3JldA==", AuthFailure::kMalformed},
      {"Bearer ops secret", AuthFailure::kMalformed},
      {"Bearer t\xc3\xb6ken", AuthFailure::kMalformed},
      {std::string("Bearer ops-secret\0x", 19), AuthFailure::kMalformed},
      {"Bearer " + std::string(TokenAuthenticator::kMaxTokenLength + 1, 'a'),
       AuthFailure::kMalformed},
      {"Bearer ops-secre", AuthFailure::kUnknown},
      {"Bearer " + Sha256Hex("ops-secret"), AuthFailure::kUnknown},
      {"Bearer " + std::string(TokenAuthenticator::kMaxTokenLength, 'a'), AuthFailure::kUnknown},
  };
  for (const Case& c : cases) {
    Authentication result = tokens.Authenticate(c.header, "test");
    EXPECT_FALSE(result.principal) << c.header.substr(0, 40);
    EXPECT_EQ(result.failure, c.failure) << c.header.substr(0, 40);
    EXPECT_EQ(result.message.find("ops-secret"), std::string::npos) << "never echoes the token";
  }
  for (int i = 0; i < 1000; ++i) tokens.Authenticate("Bearer wrong-" + std::to_string(i), "test");
  AuthStats stats = tokens.Stats();
  EXPECT_EQ(stats.failures[static_cast<size_t>(AuthFailure::kMissing)], 1u);
  EXPECT_EQ(stats.failures[static_cast<size_t>(AuthFailure::kMalformed)], 7u);
  EXPECT_EQ(stats.failures[static_cast<size_t>(AuthFailure::kUnknown)], 1003u);
  EXPECT_EQ(stats.accepted, 0u);
}

TEST(TokenAuthenticatorTest, WithoutTokensEveryoneIsAnonymousOps) {
  TokenAuthenticator open{AuthOptions{}};
  EXPECT_FALSE(open.enabled());
  Authentication result = open.Authenticate("", "test");
  ASSERT_TRUE(result.principal);
  EXPECT_EQ(result.principal->role, Role::kOps);
}

TEST(TokenAuthenticatorTest, ValidateTokensNamesTheProblem) {
  EXPECT_TRUE(ValidateTokens({Entry("a", Role::kOps, "x"), Entry("b", Role::kDev, "y")}).ok());
  absl::Status twice = ValidateTokens({Entry("a", Role::kOps, "x"), Entry("a", Role::kDev, "y")});
  EXPECT_NE(twice.message().find("'a' is used twice"), std::string::npos) << twice;
  absl::Status same = ValidateTokens({Entry("a", Role::kOps, "x"), Entry("b", Role::kDev, "x")});
  EXPECT_NE(same.message().find("same sha256"), std::string::npos) << same;
  absl::Status partner = ValidateTokens({Entry("p", Role::kPartnerReadonly, "x")});
  EXPECT_NE(partner.message().find("needs a partner_id"), std::string::npos) << partner;
  absl::Status stray = ValidateTokens({Entry("o", Role::kOps, "x", "P-1")});
  EXPECT_NE(stray.message().find("not partner_readonly"), std::string::npos) << stray;
}

TEST(TokenAuthenticatorTest, RolesParseByTheirConfigNames) {
  for (Role role :
       {Role::kSupport, Role::kDev, Role::kOps, Role::kPartnerReadonly, Role::kIngest}) {
    EXPECT_EQ(ParseRole(RoleName(role)), role);
  }
  EXPECT_FALSE(ParseRole("admin"));
  EXPECT_FALSE(ParseRole("OPS"));
}

TEST(AccessPolicyTest, TheTableOfDocsSecurity) {
  using A = Access;
  using R = Role;
  // Reads: every human role; metrics: dev and ops; ingest: the ingest role alone.
  for (R r : {R::kSupport, R::kDev, R::kOps, R::kPartnerReadonly}) {
    EXPECT_TRUE(Allows(r, A::kReadOrders));
    EXPECT_TRUE(Allows(r, A::kReadSla));
    EXPECT_FALSE(Allows(r, A::kIngest));
  }
  EXPECT_FALSE(Allows(R::kIngest, A::kReadOrders));
  EXPECT_TRUE(Allows(R::kIngest, A::kIngest));
  EXPECT_TRUE(Allows(R::kDev, A::kReadMetrics));
  EXPECT_TRUE(Allows(R::kOps, A::kReadMetrics));
  EXPECT_FALSE(Allows(R::kSupport, A::kReadMetrics));
  EXPECT_FALSE(Allows(R::kPartnerReadonly, A::kReadMetrics));
  EXPECT_TRUE(Allows(R::kOps, A::kSeeOperatorIds));
  for (R r : {R::kSupport, R::kDev, R::kPartnerReadonly, R::kIngest}) {
    EXPECT_FALSE(Allows(r, A::kSeeOperatorIds));
  }
}

}  // namespace
}  // namespace ordertrace::auth
