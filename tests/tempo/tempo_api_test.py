#!/usr/bin/env python3
"""The Tempo API endpoints Grafana's Tempo data source calls, against the real ordertrace.

Starts `ordertrace` on free 127.0.0.1 ports with a temporary data folder and tokens (ops,
support, two partners, ingest), exports four orders over OTLP/JSON (one per partner, a direct one
with an error span, and one whose spans are three days old), then checks one endpoint at a time
for the shape Tempo's API documents (docs/sources/tempo/api_docs in grafana/tempo):

  /api/echo                       200, body "echo"
  /ready                          200
  /api/search (tags= and q=)      traces[]: traceID, rootServiceName, rootTraceName (strings),
                                  startTimeUnixNano (a string of digits), durationMs (a number);
                                  metrics (an object)
  /api/search/tags                tagNames: strings
  /api/v2/search/tags             scopes: [{name, tags}] for resource, span and intrinsic
  /api/search/tag/{tag}/values    tagValues: strings
  /api/v2/search/tag/{tag}/values tagValues: [{type, value}] (string, int, keyword)
  /api/traces/{id}                batches: OTLP ResourceSpans (resource, scopeSpans)
  /api/v2/traces/{id}             trace.resourceSpans

and TraceQL: unsupported parts answered 400 naming the part and its offset, q= with tags=
refused, an order found by id whatever its age, and a partner's q= never finding another
partner's trace (nor a clear operator id).

One PASS/FAIL line per check; the exit status is non-zero when any check failed.

Usage: tempo_api_test.py path/to/ordertrace      (python3 standard library only)
"""

import json
import os
import re
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from ordertrace_harness import (auth_tokens_yaml, export_body, http_request,  # noqa: E402
                                otlp_span, post_otlp_json, run_with_ordertrace)

TOKENS = {
    "ops-1": ("ops", None, "ops-token-tempo-1"),
    "support-1": ("support", None, "support-token-tempo-1"),
    "acme": ("partner_readonly", "P-7", "acme-token-tempo"),
    "globex": ("partner_readonly", "P-8", "globex-token-tempo"),
    "exporters": ("ingest", None, "exporter-token-tempo"),
}

ORDERS = {
    "ord-p7": ("P-7", "7" * 32),
    "ord-p8": ("P-8", "8" * 32),
    "ord-direct": (None, "d" * 32),
    "ord-old": (None, "0123456789abcdef" * 2),
}
OPERATOR = "op-42"
THREE_DAYS_NS = 3 * 24 * 3600 * 1_000_000_000


def request(port, method, path, headers=None, body=None):
    status, _, data = http_request(port, method, path, headers, body)
    return status, data


def get(port, path, who="ops-1"):
    headers = {"Authorization": "Bearer " + TOKENS[who][2]} if who else {}
    return request(port, "GET", path, headers)


def get_json(port, path, who="ops-1"):
    status, data = get(port, path, who)
    try:
        return status, json.loads(data)
    except ValueError:
        return status, None


def search_q(port, traceql, who="ops-1", extra=""):
    return get_json(port, "/api/search?q=" + urllib.parse.quote(traceql) + extra, who)


def span(trace_hex, n, name, start_ns, attrs, parent=None, status=None):
    """A server span of 5 ms; its id (and its parent's) is the trace's first 15 digits and n."""
    return otlp_span(trace_hex, trace_hex[:15] + str(n), name, start_ns, attrs,
                     parent_span_id=trace_hex[:15] + str(parent) if parent else None,
                     status_code=status)


def order_body(order_id, now_ns):
    partner, trace = ORDERS[order_id]
    start = now_ns - (THREE_DAYS_NS if order_id == "ord-old" else 0)
    root = {"order_id": order_id, "new_status": "INITIATED"}
    child = {"order_id": order_id, "new_status": "SUBMITTED", "prev_status": "INITIATED",
             "operator_id": OPERATOR, "http.status_code": 200}
    if partner:
        root["partner_id"] = partner
        child["partner_id"] = partner
    error = None
    if order_id == "ord-direct":
        child["http.status_code"] = 503
        error = 2
    spans = [span(trace, 1, "shop.init", start, root),
             span(trace, 2, "shop.submit", start + 10_000_000, child, parent=1, status=error)]
    return export_body("shop-api", spans, resource_attributes={"deployment": "tempo-e2e"},
                       scope="tempo-test")


def config_yaml(work):
    return auth_tokens_yaml(TOKENS) + (f"data_dir: {work}/data\nlog_level: info\n"
                                       "sampling:\n  enabled: false\n")


