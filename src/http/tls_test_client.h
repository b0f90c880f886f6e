// For tests: a blocking OpenSSL client over a loopback socket, and a test CA made by
// tests/support/make_test_ca.sh. Not part of ordertrace_http.
//
// Thread-safety: one TlsTestClient per thread.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "http/tls_context.h"

namespace ordertrace::http::test {

// Makes a CA and certificates in `dir` (see make_test_ca.sh); false when the script failed.
inline bool MakeTestCa(const std::string& dir) {
  const std::string command =
      std::string("bash ") + ORDERTRACE_SOURCE_DIR "/tests/support/make_test_ca.sh '" + dir + "'";
  return std::system(command.c_str()) == 0;
}

// A fresh folder under the test temp dir holding a test CA (MakeTestCa), removed with it.
class TestCaFolder {
 public:
  explicit TestCaFolder(const std::string& prefix) {
    std::string pattern = ::testing::TempDir() + prefix + "_XXXXXX";
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
    made_ = !path_.empty() && MakeTestCa(path_);
  }
  ~TestCaFolder() {
    if (!path_.empty()) std::filesystem::remove_all(path_);
  }
  TestCaFolder(const TestCaFolder&) = delete;
  TestCaFolder& operator=(const TestCaFolder&) = delete;

  bool made() const { return made_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
  bool made_ = false;
};

struct TlsClientOptions {
  std::string ca_file;    // verifies the server (and its name, 127.0.0.1)
  std::string cert_file;  // a client certificate to present; empty: none
  std::string key_file;
  int timeout_seconds = 5;  // for every send and receive
};

// One TLS connection to 127.0.0.1:port. Each step reports failure instead of throwing.
class TlsTestClient {
 public:
  TlsTestClient(int port, const TlsClientOptions& options) {
    // A refused client writes to a socket the server closed, through OpenSSL's write(): the
    // test must see a failed call, not die of SIGPIPE.
    std::signal(SIGPIPE, SIG_IGN);
    context_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(context_, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_load_verify_locations(context_, options.ca_file.c_str(), nullptr);
    if (!options.cert_file.empty()) {
      SSL_CTX_use_certificate_chain_file(context_, options.cert_file.c_str());
      SSL_CTX_use_PrivateKey_file(context_, options.key_file.c_str(), SSL_FILETYPE_PEM);
    }
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    timeval timeout{options.timeout_seconds, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  }
  ~TlsTestClient() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    SSL_CTX_free(context_);
    if (fd_ >= 0) close(fd_);
  }
  TlsTestClient(const TlsTestClient&) = delete;
  TlsTestClient& operator=(const TlsTestClient&) = delete;

  // The handshake, verifying the server's certificate for 127.0.0.1.
  bool Handshake() {
    if (!connected_) return false;
    ssl_ = SSL_new(context_);
    SSL_set_fd(ssl_, fd_);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), "127.0.0.1");
    bool ok = SSL_connect(ssl_) == 1;
    ERR_clear_error();
    return ok;
  }

  // Sends a GET and reads its answer (head and Content-Length body); nullopt on any failure,
  // including a server that refused the client's certificate after the handshake (TLS 1.3).
  std::optional<std::string> Get(const std::string& path) {
    if (ssl_ == nullptr && !Handshake()) return std::nullopt;
    const std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    if (SSL_write(ssl_, request.data(), static_cast<int>(request.size())) <= 0) {
      ERR_clear_error();
      return std::nullopt;
    }
    std::string answer;
    while (true) {
      size_t end = answer.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t at = answer.find("Content-Length: ");
        size_t length = at == std::string::npos ? 0 : std::stoul(answer.substr(at + 16));
        if (answer.size() >= end + 4 + length) return answer.substr(0, end + 4 + length);
      }
      char chunk[4096];
      int got = SSL_read(ssl_, chunk, sizeof chunk);
      if (got <= 0) {
        ERR_clear_error();
        return std::nullopt;
      }
      answer.append(chunk, static_cast<size_t>(got));
    }
  }

  // The SHA-256 fingerprint (hex, upper case) of the certificate the server presented.
  std::string PeerFingerprint() const {
    if (ssl_ == nullptr) return "";
    X509* peer = SSL_get1_peer_certificate(ssl_);
    if (peer == nullptr) return "";
    std::string fingerprint = Sha256Fingerprint(peer);
    X509_free(peer);
    return fingerprint;
  }

 private:
  SSL_CTX* context_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool connected_ = false;
};

}  // namespace ordertrace::http::test
