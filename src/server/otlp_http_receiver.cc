#include "server/otlp_http_receiver.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "google/rpc/status.pb.h"
#include "http/content_coding.h"
#include "http/router.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otlp/json_codec.h"
#include "otlp/proto_codec.h"
#include "server/status_mapping.h"

namespace ordertrace::server {
namespace {

constexpr char kProtobuf[] = "application/x-protobuf";
constexpr char kJson[] = "application/json";

enum class Encoding { kProtobuf, kJson, kUnknown };

Encoding EncodingOf(const http::Request& req) {
  std::string type = req.Header("Content-Type");
  type = type.substr(0, type.find(';'));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  for (char& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (type == kProtobuf) return Encoding::kProtobuf;
  if (type == kJson) return Encoding::kJson;
  return Encoding::kUnknown;
}

// The google.rpc code an HTTP refusal carries.
absl::StatusCode RpcCodeFor(int http_status) {
  switch (http_status) {
    case 408:
      return absl::StatusCode::kDeadlineExceeded;
    case 404:
      return absl::StatusCode::kNotFound;
    case 413:
    case 429:
      return absl::StatusCode::kResourceExhausted;
    case 500:
      return absl::StatusCode::kInternal;
    case 503:
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kInvalidArgument;
  }
}

// OTLP/HTTP error bodies are a google.rpc.Status in the request's encoding.
void SetError(http::Response& res, Encoding encoding, int http_status, absl::StatusCode code,
              const std::string& message) {
  res.status = http_status;
  if (encoding == Encoding::kProtobuf) {
    google::rpc::Status status;
    status.set_code(static_cast<int>(code));
    status.set_message(message);
    res.SetContent(status.SerializeAsString(), kProtobuf);
  } else {
    nlohmann::json body = {{"code", static_cast<int>(code)}, {"message", message}};
    // The message may quote client bytes that are not UTF-8: replaced, never thrown.
    res.SetContent(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), kJson);
  }
}

// The listener's own refusals (busy, too large, malformed HTTP), in the request's encoding.
void WriteRefusal(const http::Request& req, http::Response& res, int status,
                  const std::string& message) {
  Encoding encoding = EncodingOf(req);
  SetError(res, encoding == Encoding::kProtobuf ? encoding : Encoding::kJson, status,
           RpcCodeFor(status), message);
}

void SetSuccess(http::Response& res, Encoding encoding, int64_t rejected,
                const std::string& message) {
  res.status = 200;
  if (encoding == Encoding::kProtobuf) {
    opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse response;
    if (rejected > 0) {
      response.mutable_partial_success()->set_rejected_spans(rejected);
      response.mutable_partial_success()->set_error_message(message);
    }
    res.SetContent(response.SerializeAsString(), kProtobuf);
  } else {
    nlohmann::json body = nlohmann::json::object();
    if (rejected > 0) {
      body["partialSuccess"] = {{"rejectedSpans", std::to_string(rejected)},
                                {"errorMessage", message}};
    }
    res.SetContent(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), kJson);
  }
}

http::ServerOptions EdgeOptions(const OtlpHttpReceiverOptions& options) {
  http::ServerOptions edge = options.http;
  edge.name = "OTLP/HTTP receiver";
  // A compressed body is never larger than what it decodes to.
  edge.max_body_bytes = options.max_request_bytes;
  edge.retry_after_seconds = options.retry_after_seconds;
  return edge;
}

}  // namespace

struct OtlpHttpReceiver::Counters {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> spans_accepted{0};
  std::atomic<uint64_t> spans_rejected{0};
  std::atomic<uint64_t> requests_malformed{0};
  std::atomic<uint64_t> requests_too_large{0};
  std::atomic<uint64_t> requests_throttled{0};
};

