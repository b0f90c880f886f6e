#include "services/order_sim/simulator.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <thread>

#include "services/common/fault_switch.h"
#include "services/common/order_transitions.h"
#include "services/order_sim/sim_faults.h"
#include "services/order_sim/truth.h"
#include "services/pricing/price_calculator.h"

namespace ordertrace::services::sim {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One HTTP answer; status 0 when the service could not be reached.
struct Reply {
  int status = 0;
  json body;
  std::string error;
};

// A client of one service, for one order's thread.
class ServiceClient {
 public:
  explicit ServiceClient(const std::string& url) : client_(url) {
    client_.set_connection_timeout(std::chrono::seconds(5));
    client_.set_read_timeout(std::chrono::seconds(30));
    client_.set_write_timeout(std::chrono::seconds(30));
    // One request per connection: an idle kept-alive connection holds a server worker.
    client_.set_keep_alive(false);
  }

  Reply Send(const std::string& method, const std::string& path, const std::string& body = "",
             const std::string& content_type = "application/json") {
    Reply reply;
    // A connection that fails is retried a few times: the service may be busy or restarting.
    for (int attempt = 0; attempt < 3; ++attempt) {
      httplib::Result result = method == "GET"   ? client_.Get(path)
                               : method == "PUT" ? client_.Put(path, body, content_type)
                                                 : client_.Post(path, body, content_type);
      if (result) {
        reply.status = result->status;
        reply.body = json::parse(result->body, nullptr, /*allow_exceptions=*/false);
        if (reply.body.is_discarded()) reply.body = json::object();
        return reply;
      }
      reply.error = httplib::to_string(result.error());
      // Only a request that never reached the service is sent again: after a read error it
      // may have been carried out, and a POST repeated could create a second order.
      if (result.error() != httplib::Error::Connection) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200 * (attempt + 1)));
    }
    return reply;
  }

 private:
  httplib::Client client_;
};

std::string StlModel(int64_t triangles) {
  std::string file(80, '\0');
  std::string header = "order-sim model";
  std::copy(header.begin(), header.end(), file.begin());
  for (int i = 0; i < 4; ++i) file.push_back(static_cast<char>((triangles >> (8 * i)) & 0xff));
  file.append(static_cast<size_t>(triangles) * 50, '\0');
  return file;
}

// What order-sim decides about one order before it starts.
struct OrderPlan {
  int index = 0;
  std::string customer_id;
  std::string partner_id;
  int64_t polygons = 0;
  const SimFaultKind* fault = nullptr;
  double arrival_seconds = 0;  // simulated, from the start
  uint64_t seed = 0;
};

class OrderDriver {
 public:
  OrderDriver(const SimulatorOptions& options, const OrderPlan& plan)
      : options_(options),
        plan_(plan),
        shop_(options.shop_url),
        crm_(options.crm_url),
        mes_(options.mes_url),
        random_(plan.seed) {}

  TruthRecord Drive();

