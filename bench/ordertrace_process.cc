#include "bench/ordertrace_process.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace ordertrace::bench {

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

RunningServer StartOrdertrace(const std::string& binary, const std::string& data_dir,
                              const std::string& config, int ready_seconds) {
  RunningServer s;
  s.otlp_http = FreePort();
  s.http = FreePort();
  const int grpc = FreePort();
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

double ProcessCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
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
