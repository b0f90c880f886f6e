#include "services/common/order_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sdk/trace_context.h"
#include "services/common/message_consumer.h"
#include "services/common/messages.h"
#include "services/common/order_transitions.h"
#include "services/common/outbox.h"
#include "services/common/service_db.h"
#include "services/common/sqlite_db.h"

namespace ordertrace::services {
namespace {

constexpr char kRootTraceparent[] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
constexpr char kOtherRootTraceparent[] = "00-11111111111111111111111111111111-2222222222222222-01";
constexpr char kOperationTraceparent[] = "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01";
constexpr char kEmail[] = "ann.keller@example.com";
constexpr char kPhone[] = "+41 79 555 01 23";

sdk::SpanContext Context(const char* traceparent) {
  absl::StatusOr<sdk::SpanContext> context = sdk::ParseTraceparent(traceparent);
  EXPECT_TRUE(context.ok()) << context.status();
  return context.ok() ? *context : sdk::SpanContext{};
}

std::string Lower(std::string_view text) {
  std::string out;
  for (char c : text) out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return out;
}

// One row of the outbox, as the relay would read it.
struct OutboxRow {
  std::string message_id, exchange, routing_key, queue, span_name, order_id, parent, order_root,
      body;
};

// One row of order_events.
struct HistoryRow {
  std::string order_id, status;
  int64_t event_version;
  std::string service;
  int64_t at_unix_nano;
};

class OrderStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<SqliteDb>> db = SqliteDb::Open(":memory:");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    // The same tables ServiceDb::Open creates.
    for (std::string_view schema : {Outbox::kSchema, MessageConsumer::kSchema, kOrderSchema}) {
      ASSERT_TRUE(db_->ExecScript(schema).ok());
    }
  }

  NewOrder MakeOrder(const std::string& id) const {
    return NewOrder{id, "customer-7", "partner-3", kEmail, kPhone, Context(kRootTraceparent)};
  }

  void Create(const std::string& id) {
    absl::StatusOr<TransitionResult> created =
        CreateOrder(*db_, MakeOrder(id), "shop-api", Context(kOperationTraceparent));
    ASSERT_TRUE(created.ok()) << created.status();
  }

  // Moves `id` from its current status up to and including `last`, each step by its own service.
  void AdvanceTo(const std::string& id, std::string_view last) {
    for (int i = LifecycleIndex(Load(id).status) + 1; i <= LifecycleIndex(last); ++i) {
      absl::StatusOr<TransitionResult> moved =
          Transition(*db_, id, kDefaultLifecycle[i].status, {}, kDefaultLifecycle[i].service,
                     Context(kOperationTraceparent));
      ASSERT_TRUE(moved.ok()) << kDefaultLifecycle[i].status << ": " << moved.status();
    }
  }

  std::vector<OutboxRow> OutboxRows() {
    absl::StatusOr<std::vector<SqlRow>> rows = db_->Query(
        "SELECT message_id, exchange, routing_key, queue, span_name, order_id, parent,"
        " order_root, body FROM outbox ORDER BY id");
    EXPECT_TRUE(rows.ok()) << rows.status();
    std::vector<OutboxRow> out;
    if (!rows.ok()) return out;
    for (const SqlRow& r : *rows) {
      out.push_back(OutboxRow{r.Text(0), r.Text(1), r.Text(2), r.Text(3), r.Text(4), r.Text(5),
                              r.Text(6), r.Text(7), r.Text(8)});
    }
    return out;
  }

  std::vector<HistoryRow> History(const std::string& id) {
    absl::StatusOr<std::vector<SqlRow>> rows = db_->Query(
        "SELECT order_id, status, event_version, service, at_unix_nano FROM order_events"
        " WHERE order_id = ?1 ORDER BY id",
        {id});
    EXPECT_TRUE(rows.ok()) << rows.status();
    std::vector<HistoryRow> out;
    if (!rows.ok()) return out;
    for (const SqlRow& r : *rows) {
      out.push_back(HistoryRow{r.Text(0), r.Text(1), r.Int(2), r.Text(3), r.Int(4)});
    }
    return out;
  }

  int64_t Pending() {
    absl::StatusOr<int64_t> pending = Outbox::Pending(*db_);
    EXPECT_TRUE(pending.ok()) << pending.status();
    return pending.ok() ? *pending : -1;
  }