OtlpHttpReceiver::OtlpHttpReceiver(ingest::Ingester& ingester, OtlpHttpReceiverOptions options)
    : ingester_(ingester), options_(std::move(options)), counters_(std::make_unique<Counters>()) {
  auto router = std::make_shared<http::Router>();
  router->SetErrorWriter(WriteRefusal);
  router->Post("/v1/traces", [this](http::Request& req, http::Response& res) { Export(req, res); });
  http_ = std::make_unique<http::Server>(
      EdgeOptions(options_),
      [router](http::Request& req, http::Response& res) { router->Handle(req, res); },
      WriteRefusal);
}

void OtlpHttpReceiver::Export(http::Request& req, http::Response& res) {
  ++counters_->requests;
  Encoding encoding = EncodingOf(req);
  if (encoding == Encoding::kUnknown) {
    SetError(res, Encoding::kJson, 415, absl::StatusCode::kInvalidArgument,
             "unsupported Content-Type '" + req.Header("Content-Type") +
                 "': use application/x-protobuf or application/json");
    ++counters_->requests_malformed;
    return;
  }
  const std::string coding = req.Header("Content-Encoding");
  if (!http::IsSupportedContentCoding(coding)) {
    SetError(res, encoding, 415, absl::StatusCode::kInvalidArgument,
             "unsupported Content-Encoding '" + coding + "': use gzip or none");
    ++counters_->requests_malformed;
    return;
  }
  absl::StatusOr<std::string> body =
      http::DecodeContent(std::move(req.body), coding, options_.max_request_bytes);
  if (!body.ok()) {
    bool too_large = body.status().code() == absl::StatusCode::kResourceExhausted;
    ++(too_large ? counters_->requests_too_large : counters_->requests_malformed);
    SetError(res, encoding, too_large ? 413 : 400, body.status().code(),
             std::string(body.status().message()));
    return;
  }

  // A protobuf body stays with its spans: storing them copies their bytes from it.
  absl::StatusOr<otlp::DecodedRequest> decoded =
      encoding == Encoding::kProtobuf
          ? otlp::DecodeProtobufRequest(std::make_shared<const std::string>(std::move(*body)))
          : otlp::DecodeJsonRequest(*body);
  if (!decoded.ok()) {
    ++counters_->requests_malformed;
    SetError(res, encoding, 400, absl::StatusCode::kInvalidArgument,
             std::string(decoded.status().message()));
    return;
  }
  size_t accepted = decoded->batch.SpanCount();
  absl::Status stored = ingester_.Ingest(std::move(decoded->batch));
  if (!stored.ok()) {
    int http_status = HttpStatusFor(stored);
    if (http_status == 429 || http_status == 503) {
      ++counters_->requests_throttled;
    } else {
      spdlog::error("storing spans failed: {}", stored.ToString());
      // Anything else is ours, not the client's: ask it to retry rather than drop data.
      http_status = 503;
    }
    res.SetHeader("Retry-After", std::to_string(options_.retry_after_seconds));
    SetError(res, encoding, http_status, stored.code(), std::string(stored.message()));
    return;
  }
  counters_->spans_accepted += accepted;
  counters_->spans_rejected += decoded->rejected_spans;
  SetSuccess(res, encoding, decoded->rejected_spans, decoded->rejection_message);
}

OtlpHttpReceiver::~OtlpHttpReceiver() { Shutdown(); }

absl::StatusOr<int> OtlpHttpReceiver::Start(const ListenAddress& address) {
  return http_->Start(address);
}

void OtlpHttpReceiver::Shutdown() { http_->Shutdown(); }

OtlpHttpReceiverStats OtlpHttpReceiver::Stats() const {
  return OtlpHttpReceiverStats{
      counters_->requests.load(),           counters_->spans_accepted.load(),
      counters_->spans_rejected.load(),     counters_->requests_malformed.load(),
      counters_->requests_too_large.load(), counters_->requests_throttled.load()};
}

http::ServerStats OtlpHttpReceiver::HttpStats() const { return http_->Stats(); }

}  // namespace ordertrace::server
