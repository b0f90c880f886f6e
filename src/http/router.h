// Routes requests to handlers by method and path pattern. Patterns are literal segments, "{}"
// (one segment, no '/') and a final "{*}" (the rest of the path, slashes included), matched
// against the decoded path: "/api/traces/{}", "/api/v1/orders/{*}".
//
// Thread-safety: add routes before serving; Handle is then safe from any number of threads.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"

namespace ordertrace::http {

using Handler = std::function<void(Request&, Response&)>;

class Router {
 public:
  // Answers for paths no route matches (404) and known paths asked with another method (405);
  // the default writes {"error": message} as JSON.
  using ErrorWriter =
      std::function<void(const Request&, Response&, int status, const std::string& message)>;

  Router();

  void Get(std::string_view pattern, Handler handler) { Add("GET", pattern, std::move(handler)); }
  void Post(std::string_view pattern, Handler handler) { Add("POST", pattern, std::move(handler)); }
  void Put(std::string_view pattern, Handler handler) { Add("PUT", pattern, std::move(handler)); }
  void Add(std::string method, std::string_view pattern, Handler handler);
  void SetErrorWriter(ErrorWriter writer) { error_writer_ = std::move(writer); }

  // Runs the first route whose method and pattern match, with request.path_params filled.
  // HEAD runs the GET route (the server leaves the body out).
  void Handle(Request& request, Response& response) const;

  // Writes an error answer the way this router's endpoints do.
  void WriteError(const Request& request, Response& response, int status,
                  const std::string& message) const {
    error_writer_(request, response, status, message);
  }

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;  // "{}" and "{*}" are placeholders
    Handler handler;
  };

  static bool Matches(const Route& route, std::string_view path, std::vector<std::string>& params);

  std::vector<Route> routes_;
  ErrorWriter error_writer_;
};

}  // namespace ordertrace::http
