#include "services/common/messages.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace ordertrace::services {
namespace {

using nlohmann::json;

StatusEvent FullEvent() {
  StatusEvent event;
  event.order_id = "6f1c1f5e-0c1a-4c39-9d55-0d8a6f0e2b11";
  event.event_version = 5;
  event.prev_status = "PRICE_CALCULATION_STARTED";
  event.new_status = "PRICE_CALCULATED";
  event.partner_id = "partner-3";
  event.service = "mes-api";
  event.occurred_at_unix_nano = 1'700'000'000'123'456'789;
  event.polygon_count = 250'000;
  event.price = 1234.75;
  event.operator_id = "operator-9";
  return event;
}

json ValidEventJson() {
  return json::parse(R"({"order_id": "o-1", "event_version": 2, "prev_status": "INITIATED",
                         "new_status": "FILE_UPLOADED", "service": "shop-api",
                         "occurred_at_unix_nano": 17})");
}

json ValidPriceJson() {
  return json::parse(R"({"order_id": "o-1", "event_version": 3, "polygon_count": 1000})");
}

// Expects `body` to be rejected as kInvalidArgument with `field` named in the message.
template <typename Decode>
void ExpectRejected(Decode decode, const std::string& body, const std::string& field) {
  SCOPED_TRACE(body);
  auto decoded = decode(body);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(decoded.status().message().find(field), std::string::npos) << decoded.status();
}

TEST(MessagesTest, StatusEventRoundTripsEveryField) {
  StatusEvent event = FullEvent();
  absl::StatusOr<StatusEvent> decoded = DecodeStatusEvent(EncodeStatusEvent(event));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->order_id, event.order_id);
  EXPECT_EQ(decoded->event_version, 5);
  EXPECT_EQ(decoded->prev_status, "PRICE_CALCULATION_STARTED");
  EXPECT_EQ(decoded->new_status, "PRICE_CALCULATED");
  EXPECT_EQ(decoded->partner_id, "partner-3");
  EXPECT_EQ(decoded->service, "mes-api");
  EXPECT_EQ(decoded->occurred_at_unix_nano, 1'700'000'000'123'456'789);
  EXPECT_EQ(decoded->polygon_count, 250'000);
  EXPECT_EQ(decoded->price, 1234.75);
  EXPECT_EQ(decoded->operator_id, "operator-9");
}

TEST(MessagesTest, StatusEventLeavesOutAbsentOptionalFields) {
  StatusEvent event;
  event.order_id = "o-1";
  event.event_version = 1;
  event.new_status = "INITIATED";
  event.service = "shop-api";
  const std::string body = EncodeStatusEvent(event);
  json document = json::parse(body);
  EXPECT_EQ(document["order_id"], "o-1");
  EXPECT_EQ(document["prev_status"], "");
  for (const char* absent : {"partner_id", "polygon_count", "price", "operator_id"}) {
    EXPECT_FALSE(document.contains(absent)) << absent << " in " << body;
  }
  absl::StatusOr<StatusEvent> decoded = DecodeStatusEvent(body);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->partner_id, "");
  EXPECT_FALSE(decoded->polygon_count.has_value());
  EXPECT_FALSE(decoded->price.has_value());
  EXPECT_EQ(decoded->operator_id, "");
  EXPECT_EQ(decoded->prev_status, "");
}

TEST(MessagesTest, StatusEventAcceptsNullOptionalsAndAnIntegerPrice) {
  json document = ValidEventJson();
  document["partner_id"] = nullptr;
  document["polygon_count"] = nullptr;
  document["price"] = 400;
  absl::StatusOr<StatusEvent> decoded = DecodeStatusEvent(document.dump());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->partner_id, "");
  EXPECT_FALSE(decoded->polygon_count.has_value());
  EXPECT_EQ(decoded->price, 400.0);
}

TEST(MessagesTest, MalformedStatusEventsNameTheirField) {
  ExpectRejected(DecodeStatusEvent, "not json", "JSON object");
  ExpectRejected(DecodeStatusEvent, "", "JSON object");
  ExpectRejected(DecodeStatusEvent, R"([{"order_id": "o-1"}])", "JSON object");
  ExpectRejected(DecodeStatusEvent, R"("a string")", "JSON object");

  auto without = [](const char* key) {
    json document = ValidEventJson();
    document.erase(key);
    return document.dump();
  };
  auto with = [](const char* key, json value) {
    json document = ValidEventJson();
    document[key] = value;
    return document.dump();
  };
  ExpectRejected(DecodeStatusEvent, without("order_id"), "order_id");
  ExpectRejected(DecodeStatusEvent, without("new_status"), "new_status");
  ExpectRejected(DecodeStatusEvent, without("event_version"), "event_version");
  ExpectRejected(DecodeStatusEvent, with("order_id", 42), "order_id");
  ExpectRejected(DecodeStatusEvent, with("order_id", ""), "order_id");
  ExpectRejected(DecodeStatusEvent, with("order_id", nullptr), "order_id");
  ExpectRejected(DecodeStatusEvent, with("new_status", "SHIPPING"), "new_status");
  ExpectRejected(DecodeStatusEvent, with("new_status", "shipped"), "new_status");
  ExpectRejected(DecodeStatusEvent, with("event_version", 0), "event_version");
  ExpectRejected(DecodeStatusEvent, with("event_version", -3), "event_version");
  ExpectRejected(DecodeStatusEvent, with("event_version", "2"), "event_version");
  ExpectRejected(DecodeStatusEvent, with("event_version", 2.5), "event_version");
  ExpectRejected(DecodeStatusEvent, with("prev_status", 1), "prev_status");
  ExpectRejected(DecodeStatusEvent, with("partner_id", json::array()), "partner_id");
  ExpectRejected(DecodeStatusEvent, with("service", true), "service");
  ExpectRejected(DecodeStatusEvent, with("operator_id", json::object()), "operator_id");
  ExpectRejected(DecodeStatusEvent, with("occurred_at_unix_nano", "now"), "occurred_at_unix_nano");
  ExpectRejected(DecodeStatusEvent, with("polygon_count", "many"), "polygon_count");
  ExpectRejected(DecodeStatusEvent, with("price", "cheap"), "price");
}

