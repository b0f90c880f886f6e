#include "services/shop/shop_service.h"

#include "base/attribute_names.h"
#include "services/common/http_api.h"
#include "services/common/messages.h"
#include "services/common/order_transitions.h"
#include "services/shop/stl_model.h"

namespace ordertrace::services::shop {
namespace {

constexpr size_t kMaxIdLength = 128;

// An id from a request body: a non-empty string of at most kMaxIdLength printable characters.
absl::StatusOr<std::string> BodyId(const nlohmann::json& body, const char* key, bool required) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) {
    if (required) return absl::InvalidArgumentError(std::string("missing \"") + key + "\"");
    return std::string();
  }
  if (!it->is_string()) {
    return absl::InvalidArgumentError(std::string("\"") + key + "\" must be a string");
  }
  std::string value = it->get<std::string>();
  if (value.empty() || value.size() > kMaxIdLength) {
    return absl::InvalidArgumentError(std::string("\"") + key + "\" must have 1 to 128 characters");
  }
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(std::string("\"") + key + "\" has control characters");
    }
  }
  return value;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ShopService>> ShopService::Start(const ServiceOptions& options) {
  absl::StatusOr<std::unique_ptr<ServiceRuntime>> runtime =
      ServiceRuntime::Create(kShopIdentity, options, kOrderSchema);
  if (!runtime.ok()) return runtime.status();
  std::unique_ptr<ShopService> service(new ShopService(*std::move(runtime)));
  service->AddRoutes();
  service->runtime_->ConsumeStatusEvents();
  if (absl::Status started = service->runtime_->Start(); !started.ok()) return started;
  return service;
}

void ShopService::AddRoutes() {
  ServiceRuntime& runtime = *runtime_;
  http::Router& routes = runtime.http();

  routes.Post("/api/orders", [&runtime](const http::Request& request, http::Response& response) {
    const sdk::Tracer& tracer = runtime.tracer();
    absl::StatusOr<nlohmann::json> body = JsonBody(request);
    absl::StatusOr<std::string> customer_id =
        body.ok() ? BodyId(*body, "customer_id", true) : body.status();
    absl::StatusOr<std::string> partner_id =
        customer_id.ok() ? BodyId(*body, "partner_id", false) : customer_id.status();
    // Contact details are kept by the shop but never traced or published.
    absl::StatusOr<std::string> email =
        partner_id.ok() ? BodyId(*body, "email", false) : partner_id.status();
    absl::StatusOr<std::string> phone = email.ok() ? BodyId(*body, "phone", false) : email.status();
    if (!phone.ok()) {
      std::unique_ptr<sdk::Span> span =
          StartOperationSpan(tracer, "shop.init", "/api/orders", request, {});
      FailOperation(*span, response, phone.status());
      return;
    }
    NewOrder order;
    order.order_id = NewUuid();
    order.customer_id = *customer_id;
    order.partner_id = *partner_id;
    order.email = *email;
    order.phone = *phone;

    // The order's one trace starts here.
    sdk::StartSpanOptions root_options;
    root_options.attributes.push_back(
        base::KeyValue{base::kOrderIdKey, base::AnyValue::String(order.order_id)});
    if (!order.partner_id.empty()) {
      root_options.attributes.push_back(
          base::KeyValue{base::kPartnerIdKey, base::AnyValue::String(order.partner_id)});
    }
    std::unique_ptr<sdk::Span> root = tracer.StartSpan("order.root", std::move(root_options));
    order.order_root = root->GetContext();
    std::unique_ptr<sdk::Span> span =
        StartOperationSpan(tracer, "shop.init", "/api/orders", request, order.order_root);
    span->SetAttribute(base::kOrderIdKey, order.order_id);
    if (runtime.faults() != nullptr && !order.partner_id.empty() &&
        runtime.faults()->Take(order.customer_id, kFaultPartnerOrderDropped)) {
      // Demo fault: the partner's request is accepted and answered, then the order is dropped
      // inside the shop: nothing is stored and no status event goes out.
      StatusEvent accepted;
      accepted.order_id = order.order_id;
      accepted.event_version = 1;
      accepted.new_status = std::string(kInitiated);
      accepted.partner_id = order.partner_id;
      SetTransitionAttributes(*span, accepted);
      span->SetAttribute("http.response.status_code", 201);
      ReplyJson(response, 201,
                {{"order_id", order.order_id},
                 {"status", kInitiated},
                 {"partner_id", order.partner_id},
                 {"trace_id", order.order_root.trace_id.ToHex()}});
      return;
    }
    absl::StatusOr<TransitionResult> created = runtime.db().Run([&](SqliteDb& db) {
      return CreateOrder(db, order, kShopIdentity.name, span->GetContext());
    });
    if (!created.ok()) {
      FailOperation(*span, response, created.status());
      root->RecordError("ORDER_NOT_CREATED", std::string(created.status().message()));
      return;
    }
    runtime.outbox().Notify();
    SetTransitionAttributes(*span, created->event);
    span->SetAttribute("http.response.status_code", 201);
    nlohmann::json reply = OrderJson(created->order);
    ReplyJson(response, 201, reply);
    span->End();
    root->End();
  });

  routes.Put("/api/orders/{}/model",
             [&runtime](const http::Request& request, http::Response& response) {
               const std::string order_id = request.PathParam(0);
               absl::StatusOr<int64_t> polygons = ReadStlTriangleCount(request.body);
               if (!polygons.ok()) {
                 // kOutOfRange answers 422 malformed_model: well-formed HTTP, but not a binary STL.
                 runtime.RefuseHttpRequest(request, response, "shop.upload",
                                           "/api/orders/{id}/model", order_id, polygons.status());
                 return;
               }
               TransitionDetails details;
               details.polygon_count = *polygons;
               runtime.RunHttpTransition(request, response, "shop.upload", "/api/orders/{id}/model",
                                         order_id, kFileUploaded, details);
             });

  routes.Post("/api/orders/{}/submit", [&runtime](const http::Request& request,
                                                  http::Response& response) {
    const std::string order_id = request.PathParam(0);
    absl::StatusOr<std::optional<OrderView>> known =
        runtime.db().Run([&](SqliteDb& db) { return LoadOrder(db, order_id); });
    std::vector<OutboxMessage> price_request;
    if (known.ok() && known->has_value()) {
      const OrderView& order = **known;
      OutboxMessage message;
      message.exchange = kPriceExchange;
      message.routing_key = kPriceRoutingKey;
      message.queue = kPriceQueue;
      message.span_name = "mq.publish.price";
      message.order_id = order_id;
      // SUBMITTED gets the next version; the transition checks it is still the next one.
      message.body = EncodePriceRequest(PriceRequest{
          order_id, order.event_version + 1, order.polygon_count.value_or(0), order.partner_id});
      price_request.push_back(std::move(message));
    }
    runtime.RunHttpTransition(request, response, "shop.submit", "/api/orders/{id}/submit", order_id,
                              kSubmitted, {}, price_request);
  });

  routes.Get("/api/orders/{}", [&runtime](const http::Request& request, http::Response& response) {
    ReplyOrder(runtime, request.PathParam(0), response);
  });
}

}  // namespace ordertrace::services::shop
