#include "services/common/service_options.h"

#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/listen_address.h"

namespace ordertrace::services {
namespace {

// One setting: its names in the three sources, and how a text value is applied.
struct Setting {
  std::string key;  // YAML key; the flag is --key with '-' for '_'
  std::string env;
  std::string help;
  std::function<std::string(const std::string&, ServiceOptions&)> apply;  // error text or ""
  std::string value;  // from a flag or the environment (CLI11 fills it)
  CLI::Option* option = nullptr;
};

std::string ApplyDouble(const std::string& text, double& out, const char* what) {
  double value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || !std::isfinite(value) ||
      value <= 0) {
    return absl::StrCat(what, " must be a positive number, got '", text, "'");
  }
  out = value;
  return "";
}

std::string ApplyInt(const std::string& text, int64_t& out, const char* what, int64_t min) {
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < min) {
    return absl::StrCat(what, " must be an integer >= ", min, ", got '", text, "'");
  }
  out = value;
  return "";
}

// "KEY=VALUE" items separated by commas or newlines (a repeated flag's values are joined with
// newlines).
std::string ApplyHeaders(const std::string& text, std::map<std::string, std::string>& out) {
  std::map<std::string, std::string> headers;
  for (absl::string_view item : absl::StrSplit(text, absl::ByAnyChar(",\n"), absl::SkipEmpty())) {
    item = absl::StripAsciiWhitespace(item);
    if (item.empty()) continue;
    size_t equals = item.find('=');
    absl::string_view name =
        absl::StripAsciiWhitespace(item.substr(0, std::min(equals, item.size())));
    if (equals == absl::string_view::npos || name.empty() ||
        name.find_first_of(" \t:") != absl::string_view::npos) {
      return absl::StrCat("otlp_header must be KEY=VALUE, got '", item, "'");
    }
    headers[absl::AsciiStrToLower(name)] =
        std::string(absl::StripAsciiWhitespace(item.substr(equals + 1)));
  }
  out = std::move(headers);
  return "";
}

}  // namespace