 private:
  // Sleeps `minutes` of simulated time, drawn uniformly in [low, high].
  void Pause(double low_minutes, double high_minutes) {
    std::uniform_real_distribution<double> minutes(low_minutes, high_minutes);
    double real = minutes(random_) * 60 / options_.time_scale;
    std::this_thread::sleep_for(std::chrono::duration<double>(real));
  }
  // Polls `client`'s view of the order until it reaches `status` (or a later one).
  bool WaitForStatus(ServiceClient& client, std::string_view status, double simulated_minutes) {
    double real =
        std::max(options_.wait_floor_seconds, simulated_minutes * 60 / options_.time_scale);
    auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(real));
    while (Clock::now() < deadline) {
      Reply reply = client.Send("GET", "/api/orders/" + record_.order_id);
      if (reply.status == 200 && reply.body.contains("status") &&
          LifecycleIndex(reply.body["status"].get<std::string>()) >= LifecycleIndex(status)) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  bool Arm(ServiceClient& client, const std::string& key, const std::string& param) {
    json body = {{"key", key}, {"kind", plan_.fault->name}, {"param", param}};
    Reply reply = client.Send("POST", "/api/demo/faults", body.dump());
    if (reply.status != 204) {
      Fail("cannot arm fault " + std::string(plan_.fault->name) + " (HTTP " +
           std::to_string(reply.status) + reply.error +
           "; are the services running with --demo-faults on?)");
      return false;
    }
    return true;
  }
  // A step that must succeed: HTTP 200/201 moves the order to `status`.
  bool Step(ServiceClient& client, const std::string& path, std::string_view status,
            const std::string& body = "", const std::string& method = "POST",
            const std::string& content_type = "application/json") {
    Reply reply = client.Send(method, path, body, content_type);
    if (reply.status == 200 || reply.status == 201) {
      record_.last_status = std::string(status);
      return true;
    }
    Fail(method + " " + path + " answered " + std::to_string(reply.status) + " " +
         (reply.body.is_object() ? reply.body.dump() : reply.error));
    return false;
  }
  void Fail(const std::string& note) {
    record_.outcome = "sim_error";
    record_.note = note;
  }
  // The order stopped where its fault left it.
  TruthRecord Stopped(const std::string& note, int64_t at) {
    record_.outcome = "stopped";
    record_.note = note;
    if (record_.fault.has_value()) record_.fault->at_unix_nano = at;
    return Finish();
  }
  TruthRecord Finish() {
    record_.finished_at_unix_nano = NowNanos();
    return record_;
  }
  ServiceClient& ClientFor(std::string_view service) {
    if (service == "shop") return shop_;
    if (service == "crm") return crm_;
    return mes_;
  }
  std::string FaultParam() const;

  const SimulatorOptions& options_;
  const OrderPlan plan_;
  ServiceClient shop_;
  ServiceClient crm_;
  ServiceClient mes_;
  std::mt19937_64 random_;
  TruthRecord record_;
};

std::string OrderDriver::FaultParam() const {
  std::string_view kind = plan_.fault->name;
  if (kind == kFaultLostStatusEvent || kind == kFaultMissedStatusWrite) {
    return std::string(kPriceCalculated);
  }
  if (kind == kFaultConsumerCrash) return "mes.price.requests";
  if (kind == kFaultSkippedStatus) return std::string(kShipped);
  if (kind == kFaultCalculatorSlow) {
    // Three times the SLA, whatever the model: clearly late, and then it finishes.
    double normal =
        std::chrono::duration<double>(pricing::SimulatedCalculationTime(plan_.polygons)).count();
    return std::to_string(3 * kPriceCalculationSlaSeconds / normal);
  }
  return "";
}

TruthRecord OrderDriver::Drive() {
  record_.customer_id = plan_.customer_id;
  record_.partner_id = plan_.partner_id;
  record_.polygon_count = plan_.polygons;
  record_.time_scale = options_.time_scale;
  record_.started_at_unix_nano = NowNanos();
  const SimFaultKind* fault = plan_.fault;
  auto has = [&](std::string_view kind) { return fault != nullptr && fault->name == kind; };
  if (fault != nullptr) {
    record_.fault = TruthFault{std::string(fault->name), std::string(fault->stage),
                               std::string(fault->service), FaultParam(), 0};
  }

  // The customer (or the partner's system) creates the order.
  if (has(kFaultPartnerOrderDropped) && !Arm(shop_, plan_.customer_id, "")) return Finish();
  json create = {{"customer_id", plan_.customer_id},
                 {"email", plan_.customer_id + "@customers.example"},
                 {"phone", "+1-555-0100"}};
  if (!plan_.partner_id.empty()) create["partner_id"] = plan_.partner_id;
  Reply created = shop_.Send("POST", "/api/orders", create.dump());
  if (created.status != 201 || !created.body.contains("order_id")) {
    Fail("POST /api/orders answered " + std::to_string(created.status) + " " + created.error);
    return Finish();
  }
  record_.order_id = created.body["order_id"].get<std::string>();
  record_.last_status = std::string(kInitiated);
  const int64_t created_at = NowNanos();
  if (fault != nullptr && !fault->service.empty() && !has(kFaultPartnerOrderDropped) &&
      !Arm(ClientFor(fault->service), record_.order_id, record_.fault->param)) {
    return Finish();
  }

  // The customer uploads the model, then submits.
  Pause(2, 10);
  const std::string path = "/api/orders/" + record_.order_id;
  Reply uploaded =
      shop_.Send("PUT", path + "/model", StlModel(plan_.polygons), "application/octet-stream");
  if (uploaded.status == 404 && has(kFaultPartnerOrderDropped)) {
    return Stopped("the shop accepted the partner order, then lost it (upload: 404)", created_at);
  }
  if (uploaded.status != 200) {
    Fail("PUT model answered " + std::to_string(uploaded.status) + " " + uploaded.error);
    return Finish();
  }
  record_.last_status = std::string(kFileUploaded);
  Pause(1, 5);
  if (!Step(shop_, path + "/submit", kSubmitted)) return Finish();
  const int64_t submitted_at = NowNanos();

  // MES prices it; CRM must see PRICE_CALCULATED before anyone approves.
  bool priced = WaitForStatus(crm_, kPriceCalculated, 3 * 60);
  if (!priced) {
    // The sales manager tries anyway, and is refused: CRM never saw the price.
    Reply approve = crm_.Send("POST", path + "/approve");
    std::string seen = approve.body.value("current_status", std::string("?"));
    return Stopped("CRM never saw PRICE_CALCULATED (approve answered " +
                       std::to_string(approve.status) + ", CRM status " + seen + ")",
                   submitted_at);
  }
  record_.last_status = std::string(kPriceCalculated);
  Pause(5, 30);
  if (!Step(crm_, path + "/approve", kManufacturingApproved)) return Finish();
  if (!WaitForStatus(mes_, kManufacturingApproved, 60)) {
    Fail("MES never saw MANUFACTURING_APPROVED");
    return Finish();
  }
  const int64_t approved_at = NowNanos();
  if (has("operator_no_show")) {
    return Stopped("no operator took the approved order", approved_at);
  }

  // An operator manufactures it; then packaging, shipping, closing.
  Pause(options_.operator_min_minutes, options_.operator_max_minutes);
  std::uniform_int_distribution<int> operators(1, 12);
  json start = {{"operator_id", "op-" + std::to_string(operators(random_))}};
  if (!Step(mes_, path + "/manufacturing/start", kManufacturingStarted, start.dump())) {
    return Finish();
  }
  Pause(30, 120);
  if (!Step(mes_, path + "/manufacturing/complete", kManufacturingCompleted)) return Finish();
  if (!has(kFaultSkippedStatus)) {
    Pause(10, 30);
    if (!Step(mes_, path + "/packaging", kPackaging)) return Finish();
  } else {
    record_.fault->at_unix_nano = NowNanos();
  }
  Pause(20, 60);
  if (!Step(mes_, path + "/ship", kShipped)) return Finish();
  if (!WaitForStatus(crm_, kShipped, 60)) {
    Fail("CRM never saw SHIPPED");
    return Finish();
  }
  Pause(30, 120);
  if (!Step(crm_, path + "/close", kClosed)) return Finish();
  record_.outcome = "closed";
  if (record_.fault.has_value() && record_.fault->at_unix_nano == 0) {
    record_.fault->at_unix_nano = submitted_at;  // slow calculation, consumer crash
  }
  return Finish();
}

std::vector<OrderPlan> MakePlans(const SimulatorOptions& options) {
  std::mt19937_64 random(options.seed);
  std::vector<OrderPlan> plans(options.orders);
  std::uniform_real_distribution<double> unit(0, 1);
  const double log_min = std::log(static_cast<double>(options.min_polygons));
  const double log_max = std::log(static_cast<double>(options.max_polygons));
  for (int i = 0; i < options.orders; ++i) {
    OrderPlan& plan = plans[i];
    plan.index = i;
    plan.customer_id = "cust-" + std::to_string(options.seed) + "-" + std::to_string(i);
    plan.polygons = static_cast<int64_t>(std::exp(log_min + (log_max - log_min) * unit(random)));
    plan.arrival_seconds = i * 3600.0 / options.orders_per_hour;
    plan.seed = random();
  }
  // Faulted orders: a share of all, every kind at least once when there are orders enough,
  // spread over the run.
  if (!options.faults.empty()) {
    // How many orders each kind gets: its own share, or an even part of --fault-rate; at least
    // one each while orders last.
    std::vector<std::string> shared;
    std::vector<std::pair<std::string, int>> counts;
    for (const std::string& kind : options.faults) {
      auto own = options.fault_rates.find(kind);
      if (own != options.fault_rates.end()) {
        counts.emplace_back(
            kind, std::max(1, static_cast<int>(std::lround(options.orders * own->second))));
      } else {
        shared.push_back(kind);
      }
    }
    if (!shared.empty()) {
      int total = static_cast<int>(std::lround(options.orders * options.fault_rate));
      total = std::max<int>(total, shared.size());
      for (size_t k = 0; k < shared.size(); ++k) {
        counts.emplace_back(shared[k], static_cast<int>(total / shared.size() +
                                                        (k < total % shared.size() ? 1 : 0)));
      }
    }
    std::vector<int> indices(options.orders);
    for (int i = 0; i < options.orders; ++i) indices[i] = i;
    std::shuffle(indices.begin(), indices.end(), random);
    size_t next_index = 0;
    // Round-robin over the kinds, so every kind gets its first order before any gets a second.
    for (bool more = true; more && next_index < indices.size();) {
      more = false;
      for (auto& [kind, left] : counts) {
        if (left == 0 || next_index >= indices.size()) continue;
        plans[indices[next_index++]].fault = FindSimFault(kind);
        --left;
        more = true;
      }
    }
  }
  for (OrderPlan& plan : plans) {
    bool partner = unit(random) < options.partner_share ||
                   (plan.fault != nullptr && plan.fault->name == kFaultPartnerOrderDropped);
    if (partner) plan.partner_id = "partner-" + std::to_string(1 + plan.index % 5);
  }
  return plans;
}

}  // namespace

