// End to end over TLS (docs/security.md): the official OpenTelemetry JS SDK's three OTLP exporters
// (protobuf and JSON over HTTPS, gRPC with TLS credentials) send spans to a real ordertrace
// serving TLS with a CA made at test time (tests/support/make_test_ca.sh); the spans are read
// back through the API over https. An exporter that does not trust the CA exports nothing.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { credentials } from '@grpc/grpc-js';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';

import { exportOneSpan } from './export_one_span.mjs';
import { startOrdertrace } from './ordertrace_process.mjs';

process.env.no_grpc_proxy = '127.0.0.1';

const kExportTimeoutMs = 10_000;
const kPollTimeoutMs = 10_000;
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

describe('the OpenTelemetry JS SDK over TLS', () => {
  let server;
  let dir;
  let ca;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ordertrace-e2e-tls-'));
    const made = spawnSync('bash', [path.join(repoRoot, 'tests/support/make_test_ca.sh'), dir]);
    assert.equal(made.status, 0, `make_test_ca.sh failed: ${made.stderr}`);
    ca = readFileSync(path.join(dir, 'ca.pem'));
    const config = path.join(dir, 'ordertrace.yaml');
    writeFileSync(
      config,
      'sampling:\n  enabled: false\n' +
        `tls:\n  cert_file: ${dir}/server.pem\n  key_file: ${dir}/server.key\n`);
    server = await startOrdertrace({ config, ca });
  });

  after(async () => {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const exporters = [
    {
      name: 'OTLP/HTTP protobuf over https',
      make: (trust) =>
        new ProtoTraceExporter({
          url: server.otlpHttpUrl,
          timeoutMillis: kExportTimeoutMs,
          httpAgentOptions: trust ? { ca } : {},
        }),
    },
    {
      name: 'OTLP/HTTP JSON over https',
      make: (trust) =>
        new JsonTraceExporter({
          url: server.otlpHttpUrl,
          timeoutMillis: kExportTimeoutMs,
          httpAgentOptions: trust ? { ca } : {},
        }),
    },
    {
      name: 'OTLP/gRPC with TLS credentials',
      make: (trust) =>
        new GrpcTraceExporter({
          url: server.otlpGrpcUrl,
          timeoutMillis: kExportTimeoutMs,
          credentials: credentials.createSsl(trust ? ca : null),
        }),
    },
  ];

  for (const { name, make } of exporters) {
    test(`${name}: the span arrives and is read back over https`, async () => {
      assert.match(server.otlpHttpUrl, /^https:/);
      const traceId = randomBytes(16).toString('hex');
      const result = await exportOneSpan(make(true), traceId, `tls.${name}`);
      assert.equal(result?.code, ExportResultCode.SUCCESS, `export failed: ${result?.error}`);
      const deadline = Date.now() + kPollTimeoutMs;
      let answer;
      do {
        answer = await server.get(`/api/traces/${traceId}`);
        if (answer.status === 200) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      } while (Date.now() < deadline);
      assert.equal(answer.status, 200, `trace ${traceId} not found: ${answer.body}`);
      assert.ok(answer.body.includes(`tls.${name}`), 'the span name is in the trace');
    });

    test(`${name}: an exporter that does not trust the CA sends nothing`, async () => {
      const traceId = randomBytes(16).toString('hex');
      const result = await exportOneSpan(make(false), traceId, 'tls.untrusted');
      assert.notEqual(result?.code, ExportResultCode.SUCCESS);
      const answer = await server.get(`/api/traces/${traceId}`);
      assert.equal(answer.status, 404);
    });
  }
});
