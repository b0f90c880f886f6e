#include "http/router.h"

#include <nlohmann/json.hpp>

namespace ordertrace::http {
namespace {

std::vector<std::string> SplitSegments(std::string_view path) {
  std::vector<std::string> segments;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  while (true) {
    size_t slash = path.find('/');
    segments.emplace_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return segments;
}

void WriteJsonError(const Request&, Response& response, int status, const std::string& message) {
  response.status = status;
  nlohmann::json body = {{"error", message}};
  // Paths come from clients and need not be UTF-8: bad bytes are replaced, never thrown about.
  response.SetContent(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                      "application/json");
}

}  // namespace

Router::Router() : error_writer_(WriteJsonError) {}

void Router::Add(std::string method, std::string_view pattern, Handler handler) {
  routes_.push_back(Route{std::move(method), SplitSegments(pattern), std::move(handler)});
}

bool Router::Matches(const Route& route, std::string_view path, std::vector<std::string>& params) {
  params.clear();
  if (path.empty() || path.front() != '/') return false;
  path.remove_prefix(1);
  for (size_t i = 0; i < route.segments.size(); ++i) {
    const std::string& segment = route.segments[i];
    if (segment == "{*}") {
      if (path.empty()) return false;
      params.emplace_back(path);
      return true;
    }
    size_t slash = path.find('/');
    bool last = i + 1 == route.segments.size();
    // The last segment must take the whole rest; the others must end at a slash.
    if (last != (slash == std::string_view::npos)) return false;
    std::string_view part = path.substr(0, slash);
    if (segment == "{}") {
      if (part.empty()) return false;
      params.emplace_back(part);
    } else if (part != segment) {
      return false;
    }
    if (!last) path.remove_prefix(slash + 1);
  }
  return true;
}

void Router::Handle(Request& request, Response& response) const {
  const std::string method = request.method == "HEAD" ? "GET" : request.method;
  std::vector<std::string> params;
  std::string allowed;  // methods of the routes whose pattern matches
  for (const Route& route : routes_) {
    if (!Matches(route, request.path, params)) continue;
    if (route.method != method) {
      allowed += allowed.empty() ? route.method : ", " + route.method;
      continue;
    }
    request.path_params = std::move(params);
    route.handler(request, response);
    return;
  }
  if (!allowed.empty()) {
    WriteError(request, response, 405,
               "method " + request.method + " is not allowed on " + request.path);
    response.SetHeader("Allow", allowed);
    return;
  }
  WriteError(request, response, 404, "no such endpoint: " + request.path);
}

}  // namespace ordertrace::http
