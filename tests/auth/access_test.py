#!/usr/bin/env python3
"""Tokens, roles and partner scoping against the real ordertrace process.

Starts `ordertrace` on free 127.0.0.1 ports with a config holding one token per role (two
partners), exports orders of partner P-7, partner P-8 and a direct order over OTLP/JSON with the
ingest token, then checks:

  roles          each role against each endpoint (the table in docs/security.md): 401 without a
                 token or with a wrong one, 403 for a role that may not, 200 otherwise
  partner scope  P-7 never sees P-8's (or the direct) order, trace, search hit, tag value, gap or
                 SLA figures: each answers exactly as something that does not exist
  operator ids   ops reads operator_id in clear, every other role its HMAC; search by the clear
                 id works for ops only, by the hash for everyone
  hostile tokens empty, huge, non-ASCII, another scheme, 300 wrong tries in a row: all 401,
                 counted in /metrics, a few log lines (not one per try), the server still up
  audit log      one JSON line per API request naming the token, role, path and status
  closed         an API listen address off loopback without TLS and tokens is refused at start
                 with one line naming what is missing; a foreign Host header gets 421

One PASS/FAIL line per check; the exit status is non-zero when any check failed.

Usage: access_test.py path/to/ordertrace      (python3 standard library only)
"""

import functools
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from ordertrace_harness import (HOST, auth_tokens_yaml, export_body,  # noqa: E402
                                http_request, otlp_span, post_otlp_json, run_with_ordertrace)

TOKENS = {
    "ops-1": ("ops", None, "ops-secret-token-1"),
    "dev-1": ("dev", None, "dev-secret-token-1"),
    "support-1": ("support", None, "support-secret-token-1"),
    "acme": ("partner_readonly", "P-7", "acme-partner-token"),
    "globex": ("partner_readonly", "P-8", "globex-partner-token"),
    "exporters": ("ingest", None, "exporter-token-xyz"),
}


def token(name):
    return TOKENS[name][2]


# No Accept-Encoding header: the answers are checked as the server sends them.
request = functools.partial(http_request, skip_accept_encoding=True)


def bearer(name):
    return {"Authorization": "Bearer " + token(name)}


def get(port, path, who=None, headers=None):
    h = dict(headers or {})
    if who is not None:
        h.update(bearer(who))
    return request(port, "GET", path, h)


def get_json(port, path, who):
    status, _, data = get(port, path, who)
    try:
        return status, json.loads(data)
    except ValueError:
        return status, None


def span(trace_hex, span_hex, name, start_ns, attrs, parent=None):
    """A server span of 5 ms (string attributes)."""
    return otlp_span(trace_hex, span_hex, name, start_ns, attrs, parent_span_id=parent)


def export(service, spans):
    return export_body(service, spans, scope="access-test")


# Three orders: one per partner and a direct one. Each order is one trace.
ORDERS = {
    "ord-p7": ("P-7", "7" * 32),
    "ord-p8": ("P-8", "8" * 32),
    "ord-direct": (None, "d" * 32),
}
OPERATOR = "op-42"
MIXED_TRACE = "e" * 32


def order_spans(order_id, now_ns):
    partner, trace = ORDERS[order_id]
    root_attrs = {"order_id": order_id, "new_status": "INITIATED"}
    if partner:
        root_attrs["partner_id"] = partner
    spans = [span(trace, trace[:15] + "1", "shop.init", now_ns, root_attrs)]
    approve = {"order_id": order_id, "new_status": "SUBMITTED", "prev_status": "INITIATED",
               "operator_id": OPERATOR}
    if partner:
        approve["partner_id"] = partner
    spans.append(span(trace, trace[:15] + "2", "shop.submit", now_ns + 10_000_000, approve,
                      parent=trace[:15] + "1"))
    return spans


def config_yaml(work):
    return auth_tokens_yaml(TOKENS) + "\n".join([
        f"data_dir: {work}/data",
        "log_level: info",
        "audit:",
        f"  file: {work}/audit.log",
        "sampling:",
        "  enabled: false",
    ]) + "\n"


