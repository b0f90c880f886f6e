// Where a listener's TLS certificate, key and (optionally) client CA live: the `tls:` section of
// ordertrace.yaml. A plain value; the files are read by TlsContextProvider (tls_context.h) and by
// the gRPC receiver, at start and again on SIGHUP.
//
// Thread-safety: a value type, copied freely.
#pragma once

#include <string>

namespace ordertrace::http {

struct TlsOptions {
  // PEM certificate chain (leaf first) and its private key; both or neither. Empty: no TLS.
  std::string cert_file;
  std::string key_file;
  // PEM CA certificates. Set: the OTLP listeners (gRPC and HTTP) require a client certificate
  // signed by one of them; the API never asks for one.
  std::string client_ca_file;

  // True when the listeners serve TLS (a certificate is configured).
  bool enabled() const { return !cert_file.empty(); }
};

}  // namespace ordertrace::http
