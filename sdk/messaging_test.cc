#include "sdk/messaging.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <mutex>
#include <vector>

#include "sdk/amqp_carrier.h"

namespace ordertrace::sdk {
namespace {

using ::testing::SizeIs;

class RecordingProcessor final : public SpanProcessor {
 public:
  explicit RecordingProcessor(std::vector<base::Span>* out) : out_(out) {}
  void OnEnd(SpanData&& span) override {
    std::lock_guard<std::mutex> lock(mu_);
    out_->push_back(std::move(span.span));
  }
  absl::Status ForceFlush(std::chrono::milliseconds) override { return absl::OkStatus(); }
  absl::Status Shutdown(std::chrono::milliseconds) override { return absl::OkStatus(); }

 private:
  std::mutex mu_;
  std::vector<base::Span>* const out_;
};

std::string Attr(const base::Span& span, std::string_view key) {
  const base::AnyValue* value = base::FindAttribute(span.attributes, key);
  return value == nullptr ? "<missing>" : value->AsText();
}

class MessagingTest : public ::testing::Test {
 protected:
  static TracerProviderOptions Options(std::string_view service) {
    TracerProviderOptions options;
    options.resource = MakeResource(service);
    return options;
  }
  MessagingTest()
      : shop_(Options("shop-api"), std::make_unique<RecordingProcessor>(&shop_spans_)),
        mes_(Options("mes-api"), std::make_unique<RecordingProcessor>(&mes_spans_)) {}

  std::vector<base::Span> shop_spans_;
  std::vector<base::Span> mes_spans_;
  TracerProvider shop_;
  TracerProvider mes_;
};

TEST_F(MessagingTest, PublishThenConsumeAcrossRabbitMqIsALinkNotAParent) {
  // Shop handles an HTTP request and publishes a price-calculation message.
  Tracer shop = shop_.GetTracer("shop-api");
  std::unique_ptr<Span> request = shop.StartSpan("shop.submit");
  RabbitMqPublish publish;
  publish.exchange = "orders";
  publish.routing_key = "price.calculate";
  publish.queue = "mes.price";
  publish.message_id = "msg-1";
  publish.order_id = "A-1001";
  publish.parent = request->GetContext();
  std::unique_ptr<Span> producer = StartPublishSpan(shop, "mq.publish.price", publish);
  AmqpHeaders headers;
  InjectAmqpHeaders(producer->GetContext(), publish.order_id, headers);
  producer->End();
  request->End();

  // MES receives it.
  ExtractedAmqpContext extracted = ExtractAmqpHeaders(headers);
  RabbitMqConsume consume;
  consume.exchange = "orders";
  consume.routing_key = "price.calculate";
  consume.queue = "mes.price";
  consume.message_id = "msg-1";
  consume.order_id = extracted.order_id;
  consume.retry_count = 2;
  consume.delivery_tag = 17;
  consume.producer = extracted.context;
  StartConsumeSpan(mes_.GetTracer("mes-api"), "mq.consume.price", consume)->End();

  ASSERT_THAT(shop_spans_, SizeIs(2));
  const base::Span& p = shop_spans_[0];
  EXPECT_EQ(p.name, "mq.publish.price");
  EXPECT_EQ(p.kind, base::SpanKind::kProducer);
  EXPECT_EQ(p.parent_span_id, request->GetContext().span_id);
  EXPECT_EQ(Attr(p, "messaging.system"), "rabbitmq");
  EXPECT_EQ(Attr(p, "messaging.operation"), "publish");
  EXPECT_EQ(Attr(p, "messaging.destination.name"), "orders");
  EXPECT_EQ(Attr(p, "messaging.rabbitmq.destination.routing_key"), "price.calculate");
  EXPECT_EQ(Attr(p, "messaging.message.id"), "msg-1");
  EXPECT_EQ(Attr(p, "message_id"), "msg-1");
  EXPECT_EQ(Attr(p, "queue"), "mes.price");
  EXPECT_EQ(Attr(p, "order_id"), "A-1001");
  EXPECT_EQ(Attr(p, "retry_count"), "<missing>");

  ASSERT_THAT(mes_spans_, SizeIs(1));
  const base::Span& c = mes_spans_[0];
  EXPECT_EQ(c.name, "mq.consume.price");
  EXPECT_EQ(c.kind, base::SpanKind::kConsumer);
  EXPECT_FALSE(c.parent_span_id.IsValid());
  ASSERT_THAT(c.links, SizeIs(1));
  EXPECT_EQ(c.links[0].trace_id, p.trace_id);
  EXPECT_EQ(c.links[0].span_id, p.span_id);
  EXPECT_EQ(Attr(c, "messaging.operation"), "process");
  EXPECT_EQ(Attr(c, "messaging.destination.name"), "orders");
  EXPECT_EQ(Attr(c, "messaging.rabbitmq.destination.routing_key"), "price.calculate");
  EXPECT_EQ(Attr(c, "messaging.rabbitmq.message.delivery_tag"), "17");
  EXPECT_EQ(Attr(c, "messaging.message.id"), "msg-1");
  EXPECT_EQ(Attr(c, "queue"), "mes.price");
  EXPECT_EQ(Attr(c, "retry_count"), "2");
  EXPECT_EQ(Attr(c, "order_id"), "A-1001");
}

TEST_F(MessagingTest, DefaultExchangeAndMissingContextStillMakeAConsumerSpan) {
  RabbitMqConsume consume;
  consume.queue = "crm.status";
  consume.message_id = "msg-2";
  consume.producer = ExtractAmqpHeaders({{"traceparent", "garbage"}}).context;
  StartConsumeSpan(mes_.GetTracer("crm-api"), "mq.consume.status", consume)->End();
  ASSERT_THAT(mes_spans_, SizeIs(1));
  const base::Span& c = mes_spans_[0];
  EXPECT_TRUE(c.links.empty());
  EXPECT_EQ(Attr(c, "messaging.destination.name"), "");  // the default exchange
  EXPECT_EQ(Attr(c, "messaging.rabbitmq.destination.routing_key"), "<missing>");
  EXPECT_EQ(Attr(c, "order_id"), "<missing>");
  EXPECT_EQ(Attr(c, "retry_count"), "0");
}

}  // namespace
}  // namespace ordertrace::sdk
