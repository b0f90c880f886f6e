// Test support for the tests that run a real Prometheus 2.42 (Debian's prometheus) against
// ordertrace: the process on a free loopback port with exemplar storage on, its generated
// config, TSDB and log in a folder the test owns, always stopped (a ChildProcess), and GETs on
// its HTTP API.
//
// ORDERTRACE_PROMETHEUS_BIN overrides the binary (default: prometheus on PATH).
//
// Not thread-safe: one test thread drives a PrometheusProcess.
#pragma once

#include <httplib.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/child_process.h"

namespace ordertrace::test_support {

// How long Prometheus may take to answer /-/ready.
inline constexpr auto kPrometheusStartTimeout = std::chrono::seconds(30);

// One scrape job of the generated config: a single static target.
struct ScrapeJob {
  std::string job_name;
  std::string target;  // host:port
  std::string metrics_path = "/metrics";
  int interval_seconds = 1;
};

// The prometheus.yml that scrapes `jobs` (scrape timeout = interval).
inline std::string ScrapeConfigYaml(const std::vector<ScrapeJob>& jobs) {
  std::string yaml = "scrape_configs:\n";
  for (const ScrapeJob& job : jobs) {
    const std::string interval = std::to_string(job.interval_seconds) + "s";
    yaml += "  - job_name: " + job.job_name + "\n";
    yaml += "    scrape_interval: " + interval + "\n";
    yaml += "    scrape_timeout: " + interval + "\n";
    yaml += "    metrics_path: " + job.metrics_path + "\n";
    yaml += "    static_configs:\n";
    yaml += "      - targets: ['" + job.target + "']\n";
  }
  return yaml;
}

// One prometheus process scraping `jobs`; stopped by Stop() or the destructor.
class PrometheusProcess {
 public:
  // Listens on 127.0.0.1:`port`; config, TSDB and log go under `dir`, which must exist.
  PrometheusProcess(int port, const std::string& dir, const std::vector<ScrapeJob>& jobs)
      : port_(port),
        config_path_(dir + "/prometheus.yml"),
        config_(ScrapeConfigYaml(jobs)),
        process_(
            {
                EnvOr("ORDERTRACE_PROMETHEUS_BIN", "prometheus"),
                "--config.file=" + config_path_,
                "--storage.tsdb.path=" + dir + "/tsdb",
                "--web.listen-address=127.0.0.1:" + std::to_string(port),
                "--enable-feature=exemplar-storage",
                // Debug shows why a scraped sample or exemplar was refused.
                "--log.level=debug",
            },
            dir + "/prometheus.log") {}

  // Writes the config, starts Prometheus and waits until /-/ready answers. Returns an error
  // text, empty on success.
  std::string Start() {
    std::ofstream(config_path_) << config_;
    return process_.Start([this] { return AnswersOk(port_, "/-/ready"); }, kPrometheusStartTimeout);
  }

  // SIGTERM, then SIGKILL after 10 s. Idempotent.
  void Stop() { process_.Stop(); }

  std::string Log() const { return process_.Log(); }
  const std::string& Config() const { return config_; }

  // GET /api/v1/`endpoint` (e.g. "query") with `params`: the reply's "data" when Prometheus
  // answers with status "success"; nullopt otherwise, with the reason in `error`.
  std::optional<nlohmann::json> Api(const std::string& endpoint, const httplib::Params& params,
                                    std::string* error = nullptr) const {
    httplib::Client client("127.0.0.1", port_);
    client.set_connection_timeout(std::chrono::seconds(1));
    client.set_read_timeout(std::chrono::seconds(10));
    auto result = client.Get("/api/v1/" + endpoint, params, httplib::Headers{});
    std::string reason;
    if (!result) {
      reason = httplib::to_string(result.error());
    } else {
      nlohmann::json reply = nlohmann::json::parse(result->body, nullptr, false);
      if (reply.is_object() && reply.value("status", "") == "success" && reply.contains("data")) {
        return reply["data"];
      }
      reason = std::to_string(result->status) + " " + result->body;
    }
    if (error != nullptr) *error = endpoint + ": " + reason;
    return std::nullopt;
  }

 private:
  const int port_;
  const std::string config_path_;
  const std::string config_;
  ChildProcess process_;
};

}  // namespace ordertrace::test_support
