#!/usr/bin/env python3
"""TLS on the real ordertrace binary (docs/security.md), with a CA made at test time.

  tests/tls/tls_e2e_test.py path/to/ordertrace

With `tls:` set, on free loopback ports:
  - OTLP/HTTP over https (curl --cacert) is accepted and the trace is read back over https;
  - OTLP/gRPC over TLS (the official OpenTelemetry JS exporter, tests/e2e/tls_export.mjs) is
    accepted and read back;
  - plain HTTP to the API and OTLP/HTTP ports and plain HTTP/2 to the gRPC port are refused, and
    counted in ordertrace_http_tls_handshake_failures_total;
  - SIGHUP with a new certificate: a connection opened before stays usable (a keep-alive request
    after the reload), new connections on all three ports see the new certificate (SHA-256
    fingerprint); a broken certificate file on SIGHUP keeps the new one served, and
    ordertrace_tls_reloads_total counts one ok and one failed;
  - a missing file or a key that does not match stops the start with one line naming the file.
With `tls.client_ca_file`: OTLP over HTTP and gRPC without a client certificate (or with one
from another CA) is refused, with one accepted; the API still needs none.

Needs python3, curl, node and tests/e2e's npm packages (installed with `npm ci` when missing).
"""
import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
E2E = REPO / "tests" / "e2e"
sys.path.insert(0, str(REPO / "tests" / "support"))
from ordertrace_harness import HOST, free_ports  # noqa: E402

failures = []


def check(condition, what):
    print(("PASS " if condition else "FAIL ") + what, flush=True)
    if not condition:
        failures.append(what)
    return condition


def fingerprint_of_pem(path):
    der = ssl.PEM_cert_to_DER_cert(Path(path).read_text())
    return hashlib.sha256(der).hexdigest()


class Ordertrace:
    """One ordertrace process on free loopback ports with the given YAML."""

    def __init__(self, binary, work, yaml_text):
        self.work = work
        self.data = Path(tempfile.mkdtemp(prefix="data-", dir=work))
        self.config = self.data / "ordertrace.yaml"
        self.config.write_text(f"data_dir: {self.data}\n" + yaml_text)
        self.grpc, self.otlp_http, self.api = free_ports(3)
        self.log_path = self.data / "server.log"
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [binary, "--config", str(self.config),
             "--otlp-grpc-listen", f"{HOST}:{self.grpc}",
             "--otlp-http-listen", f"{HOST}:{self.otlp_http}",
             "--http-listen", f"{HOST}:{self.api}"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def output(self):
        return self.log_path.read_text()

    def wait_ready(self, context):
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                status, _ = https_get(self.api, "/readyz", context)
                if status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def wait_log(self, pattern, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if re.search(pattern, self.output()):
                return True
            time.sleep(0.05)
        return False

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def client_context(ca, cert=None, key=None, alpn=None):
    context = ssl.create_default_context(cafile=str(ca))
    if cert:
        context.load_cert_chain(str(cert), str(key))
    if alpn:
        context.set_alpn_protocols(alpn)
    return context


def https_get(port, path, context, timeout=5):
    connection = http.client.HTTPSConnection(HOST, port, context=context, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def served_fingerprint(port, ca, alpn=None):
    """The SHA-256 of the certificate a new connection to `port` gets (verified against ca)."""
    context = client_context(ca, alpn=alpn)
    with socket.create_connection((HOST, port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=HOST) as tls:
            return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()


def otlp_json(trace_id):
    now = time.time_ns()
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "tls-e2e"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": trace_id, "spanId": secrets.token_hex(8), "name": "tls.curl",
            "kind": 2, "startTimeUnixNano": str(now - 5_000_000),
            "endTimeUnixNano": str(now)}]}]}]})


def curl(*args):
    """curl's exit code and the HTTP status it printed (0 when none)."""
    result = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                             "--max-time", "5", *args], capture_output=True, text=True)
    status = int(result.stdout) if result.stdout.isdigit() else 0
    return result.returncode, status


