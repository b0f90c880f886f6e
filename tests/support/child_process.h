// Test support for the tests that run a real server program (Alertmanager, Prometheus) beside
// the code under test: a child process that never outlives the test (PR_SET_PDEATHSIG), writes
// its output to a log file, counts as started once a readiness probe holds, and is stopped with
// SIGTERM, then SIGKILL. Also the small helpers such tests share: free loopback ports
// (free_port.h), bounded polling, environment overrides.
//
// Not thread-safe: one test thread drives a ChildProcess.
#pragma once

#include <fcntl.h>
#include <httplib.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/free_port.h"

namespace ordertrace::test_support {

// The value of environment variable `name`, or `fallback` when it is unset or empty.
inline std::string EnvOr(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

// The whole file; empty when it cannot be read.
inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
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

// True when GET http://127.0.0.1:`port``path` answers 200 (the /-/ready of Prometheus' tools).
inline bool AnswersOk(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(std::chrono::seconds(1));
  client.set_read_timeout(std::chrono::seconds(5));
  auto result = client.Get(path);
  return result && result->status == 200;
}

// One program run as a child of the test; stopped by Stop() or the destructor. Start() may
// run it again after Stop(), with the same arguments and log file.
class ChildProcess {
 public:
  // `args[0]` is looked up on PATH; stdout and stderr are appended to `log_path`.
  ChildProcess(std::vector<std::string> args, std::string log_path)
      : args_(std::move(args)), log_path_(std::move(log_path)) {}
  ~ChildProcess() { Stop(); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Starts the program and polls `ready` until it holds. Returns an error text with the log
  // when the program exits first or `timeout` passes (it is then stopped), empty on success.
  std::string Start(const std::function<bool()>& ready, std::chrono::seconds timeout) {
    if (pid_ > 0) return args_[0] + " is already running";
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
      for (std::string& arg : args_) argv.push_back(arg.data());
      argv.push_back(nullptr);
      execvp(argv[0], argv.data());
      _exit(127);
    }
    bool is_ready = Eventually(timeout, [&] { return Exited() || ready(); });
    if (Exited()) return args_[0] + " exited at start:\n" + Log();
    if (!is_ready) {
      Stop();
      return args_[0] + " not ready within " + std::to_string(timeout.count()) + " s:\n" + Log();
    }
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

  // True once the program has ended (or was never started).
  bool Exited() {
    if (pid_ <= 0) return true;
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return true;
    }
    return false;
  }

  // Everything the program has written so far.
  std::string Log() const { return ReadFile(log_path_); }

 private:
  std::vector<std::string> args_;  // not const: execvp takes char*
  const std::string log_path_;
  pid_t pid_ = -1;
};

}  // namespace ordertrace::test_support