  OrderView Load(const std::string& id) {
    absl::StatusOr<std::optional<OrderView>> view = LoadOrder(*db_, id);
    EXPECT_TRUE(view.ok()) << view.status();
    EXPECT_TRUE(view.ok() && view->has_value()) << "order " << id << " not found";
    return view.ok() && view->has_value() ? **view : OrderView{};
  }

  int64_t Count(const std::string& table) {
    absl::StatusOr<std::vector<SqlRow>> rows = db_->Query("SELECT COUNT(*) FROM " + table);
    EXPECT_TRUE(rows.ok()) << rows.status();
    return rows.ok() ? rows->front().Int(0) : -1;
  }

  std::unique_ptr<SqliteDb> db_;
};

TEST_F(OrderStoreTest, CreateOrderWritesInitiatedOneHistoryRowAndOneStatusEvent) {
  absl::StatusOr<TransitionResult> created =
      CreateOrder(*db_, MakeOrder("order-1"), "shop-api", Context(kOperationTraceparent));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->order.order_id, "order-1");
  EXPECT_EQ(created->order.status, "INITIATED");
  EXPECT_EQ(created->order.event_version, 1);
  EXPECT_EQ(created->order.partner_id, "partner-3");
  EXPECT_EQ(created->order.customer_id, "customer-7");
  EXPECT_EQ(created->order.order_root, Context(kRootTraceparent));
  EXPECT_GT(created->order.created_at_unix_nano, 0);
  EXPECT_EQ(created->order.created_at_unix_nano, created->order.updated_at_unix_nano);
  EXPECT_EQ(created->event.event_version, 1);
  EXPECT_EQ(created->event.prev_status, "");
  EXPECT_EQ(created->event.new_status, "INITIATED");
  EXPECT_EQ(created->event.service, "shop-api");

  OrderView loaded = Load("order-1");
  EXPECT_EQ(loaded.status, "INITIATED");
  EXPECT_EQ(loaded.event_version, 1);

  EXPECT_EQ(Pending(), 1);
  std::vector<OutboxRow> outbox = OutboxRows();
  ASSERT_EQ(outbox.size(), 1u);
  EXPECT_EQ(outbox[0].exchange, "alexandrite.status");
  EXPECT_EQ(outbox[0].routing_key, "status.initiated");
  EXPECT_EQ(outbox[0].span_name, "mq.publish.status");
  EXPECT_EQ(outbox[0].order_id, "order-1");
  EXPECT_EQ(outbox[0].parent, kOperationTraceparent);
  EXPECT_EQ(outbox[0].order_root, kRootTraceparent);
  EXPECT_EQ(outbox[0].message_id.size(), 36u);
  absl::StatusOr<StatusEvent> event = DecodeStatusEvent(outbox[0].body);
  ASSERT_TRUE(event.ok()) << event.status();
  EXPECT_EQ(event->order_id, "order-1");
  EXPECT_EQ(event->event_version, 1);
  EXPECT_EQ(event->prev_status, "");
  EXPECT_EQ(event->new_status, "INITIATED");
  EXPECT_EQ(event->partner_id, "partner-3");
  EXPECT_EQ(event->service, "shop-api");
  EXPECT_EQ(event->occurred_at_unix_nano, created->order.created_at_unix_nano);

  std::vector<HistoryRow> history = History("order-1");
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].status, "INITIATED");
  EXPECT_EQ(history[0].event_version, 1);
  EXPECT_EQ(history[0].service, "shop-api");
  EXPECT_EQ(history[0].at_unix_nano, created->order.created_at_unix_nano);
}

TEST_F(OrderStoreTest, CreateOrderTwiceFailsAndWritesNothingMore) {
  Create("order-1");
  absl::StatusOr<TransitionResult> again =
      CreateOrder(*db_, MakeOrder("order-1"), "shop-api", Context(kOperationTraceparent));
  EXPECT_FALSE(again.ok());
  EXPECT_EQ(Pending(), 1);
  EXPECT_EQ(History("order-1").size(), 1u);
  EXPECT_EQ(Count("orders"), 1);
}

TEST_F(OrderStoreTest, LoadOrderOfAnUnknownOrderIsEmptyNotAnError) {
  absl::StatusOr<std::optional<OrderView>> view = LoadOrder(*db_, "nobody");
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_FALSE(view->has_value());
}