def is_summary(t):
    """A trace of Tempo's search answer."""
    return (isinstance(t, dict) and isinstance(t.get("traceID"), str) and
            re.fullmatch(r"[0-9a-f]{1,32}", t["traceID"]) is not None and
            isinstance(t.get("rootServiceName"), str) and
            isinstance(t.get("rootTraceName"), str) and
            isinstance(t.get("startTimeUnixNano"), str) and
            t["startTimeUnixNano"].isdigit() and
            isinstance(t.get("durationMs"), int))


def is_search_answer(body):
    return (isinstance(body, dict) and isinstance(body.get("traces"), list) and
            all(is_summary(t) for t in body["traces"]) and isinstance(body.get("metrics"), dict))


def trace_ids(body):
    return sorted(t["traceID"] for t in body["traces"]) if is_search_answer(body) else None


def is_resource_spans(rs):
    return (isinstance(rs, dict) and isinstance(rs.get("resource"), dict) and
            isinstance(rs.get("scopeSpans"), list) and
            all(isinstance(ss.get("spans"), list) for ss in rs["scopeSpans"]))


def check_endpoints(c, api):
    status, data = get(api, "/api/echo", None)
    c.check("GET /api/echo answers 200 echo", status == 200 and data.strip() == b"echo",
            f"{status} {data[:80]}")
    status, _ = get(api, "/ready", None)
    c.check("GET /ready answers 200", status == 200, f"{status}")

    status, body = get_json(api, "/api/search?tags=" + urllib.parse.quote("service.name=shop-api") +
                            "&limit=20")
    c.check("GET /api/search?tags= has Tempo's shape and finds the three recent orders",
            status == 200 and is_search_answer(body) and
            trace_ids(body) == sorted(ORDERS[o][1] for o in ("ord-p7", "ord-p8", "ord-direct")),
            f"{status} {body}")
    if is_search_answer(body) and body["traces"]:
        t = body["traces"][0]
        c.check("search: the root is named (rootServiceName, rootTraceName)",
                t["rootServiceName"] == "shop-api" and t["rootTraceName"] == "shop.init", f"{t}")

    now_s = int(time.time())
    status, body = search_q(api, '{ resource.service.name = "shop-api" && status = error }',
                            extra=f"&limit=20&start={now_s - 3600}&end={now_s + 60}&spss=3")
    c.check("GET /api/search?q= (TraceQL, with start, end, limit, spss) has Tempo's shape",
            status == 200 and is_search_answer(body) and
            trace_ids(body) == [ORDERS["ord-direct"][1]], f"{status} {body}")
    status, body = search_q(api, "{ span.http.status_code >= 500 && kind = server && "
                                 "duration < 1s } | select(span.order_id)")
    c.check("search q=: numbers, kind, duration and select()",
            status == 200 and trace_ids(body) == [ORDERS["ord-direct"][1]], f"{status} {body}")
    # Trace-level intrinsics, which Grafana's builder writes: each recent order's trace has its
    # root shop.init in shop-api and lasts 15 ms (the child starts 10 ms in and lasts 5 ms).
    recent = sorted(ORDERS[o][1] for o in ("ord-p7", "ord-p8", "ord-direct"))
    status, body = search_q(api, '{ rootName = "shop.init" && rootServiceName = "shop-api" && '
                                 'traceDuration > 12ms }', extra="&limit=20")
    c.check("search q=: rootName, rootServiceName and traceDuration of the whole trace",
            status == 200 and trace_ids(body) == recent, f"{status} {body}")
    status, body = search_q(api, "{ traceDuration > 1s }")
    c.check("search q=: no trace lasts more than a second",
            status == 200 and trace_ids(body) == [], f"{status} {body}")
    status, body = search_q(api, '{ trace:rootService = "shop-api" && '
                                 "span.http.status_code >= 500 }")
    c.check("search q=: a trace field beside a span field (trace:rootService)",
            status == 200 and trace_ids(body) == [ORDERS["ord-direct"][1]], f"{status} {body}")
    status, body = search_q(api, '{ .order_id =~ "ord-p[78]" || name = "nothing" }')
    c.check("search q=: regex under ||",
            status == 200 and trace_ids(body) == sorted([ORDERS["ord-p7"][1],
                                                         ORDERS["ord-p8"][1]]), f"{body}")
    status, body = search_q(api, "{}")
    c.check("search q={}: every recent trace",
            status == 200 and body is not None and len(body["traces"]) == 3, f"{body}")

    status, body = get_json(api, "/api/search/tags")
    c.check("GET /api/search/tags: tagNames are strings",
            status == 200 and isinstance(body.get("tagNames"), list) and
            all(isinstance(n, str) for n in body["tagNames"]) and
            {"service.name", "order_id"} <= set(body["tagNames"]), f"{status} {body}")

    status, body = get_json(api, "/api/v2/search/tags")
    scopes = {s.get("name"): s.get("tags") for s in body.get("scopes", [])} if body else {}
    c.check("GET /api/v2/search/tags: scopes resource, span, intrinsic with their tags",
            status == 200 and isinstance(body.get("scopes"), list) and
            set(scopes) == {"resource", "span", "intrinsic"} and
            all(isinstance(t, list) and all(isinstance(x, str) for x in t)
                for t in scopes.values()) and
            "service.name" in scopes["resource"] and "order_id" in scopes["span"] and
            {"duration", "kind", "name", "status"} <= set(scopes["intrinsic"]),
            f"{status} {body}")
    status, body = get_json(api, "/api/v2/search/tags?scope=span")
    c.check("GET /api/v2/search/tags?scope=span: the span scope alone",
            status == 200 and [s["name"] for s in body["scopes"]] == ["span"], f"{body}")
    status, body = get_json(api, "/api/v2/search/tags?scope=bogus")
    c.check("GET /api/v2/search/tags?scope=bogus: 400", status == 400, f"{status} {body}")

    status, body = get_json(api, "/api/search/tag/service.name/values")
    c.check("GET /api/search/tag/service.name/values: tagValues are strings",
            status == 200 and body.get("tagValues") == ["shop-api"], f"{status} {body}")

    def v2_values(tag):
        status, body = get_json(api, f"/api/v2/search/tag/{tag}/values")
        ok = (status == 200 and isinstance(body.get("tagValues"), list) and
              all(isinstance(v, dict) and isinstance(v.get("type"), str) and
                  isinstance(v.get("value"), str) for v in body["tagValues"]))
        return ok, sorted((v["type"], v["value"]) for v in body["tagValues"]) if ok else body

    for tag, want in [
        ("resource.service.name", [("string", "shop-api")]),
        (".service.name", [("string", "shop-api")]),
        ("span.service.name", []),
        ("span.http.status_code", [("int", "200"), ("int", "503")]),
        ("status", [("keyword", "error"), ("keyword", "unset")]),
        ("kind", [("keyword", "server")]),
        ("name", [("string", "shop.init"), ("string", "shop.submit")]),
    ]:
        ok, got = v2_values(tag)
        c.check(f"GET /api/v2/search/tag/{tag}/values: [{{type, value}}]", ok and got == want,
                f"{got}")
    status, body = get_json(api, "/api/v2/search/tag/service.name/values")
    c.check("GET /api/v2/search/tag/service.name/values (unscoped): 400 naming the field",
            status == 400 and "unknown attribute scope" in body["error"]["message"], f"{body}")

    trace = ORDERS["ord-direct"][1]
    status, body = get_json(api, f"/api/traces/{trace}")
    c.check("GET /api/traces/{id}: batches of OTLP resource spans",
            status == 200 and isinstance(body.get("batches"), list) and body["batches"] and
            all(is_resource_spans(rs) for rs in body["batches"]), f"{status} {body}")
    status, body = get_json(api, f"/api/v2/traces/{trace}")
    c.check("GET /api/v2/traces/{id}: trace.resourceSpans",
            status == 200 and isinstance(body.get("trace"), dict) and
            isinstance(body["trace"].get("resourceSpans"), list) and
            body["trace"]["resourceSpans"] and
            all(is_resource_spans(rs) for rs in body["trace"]["resourceSpans"]),
            f"{status} {body}")


