#include "server/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <limits>
#include <map>

#include "base/listen_address.h"
#include "lifecycle/order_record_builder.h"

namespace ordertrace::server {
namespace {

// A scalar setter per key path; the table is the list of known keys.
using Setter = std::function<absl::Status(const YAML::Node&)>;

template <typename T>
Setter Number(T& field) {
  return [&field](const YAML::Node& node) -> absl::Status {
    if (!node.IsScalar()) return absl::InvalidArgumentError("must be a number");
    const std::string s = node.Scalar();
    T v{};
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) {
      return absl::InvalidArgumentError("'" + s + "' is not a valid number");
    }
    field = v;
    return absl::OkStatus();
  };
}

Setter Text(std::string& field) {
  return [&field](const YAML::Node& node) -> absl::Status {
    if (!node.IsScalar()) return absl::InvalidArgumentError("must be a string");
    field = node.Scalar();
    return absl::OkStatus();
  };
}

// A list of host names, lower-cased (they are compared with a request's Host).
Setter HostNames(std::vector<std::string>& field) {
  return [&field](const YAML::Node& node) -> absl::Status {
    if (!node.IsSequence()) return absl::InvalidArgumentError("must be a list of host names");
    std::vector<std::string> names;
    for (const YAML::Node& item : node) {
      if (!item.IsScalar() || item.Scalar().empty()) {
        return absl::InvalidArgumentError("must be a list of host names");
      }
      std::string name = item.Scalar();
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      names.push_back(std::move(name));
    }
    field = std::move(names);
    return absl::OkStatus();
  };
}

Setter Boolean(bool& field) {
  return [&field](const YAML::Node& node) -> absl::Status {
    const std::string s = node.IsScalar() ? node.Scalar() : "";
    if (s == "true" || s == "yes" || s == "on") {
      field = true;
    } else if (s == "false" || s == "no" || s == "off") {
      field = false;
    } else {
      return absl::InvalidArgumentError("must be true or false");
    }
    return absl::OkStatus();
  };
}

Setter Seconds(uint64_t& field) {
  return [&field](const YAML::Node& node) -> absl::Status {
    if (!node.IsScalar()) return absl::InvalidArgumentError("must be a duration such as 14d");
    absl::StatusOr<uint64_t> nanos = ParseDurationNanos(node.Scalar());
    if (!nanos.ok()) return nanos.status();
    field = *nanos / base::kNanosPerSecond;
    return absl::OkStatus();
  };
}

Setter Nanos(uint64_t& field) {
  return [&field](const YAML::Node& node) -> absl::Status {
    if (!node.IsScalar()) return absl::InvalidArgumentError("must be a duration such as 24h");
    absl::StatusOr<uint64_t> nanos = ParseDurationNanos(node.Scalar());
    if (!nanos.ok()) return nanos.status();
    field = *nanos;
    return absl::OkStatus();
  };
}

Setter Millis(std::chrono::milliseconds& field) {
  return [&field](const YAML::Node& node) -> absl::Status {
    if (!node.IsScalar()) return absl::InvalidArgumentError("must be a duration such as 10s");
    absl::StatusOr<uint64_t> nanos = ParseDurationNanos(node.Scalar());
    if (!nanos.ok()) return nanos.status();
    field = std::chrono::milliseconds(*nanos / 1'000'000);
    return absl::OkStatus();
  };
}

// forward.protocol: "http/protobuf" or "grpc", as OTEL_EXPORTER_OTLP_PROTOCOL names them.
Setter ForwardProtocol(forward::OtlpForwarderOptions::Protocol& field) {
  return [&field](const YAML::Node& node) -> absl::Status {
    const std::string s = node.IsScalar() ? node.Scalar() : "";
    if (s == "http/protobuf") {
      field = forward::OtlpForwarderOptions::Protocol::kHttpProtobuf;
    } else if (s == "grpc") {
      field = forward::OtlpForwarderOptions::Protocol::kGrpc;
    } else {
      return absl::InvalidArgumentError("must be http/protobuf or grpc, got '" + s + "'");
    }
    return absl::OkStatus();
  };
}

Setter Megabytes(size_t& field) {
  return [&field](const YAML::Node& node) -> absl::Status {
    size_t mb = 0;
    absl::Status s = Number(mb)(node);
    if (!s.ok()) return s;
    if (mb > (std::numeric_limits<size_t>::max() >> 20)) {
      return absl::InvalidArgumentError("'" + node.Scalar() + "' megabytes is too large");
    }
    field = mb << 20;
    return absl::OkStatus();
  };
}

std::map<std::string, Setter> KnownKeys(ServerConfig& c) {
  return {
      {"data_dir", Text(c.data_dir)},
      {"log_level", Text(c.log_level)},
      {"listen.otlp_grpc", Text(c.otlp_grpc_listen)},
      {"listen.otlp_http", Text(c.otlp_http_listen)},
      {"listen.http", Text(c.http_listen)},
      {"ingest.max_request_mb", Megabytes(c.max_request_bytes)},
      {"ingest.max_queued_spans", Number(c.ingest.max_queued_spans)},
      {"ingest.max_queued_mb", Megabytes(c.ingest.max_queued_bytes)},
      {"ingest.decode_budget_mb", Megabytes(c.decode_budget.total_bytes)},
      {"ingest.max_decoded_request_mb", Megabytes(c.decode_budget.max_request_bytes)},
      {"ingest.max_span_age", Nanos(c.max_span_age_nanos)},
      {"ingest.max_span_future", Nanos(c.ingest.limits.max_span_future_nanos)},
      {"ingest.max_order_id_bytes", Number(c.ingest.limits.max_order_id_bytes)},
      {"ingest.max_attribute_key_bytes", Number(c.ingest.limits.max_attribute_key_bytes)},
      {"ingest.max_attribute_value_bytes", Number(c.ingest.limits.max_attribute_value_bytes)},
      {"ingest.max_spans_per_write", Number(c.ingest.max_spans_per_write)},
      {"ingest.retry_after_seconds", Number(c.retry_after_seconds)},
      {"ingest.http_threads", Number(c.http_threads)},
      {"http.io_threads", Number(c.http.io_threads)},
      {"http.allowed_hosts", HostNames(c.allowed_hosts)},
      {"http.max_connections", Number(c.http.max_connections)},
      {"http.max_queued_requests", Number(c.http.max_queued_requests)},
      {"http.max_inflight_mb", Megabytes(c.http.max_inflight_bytes)},
      {"http.idle_timeout", Millis(c.http.idle_timeout)},
      {"http.header_timeout", Millis(c.http.header_timeout)},
      {"http.body_timeout", Millis(c.http.body_timeout)},
      {"http.max_queue_wait", Millis(c.http.max_queue_wait)},
      {"store.sync_writes", Boolean(c.store.sync_writes)},
      {"store.bucket", Seconds(c.store.bucket_seconds)},
      {"store.block_cache_mb", Megabytes(c.store.block_cache_bytes)},
      {"store.write_buffer_mb", Megabytes(c.store.write_buffer_bytes)},
      {"store.min_free_mb", Megabytes(c.store.min_free_bytes)},
      {"retention.spans", Seconds(c.retention.span_retention_seconds)},
      {"retention.orders", Seconds(c.retention.order_retention_seconds)},
      {"retention.interval", Seconds(c.retention.interval_seconds)},
      {"query.search_window", Nanos(c.query.default_search_window_nanos)},
      {"query.max_scanned_blocks", Number(c.query.max_scanned_blocks)},
      {"alertmanager.url", Text(c.alertmanager_url)},
      {"alertmanager.external_url", Text(c.external_url)},
      {"alertmanager.resend_interval", Nanos(c.alertmanager_resend_nanos)},
      {"alertmanager.ca_file", Text(c.alertmanager_ca_file)},
      {"alertmanager.cert_file", Text(c.alertmanager_cert_file)},
      {"alertmanager.key_file", Text(c.alertmanager_key_file)},
      {"console.enabled", Boolean(c.console_enabled)},
      {"console.dir", Text(c.console_dir)},
      {"audit.enabled", Boolean(c.audit_enabled)},
      {"audit.file", Text(c.audit.path)},
      {"audit.max_mb", Megabytes(c.audit.max_bytes)},
      {"audit.keep_files", Number(c.audit.keep_files)},
      {"forward.endpoint", Text(c.forward.endpoint)},
      {"forward.protocol", ForwardProtocol(c.forward.protocol)},
      {"forward.tls", Boolean(c.forward.tls)},
      {"forward.ca_file", Text(c.forward.ca_file)},
      {"forward.client_cert_file", Text(c.forward.client_cert_file)},
      {"forward.client_key_file", Text(c.forward.client_key_file)},
      {"forward.timeout", Millis(c.forward.timeout)},
      {"forward.max_queue_mb", Megabytes(c.forward.max_queue_bytes)},
      {"forward.max_batch_spans", Number(c.forward.max_batch_spans)},
      {"forward.max_batch_mb", Megabytes(c.forward.max_batch_bytes)},
      {"forward.initial_backoff", Millis(c.forward.initial_backoff)},
      {"forward.max_backoff", Millis(c.forward.max_backoff)},
      {"tls.cert_file", Text(c.tls.cert_file)},
      {"tls.key_file", Text(c.tls.key_file)},
      {"tls.client_ca_file", Text(c.tls.client_ca_file)},
      {"lifecycle.message_sla", Nanos(c.lifecycle.message_sla_nanos)},
      {"lifecycle.grace", Nanos(c.lifecycle.grace_nanos)},
      {"lifecycle.time_scale", Number(c.lifecycle.time_scale)},
      {"lifecycle.watermarks.idle_after", Nanos(c.gap_detector.watermarks.idle_after_nanos)},
      {"lifecycle.watermarks.silent_after", Nanos(c.gap_detector.watermarks.silent_after_nanos)},
      {"lifecycle.watermarks.live_lag", Nanos(c.gap_detector.watermarks.live_lag_nanos)},
      {"lifecycle.watermarks.catch_up_idle_after",
       Nanos(c.gap_detector.watermarks.catch_up_idle_after_nanos)},
      {"lifecycle.watermarks.allowed_lateness",
       Nanos(c.gap_detector.watermarks.allowed_lateness_nanos)},
      {"metrics.enabled", Boolean(c.metrics_enabled)},
      {"metrics.price_calc_span", Text(c.metrics.price_calc_span)},
      {"metrics.max_series", Number(c.metrics.max_series)},
      {"pii.enabled", Boolean(c.pii.enabled)},
      {"pii.operator_id_secret", Text(c.operator_id_secret)},
      {"sampling.enabled", Boolean(c.sampling.enabled)},
      {"sampling.ratio", Number(c.sampling.ratio)},
      {"sampling.slow_threshold", Nanos(c.sampling.slow_threshold_nanos)},
      {"sampling.decision_wait", Nanos(c.sampling.decision_wait_nanos)},
      {"sampling.max_pending_spans", Number(c.sampling.max_pending_spans)},
      {"sampling.max_pending_mb", Megabytes(c.sampling.max_pending_bytes)},
      {"sampling.max_remembered_traces", Number(c.sampling.max_remembered_traces)},
  };
}

absl::Status Apply(const YAML::Node& node, const std::string& prefix,
                   std::map<std::string, Setter>& keys, const std::string& path) {
  for (const auto& item : node) {
    std::string key = prefix + item.first.as<std::string>();
    if (item.second.IsMap()) {
      absl::Status s = Apply(item.second, key + ".", keys, path);
      if (!s.ok()) return s;
      continue;
    }
    auto it = keys.find(key);
    if (it == keys.end()) {
      return absl::InvalidArgumentError(path + ": unknown setting '" + key + "'");
    }
    if (item.second.IsNull()) continue;  // "key:" with no value keeps the default
    absl::Status s = it->second(item.second);
    if (!s.ok()) {
      return absl::InvalidArgumentError(path + ": " + key + ": " + std::string(s.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<uint64_t> ParseDurationNanos(const std::string& text) {
  if (text.empty()) return absl::InvalidArgumentError("empty duration");
  uint64_t total = 0;
  size_t i = 0;
  bool bare = true;
  while (i < text.size()) {
    uint64_t value = 0;
    auto [p, ec] = std::from_chars(text.data() + i, text.data() + text.size(), value);
    if (ec != std::errc()) {
      return absl::InvalidArgumentError("'" + text + "' is not a duration (e.g. 30s, 10m, 14d)");
    }
    i = p - text.data();
    size_t unit_end = i;
    while (unit_end < text.size() && std::isalpha(static_cast<unsigned char>(text[unit_end]))) {
      ++unit_end;
    }
    std::string unit = text.substr(i, unit_end - i);
    i = unit_end;
    uint64_t scale;
    if (unit.empty()) {
      if (!bare || i != text.size()) {
        return absl::InvalidArgumentError("'" + text + "' is not a duration");
      }
      scale = base::kNanosPerSecond;  // a bare number is seconds
    } else if (unit == "ns") {
      scale = 1;
    } else if (unit == "us") {
      scale = 1000;
    } else if (unit == "ms") {
      scale = 1'000'000;
    } else if (unit == "s") {
      scale = base::kNanosPerSecond;
    } else if (unit == "m") {
      scale = 60 * base::kNanosPerSecond;
    } else if (unit == "h") {
      scale = 3600 * base::kNanosPerSecond;
    } else if (unit == "d") {
      scale = 86400 * base::kNanosPerSecond;
    } else {
      return absl::InvalidArgumentError("'" + text + "' has an unknown unit '" + unit +
                                        "' (use ms, s, m, h or d)");
    }
    bare = false;
    if (value > (UINT64_MAX - total) / scale) {
      return absl::InvalidArgumentError("'" + text + "' is too long a duration");
    }
    total += value * scale;
  }
  return total;
}

// The structured parts of `lifecycle:` (lists and maps), read before the scalar keys. They are
// removed from `lifecycle` so that the generic walk sees only scalars.
absl::Status ApplyLifecycleLists(YAML::Node lifecycle, gaps::StageModelOptions& model) {
  auto strings = [](const YAML::Node& node,
                    const char* key) -> absl::StatusOr<std::vector<std::string>> {
    if (!node.IsSequence()) {
      return absl::InvalidArgumentError(std::string("lifecycle.") + key + " must be a list");
    }
    std::vector<std::string> out;
    for (const YAML::Node& item : node) {
      if (!item.IsScalar()) {
        return absl::InvalidArgumentError(std::string("lifecycle.") + key + " must list names");
      }
      out.push_back(item.Scalar());
    }
    return out;
  };
  if (YAML::Node statuses = lifecycle["statuses"]; statuses) {
    absl::StatusOr<std::vector<std::string>> list = strings(statuses, "statuses");
    if (!list.ok()) return list.status();
    model.statuses = *list;
    // A new list of statuses starts from a straight chain and no stage rules.
    model.transitions.clear();
    for (size_t i = 0; i + 1 < list->size(); ++i) {
      model.transitions.emplace_back((*list)[i], (*list)[i + 1]);
    }
    model.terminal = {list->empty() ? "" : list->back()};
    model.stages.clear();
    lifecycle.remove("statuses");
  }
  if (YAML::Node transitions = lifecycle["transitions"]; transitions) {
    absl::StatusOr<std::vector<std::string>> list = strings(transitions, "transitions");
    if (!list.ok()) return list.status();
    model.transitions.clear();
    for (const std::string& arrow : *list) {
      size_t at = arrow.find("->");
      if (at == std::string::npos) {
        return absl::InvalidArgumentError("lifecycle.transitions: '" + arrow +
                                          "' must read FROM -> TO");
      }
      auto trim = [](std::string s) {
        s.erase(0, s.find_first_not_of(" \t"));
        s.erase(s.find_last_not_of(" \t") + 1);
        return s;
      };
      model.transitions.emplace_back(trim(arrow.substr(0, at)), trim(arrow.substr(at + 2)));
    }
    lifecycle.remove("transitions");
  }
  if (YAML::Node terminal = lifecycle["terminal"]; terminal) {
    absl::StatusOr<std::vector<std::string>> list = strings(terminal, "terminal");
    if (!list.ok()) return list.status();
    model.terminal = *list;
    lifecycle.remove("terminal");
  }
  if (YAML::Node stages = lifecycle["stages"]; stages) {
    if (!stages.IsMap()) return absl::InvalidArgumentError("lifecycle.stages must be a map");
    for (const auto& entry : stages) {
      const std::string status = entry.first.as<std::string>();
      const YAML::Node& rule_node = entry.second;
      const std::string where = "lifecycle.stages." + status;
      if (!rule_node.IsMap()) return absl::InvalidArgumentError(where + " must be a map");
      // A stage that has a rule already (the defaults) keeps the fields not given here.
      auto existing = std::find_if(model.stages.begin(), model.stages.end(),
                                   [&](const gaps::StageRule& r) { return r.status == status; });
      gaps::StageRule rule = existing != model.stages.end() ? *existing : gaps::StageRule{};
      rule.status = status;
      for (const auto& field : rule_node) {
        const std::string key = field.first.as<std::string>();
        if (key == "expected") {
          if (field.second.IsScalar()) {
            rule.expected = {field.second.Scalar()};
          } else {
            absl::StatusOr<std::vector<std::string>> list = strings(field.second, "stages");
            if (!list.ok())
              return absl::InvalidArgumentError(where + ".expected must list statuses");
            rule.expected = *list;
          }
        } else if (key == "sla") {
          absl::StatusOr<uint64_t> sla = field.second.IsScalar()
                                             ? ParseDurationNanos(field.second.Scalar())
                                             : absl::InvalidArgumentError("must be a duration");
          if (!sla.ok())
            return absl::InvalidArgumentError(where +
                                              ".sla: " + std::string(sla.status().message()));
          rule.sla_nanos = *sla;
        } else if (key == "calculation") {
          absl::Status s = Boolean(rule.calculation)(field.second);
          if (!s.ok())
            return absl::InvalidArgumentError(where + ".calculation: " + std::string(s.message()));
        } else {
          return absl::InvalidArgumentError("unknown setting '" + where + "." + key + "'");
        }
      }
      if (existing != model.stages.end()) {
        *existing = rule;
      } else {
        model.stages.push_back(rule);
      }
    }
    lifecycle.remove("stages");
  }
  if (YAML::Node partners = lifecycle["partners"]; partners) {
    if (!partners.IsMap()) return absl::InvalidArgumentError("lifecycle.partners must be a map");
    for (const auto& partner : partners) {
      const std::string id = partner.first.as<std::string>();
      if (!partner.second.IsMap()) {
        return absl::InvalidArgumentError("lifecycle.partners." + id + " must map stages to SLAs");
      }
      for (const auto& stage : partner.second) {
        const std::string name = stage.first.as<std::string>();
        absl::StatusOr<uint64_t> sla = stage.second.IsScalar()
                                           ? ParseDurationNanos(stage.second.Scalar())
                                           : absl::InvalidArgumentError("must be a duration");
        if (!sla.ok()) {
          return absl::InvalidArgumentError("lifecycle.partners." + id + "." + name + ": " +
                                            std::string(sla.status().message()));
        }
        model.partner_sla_nanos[id][name] = *sla;
      }
    }
    lifecycle.remove("partners");
  }
  return absl::OkStatus();
}

// `auth.tokens`: a list of {name, role, partner_id, sha256}, each checked here so that the
// error names the entry; the list is taken out of the node before the plain keys are applied.
absl::Status ApplyAuthTokens(YAML::Node auth, auth::AuthOptions& options) {
  YAML::Node tokens = auth["tokens"];
  if (!tokens) return absl::OkStatus();
  if (!tokens.IsSequence() && !tokens.IsNull()) {
    return absl::InvalidArgumentError("auth.tokens must be a list of {name, role, sha256}");
  }
  options.tokens.clear();
  for (size_t i = 0; tokens.IsSequence() && i < tokens.size(); ++i) {
    const YAML::Node entry = tokens[i];
    const std::string where = "auth.tokens[" + std::to_string(i) + "]";
    if (!entry.IsMap()) return absl::InvalidArgumentError(where + " must be a mapping");
    auth::TokenEntry token;
    for (const auto& field : entry) {
      const std::string key = field.first.as<std::string>();
      if (!field.second.IsScalar()) {
        return absl::InvalidArgumentError(where + "." + key + " must be a single value");
      }
      const std::string value = field.second.as<std::string>();
      if (key == "name") {
        token.name = value;
      } else if (key == "role") {
        std::optional<auth::Role> role = auth::ParseRole(value);
        if (!role) {
          return absl::InvalidArgumentError(
              where + ".role must be support, dev, ops, partner_readonly or ingest, got '" + value +
              "'");
        }
        token.role = *role;
      } else if (key == "partner_id") {
        token.partner_id = value;
      } else if (key == "sha256") {
        std::optional<std::array<uint8_t, 32>> hash = auth::ParseSha256Hex(value);
        if (!hash) {
          return absl::InvalidArgumentError(
              where + ".sha256 must be 64 hex digits (printf %s \"$TOKEN\" | sha256sum)");
        }
        token.sha256 = *hash;
      } else if (key == "token" || key == "secret") {
        return absl::InvalidArgumentError(where + ": tokens are never written in clear; give " +
                                          "their sha256 (printf %s \"$TOKEN\" | sha256sum)");
      } else {
        return absl::InvalidArgumentError(where + ": unknown field '" + key + "'");
      }
    }
    if (token.sha256 == std::array<uint8_t, 32>{}) {
      return absl::InvalidArgumentError(where + " needs sha256");
    }
    if (!entry["role"]) return absl::InvalidArgumentError(where + " needs a role");
    options.tokens.push_back(std::move(token));
  }
  auth.remove("tokens");
  return auth::ValidateTokens(options.tokens);
}

// `pii.rules`: a list of {name, key_pattern, value_pattern, action}. An entry named like a
// default rule (email, phone) changes the fields it gives; any other is added after them.
// Patterns are compiled at start (PiiScrubber::Create), which names the rule of a bad one.
absl::Status ApplyPiiRules(YAML::Node pii, scrub::PiiScrubberOptions& options) {
  YAML::Node rules = pii["rules"];
  if (!rules) return absl::OkStatus();
  if (!rules.IsSequence() && !rules.IsNull()) {
    return absl::InvalidArgumentError(
        "pii.rules must be a list of {name, key_pattern, value_pattern, action}");
  }
  for (size_t i = 0; rules.IsSequence() && i < rules.size(); ++i) {
    const YAML::Node entry = rules[i];
    const std::string where = "pii.rules[" + std::to_string(i) + "]";
    if (!entry.IsMap()) return absl::InvalidArgumentError(where + " must be a mapping");
    const YAML::Node name = entry["name"];
    if (!name || !name.IsScalar() || name.Scalar().empty()) {
      return absl::InvalidArgumentError(where + " needs a name");
    }
    auto existing = std::find_if(options.rules.begin(), options.rules.end(),
                                 [&](const scrub::PiiRule& r) { return r.name == name.Scalar(); });
    scrub::PiiRule rule = existing != options.rules.end() ? *existing : scrub::PiiRule{};
    rule.name = name.Scalar();
    for (const auto& field : entry) {
      const std::string key = field.first.as<std::string>();
      if (!field.second.IsScalar() && !field.second.IsNull()) {
        return absl::InvalidArgumentError(where + "." + key + " must be a single value");
      }
      const std::string value = field.second.IsNull() ? "" : field.second.Scalar();
      if (key == "name") {
        continue;
      } else if (key == "key_pattern") {
        rule.key_pattern = value;
        rule.key_needs.clear();  // the default's hint no longer holds
      } else if (key == "value_pattern") {
        rule.value_pattern = value;
        rule.value_needs_char = '\0';
        rule.value_min_digits = 0;
        rule.value_may_match = nullptr;
      } else if (key == "action") {
        if (value == "remove") {
          rule.action = scrub::PiiAction::kRemove;
        } else if (value == "mask") {
          rule.action = scrub::PiiAction::kMask;
        } else {
          return absl::InvalidArgumentError(where + ".action must be remove or mask, got '" +
                                            value + "'");
        }
      } else {
        return absl::InvalidArgumentError(where + ": unknown field '" + key + "'");
      }
    }
    if (existing != options.rules.end()) {
      *existing = std::move(rule);
    } else {
      options.rules.push_back(std::move(rule));
    }
  }
  pii.remove("rules");
  return absl::OkStatus();
}

// `forward.headers`: a map of header names to values, taken out of the node before the plain
// keys are applied (its keys are the operator's, not ours).
absl::Status ApplyForwardHeaders(YAML::Node forward, forward::OtlpForwarderOptions& options) {
  YAML::Node headers = forward["headers"];
  if (!headers) return absl::OkStatus();
  if (!headers.IsMap() && !headers.IsNull()) {
    return absl::InvalidArgumentError(
        "forward.headers must be a map of header names to values (X-Scope-OrgID: tenant)");
  }
  options.headers.clear();
  for (const auto& entry : headers) {
    const std::string name = entry.first.as<std::string>();
    const bool name_ok = !name.empty() && std::all_of(name.begin(), name.end(), [](char ch) {
      return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_';
    });
    if (!name_ok) {
      return absl::InvalidArgumentError("forward.headers: '" + name +
                                        "' is not a header name (letters, digits, - and _)");
    }
    if (!entry.second.IsScalar()) {
      return absl::InvalidArgumentError("forward.headers." + name + " must be a single value");
    }
    std::string value = entry.second.Scalar();
    // "${NAME}" is read from the environment, so that credentials need not sit in the file.
    if (value.size() > 3 && value.rfind("${", 0) == 0 && value.back() == '}') {
      const std::string variable = value.substr(2, value.size() - 3);
      const char* from_env = std::getenv(variable.c_str());
      if (from_env == nullptr) {
        return absl::InvalidArgumentError("forward.headers." + name + ": environment variable " +
                                          variable + " is not set");
      }
      value = from_env;
    }
    if (value.find_first_of("\r\n") != std::string::npos) {
      return absl::InvalidArgumentError("forward.headers." + name + " must be one line");
    }
    options.headers[name] = value;
  }
  forward.remove("headers");
  return absl::OkStatus();
}

absl::StatusOr<ServerConfig> LoadConfigFile(const std::string& path, ServerConfig base) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("cannot read config file " + path);
  YAML::Node root;
  try {
    root = YAML::Load(in);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(path + ": not valid YAML: " + e.what());
  }
  if (root.IsNull()) return base;
  if (!root.IsMap()) return absl::InvalidArgumentError(path + ": must be a YAML mapping");
  std::map<std::string, Setter> keys = KnownKeys(base);
  try {
    if (YAML::Node lifecycle = root["lifecycle"]; lifecycle && lifecycle.IsMap()) {
      absl::Status lists = ApplyLifecycleLists(lifecycle, base.lifecycle);
      if (!lists.ok())
        return absl::InvalidArgumentError(path + ": " + std::string(lists.message()));
    }
    if (YAML::Node auth = root["auth"]; auth && auth.IsMap()) {
      absl::Status tokens = ApplyAuthTokens(auth, base.auth);
      if (!tokens.ok())
        return absl::InvalidArgumentError(path + ": " + std::string(tokens.message()));
    }
    if (YAML::Node pii = root["pii"]; pii && pii.IsMap()) {
      absl::Status rules = ApplyPiiRules(pii, base.pii);
      if (!rules.ok())
        return absl::InvalidArgumentError(path + ": " + std::string(rules.message()));
    }
    if (YAML::Node forward = root["forward"]; forward && forward.IsMap()) {
      absl::Status headers = ApplyForwardHeaders(forward, base.forward);
      if (!headers.ok())
        return absl::InvalidArgumentError(path + ": " + std::string(headers.message()));
    }
    absl::Status s = Apply(root, "", keys, path);
    if (!s.ok()) return s;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(path + ": " + e.what());
  }
  return base;
}

namespace {

absl::Status OutOfRange(const std::string& key, uint64_t low, uint64_t high,
                        const std::string& unit = "") {
  return absl::InvalidArgumentError(key + " must be from " + std::to_string(low) + unit + " to " +
                                    std::to_string(high) + unit);
}

// The `http:` section: each number within what one process can hold.
absl::Status ValidateHttp(const ServerConfig& c) {
  const http::ServerOptions& h = c.http;
  if (h.io_threads < 1 || h.io_threads > 64) return OutOfRange("http.io_threads", 1, 64);
  if (h.max_connections < 1 || h.max_connections > 100'000) {
    return OutOfRange("http.max_connections", 1, 100'000);
  }
  if (h.max_queued_requests < 1 || h.max_queued_requests > 100'000) {
    return OutOfRange("http.max_queued_requests", 1, 100'000);
  }
  constexpr size_t kMaxInflightMb = 64 << 10;
  // Below ingest.max_request_mb it is raised to that for OTLP/HTTP (otlp_http_receiver.cc), so
  // that the largest request allowed can be admitted at all.
  if (h.max_inflight_bytes < (size_t{1} << 20) || h.max_inflight_bytes > (kMaxInflightMb << 20)) {
    return OutOfRange("http.max_inflight_mb", 1, kMaxInflightMb);
  }
  const std::pair<const char*, std::chrono::milliseconds> timeouts[] = {
      {"http.idle_timeout", h.idle_timeout},
      {"http.header_timeout", h.header_timeout},
      {"http.body_timeout", h.body_timeout},
      {"http.max_queue_wait", h.max_queue_wait}};
  for (const auto& [key, value] : timeouts) {
    if (value.count() < 100 || value.count() > 3'600'000) {
      return OutOfRange(key, 100, 3'600'000, " ms (100ms to 1h)");
    }
  }
  return absl::OkStatus();
}

// The `tls:` section and the Alertmanager client's files: pairs given whole. Whether the files
// can be read and match is checked when they are loaded (TlsContextProvider), naming the file.
absl::Status ValidateTls(const ServerConfig& c) {
  if (c.tls.cert_file.empty() != c.tls.key_file.empty()) {
    return absl::InvalidArgumentError(
        "tls.cert_file and tls.key_file must be given together (both or neither)");
  }
  if (!c.tls.client_ca_file.empty() && !c.tls.enabled()) {
    return absl::InvalidArgumentError(
        "tls.client_ca_file needs tls.cert_file and tls.key_file (client certificates are asked "
        "for only over TLS)");
  }
  if (c.alertmanager_cert_file.empty() != c.alertmanager_key_file.empty()) {
    return absl::InvalidArgumentError(
        "alertmanager.cert_file and alertmanager.key_file must be given together (both or "
        "neither)");
  }
  const bool https = c.alertmanager_url.rfind("https://", 0) == 0;
  if (!https && (!c.alertmanager_ca_file.empty() || !c.alertmanager_cert_file.empty())) {
    return absl::InvalidArgumentError(
        "alertmanager.ca_file, cert_file and key_file need an https:// alertmanager.url");
  }
  return absl::OkStatus();
}

// The `forward:` section's settings that go together. Whether the files can be read is checked
// when the forward starts, naming the file.
absl::Status ValidateForward(const forward::OtlpForwarderOptions& f) {
  if (f.endpoint.empty()) return absl::OkStatus();
  if (f.client_cert_file.empty() != f.client_key_file.empty()) {
    return absl::InvalidArgumentError(
        "forward.client_cert_file and forward.client_key_file must be given together (both or "
        "neither)");
  }
  if (f.initial_backoff > f.max_backoff) {
    return absl::InvalidArgumentError(
        "forward.initial_backoff must not exceed forward.max_backoff");
  }
  if (f.protocol == forward::OtlpForwarderOptions::Protocol::kGrpc) return absl::OkStatus();
  const bool https = f.endpoint.rfind("https://", 0) == 0;
  if (!https && f.endpoint.rfind("http://", 0) != 0) {
    return absl::InvalidArgumentError(
        "forward.endpoint must be an http:// or https:// URL for forward.protocol http/protobuf, "
        "got '" +
        f.endpoint + "'");
  }
  if (!https && (f.tls || !f.ca_file.empty() || !f.client_cert_file.empty())) {
    return absl::InvalidArgumentError(
        "forward.tls, ca_file and client_cert_file need an https:// forward.endpoint for "
        "http/protobuf");
  }
  return absl::OkStatus();
}

}  // namespace

namespace {

constexpr uint64_t kSecond = base::kNanosPerSecond;
constexpr uint64_t kDay = 86400 * kSecond;
constexpr uint64_t kMiB = uint64_t{1} << 20;

// How a range's ends and a value are written in a refusal: as the YAML writes them.
enum class Unit { kCount, kMegabytes, kDuration };

std::string Written(uint64_t value, Unit unit) {
  switch (unit) {
    case Unit::kMegabytes:  // rounded up: a bound of a few bytes (tests set them) reads as 1
      return std::to_string((value + kMiB - 1) / kMiB);
    case Unit::kDuration:
      if (value >= kDay && value % kDay == 0) return std::to_string(value / kDay) + "d";
      if (value >= 3600 * kSecond && value % (3600 * kSecond) == 0) {
        return std::to_string(value / (3600 * kSecond)) + "h";
      }
      if (value >= 60 * kSecond && value % (60 * kSecond) == 0) {
        return std::to_string(value / (60 * kSecond)) + "m";
      }
      if (value % kSecond == 0) return std::to_string(value / kSecond) + "s";
      return std::to_string(value / 1'000'000) + "ms";
    default:
      return std::to_string(value);
  }
}

struct RangeRule {
  const char* key;
  uint64_t value;
  uint64_t min;
  uint64_t max;
  Unit unit = Unit::kCount;
};

uint64_t NanosOf(std::chrono::milliseconds d) {
  return static_cast<uint64_t>(d.count()) * 1'000'000;
}

// The ranges of the numbers this file reads; what no sane deployment needs is refused at start
// rather than found as an abort, an overflow or a silent no-op later.
std::vector<RangeRule> RangeRules(const ServerConfig& c) {
  const uint64_t retention = c.retention.span_retention_seconds * kSecond;
  const uint64_t decode_budget = c.decode_budget.total_bytes;
  return {
      {"ingest.max_request_mb", c.max_request_bytes, 1, 64 * 1024 * kMiB, Unit::kMegabytes},
      {"ingest.max_queued_spans", c.ingest.max_queued_spans, 1, 10'000'000},
      {"ingest.max_queued_mb", c.ingest.max_queued_bytes, kMiB, 64 * 1024 * kMiB, Unit::kMegabytes},
      {"ingest.max_spans_per_write", c.ingest.max_spans_per_write, 1, 1'000'000},
      {"ingest.retry_after_seconds", c.retry_after_seconds, 1, 3600},
      {"ingest.decode_budget_mb", decode_budget, 16 * kMiB, 64 * 1024 * kMiB, Unit::kMegabytes},
      {"ingest.max_decoded_request_mb", c.decode_budget.max_request_bytes, kMiB,
       std::max(decode_budget, kMiB), Unit::kMegabytes},
      {"ingest.max_span_age", MaxSpanAgeNanos(c), 60 * kSecond, std::max(retention, 60 * kSecond),
       Unit::kDuration},
      {"ingest.max_span_future", c.ingest.limits.max_span_future_nanos, kSecond, 7 * kDay,
       Unit::kDuration},
      {"ingest.max_order_id_bytes", c.ingest.limits.max_order_id_bytes, 1,
       lifecycle::kMaxOrderIdLength},
      {"ingest.max_attribute_key_bytes", c.ingest.limits.max_attribute_key_bytes, 16, 65536},
      {"ingest.max_attribute_value_bytes", c.ingest.limits.max_attribute_value_bytes, 256,
       64 * kMiB},
      {"store.bucket", c.store.bucket_seconds * kSecond, kSecond, 7 * kDay, Unit::kDuration},
      {"store.block_cache_mb", c.store.block_cache_bytes, 0, 64 * 1024 * kMiB, Unit::kMegabytes},
      {"store.write_buffer_mb", c.store.write_buffer_bytes, kMiB, 4096 * kMiB, Unit::kMegabytes},
      {"store.min_free_mb", c.store.min_free_bytes, 0, 1024 * 1024 * kMiB, Unit::kMegabytes},
      {"retention.spans", retention, 3600 * kSecond, 3650 * kDay, Unit::kDuration},
      {"retention.orders", c.retention.order_retention_seconds * kSecond, 3600 * kSecond,
       3650 * kDay, Unit::kDuration},
      {"retention.interval", c.retention.interval_seconds * kSecond, kSecond, kDay,
       Unit::kDuration},
      {"query.search_window", c.query.default_search_window_nanos, kSecond, 3650 * kDay,
       Unit::kDuration},
      {"query.max_scanned_blocks", c.query.max_scanned_blocks, 1, 100'000'000},
      {"alertmanager.resend_interval", c.alertmanager_resend_nanos, kSecond, kDay, Unit::kDuration},
      {"lifecycle.message_sla", c.lifecycle.message_sla_nanos, 0, 365 * kDay, Unit::kDuration},
      {"lifecycle.grace", c.lifecycle.grace_nanos, 0, kDay, Unit::kDuration},
      {"lifecycle.watermarks.idle_after", c.gap_detector.watermarks.idle_after_nanos, 1'000'000,
       kDay, Unit::kDuration},
      {"lifecycle.watermarks.silent_after", c.gap_detector.watermarks.silent_after_nanos, 1'000'000,
       7 * kDay, Unit::kDuration},
      {"lifecycle.watermarks.live_lag", c.gap_detector.watermarks.live_lag_nanos, 0, kDay,
       Unit::kDuration},
      {"lifecycle.watermarks.catch_up_idle_after",
       c.gap_detector.watermarks.catch_up_idle_after_nanos, 1'000'000, kDay, Unit::kDuration},
      {"lifecycle.watermarks.allowed_lateness", c.gap_detector.watermarks.allowed_lateness_nanos, 0,
       7 * kDay, Unit::kDuration},
      {"metrics.max_series", c.metrics.max_series, 1, 1'000'000},
      {"sampling.slow_threshold", c.sampling.slow_threshold_nanos, 1'000'000, kDay,
       Unit::kDuration},
      {"sampling.decision_wait", c.sampling.decision_wait_nanos, 0, kDay, Unit::kDuration},
      {"sampling.max_pending_spans", c.sampling.max_pending_spans, 1, 10'000'000},
      {"sampling.max_pending_mb", c.sampling.max_pending_bytes, kMiB, 64 * 1024 * kMiB,
       Unit::kMegabytes},
      {"sampling.max_remembered_traces", c.sampling.max_remembered_traces, 1, 100'000'000},
      {"forward.max_queue_mb", c.forward.max_queue_bytes, kMiB, 1024 * 1024 * kMiB,
       Unit::kMegabytes},
      {"forward.max_batch_spans", c.forward.max_batch_spans, 1, 1'000'000},
      {"forward.max_batch_mb", c.forward.max_batch_bytes, kMiB, 64 * kMiB, Unit::kMegabytes},
      {"forward.timeout", NanosOf(c.forward.timeout), 100'000'000, 600 * kSecond, Unit::kDuration},
      {"forward.initial_backoff", NanosOf(c.forward.initial_backoff), 10'000'000, 3600 * kSecond,
       Unit::kDuration},
      {"forward.max_backoff", NanosOf(c.forward.max_backoff), 10'000'000, 3600 * kSecond,
       Unit::kDuration},
      {"audit.max_mb", c.audit.max_bytes, kMiB, 64 * 1024 * kMiB, Unit::kMegabytes},
      {"audit.keep_files", c.audit.keep_files, 1, 1000},
  };
}

}  // namespace

uint64_t MaxSpanAgeNanos(const ServerConfig& c) {
  return c.max_span_age_nanos != 0 ? c.max_span_age_nanos
                                   : c.retention.span_retention_seconds * kSecond;
}

absl::Status ValidateRanges(const ServerConfig& c) {
  for (const RangeRule& rule : RangeRules(c)) {
    if (rule.value >= rule.min && rule.value <= rule.max) continue;
    return absl::InvalidArgumentError(
        std::string(rule.key) + " must be from " + Written(rule.min, rule.unit) + " to " +
        Written(rule.max, rule.unit) + ", got " + Written(rule.value, rule.unit));
  }
  // A double, and the one number of the file that is not a whole one.
  if (!(c.lifecycle.time_scale > 0 && c.lifecycle.time_scale <= 1e6)) {
    return absl::InvalidArgumentError(
        "lifecycle.time_scale must be above 0 and at most 1000000, got " +
        std::to_string(c.lifecycle.time_scale));
  }
  return absl::OkStatus();
}

absl::Status Validate(const ServerConfig& c) {
  for (const auto& [name, address] : {std::pair{"otlp_grpc listen", c.otlp_grpc_listen},
                                      std::pair{"otlp_http listen", c.otlp_http_listen},
                                      std::pair{"http listen", c.http_listen}}) {
    absl::StatusOr<base::ListenAddress> parsed = base::ParseListenAddress(address);
    if (!parsed.ok())
      return absl::InvalidArgumentError(std::string(name) + ": " +
                                        std::string(parsed.status().message()));
    // Closed by default: nothing off loopback unless TLS and tokens guard it
    // (docs/security.md).
    if (!base::IsLoopbackHost(parsed->host) && (!c.tls.enabled() || c.auth.tokens.empty())) {
      std::string missing;
      if (!c.tls.enabled()) missing = "TLS (tls.cert_file, tls.key_file)";
      if (c.auth.tokens.empty()) {
        missing += std::string(missing.empty() ? "" : " and ") + "tokens (auth.tokens)";
      }
      return absl::InvalidArgumentError(std::string(name) + " " + address +
                                        " is off loopback without " + missing +
                                        ": configure them or listen on 127.0.0.1 or [::1] "
                                        "(docs/security.md)");
    }
  }
  if (c.data_dir.empty()) return absl::InvalidArgumentError("data_dir must not be empty");
  if (absl::Status tokens = auth::ValidateTokens(c.auth.tokens); !tokens.ok()) return tokens;
  if (absl::Status ranges = ValidateRanges(c); !ranges.ok()) return ranges;
  if (absl::StatusOr<gaps::StageModel> model = gaps::StageModel::Create(c.lifecycle); !model.ok()) {
    return model.status();
  }
  if (!c.alertmanager_url.empty() && c.alertmanager_url.rfind("http://", 0) != 0 &&
      c.alertmanager_url.rfind("https://", 0) != 0) {
    return absl::InvalidArgumentError("alertmanager.url must be an http:// or https:// URL, got '" +
                                      c.alertmanager_url + "'");
  }
  if (absl::Status tls = ValidateTls(c); !tls.ok()) return tls;
  if (absl::Status forward = ValidateForward(c.forward); !forward.ok()) return forward;
  // Compiled once here to name a bad pattern at start; the server compiles them again to use.
  if (absl::StatusOr<std::unique_ptr<scrub::PiiScrubber>> pii = scrub::PiiScrubber::Create(c.pii);
      !pii.ok()) {
    return pii.status();
  }
  const gaps::SourceWatermarkOptions& watermarks = c.gap_detector.watermarks;
  if (watermarks.idle_after_nanos == 0) {
    return absl::InvalidArgumentError("lifecycle.watermarks.idle_after must be positive");
  }
  if (watermarks.silent_after_nanos < watermarks.idle_after_nanos) {
    return absl::InvalidArgumentError(
        "lifecycle.watermarks.silent_after must be at least lifecycle.watermarks.idle_after");
  }
  if (c.alertmanager_resend_nanos < 1'000'000'000ULL) {
    return absl::InvalidArgumentError("alertmanager.resend_interval must be at least 1s");
  }
  if (c.max_request_bytes == 0) {
    return absl::InvalidArgumentError("ingest.max_request_mb must be at least 1");
  }
  if (c.ingest.max_queued_spans == 0 || c.ingest.max_spans_per_write == 0) {
    return absl::InvalidArgumentError("ingest queue sizes must be positive");
  }
  // Each is a thread of its own on both HTTP listeners: past a few hundred the process runs
  // out of threads at start (100000 aborted it).
  constexpr size_t kMaxHttpThreads = 512;
  if (c.http_threads == 0 || c.http_threads > kMaxHttpThreads) {
    return absl::InvalidArgumentError("ingest.http_threads must be from 1 to " +
                                      std::to_string(kMaxHttpThreads));
  }
  if (absl::Status edge = ValidateHttp(c); !edge.ok()) return edge;
  if (c.store.bucket_seconds == 0)
    return absl::InvalidArgumentError("store.bucket must be positive");
  if (c.retention.span_retention_seconds < c.store.bucket_seconds) {
    return absl::InvalidArgumentError("retention.spans must be at least one store.bucket");
  }
  if (!(c.sampling.ratio >= 0 && c.sampling.ratio <= 1)) {
    return absl::InvalidArgumentError("sampling.ratio must be between 0 and 1");
  }
  if (c.sampling.slow_threshold_nanos == 0) {
    return absl::InvalidArgumentError("sampling.slow_threshold must be positive");
  }
  if (c.sampling.max_pending_spans == 0 || c.sampling.max_remembered_traces == 0) {
    return absl::InvalidArgumentError(
        "sampling.max_pending_spans and sampling.max_remembered_traces must be positive");
  }
  if (c.metrics.max_series == 0) {
    return absl::InvalidArgumentError("metrics.max_series must be positive");
  }
  if (c.retention.interval_seconds == 0) {
    return absl::InvalidArgumentError("retention.interval must be positive");
  }
  static const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "off"};
  bool level_ok = false;
  for (const char* l : kLevels) level_ok |= c.log_level == l;
  if (!level_ok) {
    return absl::InvalidArgumentError(
        "log_level must be one of trace, debug, info, warn, error, off");
  }
  return absl::OkStatus();
}

}  // namespace ordertrace::server
