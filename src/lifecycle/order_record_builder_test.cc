#include "lifecycle/order_record_builder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "base/clock.h"

namespace ordertrace::lifecycle {
namespace {

using base::AnyValue;
using base::KeyValue;
using base::Resource;
using base::Span;
using base::SpanKind;
using model::OrderRecord;
using ::testing::ElementsAre;
using ::testing::Optional;

constexpr uint64_t kBase = 1'700'000'000ULL * base::kNanosPerSecond;
constexpr uint64_t kNanosPerMilli = 1'000'000ULL;

uint64_t AtMs(uint64_t ms) { return kBase + ms * kNanosPerMilli; }

base::TraceId TraceIdOf(uint8_t n) {
  base::TraceId id;
  id.bytes[0] = 0x4f;
  id.bytes[15] = n;
  return id;
}

base::SpanId SpanIdOf(uint16_t n) {
  base::SpanId id;
  id.bytes[0] = 0x01;
  id.bytes[6] = static_cast<uint8_t>(n >> 8);
  id.bytes[7] = static_cast<uint8_t>(n);
  return id;
}

KeyValue Str(std::string key, std::string value) {
  return KeyValue{std::move(key), AnyValue::String(std::move(value))};
}
KeyValue Int(std::string key, int64_t value) {
  return KeyValue{std::move(key), AnyValue::Int(value)};
}

Resource Service(const std::string& name) {
  Resource r;
  r.attributes = {Str("service.name", name), Str("deployment.environment", "test")};
  return r;
}

// A span as an OpenTelemetry SDK emits it, with the resource it came from.
struct Emitted {
  Resource resource;
  Span span;
};

Span MakeSpan(uint8_t trace, uint16_t id, std::string name, SpanKind kind, uint64_t start_ms,
              uint64_t end_ms, base::Attributes attributes) {
  Span s;
  s.trace_id = TraceIdOf(trace);
  s.span_id = SpanIdOf(id);
  s.name = std::move(name);
  s.kind = kind;
  s.start_time_unix_nano = AtMs(start_ms);
  s.end_time_unix_nano = AtMs(end_ms);
  s.attributes = std::move(attributes);
  return s;
}

constexpr char kOrder[] = "ord-1001";
constexpr uint8_t kShopTrace = 1;
constexpr uint8_t kMesTrace = 2;

// The lifecycle of one order across the shop, CRM and MES services, as spans. Shop and CRM
// share a trace; MES starts its own from the RabbitMQ message.
std::vector<Emitted> OrderLifecycle() {
  const Resource shop = Service("shop-api");
  const Resource crm = Service("crm-api");
  const Resource mes = Service("mes-api");
  auto transition = [](uint8_t trace, uint16_t id, std::string name, uint64_t start_ms,
                       uint64_t end_ms, std::string prev, std::string next, int64_t version) {
    base::Attributes attrs = {Str("order_id", kOrder), Str("new_status", next),
                              Int("event_version", version)};
    if (!prev.empty()) attrs.push_back(Str("prev_status", prev));
    return MakeSpan(trace, id, std::move(name), SpanKind::kServer, start_ms, end_ms,
                    std::move(attrs));
  };
  auto message = [](uint8_t trace, uint16_t id, std::string name, SpanKind kind, uint64_t start_ms,
                    uint64_t end_ms, std::string message_id, std::string queue,
                    base::Attributes extra) {
    base::Attributes attrs = {Str("order_id", kOrder), Str("messaging.system", "rabbitmq"),
                              Str("messaging.message.id", message_id), Str("queue", queue)};
    for (KeyValue& kv : extra) attrs.push_back(std::move(kv));
    return MakeSpan(trace, id, std::move(name), kind, start_ms, end_ms, std::move(attrs));
  };

  std::vector<Emitted> spans;
  {
    Span initiated = transition(kShopTrace, 1, "POST /orders", 0, 800, "", "INITIATED", 1);
    initiated.attributes.push_back(Str("partner_id", "partner-7"));
    spans.push_back({shop, initiated});
  }
  spans.push_back({shop, transition(kShopTrace, 2, "UploadFile", 5'000, 7'000, "INITIATED",
                                    "FILE_UPLOADED", 2)});
  spans.push_back({shop, transition(kShopTrace, 3, "SubmitOrder", 10'000, 11'000, "FILE_UPLOADED",
                                    "SUBMITTED", 3)});
  // The client retried the submit; the first report of SUBMITTED stands.
  spans.push_back({shop, transition(kShopTrace, 4, "SubmitOrder", 12'000, 12'500, "FILE_UPLOADED",
                                    "SUBMITTED", 3)});
  spans.push_back({shop, message(kShopTrace, 5, "crm.price_requests publish", SpanKind::kProducer,
                                 11'000, 11'010, "msg-1", "crm.price_requests", {})});
  spans.push_back(
      {crm, message(kShopTrace, 6, "crm.price_requests process", SpanKind::kConsumer, 11'500,
                    11'600, "msg-1", "crm.price_requests", {Int("retry_count", 0)})});
  {
    Span failed = MakeSpan(kShopTrace, 7, "CalculatePrice", SpanKind::kInternal, 11'550, 12'550,
                           {Str("order_id", kOrder), Str("error_code", "PRICE_ENGINE_TIMEOUT"),
                            Str("error_message", "pricing engine timed out after 1s")});
    failed.status.code = base::StatusCode::kError;
    failed.status.message = "deadline exceeded";
    spans.push_back({crm, failed});
  }
  // RabbitMQ redelivered the message; the consumer counts the retry.
  spans.push_back(
      {crm, message(kShopTrace, 8, "crm.price_requests process", SpanKind::kConsumer, 15'000,
                    15'100, "msg-1", "crm.price_requests", {Int("retry_count", 1)})});
  {
    Span started = transition(kShopTrace, 9, "StartPriceCalculation", 15'100, 15'200, "SUBMITTED",
                              "PRICE_CALCULATION_STARTED", 0);
    // Some producers send the version as a string.
    started.attributes[2] = Str("event_version", "4");
    spans.push_back({crm, started});
  }
  spans.push_back({crm, transition(kShopTrace, 10, "PriceCalculated", 15'200, 17'000,
                                   "PRICE_CALCULATION_STARTED", "PRICE_CALCULATED", 5)});
  spans.push_back({crm, message(kShopTrace, 11, "mes.approvals publish", SpanKind::kProducer,
                                17'000, 17'010, "msg-2", "mes.approvals", {})});
  spans.push_back({mes, message(kMesTrace, 12, "mes.approvals process", SpanKind::kConsumer, 17'500,
                                17'600, "msg-2", "mes.approvals", {Int("retry_count", 0)})});
  {
    Span approved = transition(kMesTrace, 13, "ApproveManufacturing", 17'600, 18'000,
                               "PRICE_CALCULATED", "MANUFACTURING_APPROVED", 6);
    approved.attributes.push_back(Str("partner_id", "partner-7"));
    spans.push_back({mes, approved});
  }
  spans.push_back({mes, transition(kMesTrace, 14, "StartManufacturing", 20'000, 20'100,
                                   "MANUFACTURING_APPROVED", "IN_PRODUCTION", 7)});
  spans.push_back({mes, transition(kMesTrace, 15, "FinishManufacturing", 50'000, 50'100,
                                   "IN_PRODUCTION", "MANUFACTURED", 8)});
  spans.push_back({shop, transition(kShopTrace, 16, "ShipOrder", 60'000, 60'100, "MANUFACTURED",
                                    "SHIPPED", 9)});
  spans.push_back(
      {shop, transition(kShopTrace, 17, "CloseOrder", 70'000, 70'200, "SHIPPED", "CLOSED", 10)});
  // Published, never consumed (yet).
  spans.push_back({shop, message(kShopTrace, 18, "crm.notifications publish", SpanKind::kProducer,
                                 70'100, 70'110, "msg-3", "crm.notifications", {})});
  // A plain span without an order: it belongs to no record.
  spans.push_back({shop, MakeSpan(kShopTrace, 19, "GET /health", SpanKind::kServer, 100, 101, {})});
  return spans;
}

OrderRecord Build(const std::vector<Emitted>& spans) {
  OrderRecord record;
  record.order_id = kOrder;
  for (const Emitted& e : spans) {
    std::optional<std::string> order = OrderIdOf(e.span, e.resource);
    if (order && *order == kOrder) ApplySpan(e.span, e.resource, record);
  }
  return record;
}

std::vector<std::string> StatusNames(const OrderRecord& r) {
  std::vector<std::string> out;
  for (const model::StatusReached& s : r.statuses) out.push_back(s.status);
  return out;
}

std::vector<std::string> Hex(const std::vector<base::TraceId>& ids) {
  std::vector<std::string> out;
  for (const base::TraceId& id : ids) out.push_back(id.ToHex());
  return out;
}

std::vector<std::string> Describe(const std::vector<model::MessageHop>& messages) {
  std::vector<std::string> out;
  for (const model::MessageHop& m : messages) {
    out.push_back(m.message_id + " queue=" + m.queue +
                  " published=" + std::to_string(m.published_at_unix_nano) +
                  " consumed=" + std::to_string(m.consumed_at_unix_nano) +
                  " retries=" + std::to_string(m.retry_count) +
                  " by=" + (m.published_by.IsValid() ? m.published_by.ToHex() : "-"));
  }
  return out;
}

std::string Describe(const std::optional<model::Operation>& op) {
  if (!op) return "none";
  return op->span_name + "@" + std::to_string(op->at_unix_nano) + " " + op->span_id.ToHex() + " " +
         op->error_code;
}

// A readable form of a record for failure messages.
std::string Describe(const OrderRecord& r) {
  std::string out = "order " + r.order_id + " trace " + r.trace_id.ToHex() + " partner " +
                    r.partner_id + " first " + std::to_string(r.first_seen_unix_nano) + " last " +
                    std::to_string(r.last_seen_unix_nano) + "\n  traces:";
  for (const std::string& t : Hex(r.trace_ids)) out += " " + t;
  out += "\n  statuses:";
  for (const model::StatusReached& s : r.statuses) {
    out += " " + s.status + "(v" + std::to_string(s.event_version) + "@" +
           std::to_string(s.at_unix_nano) + " " + s.span_id.ToHex() + ")";
  }
  out += "\n  last_success: " + Describe(r.last_success);
  out += "\n  last_error: " + Describe(r.last_error);
  for (const std::string& m : Describe(r.messages)) out += "\n  message " + m;
  out += "\n  revisits:";
  for (const model::StatusReached& s : r.revisits) {
    out += " " + s.status + "(v" + std::to_string(s.event_version) + "@" +
           std::to_string(s.at_unix_nano) + " " + s.span_id.ToHex() + ")";
  }
  return out;
}

TEST(OrderRecordBuilderTest, OrderIdComesFromTheSpanElseTheResource) {
  Span span = MakeSpan(1, 1, "s", SpanKind::kInternal, 0, 1, {});
  Resource resource = Service("shop-api");
  EXPECT_EQ(OrderIdOf(span, resource), std::nullopt);

  resource.attributes.push_back(Str("order_id", "ord-from-resource"));
  EXPECT_THAT(OrderIdOf(span, resource), Optional(std::string("ord-from-resource")));

  span.attributes.push_back(Str("order_id", "ord-from-span"));
  EXPECT_THAT(OrderIdOf(span, resource), Optional(std::string("ord-from-span")));

  Span numeric = MakeSpan(1, 2, "s", SpanKind::kInternal, 0, 1, {Int("order_id", 12345)});
  EXPECT_THAT(OrderIdOf(numeric, Service("x")), Optional(std::string("12345")));

  Span empty = MakeSpan(1, 3, "s", SpanKind::kInternal, 0, 1, {Str("order_id", "")});
  EXPECT_EQ(OrderIdOf(empty, Service("x")), std::nullopt);
}

TEST(OrderRecordBuilderTest, BuildsTheRecordOfAFullLifecycle) {
  const OrderRecord r = Build(OrderLifecycle());

  EXPECT_EQ(r.order_id, kOrder);
  EXPECT_EQ(r.trace_id, TraceIdOf(kShopTrace));
  EXPECT_THAT(r.trace_ids, ElementsAre(TraceIdOf(kShopTrace), TraceIdOf(kMesTrace)));
  EXPECT_EQ(r.partner_id, "partner-7");
  EXPECT_EQ(r.first_seen_unix_nano, AtMs(0));
  EXPECT_EQ(r.last_seen_unix_nano, AtMs(70'200));

  EXPECT_THAT(StatusNames(r),
              ElementsAre("INITIATED", "FILE_UPLOADED", "SUBMITTED", "PRICE_CALCULATION_STARTED",
                          "PRICE_CALCULATED", "MANUFACTURING_APPROVED", "IN_PRODUCTION",
                          "MANUFACTURED", "SHIPPED", "CLOSED"));
  ASSERT_EQ(r.statuses.size(), 10u);
  const model::StatusReached& initiated = r.statuses[0];
  EXPECT_EQ(initiated.prev_status, "");
  EXPECT_EQ(initiated.at_unix_nano, AtMs(800));
  EXPECT_EQ(initiated.event_version, 1);
  EXPECT_EQ(initiated.service, "shop-api");
  EXPECT_EQ(initiated.span_name, "POST /orders");
  EXPECT_EQ(initiated.span_id, SpanIdOf(1));

  const model::StatusReached& submitted = r.statuses[2];
  EXPECT_EQ(submitted.at_unix_nano, AtMs(11'000)) << "the first report of a status wins";
  EXPECT_EQ(submitted.span_id, SpanIdOf(3));
  EXPECT_EQ(submitted.prev_status, "FILE_UPLOADED");

  const model::StatusReached& started = r.statuses[3];
  EXPECT_EQ(started.event_version, 4) << "a numeric string version is read as a number";
  EXPECT_EQ(started.service, "crm-api");

  const model::StatusReached& approved = r.statuses[5];
  EXPECT_EQ(approved.service, "mes-api");
  EXPECT_EQ(approved.prev_status, "PRICE_CALCULATED");
  EXPECT_EQ(approved.at_unix_nano, AtMs(18'000));

  ASSERT_NE(r.CurrentStatus(), nullptr);
  EXPECT_EQ(r.CurrentStatus()->status, "CLOSED");
  EXPECT_EQ(r.CurrentStatus()->event_version, 10);

  ASSERT_TRUE(r.last_success.has_value());
  EXPECT_EQ(r.last_success->span_name, "CloseOrder");
  EXPECT_EQ(r.last_success->service, "shop-api");
  EXPECT_EQ(r.last_success->at_unix_nano, AtMs(70'200));
  EXPECT_EQ(r.last_success->trace_id, TraceIdOf(kShopTrace));
  EXPECT_EQ(r.last_success->span_id, SpanIdOf(17));
  EXPECT_EQ(r.last_success->error_code, "");

  ASSERT_TRUE(r.last_error.has_value());
  EXPECT_EQ(r.last_error->span_name, "CalculatePrice");
  EXPECT_EQ(r.last_error->service, "crm-api");
  EXPECT_EQ(r.last_error->at_unix_nano, AtMs(12'550));
  EXPECT_EQ(r.last_error->span_id, SpanIdOf(7));
  EXPECT_EQ(r.last_error->error_code, "PRICE_ENGINE_TIMEOUT");
  EXPECT_EQ(r.last_error->error_message, "pricing engine timed out after 1s");

  ASSERT_EQ(r.messages.size(), 3u);
  const model::MessageHop& m1 = r.messages[0];
  EXPECT_EQ(m1.message_id, "msg-1");
  EXPECT_EQ(m1.queue, "crm.price_requests");
  EXPECT_EQ(m1.published_at_unix_nano, AtMs(11'000));
  EXPECT_EQ(m1.consumed_at_unix_nano, AtMs(11'500)) << "the first delivery counts";
  EXPECT_EQ(m1.retry_count, 1) << "the highest retry count seen";
  const model::MessageHop& m2 = r.messages[1];
  EXPECT_EQ(m2.message_id, "msg-2");
  EXPECT_EQ(m2.queue, "mes.approvals");
  EXPECT_EQ(m2.published_at_unix_nano, AtMs(17'000));
  EXPECT_EQ(m2.consumed_at_unix_nano, AtMs(17'500));
  EXPECT_EQ(m2.retry_count, 0);
  const model::MessageHop& m3 = r.messages[2];
  EXPECT_EQ(m3.message_id, "msg-3");
  EXPECT_EQ(m3.queue, "crm.notifications");
  EXPECT_EQ(m3.published_at_unix_nano, AtMs(70'100));
  EXPECT_EQ(m3.consumed_at_unix_nano, 0u);

  ASSERT_NE(r.LastMessage(), nullptr);
  EXPECT_EQ(r.LastMessage()->message_id, "msg-3");
}

TEST(OrderRecordBuilderTest, EveryArrivalOrderGivesTheSameRecord) {
  const std::vector<Emitted> in_order = OrderLifecycle();
  const OrderRecord expected = Build(in_order);
  ASSERT_EQ(expected.statuses.size(), 10u);

  std::mt19937 random(20240611);
  std::vector<Emitted> shuffled = in_order;
  for (int i = 0; i < 200; ++i) {
    std::shuffle(shuffled.begin(), shuffled.end(), random);
    const OrderRecord actual = Build(shuffled);
    ASSERT_TRUE(actual == expected) << "permutation " << i << "\n got: " << Describe(actual)
                                    << "\nwant: " << Describe(expected);
  }
  std::reverse(shuffled.begin(), shuffled.end());
  const OrderRecord reversed = Build(shuffled);
  EXPECT_TRUE(reversed == expected)
      << "\n got: " << Describe(reversed) << "\nwant: " << Describe(expected);
}

// One span id told twice with other content (a broken or hostile exporter; found by
// fuzz/order_fold_fuzzer): which report the record keeps must not depend on which came first.
TEST(OrderRecordBuilderTest, OneSpanIdToldTwiceWithOtherContentDoesNotDependOnArrivalOrder) {
  const Span early = MakeSpan(1, 5, "PriceCalculated", SpanKind::kServer, 40, 50,
                              {Str("order_id", kOrder), Str("new_status", "PRICE_CALCULATED"),
                               Str("prev_status", "SUBMITTED"), Int("event_version", 3)});
  Span late = early;
  late.end_time_unix_nano = AtMs(54);
  Span failed = early;
  failed.status.code = base::StatusCode::kError;
  failed.status.message = "first message";
  Span failed_again = failed;
  failed_again.status.message = "second message";
  const std::vector<Emitted> spans = {{Service("mes-api"), early},
                                      {Service("mes-api"), late},
                                      {Service("mes-api"), failed},
                                      {Service("mes-api"), failed_again},
                                      {Service("crm-api"), early}};
  const OrderRecord expected = Build(spans);
  ASSERT_EQ(expected.statuses.size(), 1u);
  EXPECT_EQ(expected.statuses[0].at_unix_nano, AtMs(50)) << "the earliest report stays";
  // The other reports of the step collapse into one revisit of the same key: the earliest of
  // them (crm-api's or mes-api's report at 50 ms, whichever is not the first).
  ASSERT_EQ(expected.revisits.size(), 1u);
  EXPECT_EQ(expected.revisits[0].status, "PRICE_CALCULATED");
  EXPECT_EQ(expected.revisits[0].at_unix_nano, AtMs(50));
  // Every arrival order of the five (each is told apart by time, message and service).
  auto by_content = [](const Emitted& a, const Emitted& b) {
    auto key = [](const Emitted& e) {
      return std::tie(e.span.end_time_unix_nano, e.span.status.message,
                      e.resource.attributes[0].value.string_value);
    };
    return key(a) < key(b);
  };
  std::vector<Emitted> permuted = spans;
  std::sort(permuted.begin(), permuted.end(), by_content);
  int orders = 0;
  do {
    const OrderRecord actual = Build(permuted);
    ASSERT_TRUE(actual == expected)
        << "\n got: " << Describe(actual) << "\nwant: " << Describe(expected);
    ++orders;
  } while (std::next_permutation(permuted.begin(), permuted.end(), by_content));
  EXPECT_EQ(orders, 120);
}

TEST(OrderRecordBuilderTest, ApplyingEverySpanTwiceChangesNothing) {
  const std::vector<Emitted> spans = OrderLifecycle();
  const OrderRecord expected = Build(spans);

  std::vector<Emitted> each_twice;
  for (const Emitted& e : spans) {
    each_twice.push_back(e);
    each_twice.push_back(e);
  }
  const OrderRecord twice = Build(each_twice);
  EXPECT_TRUE(twice == expected) << "\n got: " << Describe(twice)
                                 << "\nwant: " << Describe(expected);

  std::vector<Emitted> replayed = spans;
  replayed.insert(replayed.end(), spans.begin(), spans.end());
  const OrderRecord replayed_record = Build(replayed);
  EXPECT_TRUE(replayed_record == expected)
      << "\n got: " << Describe(replayed_record) << "\nwant: " << Describe(expected);

  OrderRecord again = expected;
  for (const Emitted& e : spans) {
    if (OrderIdOf(e.span, e.resource)) ApplySpan(e.span, e.resource, again);
  }
  EXPECT_TRUE(again == expected) << "\n got: " << Describe(again)
                                 << "\nwant: " << Describe(expected);
}

TEST(OrderRecordBuilderTest, OrderIdAndPartnerOnTheResourceWork) {
  Resource resource = Service("batch-importer");
  resource.attributes.push_back(Str("order_id", "ord-res"));
  resource.attributes.push_back(Str("partner_id", "partner-3"));
  Span initiated = MakeSpan(3, 1, "Import", SpanKind::kInternal, 0, 10,
                            {Str("new_status", "INITIATED"), Int("event_version", 1)});
  Span submitted = MakeSpan(
      3, 2, "Submit", SpanKind::kInternal, 20, 30,
      {Str("new_status", "SUBMITTED"), Str("prev_status", "INITIATED"), Int("event_version", 2)});

  std::optional<std::string> order = OrderIdOf(initiated, resource);
  ASSERT_THAT(order, Optional(std::string("ord-res")));
  OrderRecord r;
  r.order_id = *order;
  ApplySpan(initiated, resource, r);
  ApplySpan(submitted, resource, r);

  EXPECT_EQ(r.partner_id, "partner-3");
  EXPECT_THAT(StatusNames(r), ElementsAre("INITIATED", "SUBMITTED"));
  ASSERT_NE(r.CurrentStatus(), nullptr);
  EXPECT_EQ(r.CurrentStatus()->status, "SUBMITTED");
  EXPECT_EQ(r.CurrentStatus()->service, "batch-importer");
  EXPECT_EQ(r.trace_id, TraceIdOf(3));
}

OrderRecord SubmittedOrder() {
  OrderRecord r;
  r.order_id = kOrder;
  Resource shop = Service("shop-api");
  ApplySpan(
      MakeSpan(1, 1, "Create", SpanKind::kServer, 0, 10,
               {Str("order_id", kOrder), Str("new_status", "INITIATED"), Int("event_version", 1)}),
      shop, r);
  ApplySpan(MakeSpan(1, 2, "Submit", SpanKind::kServer, 20, 30,
                     {Str("order_id", kOrder), Str("new_status", "SUBMITTED"),
                      Str("prev_status", "INITIATED"), Int("event_version", 2)}),
            shop, r);
  return r;
}

TEST(OrderRecordBuilderTest, FailedTransitionDoesNotMoveTheStatus) {
  OrderRecord r = SubmittedOrder();
  const std::optional<model::Operation> success_before = r.last_success;

  Span failed = MakeSpan(1, 3, "PriceCalculated", SpanKind::kServer, 40, 50,
                         {Str("order_id", kOrder), Str("new_status", "PRICE_CALCULATED"),
                          Str("prev_status", "SUBMITTED"), Int("event_version", 3)});
  failed.status.code = base::StatusCode::kError;
  failed.status.message = "price rules missing for platinum";
  ApplySpan(failed, Service("crm-api"), r);

  EXPECT_THAT(StatusNames(r), ElementsAre("INITIATED", "SUBMITTED"));
  ASSERT_NE(r.CurrentStatus(), nullptr);
  EXPECT_EQ(r.CurrentStatus()->status, "SUBMITTED");
  EXPECT_EQ(r.last_success, success_before);
  ASSERT_TRUE(r.last_error.has_value());
  EXPECT_EQ(r.last_error->span_name, "PriceCalculated");
  EXPECT_EQ(r.last_error->service, "crm-api");
  EXPECT_EQ(r.last_error->error_code, "");
  EXPECT_EQ(r.last_error->error_message, "price rules missing for platinum")
      << "without error_message the status message is used";
  EXPECT_EQ(r.last_seen_unix_nano, AtMs(50));
}

TEST(OrderRecordBuilderTest, FailedTransitionNamesTheStatusItTriedToReach) {
  OrderRecord r = SubmittedOrder();
  Span shipped = MakeSpan(2, 4, "mes.shipped", SpanKind::kServer, 60, 70,
                          {Str("order_id", kOrder), Str("new_status", "SHIPPED"),
                           Str("prev_status", "PACKAGING"), Int("event_version", 9)});
  shipped.status.code = base::StatusCode::kError;
  ApplySpan(shipped, Service("mes-api"), r);
  ASSERT_TRUE(r.last_error.has_value());
  EXPECT_EQ(r.last_error->attempted_status, "SHIPPED");
  EXPECT_THAT(StatusNames(r), ElementsAre("INITIATED", "SUBMITTED"));

  // A later failure that attempted no transition does not keep the earlier one's status.
  Span lookup = MakeSpan(2, 5, "mes.lookup", SpanKind::kServer, 80, 90, {Str("order_id", kOrder)});
  lookup.status.code = base::StatusCode::kError;
  ApplySpan(lookup, Service("mes-api"), r);
  EXPECT_EQ(r.last_error->span_name, "mes.lookup");
  EXPECT_EQ(r.last_error->attempted_status, "");
}

TEST(OrderRecordBuilderTest, ErrorCodeAloneMarksTheSpanFailed) {
  OrderRecord r = SubmittedOrder();
  Span failed = MakeSpan(1, 3, "PriceCalculated", SpanKind::kServer, 40, 50,
                         {Str("order_id", kOrder), Str("new_status", "PRICE_CALCULATED"),
                          Str("error_code", "NO_PRICE_RULE"), Int("event_version", 3)});
  ApplySpan(failed, Service("crm-api"), r);

  ASSERT_NE(r.CurrentStatus(), nullptr);
  EXPECT_EQ(r.CurrentStatus()->status, "SUBMITTED");
  ASSERT_TRUE(r.last_error.has_value());
  EXPECT_EQ(r.last_error->error_code, "NO_PRICE_RULE");
}

TEST(OrderRecordBuilderTest, ALaterErrorKeepsNothingOfTheErrorBefore) {
  OrderRecord r = SubmittedOrder();
  Span first =
      MakeSpan(1, 3, "Approve", SpanKind::kServer, 40, 50,
               {Str("order_id", kOrder), Str("error_code", "STALE_STATUS"),
                Str("error_message", "crm holds INITIATED"), Str("current_status", "INITIATED")});
  ApplySpan(first, Service("crm-api"), r);
  ASSERT_TRUE(r.last_error.has_value());
  ASSERT_EQ(r.last_error->reported_status, "INITIATED");

  Span second = MakeSpan(1, 4, "Calculate", SpanKind::kInternal, 60, 70, {Str("order_id", kOrder)});
  second.status.code = base::StatusCode::kError;
  ApplySpan(second, Service("mes-api"), r);

  ASSERT_TRUE(r.last_error.has_value());
  EXPECT_EQ(r.last_error->span_name, "Calculate");
  EXPECT_EQ(r.last_error->service, "mes-api");
  EXPECT_EQ(r.last_error->span_id, SpanIdOf(4));
  EXPECT_EQ(r.last_error->error_code, "");
  EXPECT_EQ(r.last_error->error_message, "");
  EXPECT_EQ(r.last_error->reported_status, "");
}

TEST(OrderRecordBuilderTest, SpanAttributesOutrankTheResourceAndTheFirstOfDuplicatesCounts) {
  Resource resource = Service("shop-api");
  resource.attributes.push_back(Str("partner_id", "partner-resource"));
  resource.attributes.push_back(Str("new_status", "SUBMITTED"));
  OrderRecord r;
  r.order_id = kOrder;
  // The span's partner_id wins over the resource's, its first duplicate over the second.
  ApplySpan(MakeSpan(1, 1, "Create", SpanKind::kServer, 0, 10,
                     {Str("order_id", kOrder), Str("partner_id", "partner-z"),
                      Str("partner_id", "partner-a"), Str("new_status", "INITIATED"),
                      Str("new_status", "SUBMITTED"), Int("event_version", 1)}),
            resource, r);
  EXPECT_EQ(r.partner_id, "partner-z");
  EXPECT_THAT(StatusNames(r), ElementsAre("INITIATED"));
  // A span without new_status takes the resource's; an empty one on the span hides it.
  ApplySpan(
      MakeSpan(1, 2, "Submit", SpanKind::kServer, 20, 30,
               {Str("order_id", kOrder), Str("prev_status", "INITIATED"), Int("event_version", 2)}),
      resource, r);
  ApplySpan(MakeSpan(1, 3, "Touch", SpanKind::kServer, 40, 50,
                     {Str("order_id", kOrder), Str("new_status", ""), Str("partner_id", "")}),
            resource, r);
  EXPECT_THAT(StatusNames(r), ElementsAre("INITIATED", "SUBMITTED"));
  EXPECT_EQ(r.partner_id, "partner-resource") << "the smallest partner seen wins";
  ASSERT_TRUE(r.last_success.has_value());
  EXPECT_EQ(r.last_success->span_name, "Touch");
  EXPECT_EQ(r.last_success->service, "shop-api");
}

TEST(OrderRecordBuilderTest, EventVersionOutranksSkewedClocks) {
  OrderRecord r;
  r.order_id = kOrder;
  // MES's clock runs two seconds behind CRM's.
  ApplySpan(MakeSpan(1, 1, "PriceCalculated", SpanKind::kServer, 9'000, 10'000,
                     {Str("new_status", "PRICE_CALCULATED"), Int("event_version", 5)}),
            Service("crm-api"), r);
  ApplySpan(MakeSpan(2, 2, "ApproveManufacturing", SpanKind::kServer, 7'500, 8'000,
                     {Str("new_status", "MANUFACTURING_APPROVED"), Int("event_version", 6)}),
            Service("mes-api"), r);
  EXPECT_THAT(StatusNames(r), ElementsAre("PRICE_CALCULATED", "MANUFACTURING_APPROVED"));
  ASSERT_NE(r.CurrentStatus(), nullptr);
  EXPECT_EQ(r.CurrentStatus()->status, "MANUFACTURING_APPROVED");
}

TEST(OrderRecordBuilderTest, MessageSeenOnlyByItsConsumer) {
  OrderRecord r;
  r.order_id = kOrder;
  ApplySpan(MakeSpan(1, 1, "orders process", SpanKind::kConsumer, 500, 600,
                     {Str("messaging.system", "rabbitmq"), Str("message_id", "m-9"),
                      Str("messaging.destination.name", "mes.orders"), Str("retry_count", "3")}),
            Service("mes-api"), r);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].message_id, "m-9");
  EXPECT_EQ(r.messages[0].queue, "mes.orders");
  EXPECT_EQ(r.messages[0].published_at_unix_nano, 0u);
  EXPECT_EQ(r.messages[0].consumed_at_unix_nano, AtMs(500));
  EXPECT_EQ(r.messages[0].retry_count, 3);
}

std::vector<Emitted> Shuffled(std::vector<Emitted> spans, uint32_t seed) {
  std::mt19937 random(seed);
  std::shuffle(spans.begin(), spans.end(), random);
  return spans;
}

// An order whose spans are spread over more traces than the record keeps.
TEST(OrderRecordBuilderTest, TraceIdsPastTheCapDoNotDependOnArrivalOrder) {
  std::vector<Emitted> spans;
  const uint8_t traces = OrderRecord::kMaxTraceIds + 4;
  for (uint8_t t = 1; t <= traces; ++t) {
    spans.push_back({Service("shop-api"), MakeSpan(t, t, "step", SpanKind::kInternal, 1'000 * t,
                                                   1'000 * t + 10, {Str("order_id", kOrder)})});
  }
  const OrderRecord in_order = Build(spans);
  EXPECT_EQ(in_order.trace_ids.size(), OrderRecord::kMaxTraceIds);

  std::vector<Emitted> reversed(spans.rbegin(), spans.rend());
  const OrderRecord backwards = Build(reversed);
  EXPECT_EQ(Hex(backwards.trace_ids), Hex(in_order.trace_ids));
  // Whatever subset is kept, the order's own trace (its earliest span's) belongs in it.
  EXPECT_TRUE(std::binary_search(backwards.trace_ids.begin(), backwards.trace_ids.end(),
                                 backwards.trace_id))
      << "trace_id " << backwards.trace_id.ToHex() << " is missing from trace_ids";
}

// An order with more RabbitMQ messages than the record keeps, published while the consumer
// was down and consumed after it came back.
TEST(OrderRecordBuilderTest, MessagesPastTheCapDoNotDependOnArrivalOrder) {
  std::vector<Emitted> spans;
  const uint16_t messages = OrderRecord::kMaxMessages + 6;
  for (uint16_t i = 0; i < messages; ++i) {
    std::string id = "msg-" + std::to_string(1000 + i);
    base::Attributes attrs = {Str("order_id", kOrder), Str("messaging.system", "rabbitmq"),
                              Str("messaging.message.id", id), Str("queue", "q")};
    spans.push_back({Service("crm-api"), MakeSpan(1, 2 * i + 1, "publish", SpanKind::kProducer,
                                                  1'000 * i, 1'000 * i + 5, attrs)});
    spans.push_back(
        {Service("mes-api"), MakeSpan(1, 2 * i + 2, "process", SpanKind::kConsumer,
                                      500'000 + 1'000 * i, 500'000 + 1'000 * i + 100, attrs)});
  }
  const OrderRecord in_order = Build(spans);
  EXPECT_EQ(in_order.messages.size(), OrderRecord::kMaxMessages);
  for (const model::MessageHop& m : in_order.messages) {
    EXPECT_NE(m.published_at_unix_nano, 0u) << m.message_id << ": its producer span was applied";
  }

  std::vector<Emitted> producers_first;
  for (size_t i = 0; i < spans.size(); i += 2) producers_first.push_back(spans[i]);
  for (size_t i = 1; i < spans.size(); i += 2) producers_first.push_back(spans[i]);
  EXPECT_EQ(Describe(Build(producers_first).messages), Describe(in_order.messages));
  EXPECT_EQ(Describe(Build(Shuffled(spans, 7)).messages), Describe(in_order.messages));
}

// OTLP lets a sender leave start_time_unix_nano at 0, and the decoders accept it.
TEST(OrderRecordBuilderTest, SpanWithoutStartTimeDoesNotDependOnArrivalOrder) {
  std::vector<Emitted> spans = {
      {Service("shop-api"), MakeSpan(1, 1, "Create", SpanKind::kServer, 0, 100,
                                     {Str("order_id", kOrder), Str("new_status", "INITIATED")})},
      {Service("legacy"),
       MakeSpan(2, 2, "Legacy", SpanKind::kServer, 0, 200, {Str("order_id", kOrder)})},
  };
  spans[1].span.start_time_unix_nano = 0;
  const OrderRecord forwards = Build(spans);
  std::vector<Emitted> reversed(spans.rbegin(), spans.rend());
  const OrderRecord backwards = Build(reversed);
  EXPECT_EQ(forwards.first_seen_unix_nano, backwards.first_seen_unix_nano);
  EXPECT_EQ(forwards.trace_id.ToHex(), backwards.trace_id.ToHex());
}

// A consumer span of a message starting at 0 (found by fuzz/order_fold_fuzzer): 0 marks "no
// consumer seen", so it must tell nothing rather than win or lose by arrival order.
TEST(OrderRecordBuilderTest, MessageSpanStartingAtZeroDoesNotDependOnArrivalOrder) {
  const base::Attributes attrs = {Str("order_id", kOrder), Str("messaging.system", "rabbitmq"),
                                  Str("message_id", "m-1"), Str("queue", "q")};
  Span at_zero = MakeSpan(1, 1, "process", SpanKind::kConsumer, 0, 100, attrs);
  at_zero.start_time_unix_nano = 0;
  const std::vector<Emitted> spans = {
      {Service("mes-api"), at_zero},
      {Service("mes-api"), MakeSpan(1, 2, "process", SpanKind::kConsumer, 300, 400, attrs)},
  };
  const OrderRecord forwards = Build(spans);
  ASSERT_EQ(forwards.messages.size(), 1u);
  EXPECT_EQ(forwards.messages[0].consumed_at_unix_nano, AtMs(300));
  std::vector<Emitted> reversed(spans.rbegin(), spans.rend());
  EXPECT_EQ(Describe(Build(reversed).messages), Describe(forwards.messages));
}

// The operation that published a message is the parent of its earliest producer span (ties:
// the smallest parent), whatever the order the reports arrive in.
TEST(OrderRecordBuilderTest, AMessageKeepsTheOperationThatPublishedItFirst) {
  const base::Attributes attrs = {Str("order_id", kOrder), Str("messaging.system", "rabbitmq"),
                                  Str("message_id", "m-1"), Str("queue", "q")};
  auto publish = [&](uint16_t id, uint16_t parent, uint64_t start_ms) {
    Span span = MakeSpan(1, id, "publish", SpanKind::kProducer, start_ms, start_ms + 5, attrs);
    span.parent_span_id = SpanIdOf(parent);
    return Emitted{Service("shop-api"), span};
  };
  const std::vector<Emitted> spans = {publish(1, 40, 500), publish(2, 30, 200), publish(3, 20, 200),
                                      publish(4, 10, 900)};
  const OrderRecord forwards = Build(spans);
  ASSERT_EQ(forwards.messages.size(), 1u);
  EXPECT_EQ(forwards.messages[0].published_at_unix_nano, AtMs(200));
  EXPECT_EQ(forwards.messages[0].published_by, SpanIdOf(20));
  std::vector<Emitted> shuffled = {spans[3], spans[1], spans[0], spans[2]};
  EXPECT_EQ(Describe(Build(shuffled).messages), Describe(forwards.messages));
  std::vector<Emitted> reversed(spans.rbegin(), spans.rend());
  EXPECT_EQ(Describe(Build(reversed).messages), Describe(forwards.messages));
}

// A status reported again after the order went on (SHIPPED after CLOSED, with a later event
// version), retried operations and replays: the first report stays the status's, the others
// are revisits (retries of one step collapse into one), whatever the arrival order.
TEST(OrderRecordBuilderTest, RevisitsKeepEveryOtherReportWhateverTheArrivalOrder) {
  auto transition = [](uint8_t span, const char* status, const char* prev, int64_t version,
                       uint64_t at) {
    return Emitted{Service("mes-api"),
                   MakeSpan(1, span, "mes.step", SpanKind::kInternal, at - 5, at,
                            {Str("order_id", kOrder), Str("new_status", status),
                             Str("prev_status", prev), Int("event_version", version)})};
  };
  std::vector<Emitted> spans = {
      transition(1, "SHIPPED", "PACKAGING", 10, 1'000),
      transition(2, "CLOSED", "SHIPPED", 11, 2'000),
      transition(3, "SHIPPED", "CLOSED", 12, 3'000),  // back after CLOSED
  };
  for (uint8_t i = 0; i < OrderRecord::kMaxRevisits + 3; ++i) {
    spans.push_back(transition(20 + i, "CLOSED", "SHIPPED", 11, 2'100 + i));  // retried close
  }
  const OrderRecord in_order = Build(spans);
  EXPECT_THAT(StatusNames(in_order), ElementsAre("SHIPPED", "CLOSED"));
  EXPECT_EQ(in_order.statuses[0].event_version, 10);
  // The retried closes are one step (same status, previous status and event version): one
  // revisit, the earliest; SHIPPED again after CLOSED is not crowded out.
  ASSERT_EQ(in_order.revisits.size(), 2u);
  EXPECT_EQ(in_order.revisits[0].status, "CLOSED");
  EXPECT_EQ(in_order.revisits[0].at_unix_nano, spans[3].span.end_time_unix_nano);  // 1st retry
  EXPECT_EQ(in_order.revisits[1].status, "SHIPPED");
  EXPECT_EQ(in_order.revisits[1].event_version, 12);
  const std::string want = Describe(in_order);
  EXPECT_EQ(Describe(Build(std::vector<Emitted>(spans.rbegin(), spans.rend()))), want);
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    EXPECT_EQ(Describe(Build(Shuffled(spans, seed))), want) << "seed " << seed;
  }
  // Each span applied twice changes nothing.
  std::vector<Emitted> twice = spans;
  twice.insert(twice.end(), spans.begin(), spans.end());
  EXPECT_EQ(Describe(Build(Shuffled(twice, 3))), want);

  // Past the cap, the smallest keys stay, whatever the order.
  std::vector<Emitted> many = spans;
  for (uint8_t i = 0; i < OrderRecord::kMaxRevisits + 4; ++i) {
    many.push_back(transition(60 + i, "PACKAGING", "SHIPPED", 20 + i, 4'000 + i));
  }
  const OrderRecord capped = Build(many);
  EXPECT_EQ(capped.revisits.size(), OrderRecord::kMaxRevisits);
  EXPECT_EQ(Describe(Build(Shuffled(many, 5))), Describe(capped));

  const std::vector<Emitted> three(spans.begin(), spans.begin() + 3);
  const OrderRecord back = Build(std::vector<Emitted>(three.rbegin(), three.rend()));
  ASSERT_EQ(back.revisits.size(), 1u);
  EXPECT_EQ(back.revisits[0].status, "SHIPPED");
  EXPECT_EQ(back.revisits[0].prev_status, "CLOSED");
  EXPECT_EQ(back.revisits[0].event_version, 12);
  EXPECT_EQ(back.statuses[0].event_version, 10) << "the first SHIPPED stays the status's";
}

}  // namespace
}  // namespace ordertrace::lifecycle
