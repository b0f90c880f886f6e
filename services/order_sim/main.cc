// order-sim: drives simulated orders through shop-api, crm-api and mes-api with faults made on
// purpose (`run`), and scores what ordertrace reports against the ground truth (`score`).
#include <httplib.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "services/order_sim/scorer.h"
#include "services/order_sim/sim_faults.h"
#include "services/order_sim/simulator.h"
#include "services/order_sim/truth.h"

namespace {

using namespace ordertrace::services::sim;

std::string FaultHelp() {
  std::string help = "Fault kinds (--faults):\n";
  for (const SimFaultKind& kind : SimFaultKinds()) {
    help += "  " + std::string(kind.name) + ": " + std::string(kind.description) + "\n";
  }
  return help;
}

// Percent-encodes everything but unreserved characters, for an id in a URL path.
std::string PathSegment(const std::string& id) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : id) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += {'%', kHex[c >> 4], kHex[c & 15]};
    }
  }
  return out;
}

int RunCommand(SimulatorOptions options, const std::string& faults) {
  absl::StatusOr<std::vector<std::string>> kinds = ParseFaultList(faults, &options.fault_rates);
  if (!kinds.ok()) {
    std::cerr << "order-sim: " << kinds.status().message() << std::endl;
    return 2;
  }
  options.faults = *kinds;
  SimulatorSummary summary;
  absl::Status status = RunSimulation(options, summary);
  if (!status.ok()) {
    std::cerr << "order-sim: " << status.message() << std::endl;
    return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  std::cout << "order-sim: " << options.orders << " orders: " << summary.closed << " closed, "
            << summary.stopped << " stopped by their faults, " << summary.faulted
            << " faulted in all; truth in " << options.truth_path << std::endl;
  if (summary.sim_errors > 0) {
    std::cerr << "order-sim: " << summary.sim_errors
              << " order(s) could not be driven; see the truth file's notes" << std::endl;
    return 3;
  }
  return 0;
}

int ScoreCommand(const std::string& truth_path, const std::string& ordertrace_url, bool as_json,
                 double settle_seconds) {
  absl::StatusOr<std::vector<TruthRecord>> truth = ReadTruthFile(truth_path);
  if (!truth.ok()) {
    std::cerr << "order-sim: " << truth.status().message() << std::endl;
    return 1;
  }
  httplib::Client client(ordertrace_url);
  client.set_connection_timeout(std::chrono::seconds(5));
  client.set_read_timeout(std::chrono::seconds(30));
  if (httplib::Result ready = client.Get("/readyz"); !ready || ready->status != 200) {
    std::cerr << "order-sim: ordertrace at " << ordertrace_url << " is not ready ("
              << (ready ? std::to_string(ready->status) : httplib::to_string(ready.error())) << ")"
              << std::endl;
    return 1;
  }
  OrderRecordFetcher fetch =
      [&client](const std::string& order_id) -> absl::StatusOr<nlohmann::json> {
    httplib::Result result = client.Get("/api/v1/orders/" + PathSegment(order_id));
    if (!result) return absl::UnavailableError(httplib::to_string(result.error()));
    if (result->status == 404) return absl::NotFoundError("order not found");
    if (result->status != 200) {
      return absl::UnavailableError("HTTP " + std::to_string(result->status));
    }
    nlohmann::json body = nlohmann::json::parse(result->body, nullptr, false);
    if (body.is_discarded()) return absl::InternalError("answer is not JSON");
    return body;
  };
  OrderGapsFetcher fetch_gaps =
      [&client](const std::string& order_id) -> absl::StatusOr<nlohmann::json> {
    httplib::Result result =
        client.Get("/api/v1/gaps?state=all&limit=1000&order_id=" + PathSegment(order_id));
    if (!result) return absl::UnavailableError(httplib::to_string(result.error()));
    if (result->status == 404) return absl::UnimplementedError("no gap detector");
    if (result->status != 200) {
      return absl::UnavailableError("HTTP " + std::to_string(result->status));
    }
    nlohmann::json body = nlohmann::json::parse(result->body, nullptr, false);
    if (body.is_discarded() || !body.contains("gaps")) {
      return absl::InternalError("gap answer is not JSON with \"gaps\"");
    }
    return body["gaps"];
  };
  ScoreReport report = Score(*truth, fetch, fetch_gaps, settle_seconds);
  if (as_json) {
    std::cout << report.ToJson().dump(2) << std::endl;
  } else {
    std::cout << report.ToText();
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "order-sim: drives Alexandrite orders through shop-api, crm-api and mes-api, with faults\n"
      "made on purpose inside the services (they must run with --demo-faults on), and scores\n"
      "what ordertrace reports against the ground truth it writes."};
  app.require_subcommand(1);
  app.footer(FaultHelp());

  SimulatorOptions options;
  std::string faults = "none";
  CLI::App* run = app.add_subcommand("run", "Run a simulation and write the ground truth");
  run->add_option("--orders", options.orders, "Orders to simulate")->capture_default_str();
  run->add_option("--faults", faults,
                  "KIND[:SHARE][,KIND[:SHARE]...], all or none; SHARE: that kind's share of orders")
      ->capture_default_str();
  run->add_option("--fault-rate", options.fault_rate,
                  "Share of orders given a fault, split over the kinds without a SHARE of their "
                  "own (each kind at least once)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  run->add_option("--partner-share", options.partner_share, "Share of partner orders")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  run->add_option("--truth", options.truth_path, "Ground truth file (JSONL)")
      ->capture_default_str();
  run->add_option("--shop", options.shop_url, "shop-api URL")->capture_default_str();
  run->add_option("--crm", options.crm_url, "crm-api URL")->capture_default_str();
  run->add_option("--mes", options.mes_url, "mes-api URL")->capture_default_str();
  run->add_option("--time-scale", options.time_scale,
                  "Simulated seconds per real second; the services' --time-scale")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  run->add_option("--rate", options.orders_per_hour, "Orders arriving per simulated hour")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  run->add_option("--min-polygons", options.min_polygons, "Smallest model (triangles)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  run->add_option("--max-polygons", options.max_polygons, "Largest model (triangles)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  run->add_option("--operator-min-minutes", options.operator_min_minutes,
                  "Fastest operator reaction to an approved order (simulated minutes)")
      ->capture_default_str();
  run->add_option("--operator-max-minutes", options.operator_max_minutes,
                  "Slowest operator reaction to an approved order (simulated minutes)")
      ->capture_default_str();
  run->add_option("--seed", options.seed, "Random seed")->capture_default_str();
  run->add_option("--concurrency", options.concurrency, "Orders driven at once")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  run->add_option("--wait-floor", options.wait_floor_seconds,
                  "Shortest real time to wait for a status another service must reach (s)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();

  std::string truth_path = "truth.jsonl";
  std::string ordertrace_url = "http://127.0.0.1:8686";
  bool as_json = false;
  double settle_seconds = 15;
  CLI::App* score = app.add_subcommand("score", "Score ordertrace's answers against the truth");
  score->add_option("--truth", truth_path, "Ground truth file written by run")
      ->capture_default_str();
  score->add_option("--ordertrace", ordertrace_url, "ordertrace's API URL")->capture_default_str();
  score->add_flag("--json", as_json, "Print one JSON object");
  score
      ->add_option("--settle", settle_seconds,
                   "Seconds to wait for late spans before a mismatch counts")
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (run->parsed()) return RunCommand(options, faults);
  return ScoreCommand(truth_path, ordertrace_url, as_json, settle_seconds);
}
