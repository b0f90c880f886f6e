#include "otlp/wire_format.h"

#include <gmock/gmock.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "opentelemetry/proto/common/v1/common.pb.h"

namespace ordertrace::otlp::wire {
namespace {

using ::testing::ElementsAre;
using Field = std::tuple<uint32_t, WireType, std::string>;

std::vector<Field> Fields(std::string_view message, bool* ok = nullptr) {
  std::vector<Field> fields;
  bool result = ForEachField(message, [&](uint32_t number, WireType type, std::string_view value) {
    fields.emplace_back(number, type, std::string(value));
    return true;
  });
  if (ok != nullptr) *ok = result;
  return fields;
}

TEST(WireFormatTest, VarintsAsProtobufWritesThem) {
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{127}, uint64_t{128}, uint64_t{300},
                     uint64_t{1} << 35, UINT64_MAX}) {
    std::string out;
    AppendVarint(out, v);
    EXPECT_EQ(out.size(), VarintSize(v)) << v;
    std::string expected;
    google::protobuf::io::StringOutputStream stream(&expected);
    {
      google::protobuf::io::CodedOutputStream coded(&stream);
      coded.WriteVarint64(v);
    }
    EXPECT_EQ(out, expected) << v;
  }
  EXPECT_EQ(VarintSize(UINT64_MAX), 10u);
}

TEST(WireFormatTest, FieldsOfAMessageComeInOrderWithTheirPayloads) {
  opentelemetry::proto::common::v1::KeyValue kv;
  kv.set_key("order_id");
  kv.mutable_value()->set_string_value("ord-1");
  bool ok = false;
  std::vector<Field> fields = Fields(kv.SerializeAsString(), &ok);
  ASSERT_TRUE(ok);
  ASSERT_THAT(fields, ElementsAre(Field{1, WireType::kLen, "order_id"},
                                  Field{2, WireType::kLen, std::string("\x0a\x05ord-1", 7)}));
  opentelemetry::proto::common::v1::AnyValue number;
  number.set_int_value(-1);
  number.set_double_value(0.5);  // a oneof: the last one set wins
  fields = Fields(number.SerializeAsString(), &ok);
  ASSERT_TRUE(ok);
  ASSERT_EQ(fields.size(), 1u);
  EXPECT_EQ(std::get<1>(fields[0]), WireType::kFixed64);
  EXPECT_EQ(std::get<2>(fields[0]).size(), 8u);
}

TEST(WireFormatTest, MalformedBytesAreRefused) {
  const std::vector<std::string> malformed = {
      std::string("\x0a\x05"
                  "ab",
                  4),                  // length past the end
      std::string("\x00\x01", 2),      // field number 0
      std::string("\x0b\x0c", 2),      // a group (wire type 3)
      std::string("\x08\x80", 2),      // varint cut short
      std::string("\x09\x01\x02", 3),  // fixed64 cut short
      std::string("\x0d\x01", 2),      // fixed32 cut short
      std::string("\x0e\x00", 2),      // wire type 6
      std::string(11, '\xff'),         // tag varint longer than 10 bytes
  };
  for (const std::string& bytes : malformed) {
    bool ok = true;
    Fields(bytes, &ok);
    EXPECT_FALSE(ok) << testing::PrintToString(bytes);
  }
  bool ok = false;
  EXPECT_TRUE(Fields("", &ok).empty());
  EXPECT_TRUE(ok) << "an empty message is well formed";
}

TEST(WireFormatTest, StopsWhenTheVisitorSaysSo) {
  std::string message;
  AppendLenHeader(message, 1, 1);
  message += "a";
  AppendLenHeader(message, 2, 1);
  message += "b";
  int seen = 0;
  EXPECT_FALSE(ForEachField(message, [&](uint32_t, WireType, std::string_view) {
    ++seen;
    return false;
  }));
  EXPECT_EQ(seen, 1);
}

TEST(WireFormatTest, LengthDelimitedHeadersMatchTheirSize) {
  for (size_t length : {size_t{0}, size_t{5}, size_t{127}, size_t{128}, size_t{70000}}) {
    for (uint32_t field : {1u, 9u, 16u, 5000u}) {
      std::string out;
      AppendLenHeader(out, field, length);
      EXPECT_EQ(out.size() + length, LenFieldSize(field, length)) << field << " " << length;
      std::string message = out + std::string(length, 'x');
      bool ok = false;
      std::vector<Field> fields = Fields(message, &ok);
      ASSERT_TRUE(ok);
      ASSERT_EQ(fields.size(), 1u);
      EXPECT_EQ(std::get<0>(fields[0]), field);
      EXPECT_EQ(std::get<2>(fields[0]).size(), length);
    }
  }
}

}  // namespace
}  // namespace ordertrace::otlp::wire
