// ordertrace's configuration: one struct of defaulted options, filled from ordertrace.yaml
// and then from flags. `ordertrace.yaml` at the repository root documents every field.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "ingest/ingester.h"
#include "query/trace_query.h"
#include "store/retention.h"
#include "store/rocks_store.h"

namespace ordertrace::server {

struct ServerConfig {
  std::string data_dir = "./data";
  std::string otlp_grpc_listen = "127.0.0.1:4317";
  std::string otlp_http_listen = "127.0.0.1:4318";
  std::string http_listen = "127.0.0.1:8686";
  std::string log_level = "info";

  // Largest request body after decompression (OTLP/HTTP) or message (OTLP/gRPC).
  size_t max_request_bytes = 16 << 20;
  // Told to clients that are refused because the ingest queue is full.
  uint64_t retry_after_seconds = 1;
  size_t http_threads = 8;

  ingest::IngesterOptions ingest;
  store::RocksStoreOptions store;  // `path` is derived from data_dir
  store::RetentionOptions retention;
  query::TraceQueryOptions query;
};

// Reads a YAML config file over the defaults. Unknown keys and bad values are errors that
// name the key, so a typo never silently falls back to a default.
absl::StatusOr<ServerConfig> LoadConfigFile(const std::string& path, ServerConfig base = {});

// Parses "30s", "10m", "24h", "14d", "1h30m", "250ms" or a bare number of seconds.
absl::StatusOr<uint64_t> ParseDurationNanos(const std::string& text);

// Checks values that no single field can check alone (addresses, ranges).
absl::Status Validate(const ServerConfig& config);

}  // namespace ordertrace::server