def curl_post_otlp(server, trace_id, *tls_args, scheme="https"):
    return curl(*tls_args, "-H", "Content-Type: application/json",
                "--data-binary", otlp_json(trace_id),
                f"{scheme}://{HOST}:{server.otlp_http}/v1/traces")


def node_export(protocol, server, ca, trace_id, cert=None, key=None, extra_ca=None):
    """The official JS exporter over TLS: trusting `ca` through its options, or (ca None)
    Node's own trust with NODE_EXTRA_CA_CERTS=`extra_ca`."""
    url = (f"https://{HOST}:{server.grpc}" if protocol == "grpc"
           else f"https://{HOST}:{server.otlp_http}/v1/traces")
    args = ["node", str(E2E / "tls_export.mjs"), "--protocol", protocol, "--url", url,
            "--trace-id", trace_id]
    if ca:
        args += ["--ca", str(ca)]
    if cert:
        args += ["--cert", str(cert), "--key", str(key)]
    env = dict(os.environ)
    env.pop("NODE_EXTRA_CA_CERTS", None)
    if extra_ca:
        env["NODE_EXTRA_CA_CERTS"] = str(extra_ca)
    result = subprocess.run(args, cwd=E2E, capture_output=True, text=True, timeout=60, env=env)
    if result.returncode != 0:
        reasons = [line.strip() for line in result.stderr.splitlines()
                   if re.search(r"error|failed", line, re.IGNORECASE)]
        print("  node (expected when refused):", reasons[0] if reasons else "exit " +
              str(result.returncode), flush=True)
    return result.returncode == 0


