#!/usr/bin/env python3
"""Hostile clients against the real ordertrace process, on loopback.

Starts `ordertrace` on free 127.0.0.1 ports with a temporary data folder and a small config,
acknowledges one order over OTLP/JSON, then runs each case bounded in time:

  issue_requests     malformed and oversized HTTP requests: GET /%FF on both ports (404 JSON),
                     /api/v1/orders/%FF (404), /api/search?end=2^64-1 (400), a chunked OTLP
                     body and a Content-Length over ingest.max_request_mb (413 each)
  bad_config         ingest.http_threads: 100000 and --data-dir "" refused at start with one
                     clear line and a non-zero exit (no abort)
  slow_clients       50 connections per port (OTLP/HTTP and API) trickling their head or body
                     a byte every 200 ms: /healthz and a small OTLP export still answered within
                     1 s, and every slow connection closed by the server at its deadline
  connection_flood   300 idle connections per port past http.max_connections (128): at most
                     128 held, the rest answered 503 with Retry-After (or closed far past the
                     bound, twice it); normal service once they are gone
  byte_budget_flood  80 clients posting 4 MiB OTLP protobuf bodies for 15 s: every request
                     answered (200, or 429/503 with Retry-After) within 30 s, none refused for
                     the connection bound they stay within, and the RSS (VmRSS from /proc,
                     every 100 ms) under the ceiling derived below

After every case the process must be alive, /healthz must answer 200 and the order acknowledged
at the start must be readable at /api/v1/orders/<id>. One PASS/FAIL line per check; the exit
status is non-zero when any check failed.

Usage: hostile_client_test.py path/to/ordertrace      (python3 standard library only)
"""

import json
import os
import random
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from ordertrace_harness import HOST, Checks, free_ports  # noqa: E402

READY_SECONDS = 20

# The test config (every figure in MiB or seconds). The RSS ceiling is derived from it below.
MAX_REQUEST_MB = 8
HTTP_INFLIGHT_MB = 48  # per listener; the API's bodies are small
DECODE_BUDGET_MB = 64
QUEUED_MB = 32
PENDING_MB = 32
BLOCK_CACHE_MB = 32
WRITE_BUFFER_MB = 16
MAX_CONNECTIONS = 128
HEADER_TIMEOUT_S = 2
BODY_TIMEOUT_S = 3

# What the process may hold beyond its idle size under any flood: each byte budget once (HTTP
# bodies in flight on the OTLP listener, and 1 MiB bodies on the API's, decode, ingest queue,
# sampler), RocksDB's block cache and up to four memtables, and 128 MiB for allocator slack,
# thread stacks and per-connection buffers. With the documented defaults (64 + 16 + 320 + 128 +
# 128 MiB budgets, 128 MiB cache, 64 MiB memtables) the same sum is the documented 1 GiB
# ceiling (docs/architecture.md, The HTTP edge).
RSS_SLACK_MB = 128
RSS_BUDGETS_MB = (HTTP_INFLIGHT_MB + HTTP_INFLIGHT_MB // 8 + DECODE_BUDGET_MB + QUEUED_MB +
                  PENDING_MB + BLOCK_CACHE_MB + 4 * WRITE_BUFFER_MB + RSS_SLACK_MB)

FLOOD_CLIENTS = 80
FLOOD_SECONDS = 15
FLOOD_BODY_MB = 4
ANSWER_DEADLINE_S = 30


def log(message):
    print(message, flush=True)


# --- HTTP over raw sockets ------------------------------------------------------------------

class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # names lowercased
        self.body = body

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None


def refusal_message(response):
    """The message of an OTLP error body (google.rpc.Status in JSON or protobuf), shortened."""
    parsed = response.json()
    if isinstance(parsed, dict):
        text = str(parsed.get("message") or parsed.get("error") or parsed)
    else:  # protobuf: field 2 (message) is the only text in it, after its tag and length
        text = response.body.decode("utf-8", errors="replace")
        text = "".join(c for c in text if c.isprintable())
        text = text[next((i for i, c in enumerate(text) if c.islower()), 0):]
    for digit in "0123456789":  # figures vary; the kinds of refusal do not
        text = text.replace(digit, "#")
    return text[:90]


