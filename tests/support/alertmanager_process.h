// Test support shared by the tests that run a real Alertmanager 0.25 (Debian's
// prometheus-alertmanager): the process on a free loopback port with a private storage folder,
// alone (--cluster.listen-address=), always stopped (a ChildProcess), and the query escaping
// those tests filter alerts with.
//
// ORDERTRACE_ALERTMANAGER_BIN overrides the binary (default: prometheus-alertmanager on PATH),
// ORDERTRACE_ALERTMANAGER_CONFIG the config file (the build defines its default).
#pragma once

#include <cctype>
#include <chrono>
#include <cstdio>
#include <string>
#include <utility>

#include "tests/support/child_process.h"

#ifndef ORDERTRACE_ALERTMANAGER_CONFIG
#define ORDERTRACE_ALERTMANAGER_CONFIG "deploy/alertmanager/alertmanager.yml"
#endif

namespace ordertrace::test_support {

// How long Alertmanager may take to answer /-/ready.
inline constexpr auto kAlertmanagerStartTimeout = std::chrono::seconds(30);

// One prometheus-alertmanager process; stopped by Stop() or the destructor, and may be
// started again on the same port and storage.
class AlertmanagerProcess {
 public:
  AlertmanagerProcess(int port, const std::string& storage_dir)
      : port_(port),
        process_(
            {
                EnvOr("ORDERTRACE_ALERTMANAGER_BIN", "prometheus-alertmanager"),
                "--config.file=" +
                    EnvOr("ORDERTRACE_ALERTMANAGER_CONFIG", ORDERTRACE_ALERTMANAGER_CONFIG),
                "--storage.path=" + storage_dir,
                "--web.listen-address=127.0.0.1:" + std::to_string(port),
                "--cluster.listen-address=",  // alone: no gossip port, no waiting for peers
                "--log.level=debug",
            },
            storage_dir + "/alertmanager.log") {}

  // Starts it and waits until /-/ready answers. Returns an error text, empty on success.
  std::string Start() {
    return process_.Start([this] { return AnswersOk(port_, "/-/ready"); },
                          kAlertmanagerStartTimeout);
  }

  // SIGTERM, then SIGKILL after 10 s. Idempotent.
  void Stop() { process_.Stop(); }

  std::string Log() const { return process_.Log(); }

 private:
  const int port_;
  ChildProcess process_;
};

// `text` escaped for a URL's query string.
inline std::string QueryEscape(const std::string& text) {
  std::string out;
  char buffer[4];
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      std::snprintf(buffer, sizeof buffer, "%%%02X", c);
      out += buffer;
    }
  }
  return out;
}

}  // namespace ordertrace::test_support