def trace_stored(server, context, trace_id, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status, _ = https_get(server.api, f"/api/traces/{trace_id}", context)
        if status == 200:
            return True
        time.sleep(0.2)
    return False


def metric(server, context, name, labels):
    _, body = https_get(server.api, "/metrics", context)
    for line in body.decode().splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def tls_yaml(work, client_ca=None):
    text = (f"sampling:\n  enabled: false\n"
            f"tls:\n  cert_file: {work / 'cert.pem'}\n  key_file: {work / 'key.pem'}\n")
    if client_ca:
        text += f"  client_ca_file: {client_ca}\n"
    return text


def use_certificate(work, ca_dir, name):
    shutil.copyfile(ca_dir / f"{name}.pem", work / "cert.pem")
    shutil.copyfile(ca_dir / f"{name}.key", work / "key.pem")


def test_tls_on_every_port(binary, work, ca_dir):
    ca = ca_dir / "ca.pem"
    trusted = client_context(ca)
    use_certificate(work, ca_dir, "server")
    server = Ordertrace(binary, work, tls_yaml(work))
    try:
        if not check(server.wait_ready(trusted), "ordertrace starts with TLS and answers "
                     "/readyz over https"):
            print(server.output())
            return
        check("TLS on every listener" in server.output(), "start-up names the certificate")

        trace_id = secrets.token_hex(16)
        code, status = curl_post_otlp(server, trace_id, "--cacert", str(ca))
        check(code == 0 and status == 200, f"OTLP/HTTP over https accepted (curl {code}, {status})")
        check(trace_stored(server, trusted, trace_id), "its trace is read back over https")
        trace_id = secrets.token_hex(16)
        check(node_export("grpc", server, ca, trace_id), "OTLP/gRPC over TLS accepted (JS SDK)")
        check(trace_stored(server, trusted, trace_id), "the gRPC trace is read back over https")
        trace_id = secrets.token_hex(16)
        check(node_export("http", server, None, trace_id, extra_ca=ca),
              "the JS SDK's OTLP/HTTP exporter over https trusting NODE_EXTRA_CA_CERTS")
        check(trace_stored(server, trusted, trace_id), "its trace is read back over https")
        check(not node_export("http", server, None, secrets.token_hex(16)),
              "without the test CA the JS SDK does not export (the certificate is verified)")
        code, _ = curl("--cacert", str(ca_dir / "other-ca.pem"),
                       f"https://{HOST}:{server.api}/readyz")
        check(code != 0, "a client trusting another CA does not accept the certificate")

        before = metric(server, trusted, "ordertrace_http_tls_handshake_failures_total",
                        {"listener": "api"}) or 0
        before_otlp = metric(server, trusted, "ordertrace_http_tls_handshake_failures_total",
                             {"listener": "otlp_http"}) or 0
        code, status = curl(f"http://{HOST}:{server.api}/readyz")
        check(code != 0 and status == 0, f"plain HTTP to the API refused (curl {code})")
        trace_id = secrets.token_hex(16)
        code, status = curl_post_otlp(server, trace_id, scheme="http")
        check(code != 0 and status == 0, f"plain HTTP to OTLP/HTTP refused (curl {code})")
        code, status = curl("--http2-prior-knowledge", "-X", "POST",
                            f"http://{HOST}:{server.grpc}/opentelemetry.proto.collector.trace."
                            "v1.TraceService/Export")
        check(code != 0 and status == 0, f"plain HTTP/2 to OTLP/gRPC refused (curl {code})")
        after = metric(server, trusted, "ordertrace_http_tls_handshake_failures_total",
                       {"listener": "api"})
        check(after == before + 1, f"the API's refused handshake is counted ({before} -> {after})")
        check(metric(server, trusted, "ordertrace_http_tls_handshake_failures_total",
                     {"listener": "otlp_http"}) == before_otlp + 1, "the OTLP/HTTP one too")

        # SIGHUP with a new certificate.
        old = fingerprint_of_pem(ca_dir / "server.pem")
        new = fingerprint_of_pem(ca_dir / "server2.pem")
        kept = http.client.HTTPSConnection(HOST, server.api, context=trusted, timeout=5)
        kept.request("GET", "/readyz")
        check(kept.getresponse().read() is not None, "a keep-alive connection is open")
        kept_socket = kept.sock
        check(hashlib.sha256(kept_socket.getpeercert(True)).hexdigest() == old,
              "it got the first certificate")
        use_certificate(work, ca_dir, "server2")
        server.process.send_signal(signal.SIGHUP)
        check(server.wait_log(r"TLS reloaded: new connections get .*serial 03EA"),
              "SIGHUP reloads and logs the new certificate")
        kept.request("GET", "/readyz")
        response = kept.getresponse()
        response.read()
        check(response.status == 200 and kept.sock is kept_socket,
              "the connection opened before the reload still serves (same socket, 200)")
        kept.close()
        for name, port, alpn in (("API", server.api, None), ("OTLP/HTTP", server.otlp_http, None),
                                 ("OTLP/gRPC", server.grpc, ["h2"])):
            deadline = time.time() + 5  # gRPC's watcher polls every second
            seen = served_fingerprint(port, ca, alpn)
            while seen != new and time.time() < deadline:
                time.sleep(0.2)
                seen = served_fingerprint(port, ca, alpn)
            check(seen == new, f"a new {name} connection sees the new certificate")
        trace_id = secrets.token_hex(16)
        check(node_export("grpc", server, ca, trace_id), "OTLP/gRPC export after the reload")

        # A broken file on SIGHUP: the certificate from the last good reload stays.
        (work / "cert.pem").write_text("-----BEGIN CERTIFICATE-----\nbroken\n")
        server.process.send_signal(signal.SIGHUP)
        check(server.wait_log(r"TLS reload failed, the previous certificate is still served: "
                              r"tls.cert_file .*cert.pem"),
              "a broken certificate on SIGHUP logs one line naming the file")
        time.sleep(2.5)  # longer than gRPC's poll: it must not have picked anything up
        for name, port, alpn in (("API", server.api, None), ("OTLP/HTTP", server.otlp_http, None),
                                 ("OTLP/gRPC", server.grpc, ["h2"])):
            check(served_fingerprint(port, ca, alpn) == new,
                  f"{name} still serves the last good certificate")
        check(server.process.poll() is None, "ordertrace is still running")
        check(metric(server, trusted, "ordertrace_tls_reloads_total", {"result": "ok"}) == 1 and
              metric(server, trusted, "ordertrace_tls_reloads_total", {"result": "failed"}) == 1,
              "ordertrace_tls_reloads_total counts one ok and one failed")
    finally:
        server.stop()


def test_client_certificates(binary, work, ca_dir):
    ca = ca_dir / "ca.pem"
    trusted = client_context(ca)
    use_certificate(work, ca_dir, "server")
    server = Ordertrace(binary, work, tls_yaml(work, client_ca=ca))
    try:
        if not check(server.wait_ready(trusted),
                     "with client_ca_file, the API answers without a client certificate"):
            print(server.output())
            return
        client = ["--cert", str(ca_dir / "client.pem"), "--key", str(ca_dir / "client.key")]
        other = ["--cert", str(ca_dir / "other-client.pem"),
                 "--key", str(ca_dir / "other-client.key")]
        code, status = curl_post_otlp(server, secrets.token_hex(16), "--cacert", str(ca))
        check(status == 0, f"OTLP/HTTP without a client certificate refused (curl {code})")
        code, status = curl_post_otlp(server, secrets.token_hex(16), "--cacert", str(ca), *other)
        check(status == 0, f"OTLP/HTTP with another CA's client certificate refused (curl {code})")
        trace_id = secrets.token_hex(16)
        code, status = curl_post_otlp(server, trace_id, "--cacert", str(ca), *client)
        check(code == 0 and status == 200, f"OTLP/HTTP with a client certificate accepted "
              f"(curl {code}, {status})")
        check(trace_stored(server, trusted, trace_id), "and stored")
        check(not node_export("grpc", server, ca, secrets.token_hex(16)),
              "OTLP/gRPC without a client certificate refused")
        trace_id = secrets.token_hex(16)
        check(node_export("grpc", server, ca, trace_id, ca_dir / "client.pem",
                          ca_dir / "client.key"),
              "OTLP/gRPC with a client certificate accepted")
        check(trace_stored(server, trusted, trace_id), "and stored")
        trace_id = secrets.token_hex(16)
        check(node_export("http", server, ca, trace_id, ca_dir / "client.pem",
                          ca_dir / "client.key"),
              "the JS SDK's OTLP/HTTP exporter with a client certificate accepted")
        check(trace_stored(server, trusted, trace_id), "and stored")
    finally:
        server.stop()


def test_bad_files_stop_the_start(binary, work, ca_dir):
    for what, cert, key, expected in (
            ("a missing certificate", work / "missing.pem", ca_dir / "server.key",
             r"tls.cert_file .*missing.pem cannot be read"),
            ("a key that does not match", ca_dir / "server2.pem", ca_dir / "server.key",
             r"tls.key_file .*server.key does not match the certificate in tls.cert_file")):
        server = Ordertrace(binary, work, f"tls:\n  cert_file: {cert}\n  key_file: {key}\n")
        try:
            code = server.process.wait(20)
        except subprocess.TimeoutExpired:
            code = None
        output = server.output().strip()
        server.stop()
        check(code not in (0, None) and re.search(expected, output) and len(output.splitlines())
              <= 2, f"{what} stops the start with one line naming it: {output!r}")


def main():
    if len(sys.argv) != 2:
        print("usage: tls_e2e_test.py path/to/ordertrace", file=sys.stderr)
        return 2
    binary = os.path.abspath(sys.argv[1])
    if not (E2E / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=E2E, check=True)
    work = Path(tempfile.mkdtemp(prefix="ordertrace-tls-e2e-"))
    try:
        ca_dir = work / "ca"
        subprocess.run(["bash", str(REPO / "tests/support/make_test_ca.sh"), str(ca_dir)],
                       check=True)
        test_tls_on_every_port(binary, work, ca_dir)
        test_client_certificates(binary, work, ca_dir)
        test_bad_files_stop_the_start(binary, work, ca_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print(f"{len(failures)} checks failed:\n  " + "\n  ".join(failures))
        return 1
    print("all TLS checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
