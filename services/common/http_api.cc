#include "services/common/http_api.h"

#include "base/attribute_names.h"

namespace ordertrace::services {
namespace {

struct HttpError {
  int status;
  const char* code;
};

HttpError ErrorFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kNotFound:
      return {404, "order_not_found"};
    case absl::StatusCode::kFailedPrecondition:
      return {409, "illegal_transition"};
    case absl::StatusCode::kInvalidArgument:
      return {400, "bad_request"};
    case absl::StatusCode::kAlreadyExists:
      return {409, "already_exists"};
    case absl::StatusCode::kOutOfRange:
      return {422, "malformed_model"};
    case absl::StatusCode::kUnavailable:
      return {503, "unavailable"};
    default:
      return {500, "internal"};
  }
}

}  // namespace

void ReplyJson(http::Response& response, int status, const nlohmann::json& body) {
  response.status = status;
  // Client bytes quoted in a body need not be UTF-8: replaced, never thrown.
  response.SetContent(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                      "application/json");
}

void ReplyError(http::Response& response, int status, std::string_view code,
                std::string_view message, const nlohmann::json& extra) {
  nlohmann::json body = {{"error", code}, {"message", message}};
  if (extra.is_object()) {
    for (const auto& [key, value] : extra.items()) body[key] = value;
  }
  ReplyJson(response, status, body);
}

void ReplyStatus(http::Response& response, const absl::Status& status) {
  HttpError error = ErrorFor(status.code());
  nlohmann::json extra = nlohmann::json::object();
  if (std::string current = CurrentStatusOf(status); !current.empty()) {
    extra["current_status"] = current;
  }
  ReplyError(response, error.status, error.code, std::string(status.message()), extra);
}

absl::StatusOr<nlohmann::json> JsonBody(const http::Request& request) {
  if (request.body.empty()) return nlohmann::json::object();
  nlohmann::json body = nlohmann::json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    return absl::InvalidArgumentError("the request body must be a JSON object");
  }
  return body;
}

std::optional<sdk::SpanContext> CallerContext(const http::Request& request) {
  if (!request.HasHeader(sdk::kTraceparentHeader)) return std::nullopt;
  absl::StatusOr<sdk::SpanContext> context = sdk::ParseTraceContext(
      request.Header(sdk::kTraceparentHeader), request.Header(sdk::kTracestateHeader));
  if (!context.ok()) return std::nullopt;
  return *context;
}

std::unique_ptr<sdk::Span> StartOperationSpan(const sdk::Tracer& tracer, std::string_view name,
                                              std::string_view route, const http::Request& request,
                                              const sdk::SpanContext& order_root) {
  sdk::StartSpanOptions options;
  options.kind = base::SpanKind::kServer;
  if (order_root.IsValid()) options.parent = order_root;
  if (std::optional<sdk::SpanContext> caller = CallerContext(request); caller.has_value()) {
    options.links.push_back(sdk::SpanLink{*caller, {}});
  }
  std::unique_ptr<sdk::Span> span = tracer.StartSpan(name, std::move(options));
  span->SetAttribute("http.request.method", request.method);
  span->SetAttribute("http.route", route);
  span->SetAttribute("url.path", request.path);
  return span;
}

void SetTransitionAttributes(sdk::Span& span, const StatusEvent& event) {
  span.SetAttribute(base::kOrderIdKey, event.order_id);
  if (!event.prev_status.empty()) span.SetAttribute(base::kPrevStatusKey, event.prev_status);
  span.SetAttribute(base::kNewStatusKey, event.new_status);
  span.SetAttribute(base::kEventVersionKey, event.event_version);
  if (!event.partner_id.empty()) span.SetAttribute(base::kPartnerIdKey, event.partner_id);
  // Who approved manufacturing: ordertrace hashes it for every role but ops (docs/security.md).
  if (!event.operator_id.empty()) span.SetAttribute("operator_id", event.operator_id);
}

void FailOperation(sdk::Span& span, http::Response& response, const absl::Status& status) {
  ReplyStatus(response, status);
  span.SetAttribute("http.response.status_code", response.status);
  std::string code = ErrorFor(status.code()).code;
  for (char& c : code) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  span.RecordError(code, std::string(status.message()));
}

nlohmann::json OrderJson(const OrderView& order) {
  nlohmann::json body = {{"order_id", order.order_id},
                         {"status", order.status},
                         {"event_version", order.event_version},
                         {"created_at_unix_nano", order.created_at_unix_nano},
                         {"updated_at_unix_nano", order.updated_at_unix_nano}};
  body["partner_id"] =
      order.partner_id.empty() ? nlohmann::json() : nlohmann::json(order.partner_id);
  if (order.order_root.IsValid()) body["trace_id"] = order.order_root.trace_id.ToHex();
  if (!order.customer_id.empty()) body["customer_id"] = order.customer_id;
  if (order.polygon_count.has_value()) body["polygon_count"] = *order.polygon_count;
  if (!order.complexity_class.empty()) body["complexity_class"] = order.complexity_class;
  if (order.price.has_value()) body["price"] = *order.price;
  if (!order.operator_id.empty()) body["operator_id"] = order.operator_id;
  return body;
}

}  // namespace ordertrace::services
