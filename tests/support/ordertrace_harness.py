"""Shared pieces of the Python end-to-end tests that run the real `ordertrace` binary.

Python 3 standard library only. A test under tests/<area>/ imports it with

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
    from ordertrace_harness import Checks, Ordertrace, http_request, ...

What is here (test-specific helpers stay in each test):

  Checks          one PASS/FAIL (or SKIP) line per check, counted; a summary line and an exit
                  status
  free_ports(n)   n free TCP ports on loopback
  http_request    one HTTP/1.1 request on a fresh connection: (status, headers, body)
  auth_tokens_yaml
                  a config's auth.tokens, each stored as the SHA-256 of its secret
  Ordertrace      the process on free loopback ports with a config and a log in a work folder;
                  start waits for /readyz, stop sends SIGTERM then SIGKILL, both bounded; a
                  context manager
  otlp_span, resource_spans, export_json, export_body
                  OTLP/JSON bodies for POST /v1/traces; post_otlp_json sends one
  run_with_ordertrace
                  the main() of a test against one server: argv, a temporary folder, start,
                  checks, stop, summary, exit status
"""

import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

HOST = "127.0.0.1"


# ---------------------------------------------------------------------------------------------
# Checks

class Checks:
    """Counts checks and prints one line per check, flushed at once (a test killed by its
    timeout still shows how far it got):

        PASS <name>
        FAIL <name>: <detail>
        SKIP <name>: <why>

    The detail is printed on failure only, unless `details_on_pass` (then on every line that has
    one, for tests whose PASS lines carry figures worth keeping in the log). A skip counts as
    neither passed nor failed."""

    def __init__(self, details_on_pass=False):
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.details_on_pass = details_on_pass

    def check(self, name, ok, detail=""):
        """Records one check; returns `ok` (so `if not c.check(...)` can stop early)."""
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        line = f"{'PASS' if ok else 'FAIL'} {name}"
        if detail and (not ok or self.details_on_pass):
            line += f": {detail}"
        print(line, flush=True)
        return ok

    def skip(self, name, why):
        self.skipped += 1
        print(f"SKIP {name}: {why}", flush=True)

    def summary(self, prefix="", extra=""):
        """The closing line: "<prefix>: N passed, M failed<extra>" ("N passed, M failed<extra>"
        without a prefix)."""
        counts = f"{self.passed} passed, {self.failed} failed{extra}"
        return f"{prefix}: {counts}" if prefix else counts

    def exit_code(self):
        """1 when any check failed, else 0."""
        return 1 if self.failed else 0


# ---------------------------------------------------------------------------------------------
# Ports and HTTP

