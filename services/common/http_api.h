// The JSON HTTP conventions the three services share (docs/services.md, "HTTP APIs"): replies,
// errors, request bodies, and the SERVER span of an operation on an order, on the http::
// message types the services' http::Server hands over. Free functions; thread-safe.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "http/message.h"
#include "sdk/trace_context.h"
#include "sdk/tracer.h"
#include "services/common/order_store.h"

namespace ordertrace::services {

void ReplyJson(http::Response& response, int status, const nlohmann::json& body);

// {"error": code, "message": message} plus `extra`'s members.
void ReplyError(http::Response& response, int status, std::string_view code,
                std::string_view message, const nlohmann::json& extra = nlohmann::json::object());

// Maps a service error onto its HTTP answer: kNotFound 404 order_not_found, kFailedPrecondition
// 409 illegal_transition (with current_status), kAlreadyExists 409 already_exists,
// kInvalidArgument 400 bad_request, kOutOfRange 422 malformed_model, kUnavailable 503, others 500.
void ReplyStatus(http::Response& response, const absl::Status& status);

// The body as a JSON object; an empty body is {}. kInvalidArgument otherwise.
absl::StatusOr<nlohmann::json> JsonBody(const http::Request& request);

// The caller's W3C trace context from `traceparent` / `tracestate`, when valid.
std::optional<sdk::SpanContext> CallerContext(const http::Request& request);

// Starts the SERVER span of an HTTP operation: a child of the order's trace root when known
// (so the order stays one trace), with a link to the caller's own trace context, and
// OpenTelemetry's HTTP attributes (http.request.method, http.route, url.path).
std::unique_ptr<sdk::Span> StartOperationSpan(const sdk::Tracer& tracer, std::string_view name,
                                              std::string_view route, const http::Request& request,
                                              const sdk::SpanContext& order_root);

// Sets the design's transition attributes on `span`: order_id, prev_status, new_status,
// event_version, partner_id and operator_id (when there is one: the manufacturing approval's).
void SetTransitionAttributes(sdk::Span& span, const StatusEvent& event);

// Records a failed operation on `span` the way the design asks (error_code, error_message) and
// replies with ReplyStatus. The span keeps http.response.status_code.
void FailOperation(sdk::Span& span, http::Response& response, const absl::Status& status);

// The order JSON every service's GET /api/orders/{id} starts from.
nlohmann::json OrderJson(const OrderView& order);

}  // namespace ordertrace::services
