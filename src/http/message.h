// An HTTP request as a handler sees it, and the response it fills in. Plain data: the event-driven
// server (http/server.h) builds the request once its head and body are read, and writes the
// response; the router (http/router.h) fills in the path parameters.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ordertrace::http {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method;  // "GET", "POST", ...; a HEAD request is served as GET without a body
  std::string target;  // as sent: path and query, percent-encoded
  std::string path;    // the target's path, percent-decoded
  std::vector<std::pair<std::string, std::string>> query;  // decoded; '+' read as a space
  HeaderList headers;                                      // names as sent
  std::vector<std::string> path_params;  // what the route's "{}" and "{*}" matched, in order
  std::string body;                      // decoded of its transfer encoding (chunks), not of gzip

  // The first header named `name` (case-insensitive), or "" when absent.
  std::string Header(std::string_view name) const;
  bool HasHeader(std::string_view name) const;
  // The first query parameter named `name` (case-sensitive), or "" when absent.
  std::string Param(std::string_view name) const;
  bool HasParam(std::string_view name) const;
  // The route's i-th placeholder; "" past the last.
  const std::string& PathParam(size_t i) const;
};

struct Response {
  int status = 200;
  std::string body;
  std::string content_type;
  HeaderList headers;
  // Close the connection after this answer (refusals whose body was not read).
  bool close_connection = false;

  void SetContent(std::string content, std::string type) {
    body = std::move(content);
    content_type = std::move(type);
  }
  void SetHeader(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
};

// Percent-decodes `text`; with `plus_as_space` (query strings), '+' becomes ' '. A '%' not
// followed by two hex digits is kept as it is.
std::string PercentDecode(std::string_view text, bool plus_as_space);

// Splits a request target into its decoded path and query parameters.
void ParseTarget(std::string_view target, std::string& path,
                 std::vector<std::pair<std::string, std::string>>& query);

// The reason phrase of a status code ("Too Many Requests"), "" for unknown codes.
std::string_view ReasonPhrase(int status);

}  // namespace ordertrace::http
