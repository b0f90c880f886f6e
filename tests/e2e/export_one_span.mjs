// Exports one span through an OpenTelemetry JS exporter and tells how the export went: shared
// by otel_sdk_tls.test.mjs and tls_export.mjs (the SDK's own error handler would only log it).
import { randomBytes } from 'node:crypto';

import { ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

// Exports one span of trace `traceId` through `exporter`; resolves to the export's result.
export async function exportOneSpan(exporter, traceId, name) {
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
  const parent = trace.setSpanContext(ROOT_CONTEXT, {
    traceId,
    spanId: randomBytes(8).toString('hex'),
    traceFlags: 1,
    isRemote: true,
  });
  provider.getTracer('tls-e2e').startSpan(name, { kind: SpanKind.SERVER }, parent).end();
  try {
    await provider.forceFlush();
    await provider.shutdown();
  } catch (e) {
    // A failed export also rejects the flush; the result recorded above tells what happened.
    result ??= { code: ExportResultCode.FAILED, error: e };
  }
  return result;
}