def free_ports(n, host=HOST):
    """n distinct TCP ports that were free on `host` a moment ago (all bound at once, so they
    differ, then released for the caller to listen on)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def http_request(port, method, path, headers=None, body=None, timeout=10, *, host=HOST,
                 skip_accept_encoding=False, ssl_context=None):
    """Sends one request on a new connection (closed afterwards) and reads the whole answer.

    Returns (status, headers, body): headers is a dict with the names as the server spelled
    them (a repeated header keeps its last value), body is bytes.

    Exactly these headers are sent: `headers` in their order (a value may be bytes, sent as
    is), then Content-Length when `body` is not None and `headers` has none. http.client's own
    Host and Accept-Encoding: identity are added unless `headers` has one of that name
    (case-insensitive); `skip_accept_encoding=True` sends no Accept-Encoding at all.

    `ssl_context` (an ssl.SSLContext) makes it HTTPS. Raises OSError (refused, reset, timed
    out) and http.client.HTTPException (a malformed answer)."""
    headers = dict(headers or {})
    names = {k.lower() for k in headers}
    if ssl_context is not None:
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl_context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_host="host" in names,
                        skip_accept_encoding=skip_accept_encoding or "accept-encoding" in names)
        for k, v in headers.items():
            conn.putheader(k, v)
        if body is not None and "content-length" not in names:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        res = conn.getresponse()
        data = res.read()
        return res.status, dict(res.getheaders()), data
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# Config

def auth_tokens_yaml(tokens):
    """The `auth:` section of a config for {name: (role, partner_id or None, secret)}: each
    token by the SHA-256 of its secret (the secret itself never goes in the file)."""
    lines = ["auth:", "  tokens:"]
    for name, (role, partner, secret) in tokens.items():
        digest = hashlib.sha256(secret.encode()).hexdigest()
        entry = f"    - {{name: {name}, role: {role}, sha256: {digest}"
        if partner:
            entry += f", partner_id: {partner}"
        lines.append(entry + "}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# The process

class Ordertrace:
    """One `ordertrace` process on loopback, its config and log in the folder `work`.

        with Ordertrace(binary, work, yaml_text) as server:
            http_request(server.otlp_http, "POST", "/v1/traces", ...)
            http_request(server.api, "GET", "/api/v1/orders", ...)

    config   YAML text, written to <work>/<config_name>, or the path of a YAML file (a str
             naming an existing file, or an os.PathLike). The config names its own data_dir
             (a folder under `work` keeps each run apart).
    ports    (otlp_grpc, otlp_http, api); free loopback ports when not given. They are passed as
             --otlp-grpc-listen, --otlp-http-listen and --http-listen.
    extra_args  more command-line arguments, after those.
    ready_timeout  seconds start() waits for GET /readyz to answer 200.
    stop_timeout   seconds stop() waits after SIGTERM before SIGKILL.
    ssl_context    for the readiness probe when the API serves TLS.

    stdout and stderr go to <work>/server.log (appended: a restart in the same folder keeps
    the earlier lines). Attributes: proc (the subprocess.Popen, None before start), config,
    log_path, grpc, otlp_http, api."""

    def __init__(self, binary, work, config, *, ports=None, extra_args=(), ready_timeout=20,
                 stop_timeout=20, config_name="ordertrace.yaml", host=HOST, ssl_context=None):
        self.binary = binary
        self.work = work
        self.host = host
        self.extra_args = list(extra_args)
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.ssl_context = ssl_context
        self.log_path = os.path.join(work, "server.log")
        self.proc = None
        if isinstance(config, os.PathLike) or (isinstance(config, str) and "\n" not in config
                                               and os.path.isfile(config)):
            self.config = os.fspath(config)
        else:
            self.config = os.path.join(work, config_name)
            with open(self.config, "w") as f:
                f.write(config)
        self.grpc, self.otlp_http, self.api = ports if ports else free_ports(3, host)

    def start(self, wait=True):
        """Launches the process; with `wait`, returns once it is ready (see wait_ready)."""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "--config", self.config,
                 "--otlp-grpc-listen", f"{self.host}:{self.grpc}",
                 "--otlp-http-listen", f"{self.host}:{self.otlp_http}",
                 "--http-listen", f"{self.host}:{self.api}", *self.extra_args],
                stdout=log, stderr=subprocess.STDOUT)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=None):
        """Polls GET /readyz (1 s per try, every 0.1 s) until it answers 200. Raises
        RuntimeError with the log's last lines when the process exits first, or (after killing
        it) when `timeout` (ready_timeout) seconds pass."""
        deadline = time.monotonic() + (self.ready_timeout if timeout is None else timeout)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ordertrace exited at start (status {self.proc.returncode}):"
                                   f"\n{self.tail()}")
            try:
                if http_request(self.api, "GET", "/readyz", timeout=1, host=self.host,
                                ssl_context=self.ssl_context)[0] == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"ordertrace did not become ready:\n{self.tail()}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=None):
        """SIGTERM, then SIGKILL after `timeout` (stop_timeout) seconds; returns the exit
        status (negative: the signal that ended it), None when never started."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(self.stop_timeout if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log_text(self):
        """The whole log so far ("" before the first start)."""
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def tail(self, n=30):
        """The last n lines of the log."""
        return "\n".join(self.log_text().splitlines()[-n:])

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


# ---------------------------------------------------------------------------------------------
# A test's main()

