// TLS for ordertrace's listeners: the PEM files of a TlsOptions read and checked
// (LoadTlsCredentials), and the server-side context built from them, swapped on reload
// (TlsContextProvider).
//
// What a context holds: TLS 1.2 and 1.3 only (no SSLv3, TLS 1.0 or 1.1); for TLS 1.2 only
// Mozilla's "intermediate" suites (ECDHE with AES-GCM or ChaCha20-Poly1305: forward secret,
// AEAD), TLS 1.3's own suites (all AEAD); the server's cipher order, no compression, no
// renegotiation. With a client CA, a client certificate chaining to it is
// required and the handshake fails without one.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "http/tls_options.h"

struct x509_st;  // OpenSSL's X509

namespace boost::asio::ssl {
class context;
}

namespace ordertrace::http {

// The bytes of a TlsOptions' files, checked: the certificate file holds at least one PEM
// certificate, the key file a PEM private key that matches the first (leaf) certificate, the
// client CA file (when given) at least one PEM certificate.
struct TlsCredentials {
  std::string certificate_chain_pem;
  std::string private_key_pem;
  std::string client_ca_pem;  // empty: no client certificates asked for
  // The leaf's subject, serial and expiry, for log lines ("CN=localhost, serial 03E9, ...").
  std::string description;
  // The leaf's SHA-256 fingerprint, hex, upper case (as `openssl x509 -fingerprint` shows it
  // without colons).
  std::string sha256_fingerprint;
};

// Reads and checks the files. An error names the setting and the file and says what is wrong
// (missing, unreadable, no certificate, no key, key does not match), in one line.
// Thread-safe (reads files only).
absl::StatusOr<TlsCredentials> LoadTlsCredentials(const TlsOptions& options);

// Whether a listener asks its clients for certificates.
enum class ClientCertificates {
  kNotAsked,
  // Required when the credentials carry a client CA (OTLP listeners); not asked otherwise.
  kRequiredWhenCaGiven,
};

// The TLS context new connections of one listener use. Install replaces it; a connection keeps
// the context it started with (it holds a reference), so a reload drops none.
//
// Thread-safety: all methods may be called from any thread.
class TlsContextProvider {
 public:
  // A provider serving `credentials`; fails (naming what) when OpenSSL refuses them.
  static absl::StatusOr<std::shared_ptr<TlsContextProvider>> Create(
      const TlsCredentials& credentials, ClientCertificates client_certificates);

  // Builds a context from `credentials` and, when it builds, makes it the one new connections
  // get. On failure the current context stays.
  absl::Status Install(const TlsCredentials& credentials);

  // The context for a connection starting now; never null.
  std::shared_ptr<boost::asio::ssl::context> Current() const;

  // Whether handshakes require a client certificate.
  bool RequiresClientCertificate() const;

  // The SHA-256 fingerprint of the leaf certificate new connections get.
  std::string ServedFingerprint() const;

 private:
  explicit TlsContextProvider(ClientCertificates client_certificates);
  absl::StatusOr<std::shared_ptr<boost::asio::ssl::context>> Build(
      const TlsCredentials& credentials) const;

  const ClientCertificates client_certificates_;
  mutable std::mutex mu_;
  std::shared_ptr<boost::asio::ssl::context> current_;  // guarded by mu_
  std::string fingerprint_;                             // guarded by mu_
  bool requires_client_certificate_ = false;            // guarded by mu_
};

// The SHA-256 fingerprint of a certificate, in upper-case hex (as `openssl x509 -fingerprint
// -sha256` prints it, without colons).
std::string Sha256Fingerprint(x509_st* certificate);

}  // namespace ordertrace::http