TEST(MessagesTest, PriceRequestRoundTrips) {
  PriceRequest request{"o-1", 3, 1'250'000, "partner-3"};
  const std::string body = EncodePriceRequest(request);
  absl::StatusOr<PriceRequest> decoded = DecodePriceRequest(body);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->order_id, "o-1");
  EXPECT_EQ(decoded->event_version, 3);
  EXPECT_EQ(decoded->polygon_count, 1'250'000);
  EXPECT_EQ(decoded->partner_id, "partner-3");

  PriceRequest own{"o-2", 3, 0, ""};
  const std::string own_body = EncodePriceRequest(own);
  EXPECT_FALSE(json::parse(own_body).contains("partner_id")) << own_body;
  absl::StatusOr<PriceRequest> own_decoded = DecodePriceRequest(own_body);
  ASSERT_TRUE(own_decoded.ok()) << own_decoded.status();
  EXPECT_EQ(own_decoded->polygon_count, 0);
  EXPECT_EQ(own_decoded->partner_id, "");
}

TEST(MessagesTest, MalformedPriceRequestsNameTheirField) {
  ExpectRejected(DecodePriceRequest, "{", "JSON object");
  ExpectRejected(DecodePriceRequest, "[1, 2]", "JSON object");
  auto without = [](const char* key) {
    json document = ValidPriceJson();
    document.erase(key);
    return document.dump();
  };
  auto with = [](const char* key, json value) {
    json document = ValidPriceJson();
    document[key] = value;
    return document.dump();
  };
  ExpectRejected(DecodePriceRequest, without("order_id"), "order_id");
  ExpectRejected(DecodePriceRequest, without("event_version"), "event_version");
  ExpectRejected(DecodePriceRequest, without("polygon_count"), "polygon_count");
  ExpectRejected(DecodePriceRequest, with("order_id", 7), "order_id");
  ExpectRejected(DecodePriceRequest, with("polygon_count", -1), "polygon_count");
  ExpectRejected(DecodePriceRequest, with("polygon_count", "1000"), "polygon_count");
  ExpectRejected(DecodePriceRequest, with("polygon_count", 10.5), "polygon_count");
  ExpectRejected(DecodePriceRequest, with("event_version", 0), "event_version");
  ExpectRejected(DecodePriceRequest, with("partner_id", 3), "partner_id");
}

TEST(MessagesTest, NewUuidIsAVersionFourRfc4122Uuid) {
  for (int i = 0; i < 100; ++i) {
    const std::string id = NewUuid();
    SCOPED_TRACE(id);
    ASSERT_EQ(id.size(), 36u);
    for (size_t p = 0; p < id.size(); ++p) {
      if (p == 8 || p == 13 || p == 18 || p == 23) {
        EXPECT_EQ(id[p], '-');
      } else {
        EXPECT_TRUE((id[p] >= '0' && id[p] <= '9') || (id[p] >= 'a' && id[p] <= 'f'))
            << "position " << p;
      }
    }
    EXPECT_EQ(id[14], '4');                                          // version
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos);  // variant 10xx
  }
}

TEST(MessagesTest, NewUuidIsUniqueOverTenThousand) {
  std::set<std::string> ids;
  for (int i = 0; i < 10'000; ++i) ids.insert(NewUuid());
  EXPECT_EQ(ids.size(), 10'000u);
}

TEST(MessagesTest, StatusQueueIsTheServiceDotStatus) {
  EXPECT_EQ(StatusQueue("shop"), "shop.status");
  EXPECT_EQ(StatusQueue("mes"), "mes.status");
}

TEST(MessagesTest, TopologyHasTheFourQueuesWithTheirDeadLetterPairs) {
  std::vector<amqp::Topology> topology = AlexandriteTopology();
  ASSERT_EQ(topology.size(), 4u);
  struct Expected {
    const char *exchange, *queue, *routing_key, *dlx, *dead;
  };
  const Expected expected[] = {
      {"alexandrite.status", "shop.status", "status.#", "shop.dlx", "shop.dead"},
      {"alexandrite.status", "crm.status", "status.#", "crm.dlx", "crm.dead"},
      {"alexandrite.status", "mes.status", "status.#", "mes.dlx", "mes.dead"},
      {"alexandrite.price", "mes.price.requests", "price.request", "mes.dlx", "mes.dead"},
  };
  for (const Expected& want : expected) {
    SCOPED_TRACE(want.queue);
    int found = 0;
    for (const amqp::Topology& t : topology) {
      if (t.queue != want.queue) continue;
      ++found;
      EXPECT_EQ(t.exchange, want.exchange);
      EXPECT_EQ(t.routing_key, want.routing_key);
      EXPECT_EQ(t.dead_letter_exchange, want.dlx);
      EXPECT_EQ(t.dead_letter_queue, want.dead);
    }
    EXPECT_EQ(found, 1);
  }
  EXPECT_EQ(std::string(kStatusExchange), "alexandrite.status");
  EXPECT_EQ(std::string(kPriceExchange), "alexandrite.price");
  EXPECT_EQ(std::string(kPriceRoutingKey), "price.request");
  EXPECT_EQ(std::string(kPriceQueue), "mes.price.requests");
}

}  // namespace
}  // namespace ordertrace::services