def parse_response(data, closed):
    """(Response, rest) for the first complete response in `data`, or (None, data)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None, data
    lines = data[:end].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        return None, data
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    start = end + 4
    if status < 200 or status in (204, 304):
        length = 0
    elif "content-length" in headers:
        length = int(headers["content-length"])
    elif closed:
        length = len(data) - start
    else:
        return None, data
    if len(data) < start + length:
        return None, data
    return Response(status, headers, data[start:start + length]), data[start + length:]


class Conn:
    """One loopback connection that sends exactly what it is given and reads with deadlines."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = b""
        self.closed = False  # the peer closed (EOF or reset)

    def send(self, data):
        """False when the peer is gone."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def readable(self):
        return bool(select.select([self.sock], [], [], 0)[0])

    def _read_some(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([self.sock], [], [], left)[0]:
            return False
        try:
            chunk = self.sock.recv(65536)
        except OSError:
            chunk = b""
        if not chunk:
            self.closed = True
        self.pending += chunk
        return True

    def read_response(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            response, rest = parse_response(self.pending, self.closed)
            if response is not None:
                self.pending = rest
                return response
            if self.closed or not self._read_some(deadline):
                return None

    def wait_closed(self, timeout):
        deadline = time.monotonic() + timeout
        while not self.closed:
            if not self._read_some(deadline):
                return False
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def request(port, method, target, body=b"", headers=None, timeout=5.0):
    """One request on a fresh connection; the Response, or None without an answer in time."""
    head = f"{method} {target} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n"
    for name, value in (headers or {}).items():
        head += f"{name}: {value}\r\n"
    if body or method in ("POST", "PUT"):
        head += f"Content-Length: {len(body)}\r\n"
    try:
        conn = Conn(port, timeout)
    except OSError:
        return None
    try:
        conn.send(head.encode("latin-1") + b"\r\n" + body)
        return conn.read_response(timeout)
    finally:
        conn.close()


def post_streaming(port, target, head_headers, chunks, timeout):
    """Sends a head and then `chunks` one by one, stopping early when an answer arrives (as a
    careful client does); returns (Response or None, seconds taken)."""
    start = time.monotonic()
    deadline = start + timeout
    try:
        conn = Conn(port, timeout)
    except OSError:
        return None, time.monotonic() - start
    try:
        head = f"POST {target} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in head_headers.items()) + "\r\n"
        conn.sock.settimeout(max(0.1, deadline - time.monotonic()))
        if conn.send(head.encode("latin-1")):
            for chunk in chunks:
                if conn.readable() or time.monotonic() > deadline:
                    break
                if not conn.send(chunk):
                    break
        response = conn.read_response(max(0.0, deadline - time.monotonic()))
        return response, time.monotonic() - start
    finally:
        conn.close()


# --- OTLP payloads --------------------------------------------------------------------------

def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field_bytes(number, payload):
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def field_varint(number, value):
    return varint(number << 3) + varint(value)


def field_fixed64(number, value):
    return varint(number << 3 | 1) + struct.pack("<Q", value)


def pb_string_attribute(key, value):
    any_value = field_bytes(1, value)  # AnyValue.string_value
    return field_bytes(1, key) + field_bytes(2, any_value)  # KeyValue


def protobuf_export(service, spans):
    """An ExportTraceServiceRequest of one resource and scope. `spans`: encoded Span messages."""
    resource = field_bytes(1, pb_string_attribute(b"service.name", service))
    scope_spans = field_bytes(1, field_bytes(1, b"hostile")) + b"".join(
        field_bytes(2, span) for span in spans)
    resource_spans = field_bytes(1, resource) + field_bytes(2, scope_spans)
    return field_bytes(1, resource_spans)


def large_protobuf_export(total_bytes, rng):
    """(body, trace id): about `total_bytes` of detail spans (no order attributes) of one fresh
    trace, each with a 4 KiB string attribute (under ingest.max_attribute_value_bytes)."""
    trace_id = rng.randbytes(16)
    now = time.time_ns()
    filler = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(64)) * 64
    spans = []
    size = 0
    number = 0
    while size < total_bytes:
        number += 1
        span = (field_bytes(1, trace_id) + field_bytes(2, struct.pack(">Q", number)) +
                field_bytes(5, b"hostile.detail") + field_varint(6, 1) +
                field_fixed64(7, now - 5_000_000_000) + field_fixed64(8, now - 4_990_000_000) +
                field_bytes(9, pb_string_attribute(b"payload", filler)))
        spans.append(span)
        size += len(span) + 4
    return protobuf_export(b"hostile-flood", spans), trace_id


def json_export(order_id, trace_hex, span_hex, status):
    now = time.time_ns()
    span = {
        "traceId": trace_hex, "spanId": span_hex, "name": "shop.order.status", "kind": 1,
        "startTimeUnixNano": str(now - 10_000_000_000),
        "endTimeUnixNano": str(now - 9_960_000_000),
        "attributes": [
            {"key": "order_id", "value": {"stringValue": order_id}},
            {"key": "partner_id", "value": {"stringValue": "partner-hostile"}},
            {"key": "new_status", "value": {"stringValue": status}},
            {"key": "event_version", "value": {"intValue": "1"}},
        ],
    }
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "shop-api"}}]},
        "scopeSpans": [{"scope": {"name": "hostile"}, "spans": [span]}],
    }]}).encode()


def small_export(rng):
    """A small OTLP/JSON export of one detail span."""
    now = time.time_ns()
    span = {"traceId": rng.randbytes(16).hex(), "spanId": rng.randbytes(8).hex(),
            "name": "hostile.ordinary", "kind": 1,
            "startTimeUnixNano": str(now - 2_000_000), "endTimeUnixNano": str(now)}
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "hostile-ordinary"}}]},
        "scopeSpans": [{"scope": {"name": "hostile"}, "spans": [span]}],
    }]}).encode()


# --- the process ----------------------------------------------------------------------------

def config_text(data_dir, ports, extra=""):
    grpc, otlp, api = ports
    return f"""data_dir: {data_dir}
