#!/usr/bin/env python3
"""A stand-in OTLP/HTTP endpoint for the forward test: records every request it gets.

  otlp_recorder.py serve DIR [--cert PEM --key PEM] [--first STATUS --retry-after SECONDS]
      Listens on a free loopback port, writes it to DIR/port, then for each POST writes
      DIR/N.json (time, path, headers) and DIR/N.bin (the body). Answers 200 with an empty
      ExportTraceServiceResponse; the first request gets STATUS (with Retry-After) when --first
      is given. HTTPS with --cert/--key.
  otlp_recorder.py decode FILE
      Reads FILE as an OTLP ExportTraceServiceRequest by the protobuf wire format alone (no
      protobuf library here) and prints JSON: {"spans": N, "names": [...], "attributes":
      {key: [values]}}. Exits 1 when FILE is not one.
"""
import http.server
import json
import os
import ssl
import sys
import threading
import time


def fields(data):
    """Yields (number, wire type, value) of a protobuf message; raises ValueError if malformed."""
    pos = 0

    def varint():
        nonlocal pos
        shift = result = 0
        while True:
            if pos >= len(data) or shift > 63:
                raise ValueError("truncated varint")
            b = data[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result

    while pos < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire == 0:
            yield number, wire, varint()
        elif wire == 1:
            pos += 8
            yield number, wire, None
        elif wire == 2:
            n = varint()
            if pos + n > len(data):
                raise ValueError("length past the end")
            yield number, wire, data[pos:pos + n]
            pos += n
        elif wire == 5:
            pos += 4
            yield number, wire, None
        else:
            raise ValueError("wire type %d" % wire)
    if pos != len(data):
        raise ValueError("truncated field")


def any_value_text(data):
    for number, wire, value in fields(data):
        if number == 1 and wire == 2:  # string_value
            return value.decode("utf-8", "replace")
        if number == 3 and wire == 0:  # int_value
            return str(value)
    return ""


def decode(body):
    out = {"spans": 0, "names": [], "attributes": {}}

    def attribute(data):
        key, value = "", ""
        for number, wire, v in fields(data):
            if number == 1 and wire == 2:
                key = v.decode("utf-8", "replace")
            elif number == 2 and wire == 2:
                value = any_value_text(v)
        out["attributes"].setdefault(key, []).append(value)

    for number, wire, resource_spans in fields(body):  # ExportTraceServiceRequest
        if number != 1 or wire != 2:
            raise ValueError("not an ExportTraceServiceRequest: field %d" % number)
        for n2, w2, scope_spans in fields(resource_spans):  # ResourceSpans
            if n2 == 1 and w2 == 2:  # resource
                for n3, w3, kv in fields(scope_spans):
                    if n3 == 1 and w3 == 2:
                        attribute(kv)
            if n2 != 2 or w2 != 2:
                continue
            for n3, w3, span in fields(scope_spans):  # ScopeSpans
                if n3 != 2 or w3 != 2:
                    continue
                out["spans"] += 1
                for n4, w4, v in fields(span):  # Span
                    if n4 == 5 and w4 == 2:
                        out["names"].append(v.decode("utf-8", "replace"))
                    elif n4 == 9 and w4 == 2:
                        attribute(v)
    return out


def serve(directory, cert, key, first_status, retry_after):
    lock = threading.Lock()
    count = [0]

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with lock:
                count[0] += 1
                n = count[0]
            with open(os.path.join(directory, "%d.bin" % n), "wb") as f:
                f.write(body)
            with open(os.path.join(directory, "%d.json" % n), "w") as f:
                json.dump({"time": time.time(), "path": self.path,
                           "headers": {k.lower(): v for k, v in self.headers.items()}}, f)
            if n == 1 and first_status:
                self.send_response(first_status)
                self.send_header("Retry-After", str(retry_after))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    with open(os.path.join(directory, "port.tmp"), "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(os.path.join(directory, "port.tmp"), os.path.join(directory, "port"))
    server.serve_forever()


def main():
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "decode":
        with open(args[1], "rb") as f:
            body = f.read()
        try:
            print(json.dumps(decode(body)))
        except ValueError as e:
            print("not OTLP protobuf: %s" % e, file=sys.stderr)
            sys.exit(1)
        return
    if len(args) >= 2 and args[0] == "serve":
        opts = dict(zip(args[2::2], args[3::2]))
        serve(args[1], opts.get("--cert"), opts.get("--key"), int(opts.get("--first", "0")),
              int(opts.get("--retry-after", "1")))
        return
    print(__doc__, file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main()