def check_traceql_refusals(c, api):
    for query, part in [
        ("{ .a = 1 } | count() > 1", "pipeline stage 'count' not supported at offset 13"),
        ("{ .a = 1 } >> { .b = 2 }", "structural operator '>>' not supported at offset 11"),
        ("{ .a = 1 } && { .b = 2 }", "combining spansets with '&&' not supported at offset 11"),
        ("{ childCount > 1 }", "intrinsic 'childCount' not supported at offset 2"),
        ("{ status = error } | rate()", "pipeline stage 'rate' not supported at offset 21"),
        ("{ .a = ", "expected a value"),
        ("{" + "(" * 40 + ".a = 1" + ")" * 40 + "}", "nesting deeper than 32"),
        ("{ .a = \"" + "x" * 5000 + "\" }", "longer than 4096 bytes"),
    ]:
        status, body = search_q(api, query)
        message = body["error"]["message"] if body and "error" in body else None
        c.check(f"TraceQL {query[:40]!r}: 400 naming the part",
                status == 400 and message is not None and part in message, f"{status} {body}")
    status, body = get_json(api, "/api/search?tags=order_id%3Dord-p7&q=" +
                            urllib.parse.quote("{}"))
    c.check("search: q= and tags= together are refused with 400", status == 400, f"{status}")