def check_roles(c, api):
    """Each role against each endpoint."""
    p7_trace = ORDERS["ord-p7"][1]
    reads = [
        "/api/v1/orders/ord-p7",
        "/api/v1/orders",
        f"/api/traces/{p7_trace}",
        f"/api/v2/traces/{p7_trace}",
        "/api/search?tags=order_id%3Dord-p7",
        "/api/search/tags",
        "/api/search/tag/order_id/values",
        "/api/v1/gaps",
        "/api/v1/sla",
    ]
    expected = {
        None: 401, "ops-1": 200, "dev-1": 200, "support-1": 200, "acme": 200, "exporters": 403,
    }
    for path in reads:
        for who, want in expected.items():
            status = get(api, path, who)[0]
            c.check(f"roles: GET {path} as {who or 'no token'} -> {want}", status == want,
                    f"got {status}")
    for who, want in {None: 401, "ops-1": 200, "dev-1": 200, "support-1": 403, "acme": 403,
                      "exporters": 403}.items():
        status = get(api, "/metrics", who)[0]
        c.check(f"roles: GET /metrics as {who or 'no token'} -> {want}", status == want,
                f"got {status}")
    for path in ["/healthz", "/readyz", "/ready", "/api/echo"]:
        c.check(f"roles: {path} needs no token", get(api, path)[0] == 200)
    status, headers, _ = get(api, "/api/v1/orders")
    c.check("roles: 401 carries WWW-Authenticate: Bearer",
            status == 401 and headers.get("WWW-Authenticate", "").startswith("Bearer"),
            f"{status} {headers}")


def check_ingest_roles(c, otlp):
    """OTLP export: the ingest role only (run last: it adds an order)."""
    body = export("shop-api", [span("a" * 32, "a" * 16, "probe", time.time_ns(),
                                    {"order_id": "ord-probe"})])
    for who, want in {None: 401, "ops-1": 403, "dev-1": 403, "support-1": 403, "acme": 403,
                      "exporters": 200}.items():
        h = {"Content-Type": "application/json"}
        if who:
            h.update(bearer(who))
        status = request(otlp, "POST", "/v1/traces", h, body)[0]
        c.check(f"roles: OTLP/HTTP export as {who or 'no token'} -> {want}", status == want,
                f"got {status}")
    # Refused on the head: a client without a token announcing 8 MB is answered before it sends
    # a byte of them.
    sock = socket.create_connection((HOST, otlp), timeout=5)
    try:
        sock.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/x-protobuf\r\nContent-Length: 8000000\r\n\r\n")
        answer = sock.recv(4096).decode(errors="replace")
    except OSError as e:
        answer = str(e)
    finally:
        sock.close()
    c.check("roles: OTLP/HTTP without a token is answered 401 before its body is sent",
            answer.startswith("HTTP/1.1 401") and "WWW-Authenticate: Bearer" in answer,
            answer[:200])


