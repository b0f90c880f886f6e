// Parses one HTTP/1.1 request from bytes with the same parser, limits and refusals a server
// connection uses, without a socket: for tests and the fuzzer. Thread-safe (no state).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "http/message.h"

namespace ordertrace::http {

struct ParseOutcome {
  // 0 when `request` is complete; otherwise the status the server answers (400, 413, 431).
  int refusal = 0;
  std::string message;      // why, when refused
  bool incomplete = false;  // the bytes end before the request does (the server would wait)
  Request request;          // the head as far as parsed; the body when complete
};

ParseOutcome ParseRequest(std::string_view bytes, size_t max_header_bytes, size_t max_body_bytes);

}  // namespace ordertrace::http
