// Free loopback ports for tests and benchmarks that start a server they cannot hand port 0 (a
// child process, a broker, a client that must find nothing listening): bind port 0 on
// 127.0.0.1, read the port the kernel chose, close. The port is free only a moment ago:
// another process may take it before it is used, so a server that can bind port 0 itself
// should. Thread-safe.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace ordertrace::test_support {

// A loopback port that was free a moment ago (nothing listens on it once this returns); -1 when
// no socket could be bound.
inline int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

// A free loopback port P such that P + `above` is a port number too (RabbitMQ's Erlang
// distribution listens 20000 above its AMQP port); -1 after 50 tries.
inline int FreePortWithRoomAbove(int above) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    const int port = FreePort();
    if (port > 0 && port + above <= 65535) return port;
  }
  return -1;
}

}  // namespace ordertrace::test_support
