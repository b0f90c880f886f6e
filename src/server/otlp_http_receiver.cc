#include "server/otlp_http_receiver.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "google/rpc/status.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otlp/json_codec.h"
#include "otlp/proto_codec.h"
#include "server/http_socket.h"
#include "server/status_mapping.h"

namespace ordertrace::server {
namespace {

constexpr char kProtobuf[] = "application/x-protobuf";
constexpr char kJson[] = "application/json";
// How much of a refused request's body is read and thrown away before the connection is
// closed anyway.
constexpr size_t kMaxDrainBytes = 64 << 20;

enum class Encoding { kProtobuf, kJson, kUnknown };

Encoding EncodingOf(const httplib::Request& req) {
  std::string type = req.get_header_value("Content-Type");
  type = type.substr(0, type.find(';'));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  for (char& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (type == kProtobuf) return Encoding::kProtobuf;
  if (type == kJson) return Encoding::kJson;
  return Encoding::kUnknown;
}

// OTLP/HTTP error bodies are a google.rpc.Status in the request's encoding.
void SetError(httplib::Response& res, Encoding encoding, int http_status, absl::StatusCode code,
              const std::string& message) {
  res.status = http_status;
  if (encoding == Encoding::kProtobuf) {
    google::rpc::Status status;
    status.set_code(static_cast<int>(code));
    status.set_message(message);
    res.set_content(status.SerializeAsString(), kProtobuf);
  } else {
    nlohmann::json body = {{"code", static_cast<int>(code)}, {"message", message}};
    // The message may quote client bytes that are not UTF-8: replaced, never thrown.
    res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), kJson);
  }
}

void SetSuccess(httplib::Response& res, Encoding encoding, int64_t rejected,
                const std::string& message) {
  res.status = 200;
  if (encoding == Encoding::kProtobuf) {
    opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse response;
    if (rejected > 0) {
      response.mutable_partial_success()->set_rejected_spans(rejected);
      response.mutable_partial_success()->set_error_message(message);
    }
    res.set_content(response.SerializeAsString(), kProtobuf);
  } else {
    nlohmann::json body = nlohmann::json::object();
    if (rejected > 0) {
      body["partialSuccess"] = {{"rejectedSpans", std::to_string(rejected)},
                                {"errorMessage", message}};
    }
    res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), kJson);
  }
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
    : ingester_(ingester),
      options_(options),
      counters_(std::make_unique<Counters>()),
      http_(std::make_unique<httplib::Server>()) {
  http_->new_task_queue = [threads = options_.threads] { return new httplib::ThreadPool(threads); };
  // httplib refuses a Content-Length past this with 413 before reading; the reader below
  // also counts decompressed and chunked bytes, which httplib does not.
  ConfigureSockets(*http_);
  http_->set_payload_max_length(options_.max_request_bytes);
  // A client that stalls mid-request holds a worker thread; exporters send at once.
  http_->set_read_timeout(10, 0);

  http_->Post("/v1/traces", [this](const httplib::Request& req, httplib::Response& res,
                                   const httplib::ContentReader& content_reader) {
    ++counters_->requests;
    Encoding encoding = EncodingOf(req);
    // A refused request's body is still read (and thrown away, up to kMaxDrainBytes): closing
    // with bytes unread makes the kernel reset the connection, and the client would see a
    // network error it retries instead of the answer.
    auto drain = [&] {
      size_t drained = 0;
      content_reader([&](const char*, size_t length) {
        drained += length;
        return drained <= kMaxDrainBytes;
      });
    };
    if (encoding == Encoding::kUnknown) {
      drain();
      res.set_header("Connection", "close");
      SetError(res, Encoding::kJson, 415, absl::StatusCode::kInvalidArgument,
               "unsupported Content-Type '" + req.get_header_value("Content-Type") +
                   "': use application/x-protobuf or application/json");
      ++counters_->requests_malformed;
      return;
    }
    // httplib decodes gzip, deflate and br, and would pass any other encoding through as if
    // it were plain: refuse those instead of decoding garbage.
    std::string content_encoding = req.get_header_value("Content-Encoding");
    for (char& c : content_encoding)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!content_encoding.empty() && content_encoding != "gzip" && content_encoding != "identity" &&
        content_encoding != "deflate" && content_encoding != "br") {
      drain();
      res.set_header("Connection", "close");
      SetError(res, encoding, 415, absl::StatusCode::kInvalidArgument,
               "unsupported Content-Encoding '" + content_encoding + "': use gzip or none");
      ++counters_->requests_malformed;
      return;
    }
    std::string body;
    // One allocation for the usual body (not one per doubling): its declared length, bounded
    // so that a client announcing a large body it never sends cannot hold much memory.
    constexpr size_t kMaxReserve = 4 << 20;
    if (std::string declared = req.get_header_value("Content-Length"); !declared.empty()) {
      body.reserve(std::min({static_cast<size_t>(std::strtoull(declared.c_str(), nullptr, 10)),
                             options_.max_request_bytes, kMaxReserve}));
    }
    bool too_large = false;
    size_t discarded = 0;
    bool read = content_reader([&](const char* data, size_t length) {
      if (too_large || body.size() + length > options_.max_request_bytes) {
        too_large = true;
        body.clear();
        discarded += length;
        return discarded <= kMaxDrainBytes;
      }
      body.append(data, length);
      return true;
    });
    if (too_large || (!read && res.status == 413)) {
      ++counters_->requests_too_large;
      res.set_header("Connection", "close");
      SetError(res, encoding, 413, absl::StatusCode::kResourceExhausted,
               "request body exceeds " + std::to_string(options_.max_request_bytes) + " bytes");
      return;
    }
    if (!read) {
      ++counters_->requests_malformed;
      res.set_header("Connection", "close");
      int status = res.status == 415 ? 415 : 400;
      SetError(res, encoding, status, absl::StatusCode::kInvalidArgument,
               "could not read the request body (bad or unsupported Content-Encoding?)");
      return;
    }

    // A protobuf body stays with its spans: storing them copies their bytes from it.
    absl::StatusOr<otlp::DecodedRequest> decoded =
        encoding == Encoding::kProtobuf
            ? otlp::DecodeProtobufRequest(std::make_shared<const std::string>(std::move(body)))
            : otlp::DecodeJsonRequest(body);
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
        res.set_header("Retry-After", std::to_string(options_.retry_after_seconds));
      } else {
        spdlog::error("storing spans failed: {}", stored.ToString());
        // Anything else is ours, not the client's: ask it to retry rather than drop data.
        http_status = 503;
        res.set_header("Retry-After", std::to_string(options_.retry_after_seconds));
      }
      SetError(res, encoding, http_status, stored.code(), std::string(stored.message()));
      return;
    }
    counters_->spans_accepted += accepted;
    counters_->spans_rejected += decoded->rejected_spans;
    SetSuccess(res, encoding, decoded->rejected_spans, decoded->rejection_message);
  });
}

OtlpHttpReceiver::~OtlpHttpReceiver() { Shutdown(); }

absl::StatusOr<int> OtlpHttpReceiver::Start(const ListenAddress& address) {
  return BindAndServe(*http_, address, "OTLP/HTTP receiver", thread_);
}

void OtlpHttpReceiver::Shutdown() {
  if (http_) StopServing(*http_, thread_);
}

OtlpHttpReceiverStats OtlpHttpReceiver::Stats() const {
  return OtlpHttpReceiverStats{
      counters_->requests.load(),           counters_->spans_accepted.load(),
      counters_->spans_rejected.load(),     counters_->requests_malformed.load(),
      counters_->requests_too_large.load(), counters_->requests_throttled.load()};
}

}  // namespace ordertrace::server
