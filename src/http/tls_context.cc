#include "http/tls_context.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/ssl/context.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

namespace ordertrace::http {
namespace {

namespace ssl = boost::asio::ssl;

// Mozilla's "intermediate" TLS 1.2 suites: forward secret, AEAD only. TLS 1.3 keeps OpenSSL's
// own list (all AEAD).
constexpr char kTls12Ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
// Bigger than any sane chain or bundle; a wrong path (a log file, /dev/zero) is refused fast.
constexpr std::streamsize kMaxPemBytes = 4 << 20;

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* x509) const { X509_free(x509); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// OpenSSL's error queue as text, emptied (it is per thread and would leak into later calls).
std::string OpenSslErrors() {
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    if (!text.empty()) text += "; ";
    text += buffer;
  }
  return text.empty() ? "unknown OpenSSL error" : text;
}

absl::StatusOr<std::string> ReadPemFile(const std::string& key, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::FailedPreconditionError(key + " " + path + " cannot be read (" +
                                         std::strerror(errno) + ")");
  }
  std::string text(kMaxPemBytes + 1, '\0');
  in.read(text.data(), kMaxPemBytes + 1);
  if (in.bad()) {
    return absl::FailedPreconditionError(key + " " + path + " cannot be read");
  }
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > static_cast<size_t>(kMaxPemBytes)) {
    return absl::FailedPreconditionError(key + " " + path + " is larger than 4 MiB: not PEM");
  }
  return text;
}

// Every certificate in a PEM text, in order.
std::vector<X509Ptr> ParseCertificates(const std::string& pem) {
  std::vector<X509Ptr> certificates;
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  while (X509* certificate = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    certificates.emplace_back(certificate);
  }
  ERR_clear_error();  // the end of the text reads as an error
  return certificates;
}

// A key file that asks for a pass phrase fails here instead of prompting on the terminal.
int RefusePassphrase(char*, int, int, void*) { return 0; }

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(size));
}

std::string Describe(X509* certificate) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(certificate), 0, XN_FLAG_ONELINE);
  std::string subject = BioText(bio.get());
  std::string serial = "?";
  if (BIGNUM* number = ASN1_INTEGER_to_BN(X509_get0_serialNumber(certificate), nullptr)) {
    if (char* hex = BN_bn2hex(number)) {
      serial = hex;
      OPENSSL_free(hex);
    }
    BN_free(number);
  }
  BioPtr expiry(BIO_new(BIO_s_mem()));
  ASN1_TIME_print(expiry.get(), X509_get0_notAfter(certificate));
  return subject + ", serial " + serial + ", not after " + BioText(expiry.get());
}

}  // namespace

absl::StatusOr<TlsCredentials> LoadTlsCredentials(const TlsOptions& options) {
  TlsCredentials credentials;
  absl::StatusOr<std::string> chain = ReadPemFile("tls.cert_file", options.cert_file);
  if (!chain.ok()) return chain.status();
  std::vector<X509Ptr> certificates = ParseCertificates(*chain);
  if (certificates.empty()) {
    return absl::FailedPreconditionError("tls.cert_file " + options.cert_file +
                                         " holds no PEM certificate");
  }
  absl::StatusOr<std::string> key_pem = ReadPemFile("tls.key_file", options.key_file);
  if (!key_pem.ok()) return key_pem.status();
  BioPtr key_bio(BIO_new_mem_buf(key_pem->data(), static_cast<int>(key_pem->size())));
  PkeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, RefusePassphrase, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return absl::FailedPreconditionError("tls.key_file " + options.key_file +
                                         " holds no PEM private key (or one with a pass phrase)");
  }
  if (X509_check_private_key(certificates.front().get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::FailedPreconditionError("tls.key_file " + options.key_file +
                                         " does not match the certificate in tls.cert_file " +
                                         options.cert_file);
  }
  if (!options.client_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadPemFile("tls.client_ca_file", options.client_ca_file);
    if (!ca.ok()) return ca.status();
    if (ParseCertificates(*ca).empty()) {
      return absl::FailedPreconditionError("tls.client_ca_file " + options.client_ca_file +
                                           " holds no PEM certificate");
    }
    credentials.client_ca_pem = std::move(*ca);
  }
  credentials.description = Describe(certificates.front().get());
  credentials.sha256_fingerprint = Sha256Fingerprint(certificates.front().get());
  credentials.certificate_chain_pem = std::move(*chain);
  credentials.private_key_pem = std::move(*key_pem);
  return credentials;
}

