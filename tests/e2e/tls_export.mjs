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
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';

import { exportOneSpan } from './export_one_span.mjs';

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

const result = await exportOneSpan(exporter, values['trace-id'], 'tls.export');
if (result?.code !== ExportResultCode.SUCCESS) {
  console.error(`export failed: ${result?.error?.message ?? 'no result'}`);
  process.exit(1);
}
