# shellcheck shell=bash
# Free loopback ports for the scripts and tests that start servers (the shell twin of
# tests/support/free_port.h): each was free a moment ago, so use it soon. Source this file.

# free_ports [N]: N (default 3) distinct free loopback TCP ports, space-separated; all bound at
# once, so that none repeats.
free_ports() {
  python3 - "${1:-3}" << 'PY'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# free_port: one free loopback TCP port.
free_port() { free_ports 1; }