TlsContextProvider::TlsContextProvider(ClientCertificates client_certificates)
    : client_certificates_(client_certificates) {}

absl::StatusOr<std::shared_ptr<TlsContextProvider>> TlsContextProvider::Create(
    const TlsCredentials& credentials, ClientCertificates client_certificates) {
  std::shared_ptr<TlsContextProvider> provider(new TlsContextProvider(client_certificates));
  if (absl::Status installed = provider->Install(credentials); !installed.ok()) return installed;
  return provider;
}

absl::StatusOr<std::shared_ptr<ssl::context>> TlsContextProvider::Build(
    const TlsCredentials& credentials) const {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = context->native_handle();
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                       ssl::context::single_dh_use | ssl::context::no_compression);
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1) {
    return absl::InternalError("TLS: the cipher list is refused: " + OpenSslErrors());
  }
  boost::system::error_code ec;
  context->use_certificate_chain(boost::asio::buffer(credentials.certificate_chain_pem.data(),
                                                     credentials.certificate_chain_pem.size()),
                                 ec);
  if (ec) return absl::FailedPreconditionError("TLS: the certificate chain: " + ec.message());
  context->use_private_key(
      boost::asio::buffer(credentials.private_key_pem.data(), credentials.private_key_pem.size()),
      ssl::context::pem, ec);
  if (ec || SSL_CTX_check_private_key(native) != 1) {
    ERR_clear_error();
    return absl::FailedPreconditionError("TLS: the private key does not match the certificate");
  }
  if (client_certificates_ == ClientCertificates::kRequiredWhenCaGiven &&
      !credentials.client_ca_pem.empty()) {
    context->add_certificate_authority(
        boost::asio::buffer(credentials.client_ca_pem.data(), credentials.client_ca_pem.size()),
        ec);
    if (ec) return absl::FailedPreconditionError("TLS: the client CA: " + ec.message());
    context->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
    // Resumed sessions need it once peers are verified (else OpenSSL fails the handshake).
    static constexpr unsigned char kSessionContext[] = "ordertrace";
    SSL_CTX_set_session_id_context(native, kSessionContext, sizeof(kSessionContext) - 1);
  } else {
    context->set_verify_mode(ssl::verify_none);
  }
  return context;
}

absl::Status TlsContextProvider::Install(const TlsCredentials& credentials) {
  absl::StatusOr<std::shared_ptr<ssl::context>> context = Build(credentials);
  if (!context.ok()) return context.status();
  std::lock_guard<std::mutex> lock(mu_);
  current_ = std::move(*context);
  fingerprint_ = credentials.sha256_fingerprint;
  requires_client_certificate_ = client_certificates_ == ClientCertificates::kRequiredWhenCaGiven &&
                                 !credentials.client_ca_pem.empty();
  return absl::OkStatus();
}

std::shared_ptr<ssl::context> TlsContextProvider::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

bool TlsContextProvider::RequiresClientCertificate() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requires_client_certificate_;
}

std::string TlsContextProvider::ServedFingerprint() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fingerprint_;
}

std::string Sha256Fingerprint(X509* certificate) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  X509_digest(certificate, EVP_sha256(), digest, &length);
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string text;
  for (unsigned int i = 0; i < length; ++i) {
    text += kHex[digest[i] >> 4];
    text += kHex[digest[i] & 15];
  }
  return text;
}

}  // namespace ordertrace::http
