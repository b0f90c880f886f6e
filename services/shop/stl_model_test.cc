#include "services/shop/stl_model.h"

#include <gtest/gtest.h>

#include <string>

namespace ordertrace::services::shop {
namespace {

std::string BinaryStl(uint32_t header_count, size_t triangles) {
  std::string file(80, ' ');
  for (int i = 0; i < 4; ++i) file.push_back(static_cast<char>((header_count >> (8 * i)) & 0xff));
  file.append(triangles * 50, '\0');
  return file;
}

TEST(StlModelTest, ReadsTheTriangleCountOfAWellFormedFile) {
  EXPECT_EQ(*ReadStlTriangleCount(BinaryStl(1, 1)), 1);
  EXPECT_EQ(*ReadStlTriangleCount(BinaryStl(12345, 12345)), 12345);
  EXPECT_EQ(*ReadStlTriangleCount(BinaryStl(70000, 70000)), 70000);  // count uses all 4 bytes
}

TEST(StlModelTest, RejectsACountThatDoesNotMatchTheSize) {
  absl::StatusOr<int64_t> count = ReadStlTriangleCount(BinaryStl(10, 9));
  EXPECT_EQ(count.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_NE(count.status().message().find("10 triangles"), std::string::npos);
  EXPECT_FALSE(ReadStlTriangleCount(BinaryStl(0xffffffff, 1)).ok());  // no overflow
}

TEST(StlModelTest, RejectsShortEmptyAndAsciiFiles) {
  EXPECT_FALSE(ReadStlTriangleCount("").ok());
  EXPECT_FALSE(ReadStlTriangleCount(std::string(83, 'x')).ok());
  EXPECT_FALSE(ReadStlTriangleCount(BinaryStl(0, 0)).ok());
  absl::StatusOr<int64_t> ascii =
      ReadStlTriangleCount("solid ring\nfacet normal 0 0 1\nendfacet\nendsolid ring\n");
  ASSERT_FALSE(ascii.ok());
  EXPECT_NE(ascii.status().message().find("ASCII"), std::string::npos);
}

}  // namespace
}  // namespace ordertrace::services::shop
