// libFuzzer target: the request path every HTTP listener shares (OTLP/HTTP, the API, the
// services): Beast's parser with the server's limits and refusals, the target's decoding, the
// router with the API's and the OTLP receiver's patterns, and the body's content coding. It
// must never crash or hang on any bytes; a refusal is one of 400, 413 and 431; what a route
// captures is what its pattern allows; and every error answer is valid JSON.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "http/content_coding.h"
#include "http/request_parsing.h"
#include "http/router.h"

namespace {

using ordertrace::http::Request;
using ordertrace::http::Response;

constexpr size_t kMaxHeader = 8 << 10;
constexpr size_t kMaxBody = 1 << 20;

// A single "{}" capture is one non-empty segment; "{*}" is non-empty.
void CheckSegment(const Request& request, size_t i) {
  const std::string& segment = request.PathParam(i);
  if (segment.empty() || segment.find('/') != std::string::npos) __builtin_trap();
}

const ordertrace::http::Router& Routes() {
  static const ordertrace::http::Router* router = [] {
    auto* r = new ordertrace::http::Router();
    auto ok = [](Request&, Response& response) { response.SetContent("{}", "application/json"); };
    r->Get("/healthz", ok);
    r->Get("/api/v1/orders", ok);
    r->Get("/api/v1/orders/{*}", [](Request& request, Response&) {
      if (request.PathParam(0).empty()) __builtin_trap();
    });
    r->Get("/api/traces/{}", [](Request& request, Response&) { CheckSegment(request, 0); });
    r->Get("/api/v2/traces/{}", [](Request& request, Response&) { CheckSegment(request, 0); });
    r->Get("/api/search/tag/{}/values",
           [](Request& request, Response&) { CheckSegment(request, 0); });
    r->Post("/v1/traces", ok);
    r->Post("/api/orders/{}/submit", [](Request& request, Response&) { CheckSegment(request, 0); });
    return r;
  }();
  return *router;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  ordertrace::http::ParseOutcome outcome =
      ordertrace::http::ParseRequest(bytes, kMaxHeader, kMaxBody);
  if (outcome.refusal != 0) {
    if (outcome.refusal != 400 && outcome.refusal != 413 && outcome.refusal != 431) {
      __builtin_trap();
    }
    return 0;
  }
  if (outcome.incomplete) return 0;
  Request& request = outcome.request;
  if (request.body.size() > kMaxBody) __builtin_trap();

  Response response;
  Routes().Handle(request, response);
  if (response.status == 404 || response.status == 405) {
    nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
    if (body.is_discarded() || !body["error"].is_string()) __builtin_trap();
  }

  absl::StatusOr<std::string> decoded =
      ordertrace::http::DecodeContent(request.body, request.Header("Content-Encoding"), kMaxBody);
  if (decoded.ok() && decoded->size() > kMaxBody) __builtin_trap();
  return 0;
}
