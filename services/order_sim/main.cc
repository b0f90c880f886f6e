// order-sim: drives simulated orders through shop-api, crm-api and mes-api with faults made on
// purpose (`run`), replays a simulated business day's spans straight into ordertrace (`replay`),
// and scores what ordertrace reports against the ground truth (`score`).
#include <httplib.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <iostream>

#include "services/order_sim/replay.h"
#include "services/order_sim/replay_delivery.h"
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

// --day-end: unix seconds, or RFC 3339 UTC ("2026-12-01T17:00:00Z"); empty: an hour ago.
absl::StatusOr<int64_t> ParseDayEnd(const std::string& text) {
  if (text.empty()) {
    auto now = std::chrono::system_clock::now() - std::chrono::hours(1);
    return std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  }
  if (text.find_first_not_of("0123456789") == std::string::npos && text.size() <= 12) {
    return static_cast<int64_t>(std::stoll(text)) * 1'000'000'000;
  }
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (end == nullptr || *end != '\0') {
    return absl::InvalidArgumentError("--day-end '" + text +
                                      "' is neither unix seconds nor YYYY-MM-DDTHH:MM:SSZ");
  }
  return static_cast<int64_t>(timegm(&tm)) * 1'000'000'000;
}

std::string Rfc3339(int64_t unix_nano) {
  std::time_t seconds = static_cast<std::time_t>(unix_nano / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

struct ReplayCommandOptions {
  ReplayDayOptions day;
  std::string faults = "all";
  std::string day_end;
  std::string truth_path = "truth.jsonl";
  std::string order = "in-order";
  ReplayBatchingOptions batching;
  ReplaySendOptions send;
  std::string out_path;
};

int ReplayCommand(ReplayCommandOptions options) {
  absl::StatusOr<std::vector<std::string>> kinds =
      ParseFaultList(options.faults, nullptr, ReplayFaultKinds());
  absl::StatusOr<int64_t> day_end = ParseDayEnd(options.day_end);
  if (!kinds.ok() || !day_end.ok()) {
    std::cerr << "order-sim: " << (!kinds.ok() ? kinds.status() : day_end.status()).message()
              << std::endl;
    return 2;
  }
  options.day.fault_kinds = *kinds;
  options.day.day_end_unix_nano = *day_end;
  options.batching.ordering =
      options.order == "shuffled" ? ReplayOrdering::kShuffled : ReplayOrdering::kInOrder;
  options.batching.seed = options.day.seed;

  absl::StatusOr<ReplayDay> day = ReplayDay::Generate(options.day);
  if (!day.ok()) {
    std::cerr << "order-sim: " << day.status().message() << std::endl;
    return 2;
  }
  std::ofstream truth(options.truth_path, std::ios::trunc);
  for (const ReplayOrder& order : day->orders()) truth << EncodeTruth(order.truth) << '\n';
  truth.flush();
  if (!truth) {
    std::cerr << "order-sim: cannot write truth file " << options.truth_path << std::endl;
    return 1;
  }
  int faulted = 0;
  for (const ReplayOrder& order : day->orders()) faulted += order.truth.fault.has_value() ? 1 : 0;
  std::vector<ReplayRequest> requests = PlanRequests(*day, options.batching);
  std::cout << "order-sim replay: day " << Rfc3339(day->day_start_unix_nano()) << " to "
            << Rfc3339(day->day_end_unix_nano()) << ", seed " << options.day.seed << ": "
            << day->orders().size() << " orders (" << faulted << " faulted), " << day->span_count()
            << " spans in " << requests.size() << " requests (" << options.order
            << (options.batching.ordering == ReplayOrdering::kShuffled
                    ? " within " + std::to_string(options.batching.window_spans) + "-span windows"
                    : std::string())
            << ", " << options.batching.batch_spans << " spans a request); truth in "
            << options.truth_path << std::endl;
  if (!options.out_path.empty()) {
    absl::Status written = WriteRequests(*day, requests, options.out_path);
    if (!written.ok()) {
      std::cerr << "order-sim: " << written.message() << std::endl;
      return 1;
    }
    std::cout << "order-sim replay: requests written to " << options.out_path << std::endl;
    return 0;
  }
  absl::StatusOr<ReplaySendStats> stats = SendRequests(*day, requests, options.send);
  if (!stats.ok()) {
    std::cerr << "order-sim: " << stats.status().message() << std::endl;
    return 2;
  }
  std::cout << "order-sim replay: sent " << stats->spans_sent << " spans in " << stats->requests
            << " requests (" << stats->retries << " retries, " << options.send.concurrency
            << " at once) in " << std::fixed << std::setprecision(2) << stats->seconds
            << " s: " << std::setprecision(0)
            << (stats->seconds > 0 ? static_cast<double>(stats->spans_sent) / stats->seconds : 0)
            << " spans/s" << std::endl;
  if (stats->refused_requests > 0) {
    std::cerr << "order-sim: " << stats->refused_requests
              << " request(s) finally refused; the first: " << stats->first_refusal << std::endl;
    return 1;
  }
  return 0;
}

// Every gap, page by page (GET /api/v1/gaps?state=all&limit=1000&cursor=...).
absl::StatusOr<nlohmann::json> FetchAllGaps(httplib::Client& client) {
  constexpr int kLimit = 1000;
  nlohmann::json all = nlohmann::json::array();
  std::string cursor;
  for (int page = 0; page < 100'000; ++page) {
    std::string path = "/api/v1/gaps?state=all&limit=" + std::to_string(kLimit);
    if (!cursor.empty()) path += "&cursor=" + PathSegment(cursor);
    httplib::Result result = client.Get(path);
    if (!result) return absl::UnavailableError(httplib::to_string(result.error()));
    if (result->status == 404) return absl::UnimplementedError("no gap detector");
    if (result->status != 200) {
      return absl::UnavailableError("HTTP " + std::to_string(result->status));
    }
    nlohmann::json body = nlohmann::json::parse(result->body, nullptr, false);
    if (body.is_discarded() || !body.contains("gaps") || !body["gaps"].is_array()) {
      return absl::InternalError("gap answer is not JSON with \"gaps\"");
    }
    for (nlohmann::json& gap : body["gaps"]) all.push_back(std::move(gap));
    if (!body.contains("next_cursor")) {
      // An ordertrace without paging: complete only when the answer was not cut at the limit.
      if (body["gaps"].size() >= static_cast<size_t>(kLimit)) {
        return absl::OutOfRangeError("the gap list has no cursor and fills one answer");
      }
      return all;
    }
    if (!body["next_cursor"].is_string() || body["next_cursor"].get<std::string>().empty()) {
      return all;
    }
    cursor = body["next_cursor"].get<std::string>();
  }
  return absl::OutOfRangeError("the gap list did not end");
}

int ScoreCommand(const std::string& truth_path, const std::string& ordertrace_url, bool as_json,
                 double settle_seconds, const std::string& gaps_out) {
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
  AllGapsFetcher fetch_all = [&client]() { return FetchAllGaps(client); };
  ScoreReport report = Score(*truth, ScoreSources{fetch, fetch_gaps, fetch_all}, settle_seconds);
  if (!gaps_out.empty()) {
    std::ofstream out(gaps_out, std::ios::trunc);
    out << report.gaps.dump() << '\n';
    if (!out) {
      std::cerr << "order-sim: cannot write " << gaps_out << std::endl;
      return 1;
    }
  }
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

  ReplayCommandOptions replay_options;
  CLI::App* replay = app.add_subcommand(
      "replay",
      "Make a simulated business day of orders as spans (no services), with faults and the "
      "ground truth, and send it to ordertrace over OTLP/HTTP in event-time order or shuffled");
  replay->add_option("--orders", replay_options.day.orders, "Orders in the day")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  replay
      ->add_option("--faults", replay_options.faults,
                   "KIND[,KIND...], all or none (all includes status_backwards, which only "
                   "replay makes)")
      ->capture_default_str();
  replay
      ->add_option(
          "--fault-share", replay_options.day.fault_share,
          "Share of orders given a fault, split evenly over the kinds (each at least once)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  replay->add_option("--partner-share", replay_options.day.partner_share, "Share of partner orders")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  replay
      ->add_option("--seed", replay_options.day.seed,
                   "Random seed: the same seed and day end "
                   "give the same day")
      ->capture_default_str();
  replay->add_option("--day-end", replay_options.day_end,
                     "When the day ends: unix seconds or YYYY-MM-DDTHH:MM:SSZ [an hour ago]");
  replay->add_option("--truth", replay_options.truth_path, "Ground truth file (JSONL)")
      ->capture_default_str();
  replay->add_option("--endpoint", replay_options.send.endpoint, "ordertrace's OTLP/HTTP endpoint")
      ->capture_default_str();
  replay->add_option("--order", replay_options.order, "in-order or shuffled")
      ->check(CLI::IsMember({"in-order", "shuffled"}))
      ->capture_default_str();
  replay
      ->add_option("--window", replay_options.batching.window_spans,
                   "shuffled: spans shuffled within consecutive windows of this many")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  replay->add_option("--batch-spans", replay_options.batching.batch_spans, "Spans per request")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  replay->add_option("--concurrency", replay_options.send.concurrency, "Requests at once")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  replay->add_option("--out", replay_options.out_path,
                     "Write the requests to this file (varint-delimited OTLP protobuf) instead of "
                     "sending them");

  std::string truth_path = "truth.jsonl";
  std::string ordertrace_url = "http://127.0.0.1:8686";
  bool as_json = false;
  double settle_seconds = 15;
  std::string gaps_out;
  CLI::App* score = app.add_subcommand("score", "Score ordertrace's answers against the truth");
  score->add_option("--truth", truth_path, "Ground truth file written by run")
      ->capture_default_str();
  score->add_option("--ordertrace", ordertrace_url, "ordertrace's API URL")->capture_default_str();
  score->add_flag("--json", as_json, "Print one JSON object");
  score
      ->add_option("--settle", settle_seconds,
                   "Seconds to wait for late spans before a mismatch counts")
      ->capture_default_str();
  score->add_option("--gaps-out", gaps_out, "Write every gap read (a JSON array) to this file");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (run->parsed()) return RunCommand(options, faults);
  if (replay->parsed()) return ReplayCommand(std::move(replay_options));
  return ScoreCommand(truth_path, ordertrace_url, as_json, settle_seconds, gaps_out);
}
