#include "sdk/otlp_http_exporter.h"

#include <httplib.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>

#include "absl/status/status.h"
#include "base/retry_after.h"
#include "sdk/otlp_encoding.h"

namespace ordertrace::sdk {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kDefaultPath[] = "/v1/traces";
constexpr char kContentType[] = "application/x-protobuf";

struct Endpoint {
  std::string scheme_host_port;
  std::string path;
};

absl::StatusOr<Endpoint> ParseEndpoint(std::string_view url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return absl::InvalidArgumentError("OTLP endpoint is not a URL: " + std::string(url));
  }
  std::string_view scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") {
    return absl::InvalidArgumentError("OTLP endpoint must be http:// or https://: " +
                                      std::string(url));
  }
  std::string_view rest = url.substr(scheme_end + 3);
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (authority.empty() || authority.front() == ':') {
    return absl::InvalidArgumentError("OTLP endpoint has no host: " + std::string(url));
  }
  Endpoint endpoint;
  endpoint.scheme_host_port = std::string(url.substr(0, scheme_end + 3 + authority.size()));
  endpoint.path = slash == std::string_view::npos ? kDefaultPath : std::string(rest.substr(slash));
  if (endpoint.path == "/") endpoint.path = kDefaultPath;
  return endpoint;
}

// httplib takes timeouts as seconds and microseconds.
template <typename Setter>
void SetTimeout(Setter setter, Clock::duration d) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                std::max(d, Clock::duration(std::chrono::milliseconds(1))))
                .count();
  setter(static_cast<time_t>(us / 1'000'000), static_cast<time_t>(us % 1'000'000));
}

}  // namespace

