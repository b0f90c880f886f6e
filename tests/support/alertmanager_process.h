// Test support shared by the tests that run a real Alertmanager 0.25 (Debian's
// prometheus-alertmanager): the process on a free loopback port with a private storage folder,
// alone (--cluster.listen-address=), always stopped (also when the test process dies:
// PR_SET_PDEATHSIG), and the small helpers those tests poll and query with.
//
// ORDERTRACE_ALERTMANAGER_BIN overrides the binary (default: prometheus-alertmanager on PATH),
// ORDERTRACE_ALERTMANAGER_CONFIG the config file (the build defines its default).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#ifndef ORDERTRACE_ALERTMANAGER_CONFIG
#define ORDERTRACE_ALERTMANAGER_CONFIG "deploy/alertmanager/alertmanager.yml"
#endif

namespace ordertrace::test_support {

// How long Alertmanager may take to answer /-/ready.
inline constexpr auto kAlertmanagerStartTimeout = std::chrono::seconds(30);

inline std::string EnvOr(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A loopback port that was free a moment ago.
inline int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

// Polls `done` every 50 ms until it holds or `timeout` passes.
inline bool Eventually(std::chrono::seconds timeout, const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

// One prometheus-alertmanager process; stopped by Stop() or the destructor.
class AlertmanagerProcess {
 public:
  AlertmanagerProcess(int port, std::string storage_dir)
      : port_(port), storage_dir_(std::move(storage_dir)) {}
  ~AlertmanagerProcess() { Stop(); }
  AlertmanagerProcess(const AlertmanagerProcess&) = delete;
  AlertmanagerProcess& operator=(const AlertmanagerProcess&) = delete;

  // Starts it and waits until /-/ready answers. Returns an error text, empty on success.
  std::string Start() {
    const std::string binary = EnvOr("ORDERTRACE_ALERTMANAGER_BIN", "prometheus-alertmanager");
    const std::string config =
        EnvOr("ORDERTRACE_ALERTMANAGER_CONFIG", ORDERTRACE_ALERTMANAGER_CONFIG);
    std::vector<std::string> args = {
        binary,
        "--config.file=" + config,
        "--storage.path=" + storage_dir_,
        "--web.listen-address=127.0.0.1:" + std::to_string(port_),
        "--cluster.listen-address=",  // alone: no gossip port, no waiting for peers
        "--log.level=debug",
    };
    log_path_ = storage_dir_ + "/alertmanager.log";
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) return "fork failed";
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
      if (getppid() != parent) _exit(127);
      int log = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (log >= 0) {
        dup2(log, 1);
        dup2(log, 2);
      }
      std::vector<char*> argv;
      for (std::string& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      execvp(argv[0], argv.data());
      _exit(127);
    }
    httplib::Client client("127.0.0.1", port_);
    client.set_connection_timeout(std::chrono::seconds(1));
    bool ready = Eventually(kAlertmanagerStartTimeout, [&] {
      if (Exited()) return true;
      auto result = client.Get("/-/ready");
      return result && result->status == 200;
    });
    if (Exited()) return "prometheus-alertmanager exited at start:\n" + ReadFile(log_path_);
    if (!ready) return "prometheus-alertmanager not ready:\n" + ReadFile(log_path_);
    return "";
  }

  // SIGTERM, then SIGKILL after 10 s. Idempotent.
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (waitpid(pid_, nullptr, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = -1;
  }

  std::string Log() const { return ReadFile(log_path_); }

 private:
  bool Exited() {
    if (pid_ <= 0) return true;
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return true;
    }
    return false;
  }

  const int port_;
  const std::string storage_dir_;
  std::string log_path_;
  pid_t pid_ = -1;
};

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
