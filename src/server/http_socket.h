// Socket options for the project's httplib servers.
#pragma once

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "server/listen_address.h"

namespace ordertrace::server {

// httplib sets SO_REUSEPORT by default, which lets a second process bind the same port and
// silently take half the connections. We want "address in use" instead; SO_REUSEADDR alone
// still allows a quick restart over sockets in TIME_WAIT.
// Also turns Nagle's algorithm off: with it, every response after the first on a kept-alive
// connection waits ~40 ms for a delayed ACK.
inline void ConfigureSockets(httplib::Server& server) {
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  server.set_tcp_nodelay(true);
}

// Binds `server` to `address` (port 0: any free port) and serves it on `thread`. Returns the
// bound port; `what` names the server in the error.
inline absl::StatusOr<int> BindAndServe(httplib::Server& server, const ListenAddress& address,
                                        const std::string& what, std::thread& thread) {
  int port = address.port;
  if (port == 0) {
    port = server.bind_to_any_port(address.host);
    if (port < 0) port = 0;
  } else if (!server.bind_to_port(address.host, port)) {
    port = 0;
  }
  if (port == 0) {
    return absl::UnavailableError(what + " cannot listen on " + address.ToString() +
                                  " (in use, or not a local address)");
  }
  thread = std::thread([&server] { server.listen_after_bind(); });
  // httplib's stop() is lost if it comes before the listening loop runs; wait for it, so a
  // Shutdown() right after Start() cannot leave the thread in accept() forever.
  for (int i = 0; i < 5000 && !server.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return port;
}

// Stops `server` and joins its thread. Idempotent.
inline void StopServing(httplib::Server& server, std::thread& thread) {
  server.stop();
  if (thread.joinable()) thread.join();
}

}  // namespace ordertrace::server