def check_partner_scope(c, api):
    unknown_status, unknown = get_json(api, "/api/v1/orders/ord-nonexistent", "acme")
    for other in ["ord-p8", "ord-direct"]:
        status, body = get_json(api, f"/api/v1/orders/{other}", "acme")
        same = (status == unknown_status == 404 and body is not None and unknown is not None and
                body["error"]["message"].replace(other, "X") ==
                unknown["error"]["message"].replace("ord-nonexistent", "X"))
        c.check(f"scope: P-7 reading {other} is answered as an unknown order", same,
                f"{status} {body}")
    status, body = get_json(api, "/api/v1/orders/ord-p7", "acme")
    c.check("scope: P-7 reads its own order", status == 200 and body.get("order_id") == "ord-p7",
            f"{status} {body}")

    status, body = get_json(api, "/api/v1/orders", "acme")
    ids = sorted(o["order_id"] for o in body["orders"]) if body else None
    c.check("scope: P-7's order list holds only its orders", ids == ["ord-p7"], f"{ids}")
    status, body = get_json(api, "/api/v1/orders?partner_id=P-8", "acme")
    c.check("scope: P-7 asking for P-8's orders gets none", body and body["orders"] == [],
            f"{body}")
    status, body = get_json(api, "/api/v1/orders", "ops-1")
    ids = sorted(o["order_id"] for o in body["orders"]) if body else None
    c.check("scope: ops lists every order", ids == ["ord-direct", "ord-p7", "ord-p8"], f"{ids}")

    for other, trace in [("ord-p8", ORDERS["ord-p8"][1]), ("ord-direct", ORDERS["ord-direct"][1]),
                         ("the mixed", MIXED_TRACE)]:
        for prefix in ["/api/traces/", "/api/v2/traces/"]:
            status, body = get_json(api, prefix + trace, "acme")
            c.check(f"scope: P-7 reading {other}'s trace via {prefix} gets 404 not found",
                    status == 404 and "not found" in body["error"]["message"], f"{status} {body}")
        status, _ = get_json(api, f"/api/traces/{trace}", "support-1")
        c.check(f"scope: support reads {other}'s trace", status == 200)

    c.check("scope: P-8 does not see the mixed trace either",
            get(api, f"/api/traces/{MIXED_TRACE}", "globex")[0] == 404)
    c.check("scope: P-8 reads its own trace",
            get(api, f"/api/traces/{ORDERS['ord-p8'][1]}", "globex")[0] == 200)

    status, body = get_json(api, "/api/search?limit=50", "acme")
    found = sorted(t["traceID"] for t in body["traces"]) if body else None
    c.check("scope: P-7's search finds only its trace", found == [ORDERS["ord-p7"][1]], f"{found}")
    status, body = get_json(api, "/api/search?tags=order_id%3Dord-p8", "acme")
    c.check("scope: P-7's search by P-8's order id finds nothing",
            body is not None and body["traces"] == [], f"{body}")
    status, body = get_json(api, "/api/search?limit=50", "ops-1")
    c.check("scope: ops' search finds all four traces",
            body is not None and len(body["traces"]) == 4, f"{body}")

    for tag, want in [("order_id", ["ord-p7"]), ("partner_id", ["P-7"])]:
        status, body = get_json(api, f"/api/search/tag/{tag}/values", "acme")
        values = sorted(body["tagValues"]) if body else None
        c.check(f"scope: P-7's values of {tag} are its own only", values == want, f"{values}")
    status, body = get_json(api, "/api/search/tag/partner_id/values", "ops-1")
    c.check("scope: ops sees both partners' ids", body and sorted(body["tagValues"]) == [
        "P-7", "P-8"], f"{body}")

    status, body = get_json(api, "/api/v1/gaps?state=all&partner_id=P-8", "acme")
    c.check("scope: P-7 asking for P-8's gaps gets none", body and body["gaps"] == [], f"{body}")
    status, body = get_json(api, "/api/v1/gaps?state=all&limit=1000", "acme")
    c.check("scope: every gap P-7 sees is its own",
            body is not None and all(g.get("partner_id") == "P-7" for g in body["gaps"]),
            f"{body}")

    status, body = get_json(api, "/api/v1/sla", "acme")
    c.check("scope: P-7's SLA report is its own, over its one order",
            status == 200 and body["partner_id"] == "P-7" and body["orders"] == 1,
            f"{status} {body}")
    status, body = get_json(api, "/api/v1/sla?partner_id=P-8", "acme")
    c.check("scope: P-7 asking for P-8's SLA figures gets 404", status == 404, f"{status}")
    status, body = get_json(api, "/api/v1/sla?partner_id=P-8", "support-1")
    c.check("scope: support reads P-8's SLA figures", status == 200 and body["orders"] == 1,
            f"{status} {body}")
    status, body = get_json(api, "/api/v1/sla", "ops-1")
    stages = [s["stage"] for s in body["stages"]] if body else []
    c.check("sla: ops' report covers every order and names the lifecycle's stages",
            status == 200 and body["orders"] == 3 and "INITIATED" in stages, f"{body}")


def operator_values(trace_json):
    values = []
    for batch in trace_json.get("batches", []):
        for scope in batch.get("scopeSpans", []):
            for s in scope.get("spans", []):
                for kv in s.get("attributes", []):
                    if kv["key"] == "operator_id":
                        values.append(kv["value"].get("stringValue"))
    return values


