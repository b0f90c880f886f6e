// ordertrace: parses flags and the config file, then runs the server until SIGINT/SIGTERM.
#include <malloc.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>

#include "server/config.h"
#include "server/ordertrace_server.h"

namespace {

int Fail(const std::string& message) {
  std::cerr << "ordertrace: " << message << std::endl;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // RocksDB's memtables allocate their arenas in blocks of a few MiB. Above glibc's default
  // threshold each block is a fresh mmap, so every memtable pays its page faults again (about
  // 10% of ingest CPU in a profile); keeping them on the heap lets freed blocks be reused.
  mallopt(M_MMAP_THRESHOLD, 512 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  CLI::App app{
      "ordertrace: order-aware tracing for Alexandrite.\n"
      "Receives OpenTelemetry spans (OTLP/gRPC and OTLP/HTTP), keeps one record per order, and\n"
      "answers where an order is: GET /api/v1/orders/{order_id}."};
  std::string config_path;
  std::string data_dir, grpc_listen, otlp_http_listen, http_listen, log_level;
  app.add_option("--config", config_path, "YAML config file (see ordertrace.yaml)")
      ->check(CLI::ExistingFile);
  // Given flags override the config even when empty (then Validate refuses them: an empty
  // --data-dir must not quietly mean ./data).
  CLI::Option* data_dir_flag =
      app.add_option("--data-dir", data_dir, "Folder for the store [./data]");
  CLI::Option* grpc_flag =
      app.add_option("--otlp-grpc-listen", grpc_listen, "OTLP/gRPC address [127.0.0.1:4317]");
  CLI::Option* otlp_http_flag =
      app.add_option("--otlp-http-listen", otlp_http_listen, "OTLP/HTTP address [127.0.0.1:4318]");
  CLI::Option* http_flag =
      app.add_option("--http-listen", http_listen, "HTTP API address [127.0.0.1:8686]");
  std::string console_dir;
  app.add_option("--console-dir", console_dir,
                 "Serve the console from this folder (the repository's web/) instead of the copy "
                 "built in [built in]");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off [info]");
  std::string alertmanager_url;
  app.add_option("--alertmanager-url", alertmanager_url,
                 "Alertmanager to raise gap alerts in, e.g. http://127.0.0.1:9093 [none]");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  ordertrace::server::ServerConfig config;
  if (!config_path.empty()) {
    absl::StatusOr<ordertrace::server::ServerConfig> loaded =
        ordertrace::server::LoadConfigFile(config_path);
    if (!loaded.ok()) return Fail(std::string(loaded.status().message()));
    config = std::move(*loaded);
  }
  if (data_dir_flag->count() > 0) config.data_dir = data_dir;
  if (grpc_flag->count() > 0) config.otlp_grpc_listen = grpc_listen;
  if (otlp_http_flag->count() > 0) config.otlp_http_listen = otlp_http_listen;
  if (http_flag->count() > 0) config.http_listen = http_listen;
  if (!log_level.empty()) config.log_level = log_level;
  if (!console_dir.empty()) config.console_dir = console_dir;
  if (!alertmanager_url.empty()) config.alertmanager_url = alertmanager_url;
  absl::Status valid = ordertrace::server::Validate(config);
  if (!valid.ok()) return Fail(std::string(valid.message()));
  spdlog::set_level(spdlog::level::from_str(config.log_level));

  // A peer that closes a TLS connection must not kill the process: OpenSSL's socket BIO writes
  // with write(), not send(MSG_NOSIGNAL), in httplib's TLS clients (the Alertmanager client).
  std::signal(SIGPIPE, SIG_IGN);
  // Block the stop signals and SIGHUP in every thread; this one waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  ordertrace::server::OrdertraceServer server(config);
  absl::Status started = server.Start();
  if (!started.ok()) {
    server.Shutdown();
    return Fail(std::string(started.message()));
  }
  int signal = 0;
  // SIGHUP re-reads the TLS certificate files (ReloadTls logs what it did); it never stops.
  while (sigwait(&signals, &signal) == 0 && signal == SIGHUP) {
    if (config.tls.enabled()) {
      spdlog::info("received SIGHUP, reloading the TLS certificate files");
      server.ReloadTls().IgnoreError();
    } else {
      spdlog::info("received SIGHUP; no tls: section, nothing to reload");
    }
  }
  spdlog::info("received {}, shutting down", signal == SIGINT ? "SIGINT" : "SIGTERM");
  server.Shutdown();
  spdlog::info("stopped");
  return 0;
}