std::string GzipCompress(std::string_view data) {
  z_stream stream{};
  // windowBits 15 + 16: a gzip header and trailer instead of zlib's.
  if (deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    return std::string();
  }
  std::string out(deflateBound(&stream, static_cast<uLong>(data.size())), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  int result = deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  // deflateBound guarantees room for one Z_FINISH call.
  return result == Z_STREAM_END ? out : std::string();
}

bool IsRetryableHttpStatus(int http_status) {
  return http_status == 429 || http_status == 502 || http_status == 503 || http_status == 504;
}

absl::Status HttpStatusToStatus(int http_status, std::string_view body) {
  if (http_status >= 200 && http_status < 300) return absl::OkStatus();
  // A short, printable excerpt of what the server said; OTLP errors are usually protobuf.
  std::string excerpt;
  for (char c : body.substr(0, 200))
    excerpt += std::isprint(static_cast<unsigned char>(c)) ? c : '.';
  std::string message = "OTLP export: HTTP " + std::to_string(http_status);
  if (!excerpt.empty()) message += ": " + excerpt;
  switch (http_status) {
    case 400:
      return absl::InvalidArgumentError(message);
    case 401:
      return absl::UnauthenticatedError(message);
    case 403:
      return absl::PermissionDeniedError(message);
    case 404:
      return absl::NotFoundError(message);
    case 429:
      return absl::ResourceExhaustedError(message);
    case 501:
      return absl::UnimplementedError(message);
    case 502:
    case 503:
      return absl::UnavailableError(message);
    case 504:
      return absl::DeadlineExceededError(message);
    default:
      return http_status < 500 ? absl::FailedPreconditionError(message)
                               : absl::InternalError(message);
  }
}

absl::StatusOr<std::unique_ptr<OtlpHttpExporter>> OtlpHttpExporter::Create(
    OtlpHttpExporterOptions options) {
  absl::StatusOr<Endpoint> endpoint = ParseEndpoint(options.endpoint);
  if (!endpoint.ok()) return endpoint.status();
  if (options.max_attempts < 1) {
    return absl::InvalidArgumentError("OTLP exporter: max_attempts must be at least 1");
  }
  if (!(options.backoff_multiplier >= 1)) {
    return absl::InvalidArgumentError("OTLP exporter: backoff_multiplier must be at least 1");
  }
  if (options.client_cert_file.empty() != options.client_key_file.empty()) {
    return absl::InvalidArgumentError(
        "OTLP exporter: client_cert_file and client_key_file go together");
  }
  std::unique_ptr<httplib::Client> client;
  try {
    client = std::make_unique<httplib::Client>(endpoint->scheme_host_port, options.client_cert_file,
                                               options.client_key_file);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(std::string("OTLP exporter: ") + e.what());
  }
  if (!client->is_valid()) {
    return absl::InvalidArgumentError("OTLP exporter: cannot use endpoint " + options.endpoint +
                                      " (bad URL, or TLS certificate/key not loadable)");
  }
  if (!options.ca_cert_file.empty()) client->set_ca_cert_path(options.ca_cert_file);
  client->enable_server_certificate_verification(options.verify_server_certificate);
  client->set_keep_alive(true);
  std::string path = std::move(endpoint->path);
  return std::unique_ptr<OtlpHttpExporter>(
      new OtlpHttpExporter(std::move(options), std::move(path), std::move(client)));
}

OtlpHttpExporter::OtlpHttpExporter(OtlpHttpExporterOptions options, std::string path,
                                   std::unique_ptr<httplib::Client> client)
    : options_(std::move(options)),
      path_(std::move(path)),
      client_(std::move(client)),
      jitter_engine_(std::random_device{}()) {}

OtlpHttpExporter::~OtlpHttpExporter() = default;

absl::Status OtlpHttpExporter::Export(std::span<const SpanData> spans) {
  if (spans.empty()) return absl::OkStatus();
  std::lock_guard<std::mutex> export_lock(export_mu_);
  const Clock::time_point deadline = Clock::now() + options_.timeout;

  std::string body = EncodeExportRequest(spans);
  httplib::Headers headers(options_.headers.begin(), options_.headers.end());
  if (options_.gzip) {
    // zlib fails only without memory; the body then goes uncompressed.
    std::string compressed = GzipCompress(body);
    if (!compressed.empty()) {
      body = std::move(compressed);
      headers.emplace("Content-Encoding", "gzip");
    }
  }

  absl::Status last = absl::UnavailableError("OTLP export: not attempted");
  Clock::duration backoff = options_.initial_backoff;
  for (int attempt = 1;; ++attempt) {
    {
      std::lock_guard<std::mutex> lock(shutdown_mu_);
      if (shutdown_) {
        last =
            absl::CancelledError("OTLP export: exporter shut down; last error: " + last.ToString());
        break;
      }
    }
    Clock::duration remaining = deadline - Clock::now();
    if (remaining <= Clock::duration::zero()) {
      last = absl::DeadlineExceededError("OTLP export: timed out; last error: " + last.ToString());
      break;
    }
    SetTimeout([&](time_t s, time_t us) { client_->set_connection_timeout(s, us); },
               std::min<Clock::duration>(remaining, options_.connect_timeout));
    SetTimeout([&](time_t s, time_t us) { client_->set_read_timeout(s, us); }, remaining);
    SetTimeout([&](time_t s, time_t us) { client_->set_write_timeout(s, us); }, remaining);

    ++requests_;
    httplib::Result result = client_->Post(path_, headers, body, kContentType);
    std::optional<std::chrono::seconds> retry_after;
    bool retryable;
    if (!result) {
      last = absl::UnavailableError("OTLP export: " + httplib::to_string(result.error()));
      // A server certificate refused once will be refused again; anything else may pass.
      retryable = result.error() != httplib::Error::SSLServerVerification;
    } else {
      last = HttpStatusToStatus(result->status, result->body);
      if (last.ok()) {
        spans_exported_ += spans.size();
        return last;
      }
      retryable = IsRetryableHttpStatus(result->status);
      if (result->has_header("Retry-After")) {
        retry_after = base::ParseRetryAfter(result->get_header_value("Retry-After"),
                                            std::chrono::system_clock::now());
      }
    }
    if (!retryable || attempt >= options_.max_attempts) break;

    Clock::duration wait =
        retry_after.has_value() ? Clock::duration(*retry_after) : Jittered(backoff);
    backoff = std::min<Clock::duration>(
        std::chrono::duration_cast<Clock::duration>(backoff * options_.backoff_multiplier),
        options_.max_backoff);
    // Retrying before the server's Retry-After would only be refused again: give up instead.
    if (Clock::now() + wait >= deadline) {
      last = absl::DeadlineExceededError(
          "OTLP export: next retry would pass the export timeout; last error: " + last.ToString());
      break;
    }
    ++retries_;
    if (!WaitUnlessShutdown(wait)) {
      last =
          absl::CancelledError("OTLP export: exporter shut down; last error: " + last.ToString());
      break;
    }
  }
  spans_failed_ += spans.size();
  return last;
}

void OtlpHttpExporter::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(shutdown_mu_);
    if (shutdown_) return;
    shutdown_ = true;
  }
  shutdown_cv_.notify_all();
  // Aborts a request in flight (httplib's stop() is safe from another thread).
  client_->stop();
}

OtlpHttpExporterStats OtlpHttpExporter::stats() const {
  OtlpHttpExporterStats stats;
  stats.spans_exported = spans_exported_.load();
  stats.spans_failed = spans_failed_.load();
  stats.requests = requests_.load();
  stats.retries = retries_.load();
  return stats;
}

bool OtlpHttpExporter::WaitUnlessShutdown(Clock::duration duration) {
  std::unique_lock<std::mutex> lock(shutdown_mu_);
  return !shutdown_cv_.wait_for(lock, duration, [&] { return shutdown_; });
}

Clock::duration OtlpHttpExporter::Jittered(Clock::duration backoff) {
  std::uniform_real_distribution<double> factor(0.8, 1.2);
  return std::chrono::duration_cast<Clock::duration>(backoff * factor(jitter_engine_));
}

}  // namespace ordertrace::sdk