int ParseServiceOptions(const ServiceIdentity& identity, int argc, char** argv,
                        ServiceOptions& options) {
  const std::string upper = absl::AsciiStrToUpper(std::string(identity.short_name));
  const std::string own_prefix = absl::StrCat("ALEXANDRITE_", upper, "_");
  options.http_listen = std::string(identity.default_http_listen);
  options.db_path = absl::StrCat(identity.short_name, ".db");

  std::vector<Setting> settings = {
      {"http_listen", own_prefix + "HTTP_LISTEN",
       absl::StrCat("HTTP API address HOST:PORT [", identity.default_http_listen, "]"),
       [](const std::string& v, ServiceOptions& o) -> std::string {
         absl::StatusOr<base::ListenAddress> address = base::ParseListenAddress(v);
         if (!address.ok()) return "http_listen: " + std::string(address.status().message());
         o.http_listen = v;
         return "";
       }},
      {"amqp_url", "ALEXANDRITE_AMQP_URL",
       "RabbitMQ URL amqp://USER:PASS@HOST:PORT/VHOST [amqp://guest:guest@127.0.0.1:5672/]",
       [](const std::string& v, ServiceOptions& o) -> std::string {
         if (!absl::StartsWith(v, "amqp://"))
           return "amqp_url must start with amqp://, got '" + v + "'";
         o.amqp_url = v;
         return "";
       }},
      {"otlp_endpoint", "ALEXANDRITE_OTLP_ENDPOINT",
       "OTLP/HTTP traces endpoint; empty turns export off [http://127.0.0.1:4318/v1/traces]",
       [](const std::string& v, ServiceOptions& o) -> std::string {
         if (!v.empty() && !absl::StartsWith(v, "http://") && !absl::StartsWith(v, "https://")) {
           return "otlp_endpoint must be an http:// or https:// URL, got '" + v + "'";
         }
         o.otlp_endpoint = v;
         return "";
       }},
      {"otlp_ca_file", "ALEXANDRITE_OTLP_CA_FILE",
       "PEM CA file to verify an https:// otlp_endpoint against [the system's CAs]",
       [](const std::string& v, ServiceOptions& o) -> std::string {
         if (!v.empty() && !std::ifstream(v).good()) {
           return "otlp_ca_file " + v + " cannot be read";
         }
         o.otlp_ca_file = v;
         return "";
       }},
      {"otlp_header", "ALEXANDRITE_OTLP_HEADERS",
       "header KEY=VALUE sent with every export, repeatable (e.g. 'authorization=Bearer T'); "
       "the environment takes KEY=VALUE,KEY=VALUE",
       [](const std::string& v, ServiceOptions& o) { return ApplyHeaders(v, o.otlp_headers); }},
      {"db", own_prefix + "DB", absl::StrCat("SQLite database file [", options.db_path, "]"),
       [](const std::string& v, ServiceOptions& o) -> std::string {
         if (v.empty()) return "db must not be empty";
         o.db_path = v;
         return "";
       }},
      {"time_scale", "ALEXANDRITE_TIME_SCALE",
       "simulated seconds per real second; business durations are divided by it [600]",
       [](const std::string& v, ServiceOptions& o) {
         return ApplyDouble(v, o.time_scale, "time_scale");
       }},
      {"demo_faults", "ALEXANDRITE_DEMO_FAULTS",
       "on: faults can be armed through /api/demo/faults (demos and detection tests only) [off]",
       [](const std::string& v, ServiceOptions& o) -> std::string {
         if (v == "on" || v == "true") {
           o.demo_faults = true;
         } else if (v == "off" || v == "false") {
           o.demo_faults = false;
         } else {
           return "demo_faults must be on or off, got '" + v + "'";
         }
         return "";
       }},
      {"max_body_bytes", own_prefix + "MAX_BODY_BYTES",
       "largest HTTP request body accepted, in bytes [134217728]",
       [](const std::string& v, ServiceOptions& o) {
         return ApplyInt(v, o.max_body_bytes, "max_body_bytes", 1);
       }},
  };
  if (identity.has_dashboard) {
    settings.push_back({"dashboard_indexes", own_prefix + "DASHBOARD_INDEXES",
                        "on: the dashboard's indexes exist (the fix); off: the slow query [on]",
                        [](const std::string& v, ServiceOptions& o) -> std::string {
                          if (v == "on" || v == "true") {
                            o.dashboard_indexes = true;
                          } else if (v == "off" || v == "false") {
                            o.dashboard_indexes = false;
                          } else {
                            return "dashboard_indexes must be on or off, got '" + v + "'";
                          }
                          return "";
                        }});
    settings.push_back({"seed_history", own_prefix + "SEED_HISTORY",
                        "finished historical orders added at start, to show the dashboard at "
                        "scale [0]",
                        [](const std::string& v, ServiceOptions& o) {
                          return ApplyInt(v, o.seed_history, "seed_history", 0);
                        }});
  }

  CLI::App app{absl::StrCat(identity.name, ": ", identity.description,
                            ".\nSettings come from flags, then the environment, then --config "
                            "FILE (YAML, keys as below with '_'), then defaults.")};
  app.name(std::string(identity.name));
  std::string config_path;
  app.add_option("--config", config_path, "YAML file with any of the settings below")
      ->check(CLI::ExistingFile);
  for (Setting& setting : settings) {
    std::string flag = "--" + setting.key;
    std::replace(flag.begin(), flag.end(), '_', '-');
    setting.option = app.add_option(flag, setting.value, setting.help)->envname(setting.env);
    if (setting.key == "otlp_header") {
      setting.option->multi_option_policy(CLI::MultiOptionPolicy::Join);
    }
  }
  auto fail = [&](const std::string& message) {
    std::cerr << identity.name << ": " << message << std::endl;
    return 2;
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    return fail(std::string(e.what()) + " (see --help)");
  }

  std::map<std::string, std::string> from_file;
  if (!config_path.empty()) {
    try {
      YAML::Node root = YAML::LoadFile(config_path);
      if (!root.IsNull()) {
        if (!root.IsMap()) return fail(config_path + ": the top level must be a map of settings");
        for (const auto& entry : root) {
          std::string key = entry.first.as<std::string>();
          bool known = std::any_of(settings.begin(), settings.end(),
                                   [&](const Setting& s) { return s.key == key; });
          if (!known) return fail(absl::StrCat(config_path, ": unknown setting '", key, "'"));
          if (!entry.second.IsScalar() && !entry.second.IsNull()) {
            return fail(absl::StrCat(config_path, ": '", key, "' must be a single value"));
          }
          from_file[key] = entry.second.IsNull() ? "" : entry.second.Scalar();
        }
      }
    } catch (const YAML::Exception& e) {
      return fail(absl::StrCat(config_path, ": ", e.what()));
    }
  }
  for (Setting& setting : settings) {
    const bool given = setting.option->count() > 0;
    // CLI11 skips an empty environment variable; an empty value still means something here
    // (e.g. ALEXANDRITE_OTLP_ENDPOINT= turns export off).
    const char* from_env = given ? nullptr : std::getenv(setting.env.c_str());
    std::string value;
    if (given) {
      value = setting.value;
    } else if (from_env != nullptr) {
      value = from_env;
    } else if (auto it = from_file.find(setting.key); it != from_file.end()) {
      value = it->second;
    } else {
      continue;
    }
    std::string error = setting.apply(value, options);
    if (!error.empty()) return fail(error);
  }
  return -1;
}

}  // namespace ordertrace::services
