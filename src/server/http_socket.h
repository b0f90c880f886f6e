// Socket options for the project's httplib servers.
#pragma once

#include <httplib.h>
#include <sys/socket.h>

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

}  // namespace ordertrace::server
