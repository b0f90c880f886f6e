// What the server and ParseRequest share about reading a request with Boost.Beast's parser: its
// limits, the head copied into an http::Request, and the answer a parse error gets. Private to
// the http part (it exposes Beast's types).
#pragma once

#include <boost/beast/http.hpp>
#include <optional>
#include <string>

#include "http/message.h"

namespace ordertrace::http::internal {

namespace bhttp = boost::beast::http;
using RequestParser = bhttp::request_parser<bhttp::string_body>;

// Sets a fresh parser's head and body limits.
inline void LimitParser(RequestParser& parser, size_t max_header_bytes, size_t max_body_bytes) {
  parser.header_limit(static_cast<uint32_t>(max_header_bytes));
  parser.body_limit(max_body_bytes);
}

// Copies method, target (decoded into path and query) and headers; not the body.
template <class Fields>
void CopyHead(const bhttp::request_header<Fields>& head, Request& out) {
  out.method = std::string(head.method_string());
  out.target = std::string(head.target());
  ParseTarget(out.target, out.path, out.query);
  out.headers.clear();
  for (const auto& field : head) {
    out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
}

struct ParseRefusal {
  int status;
  std::string message;
};

// The answer to a parse error that is the client's: 431, 413 or 400.
inline ParseRefusal RefusalFor(const boost::beast::error_code& ec, size_t max_header_bytes,
                               size_t max_body_bytes) {
  if (ec == bhttp::error::header_limit) {
    return {431, "request head exceeds " + std::to_string(max_header_bytes) + " bytes"};
  }
  if (ec == bhttp::error::body_limit) {
    return {413, "request body exceeds " + std::to_string(max_body_bytes) + " bytes"};
  }
  return {400, "malformed HTTP request: " + ec.message()};
}

}  // namespace ordertrace::http::internal
