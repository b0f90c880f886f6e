#!/usr/bin/env python3
"""Writes one OTLP export with e-mail addresses and phone numbers in every place a span has,
as OTLP/HTTP protobuf or JSON, for tests/pii/pii_scrub_test.sh.

Usage: make_pii_export.py FORMAT(protobuf|json) TAG OUT_DIR
Writes OUT_DIR/TAG.body (the request body), OUT_DIR/TAG.pii (one PII string a line: none may
be stored or served), OUT_DIR/TAG.keep (strings that must survive), OUT_DIR/TAG.trace (the
trace id in hex) and OUT_DIR/TAG.order (the order id). Python standard library only.
"""
import json
import os
import random
import struct
import sys
import time


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def ld(number, payload):
    if isinstance(payload, str):
        payload = payload.encode()
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def fixed64(number, value):
    return varint(number << 3 | 1) + struct.pack("<Q", value)


def vint(number, value):
    return varint(number << 3) + varint(value)


# Attribute values: ("s", text), ("i", int), ("a", [values]), ("kv", [(key, value)]).
def pb_any(value):
    kind, v = value
    if kind == "s":
        return ld(1, v)
    if kind == "i":
        return vint(3, v)
    if kind == "a":
        return ld(5, b"".join(ld(1, pb_any(x)) for x in v))
    if kind == "kv":
        return ld(6, b"".join(ld(1, pb_kv(k, x)) for k, x in v))
    raise ValueError(kind)


def pb_kv(key, value):
    return ld(1, key) + ld(2, pb_any(value))


def pb_attrs(number, attrs):
    return b"".join(ld(number, pb_kv(k, v)) for k, v in attrs)


def json_any(value):
    kind, v = value
    if kind == "s":
        return {"stringValue": v}
    if kind == "i":
        return {"intValue": str(v)}
    if kind == "a":
        return {"arrayValue": {"values": [json_any(x) for x in v]}}
    if kind == "kv":
        return {"kvlistValue": {"values": json_attrs(v)}}
    raise ValueError(kind)


def json_attrs(attrs):
    return [{"key": k, "value": json_any(v)} for k, v in attrs]


def main():
    fmt, tag, out = sys.argv[1], sys.argv[2], sys.argv[3]
    rng = random.Random()
    n = "%s%06d" % (tag, rng.randrange(10**6))  # in every string: unique to this run
    d7 = "%07d" % rng.randrange(10**7)
    d4 = ["%04d" % rng.randrange(10**4) for _ in range(4)]
    pii = {
        "resource": "ops.%s@example.com" % n,
        "resource_phone": "+49 30 %s" % d7,
        "scope": "dev.%s@example.com" % n,
        "name": "ann.%s@example.org" % n,
        "key_value": "jo.%s@example.com" % n,
        "key_is_address": "seen.%s@example.net" % n,
        "phone_key_value": "opaque-%s" % n,
        "phone_number_key": "+1 (415) 555-%s" % d4[0],
        "note_phone": "(415) 555-%s" % d4[1],
        "array": "bob.%s@example.com" % n,
        "kvlist": "kv.%s@example.com" % n,
        "event_name": "eve.%s@example.org" % n,
        "event_phone": "+44-20-7946-%s" % d4[2],
        "link": "lin.%s@example.com" % n,
        "status": "st.%s@example.net" % n,
        "fax": "+33 1 23 45 %s" % d4[3][:2] + d4[3][2:],
    }
    keep = ["res-keep-" + n, "scope-keep-" + n, "span-keep-" + n, "array-keep-" + n,
            "Berlin-" + n, "event-keep-" + n, "link-keep-" + n, "ord-" + n]
    order_id = "ord-" + n
    trace = os.urandom(16)
    span_id = os.urandom(8)
    now = time.time_ns()
    resource = [("service.name", ("s", "pii-test")), ("owner", ("s", pii["resource"])),
                ("deploy.note", ("s", "call %s now" % pii["resource_phone"])),
                ("marker.resource", ("s", keep[0]))]
    scope_attrs = [("maintainer", ("s", pii["scope"])), ("scope.marker", ("s", keep[1]))]
    span_attrs = [
        ("order_id", ("s", order_id)), ("new_status", ("s", "INITIATED")),
        ("event_version", ("i", 1)), ("customer.email", ("s", pii["key_value"])),
        (pii["key_is_address"], ("s", "x")), ("phone", ("s", pii["phone_key_value"])),
        ("user.phone_number", ("s", pii["phone_number_key"])),
        ("note", ("s", "ring %s after 5" % pii["note_phone"])),
        ("recipients", ("a", [("s", pii["array"]), ("s", keep[3])])),
        ("customer", ("kv", [("email", ("s", pii["kvlist"])), ("city", ("s", keep[4]))])),
        ("marker", ("s", keep[2])), ("operator_id", ("s", "op-" + n)),
        ("contact.fax", ("s", pii["fax"])),
    ]
    name = "notify %s" % pii["name"]
    event_name = "mail to %s" % pii["event_name"]
    event_attrs = [("to", ("s", pii["event_phone"])), ("event.marker", ("s", keep[5]))]
    link_attrs = [("from", ("s", pii["link"])), ("link.marker", ("s", keep[6]))]
    status_message = "bounce from %s" % pii["status"]
    link_trace, link_span = os.urandom(16), os.urandom(8)

    if fmt == "protobuf":
        span = (ld(1, trace) + ld(2, span_id) + ld(5, name) + vint(6, 2) +
                fixed64(7, now - 1_000_000) + fixed64(8, now) + pb_attrs(9, span_attrs) +
                ld(11, fixed64(1, now - 500_000) + ld(2, event_name) + pb_attrs(3, event_attrs)) +
                ld(13, ld(1, link_trace) + ld(2, link_span) + pb_attrs(4, link_attrs)) +
                ld(15, ld(2, status_message) + vint(3, 2)))
        scope = ld(1, "pii-scope") + pb_attrs(3, scope_attrs)
        body = ld(1, ld(1, pb_attrs(1, resource)) + ld(2, ld(1, scope) + ld(2, span)))
    else:
        span = {
            "traceId": trace.hex(), "spanId": span_id.hex(), "name": name, "kind": 2,
            "startTimeUnixNano": str(now - 1_000_000), "endTimeUnixNano": str(now),
            "attributes": json_attrs(span_attrs),
            "events": [{"timeUnixNano": str(now - 500_000), "name": event_name,
                        "attributes": json_attrs(event_attrs)}],
            "links": [{"traceId": link_trace.hex(), "spanId": link_span.hex(),
                       "attributes": json_attrs(link_attrs)}],
            "status": {"code": 2, "message": status_message},
        }
        body = json.dumps({"resourceSpans": [{
            "resource": {"attributes": json_attrs(resource)},
            "scopeSpans": [{"scope": {"name": "pii-scope", "attributes": json_attrs(scope_attrs)},
                            "spans": [span]}]}]}).encode()
    with open(os.path.join(out, tag + ".body"), "wb") as f:
        f.write(body)
    for suffix, lines in (("pii", pii.values()), ("keep", keep), ("trace", [trace.hex()]),
                          ("order", [order_id])):
        with open(os.path.join(out, tag + "." + suffix), "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
