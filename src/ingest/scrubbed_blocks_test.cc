// Ingest's side of PII removal: a span decoded from protobuf points into the received body, so
// once the scrubber has changed it, ingest must encode it from the model, not copy those bytes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "ingest/ingester.h"
#include "otlp/proto_codec.h"
#include "scrub/pii_scrubber.h"

namespace ordertrace::ingest {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

base::KeyValue Str(std::string key, std::string value) {
  return {std::move(key), base::AnyValue::String(std::move(value))};
}

// One span of an order with an e-mail address and a phone number, as mes-api would send it.
std::string RequestBodyWithPii() {
  base::Span span;
  span.trace_id.bytes.fill(1);
  span.span_id.bytes.fill(2);
  span.name = "ship to jo@example.com";
  span.start_time_unix_nano = 1'765'000'000'000'000'000ULL;
  span.end_time_unix_nano = span.start_time_unix_nano + 1000;
  span.attributes = {Str("customer.email", "jo@example.com"), Str("order.id", "ord-20261206-0001")};
  base::SpanEvent event;
  event.name = "called";
  event.attributes = {Str("number", "+49 30 1234567")};
  span.events.push_back(event);
  base::TraceBatch batch;
  batch.resource_spans.emplace_back();
  batch.resource_spans[0].resource.attributes = {Str("service.name", "mes")};
  batch.resource_spans[0].scope_spans.emplace_back();
  batch.resource_spans[0].scope_spans[0].spans.push_back(std::move(span));
  return otlp::EncodeProtobuf(batch);
}

// The path ingest takes: protobuf decoded with its body kept, scrubbed, the received bytes of
// the spans the scrubber changed forgotten, then encoded into store blocks.
TEST(ScrubbedBlocksTest, StoredBlocksOfDecodedSpansHoldNoPii) {
  auto body = std::make_shared<const std::string>(RequestBodyWithPii());
  ASSERT_THAT(*body, HasSubstr("jo@example.com"));
  auto decoded = otlp::DecodeProtobufRequest(body);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  base::TraceBatch batch = std::move(decoded->batch);
  otlp::ReceivedBytes received = std::move(decoded->received);
  ASSERT_NE(received.Find(0, 0, 0), nullptr)
      << "the test needs a span that kept its received bytes";

  auto scrubber = scrub::PiiScrubber::Create({});
  ASSERT_TRUE(scrubber.ok()) << scrubber.status();
  std::vector<scrub::SpanPosition> changed;
  (*scrubber)->Scrub(batch, &changed);
  for (const scrub::SpanPosition& at : changed) received.Forget(at.resource, at.scope, at.span);
  std::vector<store::SpanBlock> blocks = BlocksByTrace(batch, ~uint64_t{0}, &received);
  ASSERT_EQ(blocks.size(), 1u);
  const std::string& stored = blocks[0].encoded;
  EXPECT_THAT(stored, Not(HasSubstr("jo@example.com")));
  EXPECT_THAT(stored, Not(HasSubstr("+49 30 1234567")));
  EXPECT_THAT(stored, HasSubstr("ord-20261206-0001"));
  EXPECT_THAT(stored, HasSubstr("ship to [email]"));

  // Control: without scrubbing the same path stores the address.
  auto again = otlp::DecodeProtobufRequest(body);
  ASSERT_TRUE(again.ok());
  EXPECT_THAT(BlocksByTrace(again->batch, ~uint64_t{0}, &again->received)[0].encoded,
              HasSubstr("jo@example.com"));
}

}  // namespace
}  // namespace ordertrace::ingest
