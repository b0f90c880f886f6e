// An HTTP/1.1 server built for hostile networks, shared by ordertrace's listeners (OTLP/HTTP,
// the API) and the services.
//
// Why Boost.Beast on Asio: it is packaged by Debian (libboost-dev, header-only), event-driven
// (a few I/O threads serve every connection, so an idle or slow client holds no thread), and
// gives the parser's header and body limits and per-operation deadlines we need. cpp-httplib,
// which served before, holds a worker thread per connection: eight slow clients stopped a port.
//
// What a request goes through, in order:
//  1. The connection waits for the request's first byte up to `idle_timeout`, then for the
//     whole head up to `header_timeout` (a slowloris is cut there), within `max_header_bytes`
//     (past it: 431).
//  2. Admission, before any body byte is read: the listener's own `check_head` (a bearer
//     token, say) may refuse it; a body over `max_body_bytes` gets 413; when the
//     handlers' queue is full, 503; when the bodies in flight would pass `max_inflight_bytes`,
//     429. Both refusals carry Retry-After. "Expect: 100-continue" is answered only once the
//     request is admitted.
//  3. The body is read within `body_timeout` (chunked bodies too, still bounded).
//  4. A worker thread runs the handler. A request that waited in the queue longer than
//     `max_queue_wait` is answered 503 without running it: its client has likely given up.
//     An exception from a handler is answered 500 with a generic message and logged.
// On a TLS listener (`tls` set) the handshake comes first, within `header_timeout`; a client
// that fails it (plain HTTP, a missing or untrusted client certificate, too slow) is counted in
// `tls_handshake_failures` and closed. The steps above are then the same code on the decrypted
// stream.
// Past `max_connections` open connections, a new one is answered 503 and closed. A refused
// request's unread body is drained (bounded in bytes and time) before the close, so the client
// reads the answer instead of a reset; draining connections count apart (bounded by
// max_connections too), so that refusals do not crowd out clients.
//
// Thread-safety: Start and Shutdown from one thread; Stats from any.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "base/listen_address.h"
#include "http/message.h"
#include "http/tls_context.h"

namespace boost::asio {
class io_context;
}

namespace ordertrace::http {

// A refusal decided from a request's head alone (ServerOptions::check_head).
struct HeadRefusal {
  int status = 401;
  std::string message;
  HeaderList headers;  // added to the answer (e.g. WWW-Authenticate)
};

struct ServerOptions {
  // Names the listener in logs and start-up errors ("OTLP/HTTP receiver").
  std::string name = "HTTP server";
  size_t io_threads = 1;
  size_t worker_threads = 8;
  size_t max_connections = 1024;
  // Requests read and waiting for a worker; past it, 503.
  size_t max_queued_requests = 256;
  size_t max_header_bytes = 16 << 10;
  size_t max_body_bytes = 1 << 20;
  // Bytes of request bodies being read, queued or handled, over all connections; past it, 429.
  size_t max_inflight_bytes = 64 << 20;
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds body_timeout{30'000};
  std::chrono::milliseconds write_timeout{30'000};
  std::chrono::milliseconds max_queue_wait{10'000};
  uint64_t retry_after_seconds = 1;
  // Set: every connection is TLS, with the context the provider holds when it is accepted (a
  // reload reaches new connections only). Null: plain TCP.
  std::shared_ptr<TlsContextProvider> tls;
  // Checked on each request's head before admission (null: none). A refusal is answered like
  // the server's own and the body is never read, so a client refused for its credentials costs
  // no body budget. Runs on an I/O thread: it must be quick and never block.
  std::function<std::optional<HeadRefusal>(const Request& head)> check_head;
};

// Counters since start, and the gauges now.
struct ServerStats {
  uint64_t connections_accepted = 0;
  uint64_t connections_refused = 0;     // past max_connections
  uint64_t requests = 0;                // handed to a handler
  uint64_t refused_busy = 0;            // 503: queue full or waited too long
  uint64_t refused_over_budget = 0;     // 429: bodies in flight at the budget
  uint64_t refused_too_large = 0;       // 413 and 431
  uint64_t refused_malformed = 0;       // 400: not HTTP/1.x
  uint64_t refused_by_head = 0;         // refused by check_head (e.g. 401 for a token)
  uint64_t timeouts = 0;                // header or body not read in time
  uint64_t handler_errors = 0;          // an exception, answered 500
  uint64_t tls_handshake_failures = 0;  // not TLS, no or a bad client certificate, too slow
  size_t connections_open = 0;          // counted against max_connections
  size_t connections_draining = 0;      // answered, reading what a refused client still sends
  size_t queued_requests = 0;
  size_t inflight_bytes = 0;
};

// Writes a refusal (status, message) the way the listener's endpoints write errors. `request`
// holds the head when there is one (method, target, headers; never the body); after a refused
// connection it is empty.
using RefusalWriter = std::function<void(const Request& request, Response& response, int status,
                                         const std::string& message)>;

class Server {
 public:
  // `handler` answers every admitted request, on a worker thread; `refusal` formats the
  // server's own refusals (JSON {"error": message} when null).
  Server(ServerOptions options, std::function<void(Request&, Response&)> handler,
         RefusalWriter refusal = nullptr);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds (port 0: any free port) and starts serving; returns the bound port.
  absl::StatusOr<int> Start(const base::ListenAddress& address);
  // Stops accepting, finishes the running handlers, closes every connection. Idempotent.
  void Shutdown();

  ServerStats Stats() const;
  const ServerOptions& options() const;

 private:
  struct Shared;
  template <class Stream>
  class Connection;
  class Listener;

  std::shared_ptr<Shared> shared_;
  std::unique_ptr<boost::asio::io_context> io_;
  std::shared_ptr<Listener> listener_;
  std::vector<std::thread> io_threads_;
};

}  // namespace ordertrace::http
