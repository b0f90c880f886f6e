// Exports one span through the official OpenTelemetry JS exporter over TLS, for
// tests/tls/tls_e2e_test.py. Not a test file itself (node --test only picks up *.test.mjs).
//
//   node tls_export.mjs --protocol grpc|http --url URL [--ca CA.pem] [--cert C.pem --key K.pem]
//        --trace-id HEX32
//
// Without --ca, Node's own trust decides: its CAs plus NODE_EXTRA_CA_CERTS.
//
// Exits 0 when the export succeeded, 1 (with the error on stderr) when it failed.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { credentials } from '@grpc/grpc-js';
import { ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

process.env.no_grpc_proxy = '127.0.0.1';

const { values } = parseArgs({
  options: {
    protocol: { type: 'string' },
    url: { type: 'string' },
    ca: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    'trace-id': { type: 'string' },
  },
});

const ca = values.ca ? readFileSync(values.ca) : undefined;
const cert = values.cert ? readFileSync(values.cert) : undefined;
const key = values.key ? readFileSync(values.key) : undefined;

const exporter =
  values.protocol === 'grpc'
    ? new GrpcTraceExporter({
        url: values.url,
        timeoutMillis: 5000,
        credentials: credentials.createSsl(ca ?? null, key ?? null, cert ?? null),
      })
    : new ProtoTraceExporter({
        url: values.url,
        timeoutMillis: 5000,
        httpAgentOptions: ca ? { ca, cert, key } : { cert, key },
      });

// Remembers the exporter's result: the SDK's own error handler would only log it.
let result = null;
const recording = {
  export(spans, done) {
    exporter.export(spans, (r) => {
      result = r;
      done(r);
    });
  },
  shutdown: () => exporter.shutdown(),
};

const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'tls-e2e' }),
  spanProcessors: [new SimpleSpanProcessor(recording)],
});
const tracer = provider.getTracer('tls-e2e');
// A remote parent with the trace id the caller chose, so that it can look the trace up.
const parent = trace.setSpanContext(ROOT_CONTEXT, {
  traceId: values['trace-id'],
  spanId: '00f067aa0ba902b7',
  traceFlags: 1,
  isRemote: true,
});
tracer.startSpan('tls.export', { kind: SpanKind.SERVER }, parent).end();
await provider.forceFlush();
await provider.shutdown();
if (result?.code !== ExportResultCode.SUCCESS) {
  console.error(`export failed: ${result?.error?.message ?? 'no result'}`);
  process.exit(1);
}