def check_old_order(c, api):
    old = ORDERS["ord-old"][1]
    status, body = get_json(api, "/api/search?tags=order_id%3Dord-old")
    c.check("old order: tags=order_id finds a trace three days old",
            status == 200 and trace_ids(body) == [old], f"{status} {body}")
    status, body = search_q(api, '{ .order_id = "ord-old" }')
    c.check("old order: q={ .order_id = ... } finds it too",
            status == 200 and trace_ids(body) == [old], f"{status} {body}")
    now_s = int(time.time())
    status, body = search_q(api, '{ .order_id = "ord-old" }', extra=f"&start={now_s - 3600}"
                                                                    f"&end={now_s + 60}")
    c.check("old order: an explicit start/end of the last hour does not find it",
            status == 200 and trace_ids(body) == [], f"{status} {body}")
    status, body = search_q(api, '{ name = "shop.init" && .deployment = "tempo-e2e" }')
    c.check("old order: a scan keeps to the default 24 h",
            status == 200 and old not in (trace_ids(body) or [old]), f"{body}")


def check_partner(c, api):
    p7, p8 = ORDERS["ord-p7"][1], ORDERS["ord-p8"][1]
    status, body = search_q(api, '{ .order_id = "ord-p8" }', who="acme")
    c.check("partner: P-7's q= by P-8's order id finds nothing",
            status == 200 and trace_ids(body) == [], f"{status} {body}")
    status, body = search_q(api, '{ .order_id =~ "ord-.*" }', who="acme")
    c.check("partner: P-7's q= regex over every order finds only its own",
            status == 200 and trace_ids(body) == [p7], f"{status} {body}")
    status, body = search_q(api, "{}", who="acme")
    c.check("partner: P-7's q={} finds only its own", trace_ids(body) == [p7], f"{body}")
    status, body = search_q(api, '{ resource.service.name = "shop-api" }', who="globex")
    c.check("partner: P-8's q= finds only its own", trace_ids(body) == [p8], f"{body}")
    status, body = get_json(api, "/api/v2/search/tag/.order_id/values", "acme")
    values = [v["value"] for v in body["tagValues"]] if status == 200 else body
    c.check("partner: P-7's v2 values of .order_id are its own only", values == ["ord-p7"],
            f"{values}")

    status, body = search_q(api, f'{{ span.operator_id = "{OPERATOR}" }}', who="support-1")
    c.check("operator ids: support's q= by the clear id finds nothing",
            status == 200 and trace_ids(body) == [], f"{body}")
    status, body = search_q(api, f'{{ span.operator_id = "{OPERATOR}" }}', who="ops-1")
    c.check("operator ids: ops' q= by the clear id finds the three recent orders",
            status == 200 and body is not None and len(body["traces"]) == 3, f"{body}")
    status, body = get_json(api, "/api/v2/search/tag/span.operator_id/values", "support-1")
    hashes = [v["value"] for v in body["tagValues"]] if status == 200 else []
    c.check("operator ids: support's v2 values are the hash",
            len(hashes) == 1 and hashes[0].startswith("hmac:"), f"{body}")
    if hashes:
        status, body = search_q(api, f'{{ span.operator_id = "{hashes[0]}" }}', who="support-1")
        c.check("operator ids: support's q= by the hash finds the three recent orders",
                status == 200 and body is not None and len(body["traces"]) == 3, f"{body}")


def run(c, server):
    otlp, api = server.otlp_http, server.api
    now = time.time_ns()
    for order_id in ORDERS:
        status, _, data = post_otlp_json(otlp, order_body(order_id, now), TOKENS["exporters"][2])
        c.check(f"setup: {order_id} exported", status == 200, f"{status} {data[:200]}")
    check_endpoints(c, api)
    check_traceql_refusals(c, api)
    check_old_order(c, api)
    check_partner(c, api)


def main():
    return run_with_ordertrace(__doc__, "ordertrace-tempo-", config_yaml, run)


if __name__ == "__main__":
    sys.exit(main())
