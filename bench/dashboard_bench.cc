// The MES dashboard's query before and after its fix (docs/services.md, "The slow dashboard, and
// its fix"): the same database of N historical orders plus a few waiting ones, queried with the
// indexes dropped and then created; prints the plan and latency percentiles of each.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <vector>

#include "services/common/order_store.h"
#include "services/common/sqlite_db.h"
#include "services/mes/dashboard.h"

namespace {

using ordertrace::services::SqliteDb;
namespace mes = ordertrace::services::mes;

int Fail(const std::string& what, const absl::Status& status) {
  std::cerr << "dashboard_bench: " << what << ": " << status.message() << std::endl;
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Latency of the MES dashboard query without and with its indexes"};
  int64_t history = 50000;
  int64_t waiting = 60;
  int runs = 10;
  std::string path = "/tmp/ordertrace_dashboard_bench.db";
  app.add_option("--history", history, "Finished historical orders")->capture_default_str();
  app.add_option("--waiting", waiting, "Orders waiting for manufacturing")->capture_default_str();
  app.add_option("--runs", runs, "Queries per variant")->capture_default_str();
  app.add_option("--db", path, "Scratch database (replaced)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  absl::StatusOr<std::unique_ptr<SqliteDb>> db = SqliteDb::Open(path);
  if (!db.ok()) return Fail("open", db.status());
  if (absl::Status s = (*db)->ExecScript(ordertrace::services::kOrderSchema); !s.ok()) {
    return Fail("schema", s);
  }
  if (absl::Status s = mes::SeedHistory(**db, history); !s.ok()) return Fail("seed", s);
  // The waiting orders: the newest historical ones, moved back to PRICE_CALCULATED.
  absl::StatusOr<int64_t> moved = (*db)->Execute(
      "UPDATE orders SET status = 'PRICE_CALCULATED' WHERE order_id IN"
      " (SELECT order_id FROM orders ORDER BY order_id LIMIT ?1)",
      {waiting});
  if (!moved.ok()) return Fail("waiting orders", moved.status());
  std::printf(
      "dashboard_bench: %lld historical orders (%lld order_events rows), %lld waiting, %d runs "
      "each\n",
      static_cast<long long>(history), static_cast<long long>(history * 11),
      static_cast<long long>(*moved), runs);

  for (bool indexes : {false, true}) {
    if (absl::Status s = mes::SetDashboardIndexes(**db, indexes); !s.ok())
      return Fail("indexes", s);
    absl::StatusOr<std::string> plan = mes::ExplainNewOrders(**db);
    if (!plan.ok()) return Fail("explain", plan.status());
    std::vector<double> millis;
    size_t rows = 0;
    for (int i = 0; i < runs; ++i) {
      auto start = std::chrono::steady_clock::now();
      absl::StatusOr<std::vector<mes::DashboardRow>> result = mes::QueryNewOrders(**db, 50);
      auto end = std::chrono::steady_clock::now();
      if (!result.ok()) return Fail("query", result.status());
      rows = result->size();
      millis.push_back(std::chrono::duration<double, std::milli>(end - start).count());
    }
    std::sort(millis.begin(), millis.end());
    std::string indented = *plan;
    for (size_t at = indented.find('\n'); at != std::string::npos;
         at = indented.find('\n', at + 3)) {
      indented.replace(at, 1, "\n  ");
    }
    std::printf("\nindexes %s: %zu rows, median %.2f ms, max %.2f ms\nplan:\n  %s\n",
                indexes ? "on (the fix)" : "off (the slow query)", rows, millis[millis.size() / 2],
                millis.back(), indented.c_str());
  }
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  return 0;
}
