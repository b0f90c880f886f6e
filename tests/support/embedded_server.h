// Test support for the tests that embed an OrdertraceServer and speak to it over loopback: its
// config on free ports, the readiness probe that must pass before shutting it down, HTTP
// clients with bounded timeouts, and readers of what the API serves (/metrics series, the spans
// of a trace).
#pragma once

#include <httplib.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "server/config.h"

namespace ordertrace::test_support {

inline uint64_t NowUnixNano() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// A server config over `data_dir` listening on loopback port 0 everywhere (the OS picks free
// ports; OrdertraceServer::ports() tells which), logging warnings only, with 2 HTTP threads.
inline server::ServerConfig LoopbackConfig(const std::string& data_dir) {
  server::ServerConfig config;
  config.data_dir = data_dir;
  config.otlp_grpc_listen = "127.0.0.1:0";
  config.otlp_http_listen = "127.0.0.1:0";
  config.http_listen = "127.0.0.1:0";
  config.log_level = "warn";
  config.http_threads = 2;
  return config;
}

// A client of 127.0.0.1:`port` that gives up connecting after 5 s and reading after 15 s.
inline std::unique_ptr<httplib::Client> LoopbackClient(int port) {
  auto client = std::make_unique<httplib::Client>("127.0.0.1", port);
  client->set_connection_timeout(5, 0);
  client->set_read_timeout(15, 0);
  client->set_write_timeout(15, 0);
  return client;
}

// "" once the HTTP server on `port` has answered a request (any status), else why not.
// Shutting an OrdertraceServer down before its HTTP threads have entered httplib's accept loop
// hangs (server_test.cc, ShutdownRightAfterStartReturns): tests wait for this on the API and
// the OTLP/HTTP port after Start().
inline std::string WaitUntilServing(int port) {
  httplib::Result res = LoopbackClient(port)->Get("/healthz");
  return res ? "" : "port " + std::to_string(port) + ": " + httplib::to_string(res.error());
}

// The value of one series (`name{labels}` exactly as printed) in a /metrics page, in either
// format (an exemplar after the value is ignored); nullopt when the series is absent.
inline std::optional<double> MetricValue(const std::string& page, const std::string& series) {
  std::istringstream lines(page);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return std::nullopt;
}

// The spans of a trace as GET /api/traces/{id} returns it (Tempo's "batches" of OTLP JSON).
inline std::vector<nlohmann::json> SpansOf(const nlohmann::json& trace) {
  std::vector<nlohmann::json> spans;
  if (!trace.is_object() || !trace.contains("batches")) return spans;
  for (const nlohmann::json& batch : trace["batches"]) {
    for (const nlohmann::json& scope : batch.value("scopeSpans", nlohmann::json::array())) {
      for (const nlohmann::json& span : scope.value("spans", nlohmann::json::array())) {
        spans.push_back(span);
      }
    }
  }
  return spans;
}

}  // namespace ordertrace::test_support
