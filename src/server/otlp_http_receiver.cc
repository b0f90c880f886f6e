#include "server/otlp_http_receiver.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "auth/access_policy.h"
#include "google/rpc/status.pb.h"
#include "http/content_coding.h"
#include "http/router.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otlp/json_codec.h"
#include "otlp/proto_codec.h"
#include "server/status_mapping.h"

namespace ordertrace::server {

enum class OtlpHttpReceiver::Encoding : int { kProtobuf, kJson, kUnknown };

namespace {

using Encoding = OtlpHttpReceiver::Encoding;

constexpr char kProtobuf[] = "application/x-protobuf";
constexpr char kJson[] = "application/json";

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
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
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
  // The largest request allowed must fit in the bodies in flight, or it could never be admitted.
  edge.max_inflight_bytes = std::max(edge.max_inflight_bytes, edge.max_body_bytes);
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

OtlpHttpReceiver::OtlpHttpReceiver(ingest::Ingester& ingester, otlp::DecodeBudget& budget,
                                   OtlpHttpReceiverOptions options)
    : ingester_(ingester),
      budget_(budget),
      options_(std::move(options)),
      counters_(std::make_unique<Counters>()) {
  auto router = std::make_shared<http::Router>();
  router->SetErrorWriter(WriteRefusal);
  router->Post("/v1/traces", [this](http::Request& req, http::Response& res) { Export(req, res); });
  http::ServerOptions edge = EdgeOptions(options_);
  edge.check_head = [this](const http::Request& head) { return CheckToken(head); };
  http_ = std::make_unique<http::Server>(
      std::move(edge),
      [router](http::Request& req, http::Response& res) { router->Handle(req, res); },
      WriteRefusal);
}

// The token, checked on the head: a client without a valid ingest token is answered before a
// byte of its body is read, so it costs no body budget.
std::optional<http::HeadRefusal> OtlpHttpReceiver::CheckToken(const http::Request& head) const {
  if (options_.tokens == nullptr || !options_.tokens->enabled()) return std::nullopt;
  auth::Authentication found =
      options_.tokens->Authenticate(head.Header("Authorization"), "OTLP/HTTP");
  if (!found.principal) {
    return http::HeadRefusal{
        401, found.message, {{"WWW-Authenticate", "Bearer realm=\"ordertrace\""}}};
  }
  if (!auth::Allows(found.principal->role, auth::Access::kIngest)) {
    options_.tokens->CountForbidden(*found.principal, "OTLP/HTTP");
    return http::HeadRefusal{403,
                             "the token '" + found.principal->token_name + "' (" +
                                 std::string(auth::RoleName(found.principal->role)) +
                                 ") may not export spans: that takes the ingest role",
                             {}};
  }
  return std::nullopt;
}

// The steps of an export (the token was checked on the head): check the media type and
// coding, decompress, reserve the decode's
// memory, decode, ingest, answer with what was refused span by span.
void OtlpHttpReceiver::Export(http::Request& req, http::Response& res) {
  ++counters_->requests;
  const Encoding encoding = EncodingOf(req);
  if (encoding == Encoding::kUnknown) {
    SetError(res, Encoding::kJson, 415, absl::StatusCode::kInvalidArgument,
             "unsupported Content-Type '" + req.Header("Content-Type") +
                 "': use application/x-protobuf or application/json");
    ++counters_->requests_malformed;
    return;
  }
  std::optional<std::string> body = DecompressedBody(req, res, encoding);
  if (!body.has_value()) return;
  absl::StatusOr<otlp::DecodeBudget::Lease> lease =
      encoding == Encoding::kProtobuf ? budget_.AdmitProtobuf(*body) : budget_.AdmitJson(*body);
  if (!lease.ok()) return Refuse(res, encoding, lease.status());

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
  const size_t received = decoded->batch.SpanCount();
  ingest::RejectedSpans rejected;
  absl::Status stored =
      ingester_.Ingest(std::move(decoded->batch), std::move(decoded->received), &rejected);
  if (!stored.ok()) return Refuse(res, encoding, stored);
  counters_->spans_accepted += received - static_cast<size_t>(rejected.count);
  counters_->spans_rejected += decoded->rejected_spans + rejected.count;
  SetSuccess(res, encoding, decoded->rejected_spans + rejected.count,
             decoded->rejected_spans > 0 ? decoded->rejection_message : rejected.message);
}

std::optional<std::string> OtlpHttpReceiver::DecompressedBody(http::Request& req,
                                                              http::Response& res,
                                                              Encoding encoding) {
  const std::string coding = req.Header("Content-Encoding");
  if (!http::IsSupportedContentCoding(coding)) {
    SetError(res, encoding, 415, absl::StatusCode::kInvalidArgument,
             "unsupported Content-Encoding '" + coding + "': use gzip or none");
    ++counters_->requests_malformed;
    return std::nullopt;
  }
  absl::StatusOr<std::string> body =
      http::DecodeContent(std::move(req.body), coding, options_.max_request_bytes);
  if (body.ok()) return *std::move(body);
  const bool too_large = body.status().code() == absl::StatusCode::kResourceExhausted;
  ++(too_large ? counters_->requests_too_large : counters_->requests_malformed);
  SetError(res, encoding, too_large ? 413 : 400, body.status().code(),
           std::string(body.status().message()));
  return std::nullopt;
}

void OtlpHttpReceiver::Refuse(http::Response& res, Encoding encoding, const absl::Status& status) {
  if (status.code() == absl::StatusCode::kOutOfRange) {
    // The decode budget's per-request ceiling: never admitted, so no Retry-After.
    ++counters_->requests_too_large;
    SetError(res, encoding, 413, absl::StatusCode::kResourceExhausted,
             std::string(status.message()));
    return;
  }
  int http_status = HttpStatusFor(status);
  if (http_status == 429 || http_status == 503) {
    ++counters_->requests_throttled;
  } else {
    spdlog::error("storing spans failed: {}", status.ToString());
    // Anything else is ours, not the client's: ask it to retry rather than drop data.
    http_status = 503;
  }
  res.SetHeader("Retry-After", std::to_string(options_.retry_after_seconds));
  SetError(res, encoding, http_status, status.code(), std::string(status.message()));
}

OtlpHttpReceiver::~OtlpHttpReceiver() { Shutdown(); }

absl::StatusOr<int> OtlpHttpReceiver::Start(const base::ListenAddress& address) {
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