TEST_F(OrderStoreTest, WholeLifecycleGivesVersionsOneToElevenAndOneStatusEventPerStep) {
  Create("order-1");
  for (int i = 1; i < static_cast<int>(std::size(kDefaultLifecycle)); ++i) {
    const LifecycleStep& step = kDefaultLifecycle[i];
    absl::StatusOr<TransitionResult> moved =
        Transition(*db_, "order-1", step.status, {}, step.service, Context(kOperationTraceparent));
    ASSERT_TRUE(moved.ok()) << step.status << ": " << moved.status();
    EXPECT_EQ(moved->order.status, step.status);
    EXPECT_EQ(moved->order.event_version, i + 1);
    EXPECT_EQ(moved->event.event_version, i + 1);
    EXPECT_EQ(moved->event.prev_status, kDefaultLifecycle[i - 1].status);
    EXPECT_EQ(moved->event.new_status, step.status);
    EXPECT_EQ(moved->event.partner_id, "partner-3");
    EXPECT_EQ(moved->event.service, step.service);
    EXPECT_EQ(Pending(), i + 1);
  }
  OrderView closed = Load("order-1");
  EXPECT_EQ(closed.status, "CLOSED");
  EXPECT_EQ(closed.event_version, 11);
  EXPECT_EQ(closed.order_root, Context(kRootTraceparent));

  std::vector<OutboxRow> outbox = OutboxRows();
  ASSERT_EQ(outbox.size(), 11u);
  std::vector<HistoryRow> history = History("order-1");
  ASSERT_EQ(history.size(), 11u);
  for (size_t i = 0; i < outbox.size(); ++i) {
    const LifecycleStep& step = kDefaultLifecycle[i];
    SCOPED_TRACE(std::string(step.status));
    EXPECT_EQ(outbox[i].exchange, "alexandrite.status");
    EXPECT_EQ(outbox[i].routing_key, "status." + Lower(step.status));
    EXPECT_EQ(outbox[i].span_name, "mq.publish.status");
    EXPECT_EQ(outbox[i].order_id, "order-1");
    EXPECT_EQ(outbox[i].parent, kOperationTraceparent);
    EXPECT_EQ(outbox[i].order_root, kRootTraceparent);
    absl::StatusOr<StatusEvent> event = DecodeStatusEvent(outbox[i].body);
    ASSERT_TRUE(event.ok()) << event.status();
    EXPECT_EQ(event->order_id, "order-1");
    EXPECT_EQ(event->event_version, static_cast<int64_t>(i + 1));
    EXPECT_EQ(event->prev_status, i == 0 ? "" : kDefaultLifecycle[i - 1].status);
    EXPECT_EQ(event->new_status, step.status);
    EXPECT_EQ(event->partner_id, "partner-3");
    EXPECT_EQ(event->service, i == 0 ? "shop-api" : step.service);
    EXPECT_EQ(history[i].status, step.status);
    EXPECT_EQ(history[i].event_version, static_cast<int64_t>(i + 1));
  }
  EXPECT_EQ(outbox[3].routing_key, "status.price_calculation_started");
  EXPECT_EQ(outbox[10].routing_key, "status.closed");
  // Every message has its own id.
  for (size_t i = 0; i < outbox.size(); ++i) {
    for (size_t j = i + 1; j < outbox.size(); ++j)
      EXPECT_NE(outbox[i].message_id, outbox[j].message_id);
  }
}