def check_operator_ids(c, api):
    trace = ORDERS["ord-p7"][1]
    status, body = get_json(api, f"/api/traces/{trace}", "ops-1")
    c.check("operator: ops reads operator_id in clear", operator_values(body) == [OPERATOR],
            f"{operator_values(body) if body else body}")
    hashed = None
    for who in ["dev-1", "support-1", "acme"]:
        status, body = get_json(api, f"/api/traces/{trace}", who)
        values = operator_values(body) if body else []
        ok = len(values) == 1 and values[0].startswith("hmac:") and OPERATOR not in values[0]
        c.check(f"operator: {who} reads operator_id as its HMAC", ok, f"{values}")
        if ok:
            hashed = values[0]
        raw = get(api, f"/api/traces/{trace}", who)[2]
        c.check(f"operator: the clear id appears nowhere in {who}'s answer",
                OPERATOR.encode() not in raw)
    status, body = get_json(api, "/api/search/tag/operator_id/values", "support-1")
    c.check("operator: support's operator_id values are hashes",
            body is not None and body["tagValues"] == [hashed], f"{body}")
    q = urllib.parse.quote(f"operator_id={OPERATOR}")
    status, body = get_json(api, f"/api/search?tags={q}", "ops-1")
    c.check("operator: ops finds the orders by the clear id", body and len(body["traces"]) == 3,
            f"{body}")
    status, body = get_json(api, f"/api/search?tags={q}", "support-1")
    c.check("operator: support finds nothing by the clear id", body and body["traces"] == [],
            f"{body}")
    if hashed:
        q = urllib.parse.quote(f"operator_id={hashed}")
        for who in ["support-1", "ops-1"]:
            status, body = get_json(api, f"/api/search?tags={q}", who)
            c.check(f"operator: {who} finds the orders by the hash",
                    body and len(body["traces"]) == 3, f"{body}")


def metric(api, series):
    """The value of one series (`name{labels}` as printed) in /metrics, or None."""
    _, _, data = get(api, "/metrics", "ops-1")
    for line in data.decode().splitlines():
        parts = line.split(" ")
        if len(parts) >= 2 and parts[0] == series:
            return float(parts[1])
    return None


def check_hostile_tokens(c, api, work):
    cases = {
        "empty bearer": "Bearer ",
        "only spaces": "Bearer    ",
        "another scheme": "Basic " + token("ops-1"),
        "non-ASCII": "Bearer t\xf6ken-\xe9",
        "huge (12 KB)": "Bearer " + "A" * 12_000,
        "a token with a space inside": "Bearer ops-secret token-1",
        "the hash instead of the token": "Bearer " + hashlib.sha256(
            token("ops-1").encode()).hexdigest(),
        "a prefix of a real token": "Bearer " + token("ops-1")[:-1],
        "lowercase scheme (valid)": "bearer " + token("ops-1"),
    }
    for name, value in cases.items():
        status = request(api, "GET", "/api/v1/orders",
                         {"Authorization": value.encode("latin-1")})[0]
        want = 200 if name.startswith("lowercase") else 401
        c.check(f"hostile token: {name} -> {want}", status == want, f"got {status}")

    before = metric(api, 'ordertrace_auth_refused_total{reason="unknown"}') or 0
    with open(os.path.join(work, "server.log"), "rb") as f:
        log_lines_before = f.read().count(b"auth: ")
    statuses = set()
    for i in range(300):
        statuses.add(request(api, "GET", "/api/v1/orders",
                             {"Authorization": f"Bearer wrong-{i}"})[0])
    c.check("hostile token: 300 wrong tries in a row are all 401", statuses == {401},
            f"{statuses}")
    after = metric(api, 'ordertrace_auth_refused_total{reason="unknown"}') or 0
    c.check("hostile token: the wrong tries are counted in /metrics", after - before >= 300,
            f"{before} -> {after}")
    with open(os.path.join(work, "server.log"), "rb") as f:
        log_lines = f.read().count(b"auth: ") - log_lines_before
    c.check("hostile token: they are logged, in a few lines rather than 300",
            1 <= log_lines <= 5, f"{log_lines} lines")
    c.check("hostile token: the server still answers", get(api, "/healthz")[0] == 200)


