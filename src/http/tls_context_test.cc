#include "http/tls_context.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "http/tls_test_client.h"

namespace ordertrace::http {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

class TlsContextTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ca_ = new test::TestCaFolder("ordertrace_tls_context_test");
    ASSERT_TRUE(ca_->made());
  }
  static void TearDownTestSuite() {
    delete ca_;
    ca_ = nullptr;
  }
  static std::string File(const std::string& name) { return ca_->File(name); }
  static TlsOptions Options(const std::string& cert, const std::string& key,
                            const std::string& client_ca = "") {
    return {File(cert), File(key), client_ca.empty() ? "" : File(client_ca)};
  }

  static test::TestCaFolder* ca_;
};

test::TestCaFolder* TlsContextTest::ca_ = nullptr;

TEST_F(TlsContextTest, LoadsAMatchingPairAndDescribesTheLeaf) {
  absl::StatusOr<TlsCredentials> credentials =
      LoadTlsCredentials(Options("server.pem", "server.key", "ca.pem"));
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  EXPECT_THAT(credentials->description, AllOf(HasSubstr("CN = localhost"), HasSubstr("3E9")));
  EXPECT_EQ(credentials->sha256_fingerprint.size(), 64u);
  EXPECT_THAT(credentials->client_ca_pem, HasSubstr("BEGIN CERTIFICATE"));
  absl::StatusOr<TlsCredentials> second = LoadTlsCredentials(Options("server2.pem", "server2.key"));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE(second->sha256_fingerprint, credentials->sha256_fingerprint);
}

TEST_F(TlsContextTest, EachBadFileIsNamedInOneLine) {
  absl::Status missing = LoadTlsCredentials(Options("nope.pem", "server.key")).status();
  EXPECT_THAT(missing.message(),
              AllOf(HasSubstr("tls.cert_file"), HasSubstr(File("nope.pem")), HasSubstr("No such")));
  absl::Status missing_key = LoadTlsCredentials(Options("server.pem", "nope.key")).status();
  EXPECT_THAT(missing_key.message(), AllOf(HasSubstr("tls.key_file"), HasSubstr("nope.key")));
  absl::Status mismatched = LoadTlsCredentials(Options("server2.pem", "server.key")).status();
  EXPECT_THAT(mismatched.message(),
              AllOf(HasSubstr("does not match"), HasSubstr(File("server.key")),
                    HasSubstr(File("server2.pem"))));
  std::ofstream(File("garbage.pem")) << "not a certificate\n";
  absl::Status garbage = LoadTlsCredentials(Options("garbage.pem", "server.key")).status();
  EXPECT_THAT(garbage.message(), AllOf(HasSubstr("garbage.pem"), HasSubstr("no PEM certificate")));
  absl::Status key_is_cert = LoadTlsCredentials(Options("server.pem", "server.pem")).status();
  EXPECT_THAT(key_is_cert.message(), HasSubstr("holds no PEM private key"));
  absl::Status bad_ca =
      LoadTlsCredentials(Options("server.pem", "server.key", "garbage.pem")).status();
  EXPECT_THAT(bad_ca.message(), HasSubstr("tls.client_ca_file"));
  for (const absl::Status& status : {missing, missing_key, mismatched, garbage, bad_ca}) {
    EXPECT_EQ(status.message().find('\n'), std::string::npos) << status;
  }
}

TEST_F(TlsContextTest, InstallSwapsTheContextAndAFailedOneKeepsTheOld) {
  absl::StatusOr<TlsCredentials> first = LoadTlsCredentials(Options("server.pem", "server.key"));
  absl::StatusOr<TlsCredentials> second = LoadTlsCredentials(Options("server2.pem", "server2.key"));
  ASSERT_TRUE(first.ok() && second.ok());
  absl::StatusOr<std::shared_ptr<TlsContextProvider>> provider =
      TlsContextProvider::Create(*first, ClientCertificates::kNotAsked);
  ASSERT_TRUE(provider.ok()) << provider.status();
  auto before = (*provider)->Current();
  EXPECT_EQ((*provider)->ServedFingerprint(), first->sha256_fingerprint);

  TlsCredentials broken = *second;
  broken.private_key_pem = first->private_key_pem;  // passed no check: Install must refuse it
  EXPECT_FALSE((*provider)->Install(broken).ok());
  EXPECT_EQ((*provider)->Current(), before);
  EXPECT_EQ((*provider)->ServedFingerprint(), first->sha256_fingerprint);

  ASSERT_TRUE((*provider)->Install(*second).ok());
  EXPECT_NE((*provider)->Current(), before);
  EXPECT_EQ((*provider)->ServedFingerprint(), second->sha256_fingerprint);
}

TEST_F(TlsContextTest, ClientCertificatesAreRequiredOnlyWhereAskedAndWithACa) {
  absl::StatusOr<TlsCredentials> with_ca =
      LoadTlsCredentials(Options("server.pem", "server.key", "ca.pem"));
  ASSERT_TRUE(with_ca.ok());
  EXPECT_TRUE((*TlsContextProvider::Create(*with_ca, ClientCertificates::kRequiredWhenCaGiven))
                  ->RequiresClientCertificate());
  EXPECT_FALSE((*TlsContextProvider::Create(*with_ca, ClientCertificates::kNotAsked))
                   ->RequiresClientCertificate());
  absl::StatusOr<TlsCredentials> without_ca =
      LoadTlsCredentials(Options("server.pem", "server.key"));
  ASSERT_TRUE(without_ca.ok());
  EXPECT_FALSE((*TlsContextProvider::Create(*without_ca, ClientCertificates::kRequiredWhenCaGiven))
                   ->RequiresClientCertificate());
}

}  // namespace
}  // namespace ordertrace::http
