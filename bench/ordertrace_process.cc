#include "bench/ordertrace_process.h"

#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "tests/support/free_port.h"

namespace ordertrace::bench {

RunningServer StartOrdertrace(const std::string& binary, const std::string& data_dir,
                              const std::string& config, int ready_seconds) {
  RunningServer s;
  s.otlp_http = test_support::FreePort();
  s.http = test_support::FreePort();
  const int grpc = test_support::FreePort();
  s.pid = fork();
  if (s.pid == 0) {
    std::vector<std::string> args = {binary,
                                     "--data-dir",
                                     data_dir,
                                     "--otlp-grpc-listen",
                                     "127.0.0.1:" + std::to_string(grpc),
                                     "--otlp-http-listen",
                                     "127.0.0.1:" + std::to_string(s.otlp_http),
                                     "--http-listen",
                                     "127.0.0.1:" + std::to_string(s.http),
                                     "--log-level",
                                     "warn"};
    if (!config.empty()) {
      args.push_back("--config");
      args.push_back(config);
    }
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  httplib::Client probe("127.0.0.1", s.http);
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < ready_seconds * 20; ++i) {
    auto res = probe.Get("/readyz");
    if (res && res->status == 200) {
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      if (seconds > 1) std::printf("ordertrace ready after %.1f s\n", seconds);
      return s;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::fprintf(stderr, "ordertrace did not become ready within %d s\n", ready_seconds);
  kill(s.pid, SIGKILL);
  std::exit(1);
}

void StopOrdertrace(const RunningServer& server) {
  kill(server.pid, SIGTERM);
  int status = 0;
  waitpid(server.pid, &status, 0);
}

namespace {

// User + system CPU seconds from a /proc stat file, a process's or a thread's; 0 when it cannot
// be read.
double StatCpuSeconds(const std::filesystem::path& stat_path) {
  std::ifstream in(stat_path);
  std::string line;
  std::getline(in, line);
  if (line.empty()) return 0;
  // Fields after the command name (which may hold spaces) start at the state, field 3.
  std::istringstream fields(line.substr(line.rfind(')') + 2));
  std::string f;
  unsigned long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::stoul(f);
    if (i == 15) stime = std::stoul(f);
  }
  return static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK);
}

}  // namespace

double ProcessCpuSeconds(pid_t pid) {
  return StatCpuSeconds("/proc/" + std::to_string(pid) + "/stat");
}

double ThreadCpuSeconds(pid_t pid, const std::string& name) {
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& task : std::filesystem::directory_iterator(tasks)) {
    std::ifstream comm(task.path() / "comm");
    std::string comm_name;
    std::getline(comm, comm_name);
    if (comm_name == name) return StatCpuSeconds(task.path() / "stat");
  }
  return 0;
}

uint64_t ProcStatusBytes(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1)) * 1024;
  }
  return 0;
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

}  // namespace ordertrace::bench
