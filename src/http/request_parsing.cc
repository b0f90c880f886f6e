#include "http/request_parsing.h"

#include <boost/asio/buffer.hpp>

#include "http/beast_request.h"

namespace ordertrace::http {

ParseOutcome ParseRequest(std::string_view bytes, size_t max_header_bytes, size_t max_body_bytes) {
  ParseOutcome outcome;
  internal::RequestParser parser;
  internal::LimitParser(parser, max_header_bytes, max_body_bytes);
  parser.eager(true);
  boost::beast::error_code ec;
  while (!bytes.empty() && !parser.is_done()) {
    size_t used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
    if (ec == internal::bhttp::error::need_more) {
      ec = {};
      break;
    }
    if (ec) break;
    bytes.remove_prefix(used);
    if (used == 0) break;
  }
  if (parser.is_header_done() || ec == internal::bhttp::error::body_limit) {
    internal::CopyHead(parser.get(), outcome.request);
  }
  if (ec) {
    internal::ParseRefusal refusal = internal::RefusalFor(ec, max_header_bytes, max_body_bytes);
    outcome.refusal = refusal.status;
    outcome.message = std::move(refusal.message);
    return outcome;
  }
  if (!parser.is_done()) {
    outcome.incomplete = true;
    return outcome;
  }
  outcome.request.body = std::move(parser.get().body());
  return outcome;
}

}  // namespace ordertrace::http
