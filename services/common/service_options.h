// The settings every Alexandrite service takes (docs/services.md, "Running them"), from, in
// increasing precedence: defaults, a YAML file (--config), environment variables, flags.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace ordertrace::services {

// Which service the options are for: names, default port and the settings only it has.
struct ServiceIdentity {
  const char* name;        // "shop-api"
  const char* short_name;  // "shop"; the environment prefix is ALEXANDRITE_SHOP_
  const char* default_http_listen;
  const char* description;     // one line for --help
  bool has_dashboard = false;  // mes-api's dashboard settings
};

inline constexpr ServiceIdentity kShopIdentity{
    "shop-api", "shop", "127.0.0.1:8081",
    "Alexandrite Shop: customers' and partners' orders, 3D model upload, submission", false};
inline constexpr ServiceIdentity kCrmIdentity{
    "crm-api", "crm", "127.0.0.1:8082",
    "Alexandrite CRM: its view of every order, manufacturing approval, closing", false};
inline constexpr ServiceIdentity kMesIdentity{
    "mes-api", "mes", "127.0.0.1:8083",
    "Alexandrite MES: price calculation, manufacturing, packaging, shipping, dashboard", true};

struct ServiceOptions {
  std::string http_listen;  // HOST:PORT; port 0 picks a free port
  std::string amqp_url = "amqp://guest:guest@127.0.0.1:5672/";
  std::string otlp_endpoint = "http://127.0.0.1:4318/v1/traces";  // empty: no export
  // PEM CA certificates an https:// otlp_endpoint is verified against; empty: the system's.
  std::string otlp_ca_file;
  // Headers sent with every export (e.g. authorization: Bearer ...): --otlp-header KEY=VALUE,
  // repeatable; in the environment and the YAML file KEY=VALUE,KEY=VALUE (values without
  // commas), as OTEL_EXPORTER_OTLP_HEADERS writes them. Names are lower-cased.
  std::map<std::string, std::string> otlp_headers;
  std::string db_path;
  // Simulated seconds per real second: business durations (the price calculation) are divided
  // by it. 600: ten simulated minutes per second.
  double time_scale = 600;
  // mes-api: whether the dashboard's indexes exist (the fix), and how many finished historical
  // orders to add at start, to show the slow query at scale.
  bool dashboard_indexes = true;
  int64_t seed_history = 0;
  // The largest HTTP request body (a model file) accepted.
  int64_t max_body_bytes = 128LL << 20;
  // Demo only: the fault switch (fault_switch.h) and its endpoint /api/demo/faults exist.
  bool demo_faults = false;
};

// Parses the command line, environment and YAML file for `identity`. Returns -1 with `options`
// filled when the service should run; otherwise the exit code (0 after --help, 2 after an
// error, which it has printed as one line on stderr).
int ParseServiceOptions(const ServiceIdentity& identity, int argc, char** argv,
                        ServiceOptions& options);

}  // namespace ordertrace::services