absl::Status RunSimulation(const SimulatorOptions& options, SimulatorSummary& summary) {
  if (options.orders < 1) return absl::InvalidArgumentError("--orders must be at least 1");
  if (options.time_scale <= 0) return absl::InvalidArgumentError("--time-scale must be > 0");
  if (options.min_polygons < 1 || options.max_polygons < options.min_polygons) {
    return absl::InvalidArgumentError("polygon range must be 1 <= min <= max");
  }
  if (options.concurrency < 1) return absl::InvalidArgumentError("--concurrency must be >= 1");
  if (options.operator_min_minutes < 0 ||
      options.operator_max_minutes < options.operator_min_minutes) {
    return absl::InvalidArgumentError("operator reaction must be 0 <= min <= max minutes");
  }
  for (const auto& [name, url] :
       {std::pair{"shop-api", options.shop_url}, std::pair{"crm-api", options.crm_url},
        std::pair{"mes-api", options.mes_url}}) {
    ServiceClient client(url);
    Reply ready = client.Send("GET", "/readyz");
    if (ready.status != 200) {
      return absl::UnavailableError(
          std::string(name) + " at " + url + " is not ready (" +
          (ready.status == 0 ? ready.error : std::to_string(ready.status)) + ")");
    }
  }
  std::ofstream truth(options.truth_path, std::ios::trunc);
  if (!truth) return absl::InvalidArgumentError("cannot write truth file " + options.truth_path);

  std::vector<OrderPlan> plans = MakePlans(options);
  std::mutex mu;
  size_t next = 0;
  int done = 0;
  const auto start = Clock::now();
  auto worker = [&] {
    while (true) {
      OrderPlan plan;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (next >= plans.size()) return;
        plan = plans[next++];
      }
      auto arrival =
          start + std::chrono::duration_cast<Clock::duration>(
                      std::chrono::duration<double>(plan.arrival_seconds / options.time_scale));
      std::this_thread::sleep_until(arrival);
      TruthRecord record = OrderDriver(options, plan).Drive();
      std::lock_guard<std::mutex> lock(mu);
      truth << EncodeTruth(record) << '\n' << std::flush;
      ++done;
      if (record.outcome == "closed") ++summary.closed;
      if (record.outcome == "stopped") ++summary.stopped;
      if (record.outcome == "sim_error") {
        ++summary.sim_errors;
        std::cerr << "order-sim: order " << (record.order_id.empty() ? "?" : record.order_id)
                  << ": " << record.note << std::endl;
      }
      if (record.fault.has_value()) ++summary.faulted;
      if (done % 25 == 0 || done == options.orders) {
        std::cout << "order-sim: " << done << "/" << options.orders << " orders done (closed "
                  << summary.closed << ", stopped by faults " << summary.stopped << ", errors "
                  << summary.sim_errors << ")" << std::endl;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < std::min(options.concurrency, options.orders); ++i) {
    threads.emplace_back(worker);
  }
  for (std::thread& thread : threads) thread.join();
  return absl::OkStatus();
}

}  // namespace ordertrace::services::sim
