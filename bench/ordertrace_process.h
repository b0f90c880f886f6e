// The ordertrace process a benchmark runs against: started from its binary on free loopback
// ports with a data folder of its own, waited for until ready, stopped; and what /proc says of a
// process and its threads (CPU seconds, memory, load). Shared by the bench tools: those that drive
// a real ordertrace, and the gap detector bench for its own threads. Thread-compatible.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace ordertrace::bench {

struct RunningServer {
  pid_t pid = -1;
  int otlp_http = 0;
  int http = 0;
};

// Starts `binary` with `data_dir` (and `config`, a YAML file, when not empty) and waits until
// /readyz answers 200, up to `ready_seconds` (a store of a million orders takes a while: every
// record is read at start); past that it kills it and exits the bench with 1.
RunningServer StartOrdertrace(const std::string& binary, const std::string& data_dir,
                              const std::string& config = "", int ready_seconds = 120);
// SIGTERM, then waits for it to exit.
void StopOrdertrace(const RunningServer& server);

// User + system CPU seconds of process `pid`, from /proc.
double ProcessCpuSeconds(pid_t pid);
// User + system CPU seconds of the thread of process `pid` named `name` (its comm, as
// pthread_setname_np set it), from /proc; 0 when it has none.
double ThreadCpuSeconds(pid_t pid, const std::string& name);
// A field of /proc/PID/status in bytes ("VmHWM", "VmRSS"); 0 when absent.
uint64_t ProcStatusBytes(pid_t pid, const std::string& field);
// /proc/loadavg's three averages.
std::string LoadAverage();

}  // namespace ordertrace::bench
