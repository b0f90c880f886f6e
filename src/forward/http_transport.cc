// OTLP/HTTP for the forward: POST application/x-protobuf with cpp-httplib (OpenSSL for
// https://). The SDK's exporter (sdk/otlp_http_exporter.h) does the same for the services; both
// read Retry-After with the base library's parser, so they wait alike.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <filesystem>
#include <mutex>

#include "base/retry_after.h"
#include "forward/forward_transport.h"

namespace ordertrace::forward {
namespace {

constexpr char kDefaultPath[] = "/v1/traces";
constexpr char kContentType[] = "application/x-protobuf";

// A short, printable excerpt of an answer body, for the log.
std::string Excerpt(std::string_view body) {
  std::string out;
  for (char c : body.substr(0, 160)) out += std::isprint(static_cast<unsigned char>(c)) ? c : '.';
  return out;
}

void SetTimeout(httplib::Client& client, std::chrono::milliseconds timeout) {
  const auto ms = std::max<int64_t>(timeout.count(), 1);
  const time_t seconds = static_cast<time_t>(ms / 1000);
  const time_t micros = static_cast<time_t>((ms % 1000) * 1000);
  // The connection gets at most 5 s of it: a host that does not answer a SYN is down.
  const auto connect_ms = std::min<int64_t>(ms, 5000);
  client.set_connection_timeout(static_cast<time_t>(connect_ms / 1000),
                                static_cast<time_t>((connect_ms % 1000) * 1000));
  client.set_read_timeout(seconds, micros);
  client.set_write_timeout(seconds, micros);
}

class HttpTransport final : public ForwardTransport {
 public:
  HttpTransport(std::unique_ptr<httplib::Client> client, std::string path, httplib::Headers headers)
      : client_(std::move(client)), path_(std::move(path)), headers_(std::move(headers)) {}

  SendResult Send(const std::string& request) override {
    SendResult result;
    if (cancelled_.load()) {
      result.detail = "forward stopped";
      return result;
    }
    httplib::Result answer = client_->Post(path_, headers_, request, kContentType);
    if (!answer) {
      result.outcome = SendResult::Outcome::kRetryable;
      result.code = "error";
      result.detail = httplib::to_string(answer.error());
      return result;
    }
    const int status = answer->status;
    result.code = std::to_string(status);
    if (status >= 200 && status < 300) {
      result.outcome = SendResult::Outcome::kAccepted;
      return result;
    }
    result.detail = "HTTP " + result.code + ": " + Excerpt(answer->body);
    // 429 and 5xx may pass later; any other answer (4xx: a bad request, a refused token, a
    // wrong path) will be the same next time.
    result.outcome = status == 429 || status >= 500 ? SendResult::Outcome::kRetryable
                                                    : SendResult::Outcome::kRejected;
    if (answer->has_header("Retry-After")) {
      if (std::optional<std::chrono::seconds> wait = base::ParseRetryAfter(
              answer->get_header_value("Retry-After"), std::chrono::system_clock::now())) {
        result.retry_after = *wait;
      }
    }
    return result;
  }

  void Cancel() override {
    cancelled_ = true;
    client_->stop();  // safe from another thread: shuts the socket of a request under way
  }

 private:
  const std::unique_ptr<httplib::Client> client_;
  const std::string path_;
  const httplib::Headers headers_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace

absl::StatusOr<std::unique_ptr<ForwardTransport>> CreateHttpTransport(TransportOptions options) {
  const std::string& url = options.endpoint;
  const size_t scheme_end = url.find("://");
  const std::string scheme = scheme_end == std::string::npos ? "" : url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") {
    return absl::InvalidArgumentError(
        "forward.endpoint must be an http:// or https:// URL for forward.protocol http/protobuf, "
        "got '" +
        url + "'");
  }
  const std::string rest = url.substr(scheme_end + 3);
  const size_t slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  if (authority.empty() || authority.front() == ':') {
    return absl::InvalidArgumentError("forward.endpoint has no host: '" + url + "'");
  }
  std::string path = slash == std::string::npos ? kDefaultPath : rest.substr(slash);
  if (path == "/") path = kDefaultPath;
  const bool https = scheme == "https";
  if (!https && (!options.ca_file.empty() || !options.client_cert_file.empty())) {
    return absl::InvalidArgumentError(
        "forward.ca_file, client_cert_file and client_key_file need an https:// forward.endpoint");
  }
  for (const std::string* file :
       {&options.ca_file, &options.client_cert_file, &options.client_key_file}) {
    std::error_code ec;
    if (!file->empty() && !std::filesystem::is_regular_file(*file, ec)) {
      return absl::InvalidArgumentError("forward: cannot read " + *file);
    }
  }
  std::unique_ptr<httplib::Client> client;
  try {
    client = std::make_unique<httplib::Client>(scheme + "://" + authority, options.client_cert_file,
                                               options.client_key_file);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(std::string("forward.endpoint: ") + e.what());
  }
  if (!client->is_valid()) {
    return absl::InvalidArgumentError("forward: cannot use endpoint " + url +
                                      " (bad URL, or the client certificate or key is unreadable)");
  }
  if (https) {
    if (!options.ca_file.empty()) client->set_ca_cert_path(options.ca_file);
    client->enable_server_certificate_verification(true);
  }
  client->set_keep_alive(true);
  SetTimeout(*client, options.timeout);
  httplib::Headers headers(options.headers.begin(), options.headers.end());
  return std::unique_ptr<ForwardTransport>(
      new HttpTransport(std::move(client), std::move(path), std::move(headers)));
}

}  // namespace ordertrace::forward