log_level: warn
listen:
  otlp_grpc: {HOST}:{grpc}
  otlp_http: {HOST}:{otlp}
  http: {HOST}:{api}
ingest:
  max_request_mb: {MAX_REQUEST_MB}
  max_queued_mb: {QUEUED_MB}
  decode_budget_mb: {DECODE_BUDGET_MB}
  max_decoded_request_mb: {DECODE_BUDGET_MB // 2}
  http_threads: 4
http:
  max_connections: {MAX_CONNECTIONS}
  max_inflight_mb: {HTTP_INFLIGHT_MB}
  header_timeout: {HEADER_TIMEOUT_S}s
  body_timeout: {BODY_TIMEOUT_S}s
  max_queue_wait: 5s
store:
  block_cache_mb: {BLOCK_CACHE_MB}
  write_buffer_mb: {WRITE_BUFFER_MB}
  min_free_mb: 0
sampling:
  max_pending_mb: {PENDING_MB}
{extra}"""


def read_rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class RssSampler(threading.Thread):
    """VmRSS of `pid` every 100 ms; `peak_kib` since the last reset()."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kib = 0
        self.overall_peak_kib = 0
        self.samples = 0
        self.stopping = threading.Event()

    def reset(self):
        self.peak_kib = read_rss_kib(self.pid) or 0

    def run(self):
        while not self.stopping.is_set():
            rss = read_rss_kib(self.pid)
            if rss is not None:
                self.samples += 1
                self.peak_kib = max(self.peak_kib, rss)
                self.overall_peak_kib = max(self.overall_peak_kib, rss)
            self.stopping.wait(0.1)


class Ordertrace:
    def __init__(self, binary, work):
        self.binary = binary
        self.work = work
        self.proc = None
        self.log_path = os.path.join(work, "server.log")

    def start(self):
        for attempt in range(3):
            ports = free_ports(3)
            self.grpc_port, self.otlp_port, self.api_port = ports
            config = os.path.join(self.work, "ordertrace.yaml")
            with open(config, "w") as f:
                f.write(config_text(os.path.join(self.work, "data"), ports))
            log_file = open(self.log_path, "a")
            self.proc = subprocess.Popen([self.binary, "--config", config], stdout=log_file,
                                         stderr=subprocess.STDOUT)
            log_file.close()
            deadline = time.monotonic() + READY_SECONDS
            while time.monotonic() < deadline and self.proc.poll() is None:
                r = request(self.api_port, "GET", "/readyz", timeout=1)
                if r is not None and r.status == 200:
                    return True
                time.sleep(0.1)
            self.stop()
            log(f"start attempt {attempt + 1} failed; retrying on other ports")
        return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail_log(self, lines=20):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""


# --- the cases ------------------------------------------------------------------------------

class Suite:
    def __init__(self, binary, work):
        self.binary = binary
        self.work = work
        self.checks = Checks(details_on_pass=True)  # the PASS lines carry the figures measured
        self.server = Ordertrace(binary, work)
        self.rng = random.Random(15)
        self.order_id = f"hostile-{os.getpid()}-{random.randrange(1 << 30):08x}"
        self.order_status = "INITIATED"

    def check(self, name, ok, detail=""):
        return self.checks.check(name, ok, detail)

    def acknowledge_order(self):
        body = json_export(self.order_id, self.rng.randbytes(16).hex(), self.rng.randbytes(8).hex(),
                           self.order_status)
        r = request(self.server.otlp_port, "POST", "/v1/traces", body,
                    {"Content-Type": "application/json"})
        self.check("setup: order acknowledged over OTLP/JSON", r is not None and r.status == 200,
                   f"status {r.status if r else 'none'}")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.order_readable():
                break
            time.sleep(0.1)
        self.check("setup: order readable", self.order_readable(), self.order_id)

    def order_readable(self):
        r = request(self.server.api_port, "GET", f"/api/v1/orders/{self.order_id}")
        if r is None or r.status != 200:
            return False
        order = r.json() or {}
        return order.get("order_id") == self.order_id and \
            order.get("current_status") == self.order_status

    def after_case(self, case):
        self.check(f"{case}: process alive", self.server.alive(),
                   "" if self.server.alive() else f"exit {self.server.proc.returncode}")
        health = request(self.server.api_port, "GET", "/healthz", timeout=5)
        self.check(f"{case}: /healthz answers 200", health is not None and health.status == 200)
        self.check(f"{case}: the order acknowledged at the start is readable",
                   self.order_readable())

    def issue_requests(self):
        case = "issue_requests"
        api, otlp = self.server.api_port, self.server.otlp_port
        for port, name in ((api, "API"), (otlp, "OTLP/HTTP")):
            r = request(port, "GET", "/%FF")
            self.check(f"{case}: GET /%FF on the {name} port is 404 JSON",
                       r is not None and r.status == 404 and r.json() is not None,
                       f"status {r.status if r else 'none'}")
            self.check(f"{case}: {name} port alive after GET /%FF", self.server.alive())
        r = request(api, "GET", "/api/v1/orders/%FF")
        self.check(f"{case}: GET /api/v1/orders/%FF is 404 JSON",
                   r is not None and r.status == 404 and r.json() is not None,
                   f"status {r.status if r else 'none'}")
        r = request(api, "GET", "/api/search?end=18446744073709551615")
        self.check(f"{case}: /api/search?end=2^64-1 is 400 JSON",
                   r is not None and r.status == 400 and r.json() is not None,
                   f"status {r.status if r else 'none'}")

        # Chunked, past max_request_mb in 1 MiB chunks.
        limit = MAX_REQUEST_MB << 20
        chunk = b"\x0a" * (1 << 20)
        chunks = (b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(MAX_REQUEST_MB + 2))
        r, took = post_streaming(otlp, "/v1/traces",
                                 {"Content-Type": "application/x-protobuf",
                                  "Transfer-Encoding": "chunked"}, chunks, 20)
        self.check(f"{case}: chunked OTLP body over {MAX_REQUEST_MB} MiB is 413",
                   r is not None and r.status == 413, f"status {r.status if r else 'none'}, "
                   f"{took:.2f}s")
        # Content-Length past the limit: answered from the head, before any body byte.
        conn = Conn(otlp)
        conn.send(f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {limit + 1}\r\n\r\n".encode())
        start = time.monotonic()
        r = conn.read_response(5)
        took = time.monotonic() - start
        conn.close()
        self.check(f"{case}: Content-Length over the limit is 413 before the body",
                   r is not None and r.status == 413 and took < 2,
                   f"status {r.status if r else 'none'} after {took:.2f}s, no body sent")
        self.after_case(case)

    def bad_config(self):
        case = "bad_config"
        ports = free_ports(3)
        runs = [
            ("ingest.http_threads: 100000", "http_threads",
             config_text(os.path.join(self.work, "bad-data"), ports).replace(
                 "http_threads: 4", "http_threads: 100000"), []),
            ('--data-dir ""', "data", config_text(os.path.join(self.work, "bad-data"), ports),
             ["--data-dir", ""]),
        ]
        for label, word, text, flags in runs:
            path = os.path.join(self.work, "bad.yaml")
            with open(path, "w") as f:
                f.write(text)
            try:
                done = subprocess.run([self.binary, "--config", path] + flags,
                                      capture_output=True, timeout=20)
                lines = [line for line in (done.stdout + done.stderr).decode(
                    errors="replace").splitlines() if line.strip()]
                code = done.returncode
            except subprocess.TimeoutExpired:
                lines, code = ["(still running after 20 s)"], None
            self.check(f"{case}: {label} refused at start with a non-zero exit (no signal)",
                       code is not None and code > 0 and code < 128, f"exit {code}")
            self.check(f"{case}: {label} explained in one line naming it",
                       len(lines) == 1 and word in lines[0], " | ".join(lines)[:200])

    def slow_clients(self):
        case = "slow_clients"
        per_kind = 25
        targets = {
            "OTLP/HTTP": (self.server.otlp_port, "POST /v1/traces",
                          "Content-Type: application/x-protobuf\r\n"),
            "API": (self.server.api_port, "POST /api/echo", "Content-Type: text/plain\r\n"),
        }
        slow = []  # (port name, kind, Conn, started)
        head_text = b"GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: " + b"s" * 200
        try:
            for name, (port, line, headers) in targets.items():
                for _ in range(per_kind):
                    slow.append((name, "head", Conn(port), time.monotonic()))
                for _ in range(per_kind):
                    conn = Conn(port)
                    conn.send(f"{line} HTTP/1.1\r\nHost: x\r\n{headers}"
                              f"Content-Length: 100000\r\n\r\n".encode())
                    slow.append((name, "body", conn, time.monotonic()))
        except OSError as e:
            self.check(f"{case}: open the slow connections", False, str(e))
            return

        stop = threading.Event()

        def trickle():
            tick = 0
            while not stop.is_set():
                for _, kind, conn, _ in slow:
                    if not conn.closed:
                        byte = head_text[tick % len(head_text):][:1] if kind == "head" else b"x"
                        conn.send(byte)
                tick += 1
                stop.wait(0.2)

        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        latencies = {"GET /healthz": [], "OTLP export": []}
        failures = []
        end = time.monotonic() + max(HEADER_TIMEOUT_S, BODY_TIMEOUT_S) + 1.5
        while time.monotonic() < end:
            for label, port, method, target, body, headers in (
                    ("GET /healthz", self.server.api_port, "GET", "/healthz", b"", {}),
                    ("OTLP export", self.server.otlp_port, "POST", "/v1/traces",
                     small_export(self.rng), {"Content-Type": "application/json"})):
                start = time.monotonic()
                r = request(port, method, target, body, headers, timeout=3)
                took = time.monotonic() - start
                if r is None or r.status != 200:
                    failures.append(f"{label}: {r.status if r else 'no answer'}")
                latencies[label].append(took)
            time.sleep(0.25)
        stop.set()
        trickler.join()
        for label, values in latencies.items():
            self.check(f"{case}: {label} answered 200 within 1 s while 100 slow clients trickle",
                       values and max(values) < 1.0 and not failures,
                       f"{len(values)} requests, max {max(values) * 1000:.0f} ms"
                       + (f"; failures: {failures[:3]}" if failures else ""))
        # Every slow connection is cut by the server at its deadline (plus slack for load).
        grace = max(HEADER_TIMEOUT_S, BODY_TIMEOUT_S) + 3
        for name in targets:
            for kind in ("head", "body"):
                conns = [(c, t) for n, k, c, t in slow if n == name and k == kind]
                closed = sum(1 for c, t in conns
                             if c.wait_closed(max(0.1, t + grace - time.monotonic())))
                answered = sum(1 for c, _ in conns if c.pending)
                what = "heads" if kind == "head" else "bodies"
                self.check(f"{case}: {name} slow {what} closed by the server at the deadline",
                           closed == len(conns), f"{closed}/{len(conns)} closed, "
                           f"{answered} got bytes back")
        for _, _, conn, _ in slow:
            conn.close()
        self.after_case(case)

    def connection_flood(self):
        case = "connection_flood"
        count = 300
        for name, port in (("OTLP/HTTP", self.server.otlp_port), ("API", self.server.api_port)):
            conns = []
            for _ in range(count):
                try:
                    conns.append(Conn(port, timeout=2))
                except OSError:
                    break  # a refused connect is a refusal too
            time.sleep(1.0)
            held, refused_503, closed_silent, other = 0, 0, 0, []
            missing_retry_after = 0
            for conn in conns:
                r = conn.read_response(0.05) if conn.readable() else None
                if r is not None:
                    if r.status == 503:
                        refused_503 += 1
                        missing_retry_after += "retry-after" not in r.headers
                    else:
                        other.append(r.status)
                elif conn.closed or (conn.readable() and conn.wait_closed(0.05)):
                    closed_silent += 1
                else:
                    held += 1
            refused_connects = count - len(conns)
            self.check(f"{case}: {name}: at most max_connections ({MAX_CONNECTIONS}) held",
                       held <= MAX_CONNECTIONS,
                       f"{held} held, {refused_503} answered 503, {closed_silent} closed "
                       f"without an answer, {refused_connects} connects refused")
            self.check(f"{case}: {name}: past the bound refused with 503 + Retry-After",
                       refused_503 > 0 and missing_retry_after == 0 and not other and
                       held + refused_503 + closed_silent == len(conns),
                       f"{refused_503} x 503, {missing_retry_after} without Retry-After, "
                       f"other answers {other[:5]}")
            # Only far past the bound (twice it) may a connection close without a word.
            self.check(f"{case}: {name}: silent closes only far past the bound",
                       closed_silent <= max(0, len(conns) - 2 * MAX_CONNECTIONS) + 2,
                       f"{closed_silent} silent for {len(conns)} connections")
            for conn in conns:
                conn.close()
        # Served normally once the flood is gone (the server notices the closes at once).
        deadline = time.monotonic() + 5
        ok = False
        while time.monotonic() < deadline and not ok:
            h = request(self.server.api_port, "GET", "/healthz", timeout=2)
            e = request(self.server.otlp_port, "POST", "/v1/traces", small_export(self.rng),
                        {"Content-Type": "application/json"}, timeout=2)
            ok = h is not None and h.status == 200 and e is not None and e.status == 200
            if not ok:
                time.sleep(0.2)
        self.check(f"{case}: both ports serve normally after the flood", ok)
        self.after_case(case)

    def byte_budget_flood(self, sampler, idle_rss_kib):
        case = "byte_budget_flood"
        ceiling_kib = idle_rss_kib + RSS_BUDGETS_MB * 1024
        log(f"{case}: RSS ceiling {ceiling_kib // 1024} MiB = idle {idle_rss_kib // 1024} MiB + "
            f"budgets and slack {RSS_BUDGETS_MB} MiB")
        bodies = [large_protobuf_export(FLOOD_BODY_MB << 20, random.Random(seed))
                  for seed in range(8)]
        results = []
        refusals = {}  # "status message": count
        lock = threading.Lock()
        stop_at = time.monotonic() + FLOOD_SECONDS

        def client(index):
            rng = random.Random(index)
            while time.monotonic() < stop_at:
                template, trace_id = bodies[rng.randrange(len(bodies))]
                body = template.replace(trace_id, rng.randbytes(16))  # a trace per request
                step = 256 << 10
                chunks = (body[i:i + step] for i in range(0, len(body), step))
                r, took = post_streaming(
                    self.server.otlp_port, "/v1/traces",
                    {"Content-Type": "application/x-protobuf",
                     "Content-Length": str(len(body))}, chunks, ANSWER_DEADLINE_S)
                with lock:
                    results.append((r.status if r else None,
                                    r is not None and "retry-after" in r.headers, took))
                    if r is not None and r.status != 200:
                        why = f"{r.status} {refusal_message(r)}"
                        refusals[why] = refusals.get(why, 0) + 1
                if r is not None and r.status in (429, 503):
                    time.sleep(rng.uniform(0.05, 0.3))  # a retrying exporter's back-off

        sampler.reset()
        threads = [threading.Thread(target=client, args=(i,), daemon=True)
                   for i in range(FLOOD_CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(FLOOD_SECONDS + ANSWER_DEADLINE_S + 10)
        hanging = sum(1 for t in threads if t.is_alive())
        peak_kib = sampler.peak_kib

        statuses = {}
        for status, _, _ in results:
            statuses[status] = statuses.get(status, 0) + 1
        unanswered = statuses.get(None, 0)
        unexpected = {s: n for s, n in statuses.items() if s not in (200, 429, 503, None)}
        without_retry_after = sum(1 for s, retry, _ in results if s in (429, 503) and not retry)
        slowest = max((took for _, _, took in results), default=0)
        summary = ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items(), key=str))
        self.check(f"{case}: every request answered within {ANSWER_DEADLINE_S} s",
                   unanswered == 0 and hanging == 0 and slowest < ANSWER_DEADLINE_S,
                   f"{len(results)} requests ({summary}); slowest {slowest:.1f}s; "
                   f"{hanging} clients still waiting")
        for why, n in sorted(refusals.items(), key=lambda item: -item[1])[:6]:
            log(f"{case}: {n} x {why}")
        self.check(f"{case}: answers are 200, 429 or 503", not unexpected, str(unexpected))
        self.check(f"{case}: every 429/503 carries Retry-After", without_retry_after == 0,
                   f"{without_retry_after} without")
        # Fewer clients than http.max_connections: connections still draining a refused body
        # must not count against the bound (they once did, and most answers became 503s).
        bound_refusals = sum(n for why, n in refusals.items() if "connections" in why)
        self.check(f"{case}: {FLOOD_CLIENTS} clients within max_connections ({MAX_CONNECTIONS}) "
                   "are never refused for connections", bound_refusals == 0,
                   f"{bound_refusals} 'too many connections' refusals")
        self.check(f"{case}: some bodies were accepted (200)", statuses.get(200, 0) > 0,
                   f"{statuses.get(200, 0)} x 200, "
                   f"{statuses.get(200, 0) * FLOOD_BODY_MB} MiB ingested")
        self.check(f"{case}: peak RSS under the ceiling", peak_kib < ceiling_kib,
                   f"peak {peak_kib // 1024} MiB < {ceiling_kib // 1024} MiB "
                   f"({sampler.samples} samples so far)")
        self.after_case(case)

    def run(self):
        started = time.monotonic()
        if not self.check("setup: ordertrace starts and is ready", self.server.start()):
            log(self.server.tail_log())
            return 1
        sampler = RssSampler(self.server.proc.pid)
        sampler.start()
        try:
            self.acknowledge_order()
            time.sleep(0.5)
            idle_rss_kib = read_rss_kib(self.server.proc.pid) or 0
            log(f"setup: idle RSS {idle_rss_kib // 1024} MiB")
            cases = [
                ("issue_requests", self.issue_requests),
                ("bad_config", self.bad_config),
                ("slow_clients", self.slow_clients),
                ("connection_flood", self.connection_flood),
                ("byte_budget_flood", lambda: self.byte_budget_flood(sampler, idle_rss_kib)),
            ]
            for name, run_case in cases:
                if not self.server.alive():
                    self.check(f"{name}: skipped, the server is gone", False)
                    continue
                case_start = time.monotonic()
                sampler.reset()
                run_case()
                log(f"{name}: done in {time.monotonic() - case_start:.1f}s, "
                    f"peak RSS {sampler.peak_kib // 1024} MiB")
        finally:
            sampler.stopping.set()
            self.server.stop()
        code = self.server.proc.returncode
        self.check("shutdown: ordertrace stops cleanly on SIGTERM", code == 0, f"exit {code}")
        if self.checks.failed:
            log("--- last lines of the server log ---")
            log(self.server.tail_log())
        log(self.checks.summary("hostile clients",
                                f", {time.monotonic() - started:.0f}s, "
                                f"peak RSS {sampler.overall_peak_kib // 1024} MiB"))
        return self.checks.exit_code()


def main():
    if len(sys.argv) != 2 or not os.access(sys.argv[1], os.X_OK):
        print("usage: hostile_client_test.py path/to/ordertrace", file=sys.stderr)
        return 2
    # The connection flood holds 300 sockets at once; the server (a child) inherits the limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    with tempfile.TemporaryDirectory(prefix="ordertrace-hostile.") as work:
        return Suite(os.path.abspath(sys.argv[1]), work).run()


if __name__ == "__main__":
    sys.exit(main())