TEST_F(OrderStoreTest, TransitionDetailsAreStoredPublishedAndKeptByLaterSteps) {
  Create("order-1");
  TransitionDetails uploaded;
  uploaded.polygon_count = 120'000;
  ASSERT_TRUE(Transition(*db_, "order-1", kFileUploaded, uploaded, "shop-api",
                         Context(kOperationTraceparent))
                  .ok());
  AdvanceTo("order-1", kPriceCalculationStarted);
  TransitionDetails priced;
  priced.complexity_class = "moderate";
  priced.price = 412.5;
  absl::StatusOr<TransitionResult> calculated = Transition(
      *db_, "order-1", kPriceCalculated, priced, "mes-api", Context(kOperationTraceparent));
  ASSERT_TRUE(calculated.ok()) << calculated.status();
  TransitionDetails started;
  started.operator_id = "operator-9";
  ASSERT_TRUE(Transition(*db_, "order-1", kManufacturingApproved, {}, "crm-api",
                         Context(kOperationTraceparent))
                  .ok());
  ASSERT_TRUE(Transition(*db_, "order-1", kManufacturingStarted, started, "mes-api",
                         Context(kOperationTraceparent))
                  .ok());
  ASSERT_TRUE(Transition(*db_, "order-1", kManufacturingCompleted, {}, "mes-api",
                         Context(kOperationTraceparent))
                  .ok());

  OrderView view = Load("order-1");
  EXPECT_EQ(view.status, "MANUFACTURING_COMPLETED");
  EXPECT_EQ(view.polygon_count, 120'000);
  EXPECT_EQ(view.complexity_class, "moderate");
  EXPECT_EQ(view.price, 412.5);
  EXPECT_EQ(view.operator_id, "operator-9");

  std::vector<OutboxRow> outbox = OutboxRows();
  ASSERT_EQ(outbox.size(), 8u);
  absl::StatusOr<StatusEvent> upload_event = DecodeStatusEvent(outbox[1].body);
  ASSERT_TRUE(upload_event.ok());
  EXPECT_EQ(upload_event->polygon_count, 120'000);
  absl::StatusOr<StatusEvent> price_event = DecodeStatusEvent(outbox[4].body);
  ASSERT_TRUE(price_event.ok());
  EXPECT_EQ(price_event->new_status, "PRICE_CALCULATED");
  EXPECT_EQ(price_event->price, 412.5);
  absl::StatusOr<StatusEvent> start_event = DecodeStatusEvent(outbox[6].body);
  ASSERT_TRUE(start_event.ok());
  EXPECT_EQ(start_event->operator_id, "operator-9");
}

TEST_F(OrderStoreTest, IllegalTransitionIsFailedPreconditionAndWritesNothing) {
  Create("order-1");
  AdvanceTo("order-1", kFileUploaded);
  OrderView before = Load("order-1");
  const int64_t pending_before = Pending();
  const size_t history_before = History("order-1").size();

  OutboxMessage price_request;
  price_request.exchange = kPriceExchange;
  price_request.routing_key = kPriceRoutingKey;
  price_request.order_id = "order-1";
  price_request.body = "{}";
  for (std::string_view target : {kInitiated, kFileUploaded, kPriceCalculationStarted,
                                  kManufacturingApproved, kClosed, std::string_view("BOGUS")}) {
    SCOPED_TRACE(std::string(target));
    absl::StatusOr<TransitionResult> illegal = Transition(
        *db_, "order-1", target, {}, "mes-api", Context(kOperationTraceparent), {price_request});
    ASSERT_EQ(illegal.status().code(), absl::StatusCode::kFailedPrecondition) << illegal.status();
    EXPECT_EQ(CurrentStatusOf(illegal.status()), "FILE_UPLOADED");
    EXPECT_NE(illegal.status().message().find("FILE_UPLOADED"), std::string::npos);
  }
  OrderView after = Load("order-1");
  EXPECT_EQ(after.status, "FILE_UPLOADED");
  EXPECT_EQ(after.event_version, before.event_version);
  EXPECT_EQ(after.updated_at_unix_nano, before.updated_at_unix_nano);
  EXPECT_EQ(Pending(), pending_before);
  EXPECT_EQ(History("order-1").size(), history_before);

  // The same database still takes the legal step afterwards (no transaction left open).
  absl::StatusOr<TransitionResult> legal =
      Transition(*db_, "order-1", kSubmitted, {}, "shop-api", Context(kOperationTraceparent));
  ASSERT_TRUE(legal.ok()) << legal.status();
  EXPECT_EQ(legal->order.event_version, before.event_version + 1);
}

TEST_F(OrderStoreTest, AllowSkippingOneAllowsExactlyOneSkippedStatus) {
  Create("order-1");
  AdvanceTo("order-1", kFileUploaded);
  TransitionDetails skip;
  skip.allow_skipping_one = true;
  // Three statuses ahead is still illegal, even with the demo fault.
  absl::StatusOr<TransitionResult> too_far = Transition(*db_, "order-1", kPriceCalculated, skip,
                                                        "mes-api", Context(kOperationTraceparent));
  EXPECT_EQ(too_far.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CurrentStatusOf(too_far.status()), "FILE_UPLOADED");
  // Two ahead needs the flag.
  absl::StatusOr<TransitionResult> without_flag = Transition(
      *db_, "order-1", kPriceCalculationStarted, {}, "mes-api", Context(kOperationTraceparent));
  EXPECT_EQ(without_flag.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Pending(), 2);

  absl::StatusOr<TransitionResult> skipped = Transition(
      *db_, "order-1", kPriceCalculationStarted, skip, "mes-api", Context(kOperationTraceparent));
  ASSERT_TRUE(skipped.ok()) << skipped.status();
  EXPECT_EQ(skipped->order.status, "PRICE_CALCULATION_STARTED");
  EXPECT_EQ(skipped->order.event_version, 3);  // one more, although a status was skipped
  EXPECT_EQ(skipped->event.prev_status, "FILE_UPLOADED");
  EXPECT_EQ(Pending(), 3);
  // The flag does not forbid the ordinary next step.
  absl::StatusOr<TransitionResult> next = Transition(*db_, "order-1", kPriceCalculated, skip,
                                                     "mes-api", Context(kOperationTraceparent));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->order.event_version, 4);
  // Nor does it allow going back or repeating.
  absl::StatusOr<TransitionResult> back = Transition(
      *db_, "order-1", kPriceCalculationStarted, skip, "mes-api", Context(kOperationTraceparent));
  EXPECT_EQ(back.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(OrderStoreTest, CurrentStatusOfOtherStatusesIsEmpty) {
  EXPECT_EQ(CurrentStatusOf(absl::OkStatus()), "");
  EXPECT_EQ(CurrentStatusOf(absl::NotFoundError("x")), "");
  EXPECT_EQ(CurrentStatusOf(absl::FailedPreconditionError("x")), "");
}

TEST_F(OrderStoreTest, TransitionOfAnUnknownOrderIsNotFound) {
  Create("order-1");
  absl::StatusOr<TransitionResult> missing =
      Transition(*db_, "order-2", kFileUploaded, {}, "shop-api", Context(kOperationTraceparent));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(CurrentStatusOf(missing.status()), "");
  EXPECT_EQ(Count("orders"), 1);
  EXPECT_EQ(Pending(), 1);
  EXPECT_TRUE(History("order-2").empty());
}

TEST_F(OrderStoreTest, ExtraMessagesLandInTheSameTransactionWithParentAndRootFilled) {
  Create("order-1");
  AdvanceTo("order-1", kFileUploaded);
  const sdk::SpanContext own_parent = Context(kOtherRootTraceparent);

  OutboxMessage price_request;
  price_request.exchange = kPriceExchange;
  price_request.routing_key = kPriceRoutingKey;
  price_request.queue = kPriceQueue;
  price_request.span_name = "mq.publish.price";
  price_request.order_id = "order-1";
  price_request.body = EncodePriceRequest(PriceRequest{"order-1", 3, 120'000, "partner-3"});
  OutboxMessage with_own_parent = price_request;
  with_own_parent.message_id = "fixed-message-id";
  with_own_parent.parent = own_parent;

  absl::StatusOr<TransitionResult> submitted =
      Transition(*db_, "order-1", kSubmitted, {}, "shop-api", Context(kOperationTraceparent),
                 {price_request, with_own_parent});
  ASSERT_TRUE(submitted.ok()) << submitted.status();

  std::vector<OutboxRow> outbox = OutboxRows();
  ASSERT_EQ(outbox.size(), 5u);
  EXPECT_EQ(outbox[2].routing_key, "status.submitted");  // the status event comes first
  const OutboxRow& filled = outbox[3];
  EXPECT_EQ(filled.exchange, "alexandrite.price");
  EXPECT_EQ(filled.routing_key, "price.request");
  EXPECT_EQ(filled.queue, "mes.price.requests");
  EXPECT_EQ(filled.span_name, "mq.publish.price");
  EXPECT_EQ(filled.parent, kOperationTraceparent);
  EXPECT_EQ(filled.order_root, kRootTraceparent);
  EXPECT_EQ(filled.message_id.size(), 36u);
  absl::StatusOr<PriceRequest> request = DecodePriceRequest(filled.body);
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->polygon_count, 120'000);
  const OutboxRow& kept = outbox[4];
  EXPECT_EQ(kept.message_id, "fixed-message-id");
  EXPECT_EQ(kept.parent, kOtherRootTraceparent);
  EXPECT_EQ(kept.order_root, kRootTraceparent);
}

TEST_F(OrderStoreTest, AFailingExtraMessageRollsBackTheWholeTransition) {
  Create("order-1");
  AdvanceTo("order-1", kFileUploaded);
  // Make the outbox refuse one particular message, after the status event was already added.
  ASSERT_TRUE(db_->ExecScript("CREATE TRIGGER refuse BEFORE INSERT ON outbox"
                              " WHEN NEW.body = 'refuse me'"
                              " BEGIN SELECT RAISE(ABORT, 'refused'); END;")
                  .ok());
  OutboxMessage refused;
  refused.exchange = kPriceExchange;
  refused.routing_key = kPriceRoutingKey;
  refused.order_id = "order-1";
  refused.body = "refuse me";
  absl::StatusOr<TransitionResult> submitted = Transition(
      *db_, "order-1", kSubmitted, {}, "shop-api", Context(kOperationTraceparent), {refused});
  EXPECT_FALSE(submitted.ok());
  OrderView view = Load("order-1");
  EXPECT_EQ(view.status, "FILE_UPLOADED");
  EXPECT_EQ(view.event_version, 2);
  EXPECT_EQ(Pending(), 2);
  EXPECT_EQ(History("order-1").size(), 2u);
}

TEST_F(OrderStoreTest, EmailAndPhoneAreStoredButNeverInAnyOutboxMessage) {
  Create("order-1");
  AdvanceTo("order-1", kClosed);
  absl::StatusOr<std::vector<SqlRow>> stored =
      db_->Query("SELECT email, phone FROM orders WHERE order_id = 'order-1'");
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->front().Text(0), kEmail);
  EXPECT_EQ(stored->front().Text(1), kPhone);
  std::vector<OutboxRow> outbox = OutboxRows();
  ASSERT_EQ(outbox.size(), 11u);
  for (const OutboxRow& row : outbox) {
    for (const std::string& field :
         {row.body, row.routing_key, row.order_id, row.parent, row.order_root, row.message_id}) {
      EXPECT_EQ(field.find("ann.keller"), std::string::npos) << field;
      EXPECT_EQ(field.find("555 01 23"), std::string::npos) << field;
    }
    EXPECT_EQ(row.body.find("email"), std::string::npos) << row.body;
    EXPECT_EQ(row.body.find("phone"), std::string::npos) << row.body;
  }
}

TEST_F(OrderStoreTest, OrderWithoutPartnerPublishesNoPartnerId) {
  NewOrder own = MakeOrder("order-1");
  own.partner_id = "";
  own.email = "";
  own.phone = "";
  ASSERT_TRUE(CreateOrder(*db_, own, "shop-api", Context(kOperationTraceparent)).ok());
  std::vector<OutboxRow> outbox = OutboxRows();
  ASSERT_EQ(outbox.size(), 1u);
  EXPECT_EQ(outbox[0].body.find("partner_id"), std::string::npos) << outbox[0].body;
  absl::StatusOr<std::vector<SqlRow>> stored =
      db_->Query("SELECT email, phone FROM orders WHERE order_id = 'order-1'");
  ASSERT_TRUE(stored.ok());
  EXPECT_TRUE(stored->front().IsNull(0));  // an absent e-mail is NULL, not ''
  EXPECT_TRUE(stored->front().IsNull(1));
}

StatusEvent Event(const std::string& id, int version, const std::string& partner = "partner-3") {
  StatusEvent event;
  event.order_id = id;
  event.event_version = version;
  event.new_status = std::string(kDefaultLifecycle[version - 1].status);
  event.prev_status = version > 1 ? std::string(kDefaultLifecycle[version - 2].status) : "";
  event.partner_id = partner;
  event.service = std::string(kDefaultLifecycle[version - 1].service);
  event.occurred_at_unix_nano = 1'700'000'000'000'000'000 + version * 1'000'000'000LL;
  return event;
}

TEST_F(OrderStoreTest, ApplyStatusEventCreatesAnUnknownOrder) {
  StatusEvent event = Event("order-9", 4);
  event.polygon_count = 5'000;
  absl::StatusOr<bool> applied = ApplyStatusEvent(*db_, event, Context(kRootTraceparent));
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_TRUE(*applied);
  OrderView view = Load("order-9");
  EXPECT_EQ(view.status, "PRICE_CALCULATION_STARTED");
  EXPECT_EQ(view.event_version, 4);
  EXPECT_EQ(view.partner_id, "partner-3");
  EXPECT_EQ(view.order_root, Context(kRootTraceparent));
  EXPECT_EQ(view.polygon_count, 5'000);
  EXPECT_EQ(view.created_at_unix_nano, event.occurred_at_unix_nano);
  EXPECT_EQ(view.updated_at_unix_nano, event.occurred_at_unix_nano);
  std::vector<HistoryRow> history = History("order-9");
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].status, "PRICE_CALCULATION_STARTED");
  EXPECT_EQ(history[0].event_version, 4);
  EXPECT_EQ(history[0].service, "mes-api");
  EXPECT_EQ(history[0].at_unix_nano, event.occurred_at_unix_nano);
  EXPECT_EQ(Pending(), 0);  // applying another service's event publishes nothing
}

TEST_F(OrderStoreTest, ApplyStatusEventIgnoresDuplicatesAndOlderVersions) {
  ASSERT_TRUE(*ApplyStatusEvent(*db_, Event("order-9", 5), Context(kRootTraceparent)));
  OrderView before = Load("order-9");
  for (int version : {5, 4, 1}) {
    SCOPED_TRACE(version);
    absl::StatusOr<bool> applied =
        ApplyStatusEvent(*db_, Event("order-9", version), Context(kRootTraceparent));
    ASSERT_TRUE(applied.ok()) << applied.status();
    EXPECT_FALSE(*applied);
  }
  OrderView after = Load("order-9");
  EXPECT_EQ(after.status, "PRICE_CALCULATED");
  EXPECT_EQ(after.event_version, 5);
  EXPECT_EQ(after.updated_at_unix_nano, before.updated_at_unix_nano);
  EXPECT_EQ(History("order-9").size(), 1u);

  // A later event still applies once the ignored ones are behind it.
  absl::StatusOr<bool> newer =
      ApplyStatusEvent(*db_, Event("order-9", 6), Context(kRootTraceparent));
  ASSERT_TRUE(newer.ok());
  EXPECT_TRUE(*newer);
  EXPECT_EQ(Load("order-9").status, "MANUFACTURING_APPROVED");
  EXPECT_EQ(History("order-9").size(), 2u);
}

TEST_F(OrderStoreTest, ApplyStatusEventKeepsTheFirstOrderRootAndPartner) {
  ASSERT_TRUE(*ApplyStatusEvent(*db_, Event("order-9", 2, "partner-3"), Context(kRootTraceparent)));
  ASSERT_TRUE(
      *ApplyStatusEvent(*db_, Event("order-9", 3, "partner-4"), Context(kOtherRootTraceparent)));
  OrderView view = Load("order-9");
  EXPECT_EQ(view.event_version, 3);
  EXPECT_EQ(view.partner_id, "partner-3");
  EXPECT_EQ(view.order_root, Context(kRootTraceparent));
}

TEST_F(OrderStoreTest, ApplyStatusEventFillsAMissingOrderRootLater) {
  // An event without order_traceparent leaves the root empty; a later one supplies it.
  ASSERT_TRUE(*ApplyStatusEvent(*db_, Event("order-9", 2), sdk::SpanContext{}));
  EXPECT_FALSE(Load("order-9").order_root.IsValid());
  ASSERT_TRUE(*ApplyStatusEvent(*db_, Event("order-9", 3), Context(kRootTraceparent)));
  EXPECT_EQ(Load("order-9").order_root, Context(kRootTraceparent));
}

TEST_F(OrderStoreTest, ApplyStatusEventKeepsDetailsALaterEventDoesNotCarry) {
  StatusEvent priced = Event("order-9", 5);
  priced.polygon_count = 70'000;
  priced.price = 99.5;
  ASSERT_TRUE(*ApplyStatusEvent(*db_, priced, Context(kRootTraceparent)));
  StatusEvent started = Event("order-9", 7);
  started.operator_id = "operator-1";
  ASSERT_TRUE(*ApplyStatusEvent(*db_, started, Context(kRootTraceparent)));
  OrderView view = Load("order-9");
  EXPECT_EQ(view.status, "MANUFACTURING_STARTED");
  EXPECT_EQ(view.polygon_count, 70'000);
  EXPECT_EQ(view.price, 99.5);
  EXPECT_EQ(view.operator_id, "operator-1");
}

TEST_F(OrderStoreTest, OutOfOrderDeliveryConvergesToTheNewestStatus) {
  std::vector<bool> applied;
  for (int version : {3, 1, 6, 2, 5, 4}) {
    absl::StatusOr<bool> result =
        ApplyStatusEvent(*db_, Event("order-9", version), Context(kRootTraceparent));
    ASSERT_TRUE(result.ok()) << result.status();
    applied.push_back(*result);
  }
  EXPECT_EQ(applied, (std::vector<bool>{true, false, true, false, false, false}));
  OrderView view = Load("order-9");
  EXPECT_EQ(view.status, "MANUFACTURING_APPROVED");
  EXPECT_EQ(view.event_version, 6);
  EXPECT_EQ(view.updated_at_unix_nano, Event("order-9", 6).occurred_at_unix_nano);
  std::vector<HistoryRow> history = History("order-9");
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0].event_version, 3);
  EXPECT_EQ(history[1].event_version, 6);
}

TEST_F(OrderStoreTest, ApplyingOurOwnEventChangesNothing) {
  Create("order-1");
  AdvanceTo("order-1", kSubmitted);
  std::vector<OutboxRow> outbox = OutboxRows();
  ASSERT_EQ(outbox.size(), 3u);
  for (const OutboxRow& row : outbox) {
    absl::StatusOr<StatusEvent> event = DecodeStatusEvent(row.body);
    ASSERT_TRUE(event.ok());
    absl::StatusOr<bool> applied = ApplyStatusEvent(*db_, *event, Context(kOtherRootTraceparent));
    ASSERT_TRUE(applied.ok()) << applied.status();
    EXPECT_FALSE(*applied) << row.body;
  }
  OrderView view = Load("order-1");
  EXPECT_EQ(view.status, "SUBMITTED");
  EXPECT_EQ(view.order_root, Context(kRootTraceparent));
  EXPECT_EQ(History("order-1").size(), 3u);
}

TEST_F(OrderStoreTest, ApplyStatusEventWithoutTimestampUsesNow) {
  StatusEvent event = Event("order-9", 2);
  event.occurred_at_unix_nano = 0;
  ASSERT_TRUE(*ApplyStatusEvent(*db_, event, Context(kRootTraceparent)));
  EXPECT_GT(Load("order-9").updated_at_unix_nano, 1'700'000'000'000'000'000);
}

class TempDbFile {
 public:
  TempDbFile() {
    path_ = std::filesystem::path(::testing::TempDir()) /
            ("order_store_test_" + std::to_string(getpid()) + ".db");
    Remove();
  }
  ~TempDbFile() { Remove(); }
  const std::string path() const { return path_.string(); }

 private:
  void Remove() {
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::filesystem::remove(path_.string() + suffix);
    }
  }
  std::filesystem::path path_;
};

TEST(OrderStoreServiceDbTest, CommittedOrderAndOutboxSurviveAReopen) {
  TempDbFile file;
  {
    absl::StatusOr<std::unique_ptr<ServiceDb>> db = ServiceDb::Open(file.path(), kOrderSchema);
    ASSERT_TRUE(db.ok()) << db.status();
    absl::StatusOr<TransitionResult> created = (*db)->Run([](SqliteDb& sql) {
      return CreateOrder(sql,
                         NewOrder{"order-1", "customer-1", "", "", "", Context(kRootTraceparent)},
                         "shop-api", Context(kOperationTraceparent));
    });
    ASSERT_TRUE(created.ok()) << created.status();
  }
  absl::StatusOr<std::unique_ptr<ServiceDb>> reopened = ServiceDb::Open(file.path(), kOrderSchema);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  (*reopened)->Run([](SqliteDb& sql) {
    absl::StatusOr<std::optional<OrderView>> view = LoadOrder(sql, "order-1");
    ASSERT_TRUE(view.ok() && view->has_value());
    EXPECT_EQ((*view)->status, "INITIATED");
    EXPECT_EQ((*view)->order_root, Context(kRootTraceparent));
    absl::StatusOr<int64_t> pending = Outbox::Pending(sql);
    ASSERT_TRUE(pending.ok());
    EXPECT_EQ(*pending, 1);
  });
}

}  // namespace
}  // namespace ordertrace::services
