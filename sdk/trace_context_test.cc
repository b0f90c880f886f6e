#include "sdk/trace_context.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ordertrace::sdk {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

constexpr char kTraceIdHex[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kSpanIdHex[] = "00f067aa0ba902b7";

std::string Header(std::string_view version, std::string_view trace_id, std::string_view span_id,
                   std::string_view flags) {
  return std::string(version) + "-" + std::string(trace_id) + "-" + std::string(span_id) + "-" +
         std::string(flags);
}

struct ValidCase {
  std::string name;
  std::string header;
  uint8_t expected_flags;
};

class ValidTraceparentTest : public ::testing::TestWithParam<ValidCase> {};

TEST_P(ValidTraceparentTest, Parses) {
  absl::StatusOr<SpanContext> context = ParseTraceparent(GetParam().header);
  ASSERT_TRUE(context.ok()) << context.status();
  EXPECT_EQ(context->trace_id.ToHex(), kTraceIdHex);
  EXPECT_EQ(context->span_id.ToHex(), kSpanIdHex);
  EXPECT_EQ(context->trace_flags, GetParam().expected_flags);
  EXPECT_TRUE(context->is_remote);
  EXPECT_TRUE(context->trace_state.empty());
}

INSTANTIATE_TEST_SUITE_P(
    W3C, ValidTraceparentTest,
    ::testing::Values(
        ValidCase{"Sampled", Header("00", kTraceIdHex, kSpanIdHex, "01"), 0x01},
        ValidCase{"NotSampled", Header("00", kTraceIdHex, kSpanIdHex, "00"), 0x00},
        // Version 00 keeps flags it does not know (level 2's "random" is 02).
        ValidCase{"Version00UnknownFlagsKept", Header("00", kTraceIdHex, kSpanIdHex, "03"), 0x03},
        ValidCase{"Version00AllFlags", Header("00", kTraceIdHex, kSpanIdHex, "ff"), 0xff},
        // A future version: the first four fields are read, only "sampled" is kept.
        ValidCase{"FutureVersionExactLength", Header("01", kTraceIdHex, kSpanIdHex, "01"), 0x01},
        ValidCase{"FutureVersionExtraField",
                  Header("cc", kTraceIdHex, kSpanIdHex, "01") + "-what-the-future-will-be-like",
                  0x01},
        ValidCase{"FutureVersionOnlyDash", Header("fe", kTraceIdHex, kSpanIdHex, "09") + "-", 0x01},
        ValidCase{"FutureVersionUnknownFlagsDropped",
                  Header("02", kTraceIdHex, kSpanIdHex, "fe") + "-00", 0x00}),
    [](const ::testing::TestParamInfo<ValidCase>& info) { return info.param.name; });

struct InvalidCase {
  std::string name;
  std::string header;
};

class InvalidTraceparentTest : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(InvalidTraceparentTest, IsRejected) {
  absl::StatusOr<SpanContext> context = ParseTraceparent(GetParam().header);
  EXPECT_EQ(context.status().code(), absl::StatusCode::kInvalidArgument)
      << "header: " << GetParam().header;
}

const std::string kValid = Header("00", kTraceIdHex, kSpanIdHex, "01");

std::string WithCharAt(std::string s, size_t pos, char c) {
  s[pos] = c;
  return s;
}

INSTANTIATE_TEST_SUITE_P(
    W3C, InvalidTraceparentTest,
    ::testing::Values(
        InvalidCase{"Empty", ""}, InvalidCase{"Garbage", "hello world"},
        InvalidCase{"OneShort", kValid.substr(0, 54)},
        InvalidCase{"Version00TrailingDash", kValid + "-"},
        InvalidCase{"Version00ExtraField", kValid + "-01"},
        InvalidCase{"Version00TrailingSpace", kValid + " "},
        InvalidCase{"LeadingSpace", " " + kValid},
        InvalidCase{"VersionFf", Header("ff", kTraceIdHex, kSpanIdHex, "01")},
        InvalidCase{"VersionUpperCase", Header("0A", kTraceIdHex, kSpanIdHex, "01")},
        InvalidCase{"VersionNotHex", Header("0g", kTraceIdHex, kSpanIdHex, "01")},
        InvalidCase{"VersionOneDigit", "0-" + std::string(kTraceIdHex) + "-" + kSpanIdHex + "-01"},
        InvalidCase{"TraceIdUpperCase",
                    Header("00", "4BF92F3577B34DA6A3CE929D0E0E4736", kSpanIdHex, "01")},
        InvalidCase{"SpanIdUpperCase", Header("00", kTraceIdHex, "00F067AA0BA902B7", "01")},
        InvalidCase{"FlagsUpperCase", Header("00", kTraceIdHex, kSpanIdHex, "0A")},
        InvalidCase{"TraceIdAllZero",
                    Header("00", "00000000000000000000000000000000", kSpanIdHex, "01")},
        InvalidCase{"SpanIdAllZero", Header("00", kTraceIdHex, "0000000000000000", "01")},
        InvalidCase{"TraceIdShort",
                    Header("00", "4bf92f3577b34da6a3ce929d0e0e473", kSpanIdHex, "01")},
        InvalidCase{"TraceIdLong",
                    Header("00", "4bf92f3577b34da6a3ce929d0e0e47366", kSpanIdHex, "01")},
        InvalidCase{"SpanIdShort", Header("00", kTraceIdHex, "00f067aa0ba902b", "01")},
        InvalidCase{"SpanIdLong", Header("00", kTraceIdHex, "00f067aa0ba902b77", "01")},
        InvalidCase{"FlagsOneDigit", Header("00", kTraceIdHex, kSpanIdHex, "1")},
        InvalidCase{"FlagsThreeDigits", Header("00", kTraceIdHex, kSpanIdHex, "011")},
        InvalidCase{"FlagsNotHex", Header("00", kTraceIdHex, kSpanIdHex, "0x")},
        InvalidCase{"TraceIdNotHex",
                    Header("00", "4bf92f3577b34da6a3ce929d0e0e473z", kSpanIdHex, "01")},
        InvalidCase{"SpanIdNotHex", Header("00", kTraceIdHex, "00f067aa0ba902bg", "01")},
        InvalidCase{"UnderscoreSeparators", WithCharAt(WithCharAt(kValid, 2, '_'), 35, '_')},
        InvalidCase{"FirstSeparatorWrong", WithCharAt(kValid, 2, '.')},
        InvalidCase{"SecondSeparatorWrong", WithCharAt(kValid, 35, '.')},
        InvalidCase{"ThirdSeparatorWrong", WithCharAt(kValid, 52, '.')},
        InvalidCase{"EmbeddedNul", WithCharAt(kValid, 10, '\0')},
        InvalidCase{"FutureVersionTooShort",
                    Header("01", kTraceIdHex, kSpanIdHex, "01").substr(0, 54)},
        InvalidCase{"FutureVersionNoDashAfterFlags",
                    Header("01", kTraceIdHex, kSpanIdHex, "01") + "x"},
        InvalidCase{"FutureVersionLongerFlags",
                    Header("01", kTraceIdHex, kSpanIdHex, "01") + "0-extra"},
        InvalidCase{"FutureVersionZeroTraceId",
                    Header("01", "00000000000000000000000000000000", kSpanIdHex, "01") + "-x"},
        InvalidCase{"FutureVersionUpperCaseSpanId",
                    Header("01", kTraceIdHex, "00F067AA0BA902B7", "01") + "-x"}),
    [](const ::testing::TestParamInfo<InvalidCase>& info) { return info.param.name; });

TEST(TraceparentTest, NeverCrashesOnAnyTruncationOrByteFlip) {
  // Every prefix and every single-byte change of a valid header gives a result, never a crash;
  // each flip of a hex digit to an upper-case or non-hex byte is rejected.
  std::string valid = kValid;
  for (size_t n = 0; n <= valid.size(); ++n) {
    EXPECT_EQ(ParseTraceparent(valid.substr(0, n)).ok(), n == valid.size());
  }
  for (size_t i = 0; i < valid.size(); ++i) {
    for (int c : std::initializer_list<int>{0, 'G', 'A', '-', ' ', 0x7f, 0xff}) {
      std::string changed = WithCharAt(valid, i, static_cast<char>(c));
      if (changed == valid) continue;
      EXPECT_FALSE(ParseTraceparent(changed).ok()) << changed;
    }
  }
}

TEST(TraceparentTest, FormatRoundTrips) {
  SpanContext context = *ParseTraceparent(kValid);
  EXPECT_EQ(FormatTraceparent(context), kValid);
  context.trace_flags = 0;
  EXPECT_EQ(FormatTraceparent(context), Header("00", kTraceIdHex, kSpanIdHex, "00"));
}

TEST(TraceparentTest, FutureVersionIsFormattedAsVersion00) {
  SpanContext context = *ParseTraceparent(Header("01", kTraceIdHex, kSpanIdHex, "01") + "-x");
  EXPECT_EQ(FormatTraceparent(context), kValid);
}

TEST(TraceparentTest, InvalidContextFormatsAsEmpty) {
  EXPECT_EQ(FormatTraceparent(SpanContext{}), "");
}

TEST(TraceStateTest, ParsesMembersInOrderSkippingEmptyOnes) {
  absl::StatusOr<TraceState> state =
      TraceState::Parse("rojo=00f067aa0ba902b7, ,\tcongo=t61rcWkgMzE , tenant1@vendor=x y");
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_THAT(state->members(),
              ElementsAre(Pair("rojo", "00f067aa0ba902b7"), Pair("congo", "t61rcWkgMzE"),
                          Pair("tenant1@vendor", "x y")));
  EXPECT_EQ(state->ToHeader(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,tenant1@vendor=x y");
  EXPECT_EQ(state->Get("congo"), "t61rcWkgMzE");
  EXPECT_EQ(state->Get("absent"), std::nullopt);
}

TEST(TraceStateTest, EmptyHeaderIsAnEmptyList) {
  absl::StatusOr<TraceState> state = TraceState::Parse("");
  ASSERT_TRUE(state.ok());
  EXPECT_TRUE(state->empty());
  EXPECT_TRUE(TraceState::Parse(" , ,").ok());
}

std::string Members(int n) {
  std::string header;
  for (int i = 0; i < n; ++i) {
    if (i > 0) header += ",";
    header += "k" + std::to_string(i) + "=v";
  }
  return header;
}

TEST(TraceStateTest, AcceptsThirtyTwoMembersAndRejectsThirtyThree) {
  absl::StatusOr<TraceState> full = TraceState::Parse(Members(32));
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(full->size(), 32u);
  EXPECT_EQ(TraceState::Parse(Members(33)).status().code(), absl::StatusCode::kInvalidArgument);
  // Empty members do not count towards the limit.
  EXPECT_TRUE(TraceState::Parse(Members(32) + ",,,").ok());
}

TEST(TraceStateTest, RejectsInvalidMembers) {
  for (const std::string& header : std::vector<std::string>{
           "novalue",                           // no '='
           "Upper=v",                           // keys are lower case
           "1abc=v",                            // a simple key starts with a letter
           "k=",                                // empty value
           "k=a,b",                             // "b" has no '='
           "k=v=w",                             // '=' in the value
           "k=v,k=w",                           // duplicate key
           "=v",                                // empty key
           "k =v",                              // space inside the member before '='
           "k!=v",                              // '!' not allowed in keys
           "@vendor=v",                         // empty tenant
           "tenant@=v",                         // empty system
           "tenant@1vendor=v",                  // system starts with a letter
           "tenant@vendorvendorvendor=v",       // system id longer than 14
           "k=caf\xc3\xa9",                     // non-ASCII value
           "k=tab\there",                       // control character in the value
           "a" + std::string(256, 'b') + "=v",  // key of 257 characters
           "k=" + std::string(257, 'v'),        // value of 257 characters
       }) {
    EXPECT_EQ(TraceState::Parse(header).status().code(), absl::StatusCode::kInvalidArgument)
        << header;
  }
}

TEST(TraceStateTest, AcceptsLongestKeysAndValues) {
  EXPECT_TRUE(TraceState::Parse("a" + std::string(255, 'b') + "=v").ok());
  EXPECT_TRUE(TraceState::Parse("k=" + std::string(256, 'v')).ok());
  EXPECT_TRUE(
      TraceState::Parse(std::string(241, '1') + "@" + "v" + std::string(13, '*') + "=v").ok());
  EXPECT_FALSE(TraceState::Parse(std::string(242, '1') + "@v=v").ok());
  EXPECT_TRUE(TraceState::Parse("a-b_c*d/e=!\"#$%&'()*+-./09:;<>?@AZ[\\]^_`az{|}~").ok());
}

TEST(TraceStateTest, SetMovesTheKeyToTheFrontAndKeepsThirtyTwo) {
  TraceState state = *TraceState::Parse("a=1,b=2,c=3");
  absl::StatusOr<TraceState> updated = state.Set("b", "9");
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->ToHeader(), "b=9,a=1,c=3");

  TraceState full = *TraceState::Parse(Members(32));
  absl::StatusOr<TraceState> added = full.Set("new", "v");
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(added->size(), 32u);
  EXPECT_EQ(added->members().front().first, "new");
  EXPECT_EQ(added->Get("k31"), std::nullopt);  // the last member made room

  EXPECT_FALSE(state.Set("Bad", "v").ok());
  EXPECT_FALSE(state.Set("k", "a,b").ok());
}

TEST(TraceContextTest, InvalidTracestateIsDroppedAndTraceparentKept) {
  absl::StatusOr<SpanContext> context = ParseTraceContext(kValid, "Invalid=Key");
  ASSERT_TRUE(context.ok()) << context.status();
  EXPECT_EQ(context->trace_id.ToHex(), kTraceIdHex);
  EXPECT_TRUE(context->trace_state.empty());

  context = ParseTraceContext(kValid, Members(33));
  ASSERT_TRUE(context.ok());
  EXPECT_TRUE(context->trace_state.empty());
}

TEST(TraceContextTest, ValidTracestateIsKept) {
  absl::StatusOr<SpanContext> context = ParseTraceContext(kValid, "rojo=1,congo=2");
  ASSERT_TRUE(context.ok());
  EXPECT_EQ(context->trace_state.ToHeader(), "rojo=1,congo=2");
}

TEST(TraceContextTest, InvalidTraceparentFailsWhateverTheTracestate) {
  EXPECT_FALSE(ParseTraceContext("00-garbage", "rojo=1").ok());
}

}  // namespace
}  // namespace ordertrace::sdk