def run_with_ordertrace(usage, work_prefix, config, checks, after_stop=None, *, argv=None,
                        summary_prefix="", **ordertrace_args):
    """The main() of a test against one ordertrace; returns its exit status.

    `argv` (sys.argv) must be [script, path/to/ordertrace], else `usage` is printed and the
    status is 2. In a temporary folder (removed at the end) it starts
    Ordertrace(binary, work, config(work), **ordertrace_args), runs checks(c, server) with a
    Checks c, checks that the server is still running and stops it; then
    after_stop(c, server), for what needs it stopped (its files, other starts). When a check
    failed it prints the end of the server's log; last the summary line (with
    `summary_prefix`). An exception (the start failed) stops the server and goes up."""
    argv = sys.argv if argv is None else argv
    if len(argv) != 2:
        print(usage)
        return 2
    binary = os.path.abspath(argv[1])
    c = Checks()
    with tempfile.TemporaryDirectory(prefix=work_prefix) as work:
        server = Ordertrace(binary, work, config(work), **ordertrace_args)
        with server:
            checks(c, server)
            c.check("alive: the server is still running", server.alive())
        if after_stop:
            after_stop(c, server)
        if c.failed:
            print(server.tail())
    print(c.summary(summary_prefix), flush=True)
    return c.exit_code()


def post_otlp_json(port, body, token=None, **request_args):
    """POST /v1/traces of an OTLP/JSON body (export_body), with `token` as a bearer token when
    given; returns http_request's (status, headers, body)."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    return http_request(port, "POST", "/v1/traces", headers, body, **request_args)


# ---------------------------------------------------------------------------------------------
# OTLP/JSON (the body of POST /v1/traces with Content-Type: application/json)

SPAN_KINDS = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}


def otlp_value(v):
    """An AnyValue: bool -> boolValue, int -> intValue (a decimal string, as OTLP/JSON writes
    64-bit integers), float -> doubleValue, anything else -> stringValue of str(v)."""
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    return {"stringValue": str(v)}


def otlp_attributes(attrs):
    """A KeyValue list from a dict (in its order)."""
    return [{"key": k, "value": otlp_value(v)} for k, v in (attrs or {}).items()]


def otlp_span(trace_id, span_id, name, start_ns, attributes=None, *, end_ns=None,
              duration_ns=5_000_000, parent_span_id=None, kind=2, status_code=None,
              status_message=None):
    """One span. trace_id and span_id are hex (32 and 16 digits); times in ns since the epoch,
    the end `duration_ns` after the start unless `end_ns`; kind a number (SPAN_KINDS, 2 =
    server) or its name; status only when `status_code` (2 = error) is given."""
    out = {
        "traceId": trace_id,
        "spanId": span_id,
        "name": name,
        "kind": SPAN_KINDS[kind] if isinstance(kind, str) else kind,
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(start_ns + duration_ns if end_ns is None else end_ns),
        "attributes": otlp_attributes(attributes),
    }
    if parent_span_id:
        out["parentSpanId"] = parent_span_id
    if status_code is not None:
        out["status"] = {"code": status_code}
        if status_message:
            out["status"]["message"] = status_message
    return out


def resource_spans(service, spans, *, resource_attributes=None, scope="ordertrace-test"):
    """One ResourceSpans: service.name (then `resource_attributes`), one scope of `spans`."""
    return {
        "resource": {"attributes": otlp_attributes({"service.name": service,
                                                    **(resource_attributes or {})})},
        "scopeSpans": [{"scope": {"name": scope}, "spans": spans}],
    }


def export_json(resources):
    """An ExportTraceServiceRequest of ResourceSpans, encoded (bytes)."""
    return json.dumps({"resourceSpans": list(resources)}).encode()


def export_body(service, spans, *, resource_attributes=None, scope="ordertrace-test"):
    """The export body of one service's spans (bytes)."""
    return export_json([resource_spans(service, spans, resource_attributes=resource_attributes,
                                       scope=scope)])
