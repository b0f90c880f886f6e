#include "http/content_coding.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <string>

namespace ordertrace::http {
namespace {

using ::testing::HasSubstr;

// `window_bits` as deflateInit2 takes them: 15 + 16 gzip, 15 zlib, -15 raw deflate.
std::string Compress(const std::string& input, int window_bits) {
  z_stream stream{};
  EXPECT_EQ(
      deflateInit2(&stream, Z_BEST_COMPRESSION, Z_DEFLATED, window_bits, 9, Z_DEFAULT_STRATEGY),
      Z_OK);
  std::string out(deflateBound(&stream, input.size()), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
  stream.avail_in = static_cast<uInt>(input.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&stream, Z_FINISH), Z_STREAM_END);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

std::string Gzip(const std::string& input) { return Compress(input, 15 + 16); }

// Text that compresses, and is long enough to need several output buffers.
std::string Sample(size_t bytes) {
  std::string text;
  for (size_t i = 0; text.size() < bytes; ++i) text += "span-" + std::to_string(i % 997) + ";";
  text.resize(bytes);
  return text;
}

TEST(ContentCodingTest, SupportedCodings) {
  EXPECT_TRUE(IsSupportedContentCoding(""));
  EXPECT_TRUE(IsSupportedContentCoding("identity"));
  EXPECT_TRUE(IsSupportedContentCoding("GZIP"));
  EXPECT_TRUE(IsSupportedContentCoding("x-gzip"));
  EXPECT_TRUE(IsSupportedContentCoding("Deflate"));
  EXPECT_FALSE(IsSupportedContentCoding("br"));
  EXPECT_FALSE(IsSupportedContentCoding("gzip, br"));
  EXPECT_FALSE(IsSupportedContentCoding("zstd"));
}

TEST(ContentCodingTest, IdentityPassesThroughWithinTheBound) {
  absl::StatusOr<std::string> plain = DecodeContent("hello", "", 5);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(*plain, "hello");
  absl::StatusOr<std::string> over = DecodeContent("hello!", "identity", 5);
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(ContentCodingTest, DecodesGzip) {
  const std::string text = Sample(300'000);
  absl::StatusOr<std::string> decoded = DecodeContent(Gzip(text), "gzip", 1 << 20);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, text);
  absl::StatusOr<std::string> x_gzip = DecodeContent(Gzip("abc"), "x-gzip", 1 << 20);
  ASSERT_TRUE(x_gzip.ok()) << x_gzip.status();
  EXPECT_EQ(*x_gzip, "abc");
}

TEST(ContentCodingTest, DecodesDeflateZlibWrappedAndRaw) {
  const std::string text = Sample(100'000);
  absl::StatusOr<std::string> zlib = DecodeContent(Compress(text, 15), "deflate", 1 << 20);
  ASSERT_TRUE(zlib.ok()) << zlib.status();
  EXPECT_EQ(*zlib, text);
  absl::StatusOr<std::string> raw = DecodeContent(Compress(text, -15), "deflate", 1 << 20);
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ(*raw, text);
}

TEST(ContentCodingTest, DecodedSizeExactlyAtTheBoundIsAccepted) {
  const std::string text = Sample(65'536);
  absl::StatusOr<std::string> decoded = DecodeContent(Gzip(text), "gzip", text.size());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->size(), text.size());
  absl::StatusOr<std::string> one_less = DecodeContent(Gzip(text), "gzip", text.size() - 1);
  EXPECT_EQ(one_less.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(ContentCodingTest, GzipBombIsResourceExhausted) {
  // 64 MiB of zeros compress to about 64 KiB; the bound is 1 MiB.
  const std::string bomb = Gzip(std::string(64 << 20, '\0'));
  ASSERT_LT(bomb.size(), 100'000u);
  absl::StatusOr<std::string> decoded = DecodeContent(bomb, "gzip", 1 << 20);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(decoded.status().message(), HasSubstr("1048576"));
  absl::StatusOr<std::string> deflated =
      DecodeContent(Compress(std::string(16 << 20, 'a'), 15), "deflate", 1 << 20);
  EXPECT_EQ(deflated.status().code(), absl::StatusCode::kResourceExhausted);
  absl::StatusOr<std::string> raw =
      DecodeContent(Compress(std::string(16 << 20, 'a'), -15), "deflate", 1 << 20);
  EXPECT_EQ(raw.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(ContentCodingTest, CorruptOrTruncatedIsInvalidArgument) {
  EXPECT_EQ(DecodeContent("definitely not gzip", "gzip", 1 << 20).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeContent("", "gzip", 1 << 20).status().code(), absl::StatusCode::kInvalidArgument);
  std::string truncated = Gzip(Sample(50'000));
  truncated.resize(truncated.size() / 2);
  EXPECT_EQ(DecodeContent(truncated, "gzip", 1 << 20).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::string flipped = Gzip(Sample(50'000));
  flipped[flipped.size() - 6] ^= 0x5a;  // in the CRC-32 trailer
  EXPECT_EQ(DecodeContent(flipped, "gzip", 1 << 20).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeContent("\x01\x02\x03\x04", "deflate", 1 << 20).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ContentCodingTest, UnknownCodingIsInvalidArgument) {
  absl::StatusOr<std::string> decoded = DecodeContent("abc", "br", 1 << 20);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(decoded.status().message(), HasSubstr("br"));
}

}  // namespace
}  // namespace ordertrace::http
