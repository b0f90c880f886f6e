#include "http/content_coding.h"

#include <strings.h>
#include <zlib.h>

#include <algorithm>

namespace ordertrace::http {
namespace {

bool Is(std::string_view coding, std::string_view name) {
  return coding.size() == name.size() && strncasecmp(coding.data(), name.data(), name.size()) == 0;
}

// zlib's inflate with `window_bits` (15 + 32: gzip or zlib by their header; -15: raw deflate).
absl::StatusOr<std::string> Inflate(std::string_view input, int window_bits, size_t max_bytes) {
  z_stream stream{};
  if (inflateInit2(&stream, window_bits) != Z_OK) {
    return absl::InternalError("zlib could not start inflating");
  }
  std::string out;
  out.resize(std::min(max_bytes, std::max<size_t>(input.size() * 4, 4096)));
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
  stream.avail_in = static_cast<uInt>(input.size());
  int result = Z_OK;
  size_t produced = 0;
  while (result != Z_STREAM_END) {
    if (produced == out.size()) {
      if (out.size() >= max_bytes) break;
      out.resize(std::min(max_bytes, out.size() * 2));
    }
    stream.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    stream.avail_out = static_cast<uInt>(out.size() - produced);
    result = inflate(&stream, Z_NO_FLUSH);
    produced = out.size() - stream.avail_out;
    if (result != Z_OK && result != Z_STREAM_END) break;
  }
  inflateEnd(&stream);
  if (result == Z_STREAM_END) {
    out.resize(produced);
    return out;
  }
  if (produced >= max_bytes) {
    return absl::ResourceExhaustedError("request body exceeds " + std::to_string(max_bytes) +
                                        " bytes once decompressed");
  }
  return absl::InvalidArgumentError("the request body is not valid for its Content-Encoding");
}

}  // namespace

bool IsSupportedContentCoding(std::string_view coding) {
  return coding.empty() || Is(coding, "identity") || Is(coding, "gzip") || Is(coding, "x-gzip") ||
         Is(coding, "deflate");
}

absl::StatusOr<std::string> DecodeContent(std::string body, std::string_view coding,
                                          size_t max_decoded_bytes) {
  if (coding.empty() || Is(coding, "identity")) {
    if (body.size() > max_decoded_bytes) {
      return absl::ResourceExhaustedError("request body exceeds " +
                                          std::to_string(max_decoded_bytes) + " bytes");
    }
    return body;
  }
  if (Is(coding, "gzip") || Is(coding, "x-gzip")) return Inflate(body, 15 + 32, max_decoded_bytes);
  if (Is(coding, "deflate")) {
    // "deflate" means zlib-wrapped (RFC 9110), but some clients send it raw: try both.
    absl::StatusOr<std::string> wrapped = Inflate(body, 15, max_decoded_bytes);
    if (wrapped.ok() || wrapped.status().code() == absl::StatusCode::kResourceExhausted) {
      return wrapped;
    }
    return Inflate(body, -15, max_decoded_bytes);
  }
  return absl::InvalidArgumentError("unsupported Content-Encoding '" + std::string(coding) + "'");
}

}  // namespace ordertrace::http
