#include "sdk/amqp_carrier.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ordertrace::sdk {
namespace {

using ::testing::Contains;
using ::testing::Key;
using ::testing::Not;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr char kTraceparent[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

SpanContext Context(std::string_view tracestate = "") {
  return *ParseTraceContext(kTraceparent, tracestate);
}

TEST(AmqpCarrierTest, InjectWritesTraceparentTracestateAndOrderId) {
  AmqpHeaders headers = {{"content_kind", "status"}};
  InjectAmqpHeaders(Context("mes=1,crm=2"), "A-1001", headers);
  EXPECT_THAT(headers, UnorderedElementsAre(
                           Pair("content_kind", "status"), Pair("traceparent", kTraceparent),
                           Pair("tracestate", "mes=1,crm=2"), Pair("order_id", "A-1001")));
}

TEST(AmqpCarrierTest, RoundTripGivesBackTheRemoteContextAndOrderId) {
  AmqpHeaders headers;
  SpanContext sent = Context("mes=1");
  InjectAmqpHeaders(sent, "A-1001", headers);
  ExtractedAmqpContext got = ExtractAmqpHeaders(headers);
  ASSERT_TRUE(got.context.has_value());
  EXPECT_EQ(got.context->trace_id, sent.trace_id);
  EXPECT_EQ(got.context->span_id, sent.span_id);
  EXPECT_EQ(got.context->trace_flags, sent.trace_flags);
  EXPECT_EQ(got.context->trace_state, sent.trace_state);
  EXPECT_TRUE(got.context->is_remote);
  EXPECT_EQ(got.order_id, "A-1001");
}

TEST(AmqpCarrierTest, OrderRootTravelsInItsOwnHeader) {
  AmqpHeaders headers;
  SpanContext root = Context();
  InjectOrderRootHeader(root, headers);
  EXPECT_THAT(headers, UnorderedElementsAre(Pair("order_traceparent", kTraceparent)));
  ExtractedAmqpContext got = ExtractAmqpHeaders(headers);
  ASSERT_TRUE(got.order_root.has_value());
  EXPECT_EQ(got.order_root->span_id, root.span_id);
  EXPECT_FALSE(got.context.has_value());

  InjectOrderRootHeader(SpanContext{}, headers);
  EXPECT_THAT(headers, Not(Contains(Key("order_traceparent"))));
}

TEST(AmqpCarrierTest, MalformedOrderRootIsIgnored) {
  AmqpHeaders headers = {{"order_traceparent", "00-zz-00f067aa0ba902b7-01"}};
  EXPECT_FALSE(ExtractAmqpHeaders(headers).order_root.has_value());
}

TEST(AmqpCarrierTest, UnsampledFlagSurvivesTheRoundTrip) {
  SpanContext sent = Context();
  sent.trace_flags = 0;
  AmqpHeaders headers;
  InjectAmqpHeaders(sent, "", headers);
  ExtractedAmqpContext got = ExtractAmqpHeaders(headers);
  ASSERT_TRUE(got.context.has_value());
  EXPECT_FALSE(got.context->IsSampled());
  EXPECT_EQ(got.order_id, "");
  EXPECT_THAT(headers, Not(Contains(Key("order_id"))));
}

TEST(AmqpCarrierTest, EmptyTracestateIsNotWrittenAndStaleOnesAreReplaced) {
  AmqpHeaders headers = {{"tracestate", "old=1"}, {"traceparent", "stale"}};
  InjectAmqpHeaders(Context(), "A-7", headers);
  EXPECT_THAT(headers,
              UnorderedElementsAre(Pair("traceparent", kTraceparent), Pair("order_id", "A-7")));
}

TEST(AmqpCarrierTest, InvalidContextWritesOnlyTheOrderIdAndClearsStaleContext) {
  AmqpHeaders headers = {{"traceparent", kTraceparent}, {"tracestate", "a=b"}};
  InjectAmqpHeaders(SpanContext{}, "A-9", headers);
  EXPECT_THAT(headers, UnorderedElementsAre(Pair("order_id", "A-9")));
}

struct MalformedCase {
  std::string name;
  AmqpHeaders headers;
  bool expect_context;
  std::string expect_tracestate;
};

class AmqpCarrierMalformedTest : public ::testing::TestWithParam<MalformedCase> {};

TEST_P(AmqpCarrierMalformedTest, ExtractNeverFailsAndKeepsTheOrderId) {
  const MalformedCase& c = GetParam();
  AmqpHeaders headers = c.headers;
  headers["order_id"] = "A-42";
  ExtractedAmqpContext got = ExtractAmqpHeaders(headers);
  EXPECT_EQ(got.context.has_value(), c.expect_context);
  if (got.context.has_value()) {
    EXPECT_EQ(got.context->trace_state.ToHeader(), c.expect_tracestate);
  }
  EXPECT_EQ(got.order_id, "A-42");
}

INSTANTIATE_TEST_SUITE_P(
    Headers, AmqpCarrierMalformedTest,
    ::testing::Values(
        MalformedCase{"NoHeaders", {}, false, ""},
        MalformedCase{"EmptyTraceparent", {{"traceparent", ""}}, false, ""},
        MalformedCase{"Garbage", {{"traceparent", "not-a-trace"}}, false, ""},
        MalformedCase{"UpperCase",
                      {{"traceparent", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01"}},
                      false,
                      ""},
        MalformedCase{"VersionFf",
                      {{"traceparent", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
                      false,
                      ""},
        MalformedCase{"ZeroTraceId",
                      {{"traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}},
                      false,
                      ""},
        MalformedCase{"BinaryBytes", {{"traceparent", std::string("\0\xff\x80", 3)}}, false, ""},
        MalformedCase{"OnlyTracestate", {{"tracestate", "a=1"}}, false, ""},
        MalformedCase{"BadTracestateIsDropped",
                      {{"traceparent", kTraceparent}, {"tracestate", "NOT VALID"}},
                      true,
                      ""},
        MalformedCase{"GoodTracestateIsKept",
                      {{"traceparent", kTraceparent}, {"tracestate", "a=1"}},
                      true,
                      "a=1"},
        // Header names are matched exactly, as AMQP table keys are.
        MalformedCase{"WrongCaseHeaderName", {{"Traceparent", kTraceparent}}, false, ""}),
    [](const ::testing::TestParamInfo<MalformedCase>& info) { return info.param.name; });

}  // namespace
}  // namespace ordertrace::sdk