def check_audit(c, work):
    path = os.path.join(work, "audit.log")
    try:
        with open(path) as f:
            lines = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as e:
        c.check("audit: the log is JSON lines", False, str(e))
        return
    c.check("audit: the log is JSON lines, one per request", len(lines) > 50, f"{len(lines)}")
    mode = os.stat(path).st_mode & 0o777
    c.check("audit: the log is readable by its owner only", mode == 0o600, oct(mode))
    acme = [l for l in lines if l.get("token") == "acme" and l.get("order_id") == "ord-p8"]
    c.check("audit: P-7's read of P-8's order is recorded with its 404",
            any(l["status"] == 404 and l["role"] == "partner_readonly" and
                l["partner_id"] == "P-7" for l in acme), f"{acme[:2]}")
    refused = [l for l in lines if l.get("refused") == "unknown"]
    c.check("audit: refused tokens are recorded (no token name, the reason)",
            len(refused) >= 300 and all(l["token"] == "" and l["status"] == 401
                                        for l in refused), f"{len(refused)}")
    searches = [l["target"] for l in lines if "customer.email" in l.get("target", "")]
    c.check("audit: a search by e-mail address is logged without the address",
            searches and all("jane" not in t and "customer.email=*" in t for t in searches),
            f"{searches}")
    traces = [l for l in lines if l.get("trace_id") == ORDERS["ord-p8"][1]]
    c.check("audit: trace reads name the trace", len(traces) > 0)
    text = open(path).read()
    c.check("audit: no token appears in the log",
            not any(secret in text for _, _, secret in TOKENS.values()))


def check_closed_by_default(c, binary, work):
    plain = os.path.join(work, "plain.yaml")
    with open(plain, "w") as f:
        f.write(f"data_dir: {work}/data-closed\n")
    proc = subprocess.run([binary, "--config", plain, "--http-listen", "0.0.0.0:0"],
                          capture_output=True, timeout=20)
    out = (proc.stdout + proc.stderr).decode(errors="replace")
    c.check("closed: 0.0.0.0 without TLS and tokens is refused at start",
            proc.returncode != 0 and "off loopback" in out and "TLS" in out and "tokens" in out,
            f"rc={proc.returncode} {out[-300:]}")
    config = os.path.join(work, "ordertrace.yaml")
    proc = subprocess.run([binary, "--config", config, "--http-listen", "0.0.0.0:0",
                           "--data-dir", f"{work}/data-closed"],
                          capture_output=True, timeout=20)
    out = (proc.stdout + proc.stderr).decode(errors="replace")
    c.check("closed: with tokens but no TLS the line names TLS only",
            proc.returncode != 0 and "TLS" in out and "auth.tokens" not in out,
            f"rc={proc.returncode} {out[-300:]}")


def ingest(otlp, body):
    """Exports with the ingest token (and no Accept-Encoding, as every request here)."""
    return post_otlp_json(otlp, body, token("exporters"), skip_accept_encoding=True)[0]


def run(c, server):
    otlp, api = server.otlp_http, server.api
    now = time.time_ns()
    for order_id in ORDERS:
        status = ingest(otlp, export("shop-api", order_spans(order_id, now)))
        c.check(f"setup: {order_id} exported with the ingest token", status == 200,
                f"got {status}")
    status, _, _ = get(api, "/api/v1/orders/ord-p7", "ops-1", {"Host": "evil.example"})
    c.check("closed: a foreign Host is refused with 421", status == 421, f"got {status}")
    # One trace that carries an order of each partner: neither partner may see it.
    mixed = export("crm-api", [
        span(MIXED_TRACE, MIXED_TRACE[:15] + "1", "crm.batch", now, {"order_id": "ord-p7"}),
        span(MIXED_TRACE, MIXED_TRACE[:15] + "2", "crm.batch", now, {"order_id": "ord-p8"}),
    ])
    c.check("setup: a trace of both partners' orders exported", ingest(otlp, mixed) == 200)
    check_roles(c, api)
    check_partner_scope(c, api)
    check_operator_ids(c, api)
    q = urllib.parse.quote('customer.email="jane.doe@example.com" order_id=ord-p7')
    c.check("setup: a search by e-mail address is answered",
            get(api, f"/api/search?tags={q}", "support-1")[0] == 200)
    check_hostile_tokens(c, api, server.work)
    check_ingest_roles(c, otlp)


def after_stop(c, server):
    check_audit(c, server.work)
    check_closed_by_default(c, server.binary, server.work)


def main():
    return run_with_ordertrace(__doc__, "ordertrace-access-", config_yaml, run, after_stop)


if __name__ == "__main__":
    sys.exit(main())
