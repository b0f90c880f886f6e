// End to end: the official OpenTelemetry JS SDK and its three OTLP trace exporters (protobuf
// over HTTP, JSON over HTTP, gRPC) send one order's lifecycle to a real ordertrace; the test
// then reads the order, the trace, the search and the order list back through the HTTP API and
// compares them with what the SDK recorded. Also checks malformed OTLP/HTTP input.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';

import { startOrdertrace } from './ordertrace_process.mjs';

// Loopback only: keep the gRPC exporter off any proxy the environment may name.
process.env.no_grpc_proxy = '127.0.0.1';

const kPollTimeoutMs = 10_000;
const kRequestTimeoutMs = 5_000;
const kTestTimeoutMs = 60_000;
const kExportTimeoutMs = 10_000;

const kPartnerId = 'partner-acme';
const kQueue = 'price.calc';
const kExchange = 'orders.exchange';

// The exporters under test, each built against a running server.
const kExporters = [
  {
    name: 'OTLP/HTTP protobuf',
    key: 'proto',
    make: (server) =>
      new ProtoTraceExporter({ url: server.otlpHttpUrl, timeoutMillis: kExportTimeoutMs }),
  },
  {
    name: 'OTLP/HTTP JSON',
    key: 'json',
    make: (server) =>
      new JsonTraceExporter({ url: server.otlpHttpUrl, timeoutMillis: kExportTimeoutMs }),
  },
  {
    name: 'OTLP/HTTP protobuf, gzip',
    key: 'proto-gzip',
    make: (server) =>
      new ProtoTraceExporter({
        url: server.otlpHttpUrl,
        timeoutMillis: kExportTimeoutMs,
        compression: 'gzip',
      }),
  },
  {
    name: 'OTLP/gRPC',
    key: 'grpc',
    make: (server) =>
      new GrpcTraceExporter({ url: server.otlpGrpcUrl, timeoutMillis: kExportTimeoutMs }),
  },
];

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Passes spans on to `inner` and remembers every export result, so that a failed export
// fails the test instead of vanishing into the SDK's error handler.
class RecordingExporter {
  constructor(inner) {
    this.inner = inner;
    this.results = [];
  }
  export(spans, done) {
    this.inner.export(spans, (result) => {
      this.results.push({ spans: spans.length, code: result.code, error: result.error });
      done(result);
    });
  }
  forceFlush() {
    return this.inner.forceFlush ? this.inner.forceFlush() : Promise.resolve();
  }
  shutdown() {
    return this.inner.shutdown();
  }
}

// A provider for one service: batches spans to `exporter` and keeps a copy of every finished
// span in memory for the comparison.
function makeProvider(service, exporter) {
  const recorded = new InMemorySpanExporter();
  const recording = new RecordingExporter(exporter);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': service, 'deployment.environment': 'e2e' }),
    spanProcessors: [
      new BatchSpanProcessor(recording, { scheduledDelayMillis: 100 }),
      new SimpleSpanProcessor(recorded),
    ],
  });
  return { provider, recorded, recording };
}

// Time as OTel HrTime [seconds, nanos]: `ms` milliseconds and `ns` nanoseconds after `base`
// (unix nanoseconds, a BigInt).
function hrAt(base, ms, ns) {
  const total = base + BigInt(ms) * 1_000_000n + BigInt(ns);
  return [Number(total / 1_000_000_000n), Number(total % 1_000_000_000n)];
}

function nanosOf(hr) {
  return BigInt(hr[0]) * 1_000_000_000n + BigInt(hr[1]);
}

// The server's time format: RFC 3339 in UTC with nine fraction digits.
function isoOf(hr) {
  const seconds = new Date(hr[0] * 1000).toISOString().slice(0, 19);
  return `${seconds}.${String(hr[1]).padStart(9, '0')}Z`;
}

function secondsBetween(from, to) {
  return Number(nanosOf(to) - nanosOf(from)) / 1e9;
}

// Emits one order's lifecycle as real SDK spans across two services, all in one trace:
// shop-api initiates and submits the order and publishes a price request; mes-api consumes it
// (child of and linked to the producer, as the broker's headers would carry it), calculates
// the price with a failing geometry check under it, and reports PRICE_CALCULATED.
// Times are explicit and nanosecond-exact, a minute in the past.
function emitOrderLifecycle({ shop, mes, orderId, messageId }) {
  const base = BigInt(Date.now() - 60_000) * 1_000_000n;
  const t = (ms, ns) => hrAt(base, ms, ns);
  const order = { order_id: orderId };

  const root = shop.startSpan(
    'order.root',
    {
      kind: SpanKind.SERVER,
      startTime: t(0, 1),
      attributes: { ...order, 'http.route': '/orders' },
    },
    ROOT_CONTEXT);
  const rootContext = trace.setSpan(ROOT_CONTEXT, root);

  shop
    .startSpan(
      'shop.init',
      {
        startTime: t(100, 3),
        attributes: { ...order, new_status: 'INITIATED', event_version: 1 },
      },
      rootContext)
    .end(t(200, 5));
  shop
    .startSpan(
      'shop.submit',
      {
        startTime: t(300, 7),
        attributes: {
          ...order,
          prev_status: 'INITIATED',
          new_status: 'SUBMITTED',
          event_version: 2,
          partner_id: kPartnerId,
        },
      },
      rootContext)
    .end(t(400, 11));

  const publish = shop.startSpan(
    'mq.publish.price',
    {
      kind: SpanKind.PRODUCER,
      startTime: t(500, 13),
      attributes: {
        ...order,
        'messaging.system': 'rabbitmq',
        'messaging.destination.name': kExchange,
        'messaging.message.id': messageId,
        queue: kQueue,
      },
    },
    rootContext);
  publish.end(t(520, 17));

  // What the consumer extracts from the message headers.
  const carried = { ...publish.spanContext(), isRemote: true };
  const consume = mes.startSpan(
    'mq.consume.price',
    {
      kind: SpanKind.CONSUMER,
      startTime: t(1500, 19),
      links: [{ context: carried, attributes: { 'messaging.operation.type': 'process' } }],
      attributes: {
        ...order,
        'messaging.system': 'rabbitmq',
        'messaging.destination.name': kQueue,
        'messaging.message.id': messageId,
        queue: kQueue,
      },
    },
    trace.setSpanContext(ROOT_CONTEXT, carried));
  const consumeContext = trace.setSpan(ROOT_CONTEXT, consume);

  const calc = mes.startSpan(
    'mes.price.calc',
    {
      startTime: t(1600, 23),
      attributes: {
        ...order,
        polygon_count: 48213,
        'price.amount_eur': 129.75,
        expedite: false,
        materials: ['PLA', 'PETG'],
      },
    },
    consumeContext);
  const check = mes.startSpan(
    'mes.geometry.check',
    { startTime: t(1700, 29), attributes: { ...order, error_code: 'GEOM_OPEN_MESH' } },
    trace.setSpan(consumeContext, calc));
  check.addEvent('geometry.rejected', { 'mesh.open_edges': 12 }, t(1750, 31));
  check.setStatus({ code: SpanStatusCode.ERROR, message: 'mesh is not closed' });
  check.end(t(1800, 37));
  calc.end(t(3000, 41));

  const calculated = mes.startSpan(
    'mes.price.calculated',
    {
      startTime: t(3100, 43),
      attributes: {
        ...order,
        prev_status: 'SUBMITTED',
        new_status: 'PRICE_CALCULATED',
        event_version: 3,
      },
    },
    consumeContext);
  calculated.setStatus({ code: SpanStatusCode.OK });
  calculated.end(t(3200, 47));
  consume.end(t(4000, 53));
  root.end(t(5000, 59));
  return root.spanContext().traceId;
}

async function getJson(url) {
  const res = await fetch(url, { signal: AbortSignal.timeout(kRequestTimeoutMs) });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, contentType: res.headers.get('content-type'), body, text };
}

// GETs `url` until `done(response)` holds or time runs out; returns the last response.
async function pollJson(url, done) {
  const deadline = Date.now() + kPollTimeoutMs;
  let res;
  for (;;) {
    res = await getJson(url);
    if (done(res) || Date.now() >= deadline) return res;
    await sleep(100);
  }
}

// An OTLP/JSON AnyValue as the JS value the SDK was given.
function fromAnyValue(v) {
  if ('stringValue' in v) return v.stringValue;
  if ('boolValue' in v) return v.boolValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return v.doubleValue;
  if ('arrayValue' in v) return (v.arrayValue.values ?? []).map(fromAnyValue);
  throw new Error(`unexpected attribute value ${JSON.stringify(v)}`);
}

function fromAttributes(list) {
  return Object.fromEntries((list ?? []).map((kv) => [kv.key, fromAnyValue(kv.value)]));
}

// Every span of a GET /api/traces answer, with its resource and scope.
function flattenBatches(batches) {
  const out = [];
  for (const rs of batches) {
    const resource = fromAttributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const span of ss.spans ?? []) out.push({ resource, scope: ss.scope, span });
    }
  }
  return out;
}

// Asserts that the stored span is the one the SDK finished, field by field.
function assertSameSpan(stored, sdk) {
  const { resource, scope, span } = stored;
  const what = `span ${sdk.name} (${sdk.spanContext().spanId})`;
  assert.equal(span.traceId, sdk.spanContext().traceId, `${what}: traceId`);
  assert.equal(span.name, sdk.name, `${what}: name`);
  // OTLP numbers span kinds one above the API's enum (0 is UNSPECIFIED).
  assert.equal(span.kind, sdk.kind + 1, `${what}: kind`);
  assert.equal(span.parentSpanId, sdk.parentSpanContext?.spanId, `${what}: parentSpanId`);
  assert.equal(span.startTimeUnixNano, String(nanosOf(sdk.startTime)), `${what}: start`);
  assert.equal(span.endTimeUnixNano, String(nanosOf(sdk.endTime)), `${what}: end`);
  // ordertrace adds the design's derived attributes; each is checked against what the SDK sent,
  // and everything else must read back exactly as sent.
  // - `gap_detected` on a root span when the order had a gap (these test orders do not follow
  //   the full default lifecycle);
  // - `status_transition_latency` (seconds) on a transition span: its own duration;
  // - `stage_duration` (seconds) on a transition span with prev_status, when the previous
  //   status was already known;
  // - `calc_duration` on mes.price.calc: its duration.
  const {
    gap_detected: gapDetected,
    status_transition_latency: transitionLatency,
    stage_duration: stageDuration,
    calc_duration: calcDuration,
    publish_to_consume_latency: publishToConsume,
    ...attributes
  } = fromAttributes(span.attributes);
  if (gapDetected !== undefined) {
    assert.equal(gapDetected, true, `${what}: gap_detected`);
    assert.equal(span.parentSpanId ?? '', '', `${what}: gap_detected only on a root span`);
  }
  const seconds = Number(BigInt(nanosOf(sdk.endTime)) - BigInt(nanosOf(sdk.startTime))) / 1e9;
  if (sdk.attributes.new_status !== undefined && sdk.status.code !== 2) {
    assert.ok(Math.abs(transitionLatency - seconds) < 1e-6,
              `${what}: status_transition_latency ${transitionLatency} vs ${seconds}`);
  } else {
    assert.equal(transitionLatency, undefined, `${what}: status_transition_latency`);
  }
  if (stageDuration !== undefined) {
    assert.ok(sdk.attributes.prev_status !== undefined && stageDuration >= 0,
              `${what}: stage_duration ${stageDuration}`);
  }
  if (sdk.name === 'mes.price.calc') {
    assert.ok(Math.abs(calcDuration - seconds) < 1e-6, `${what}: calc_duration`);
  } else {
    assert.equal(calcDuration, undefined, `${what}: calc_duration`);
  }
  if (publishToConsume !== undefined) {
    assert.equal(span.kind, 5, `${what}: publish_to_consume_latency only on a consumer`);
    assert.ok(publishToConsume >= 0, `${what}: publish_to_consume_latency`);
  }
  assert.deepEqual(attributes, { ...sdk.attributes }, `${what}: attributes`);
  assert.equal(span.status?.code ?? 0, sdk.status.code, `${what}: status code`);
  assert.equal(span.status?.message ?? '', sdk.status.message ?? '', `${what}: status message`);
  assert.deepEqual(
    (span.links ?? []).map((l) => ({
      traceId: l.traceId,
      spanId: l.spanId,
      attributes: fromAttributes(l.attributes),
    })),
    sdk.links.map((l) => ({
      traceId: l.context.traceId,
      spanId: l.context.spanId,
      attributes: { ...l.attributes },
    })),
    `${what}: links`);
  assert.deepEqual(
    (span.events ?? []).map((e) => ({
      name: e.name,
      time: e.timeUnixNano,
      attributes: fromAttributes(e.attributes),
    })),
    sdk.events.map((e) => ({
      name: e.name,
      time: String(nanosOf(e.time)),
      attributes: { ...e.attributes },
    })),
    `${what}: events`);
  assert.deepEqual(resource, { ...sdk.resource.attributes }, `${what}: resource`);
  assert.equal(scope?.name, sdk.instrumentationScope.name, `${what}: scope name`);
  assert.equal(scope?.version, sdk.instrumentationScope.version, `${what}: scope version`);
}

function assertOrder(order, { orderId, messageId, traceId, spans }) {
  const byName = (name) => spans.find((s) => s.name === name);
  const root = byName('order.root');
  const init = byName('shop.init');
  const submit = byName('shop.submit');
  const publish = byName('mq.publish.price');
  const consume = byName('mq.consume.price');
  const check = byName('mes.geometry.check');
  const calculated = byName('mes.price.calculated');

  assert.equal(order.order_id, orderId);
  assert.equal(order.trace_id, traceId);
  assert.deepEqual(order.trace_ids, [traceId]);
  assert.equal(order.partner_id, kPartnerId);
  assert.equal(order.current_status, 'PRICE_CALCULATED');
  assert.equal(order.status_since, isoOf(calculated.endTime));
  assert.equal(order.first_seen, isoOf(root.startTime));
  assert.equal(order.last_seen, isoOf(root.endTime));

  // The default lifecycle's SLAs (ordertrace.yaml, lifecycle.stages); this order is fast.
  const kSlaSeconds = { INITIATED: 1800, SUBMITTED: 600, PRICE_CALCULATED: 7200 };
  const stage = (span, service, prev, version, next) => ({
    status: span.attributes.new_status,
    sla_seconds: kSlaSeconds[span.attributes.new_status],
    over_sla: false,
    reached_at: isoOf(span.endTime),
    left_at: next ? isoOf(next.endTime) : null,
    current: !next,
    prev_status: prev,
    service,
    span_name: span.name,
    span_id: span.spanContext().spanId,
    event_version: version,
    ...(next ? { duration_seconds: secondsBetween(span.endTime, next.endTime) } : {}),
  });
  const timeline = order.timeline.map(({ duration_seconds: d, ...rest }) =>
    rest.current ? rest : { ...rest, duration_seconds: d });
  assert.deepEqual(timeline, [
    stage(init, 'shop-api', null, 1, submit),
    stage(submit, 'shop-api', 'INITIATED', 2, calculated),
    stage(calculated, 'mes-api', 'SUBMITTED', 3, null),
  ]);
  assert.equal(order.timeline.at(-1).current, true);
  assert.ok(order.timeline.at(-1).duration_seconds > 0, 'the current stage has lasted a while');

  assert.deepEqual(order.last_success, {
    span_name: 'order.root',
    service: 'shop-api',
    at: isoOf(root.endTime),
    trace_id: traceId,
    span_id: root.spanContext().spanId,
  });
  assert.deepEqual(order.last_error, {
    span_name: 'mes.geometry.check',
    service: 'mes-api',
    at: isoOf(check.endTime),
    trace_id: traceId,
    span_id: check.spanContext().spanId,
    error_code: 'GEOM_OPEN_MESH',
    error_message: 'mesh is not closed',
  });

  const hop = {
    message_id: messageId,
    queue: kQueue,
    published_at: isoOf(publish.startTime),
    consumed_at: isoOf(consume.startTime),
    retry_count: 0,
    state: 'consumed',
    publish_to_consume_seconds: secondsBetween(publish.startTime, consume.startTime),
  };
  assert.deepEqual(order.last_message, hop);
  assert.deepEqual(order.messages, [hop]);
  assert.deepEqual(order.where, { service: 'shop-api', queue: null });
}

// Sends one order's lifecycle through two providers (shop-api, mes-api) that export with
// `makeExporter()`; asserts every export was acknowledged. Returns what the SDK finished.
async function exportOrderLifecycle(makeExporter, key) {
  const orderId = `e2e-${key}-${randomUUID()}`;
  const messageId = `msg-${randomBytes(8).toString('hex')}`;
  const shop = makeProvider('shop-api', makeExporter());
  const mes = makeProvider('mes-api', makeExporter());
  let traceId;
  const finished = new Map();
  try {
    traceId = emitOrderLifecycle({
      shop: shop.provider.getTracer('e2e.shop', '1.0.0'),
      mes: mes.provider.getTracer('e2e.mes', '1.0.0'),
      orderId,
      messageId,
    });
    await shop.provider.forceFlush();
    await mes.provider.forceFlush();
    // Read before shutdown: shutting down clears the in-memory exporter.
    finished.set('shop-api', shop.recorded.getFinishedSpans());
    finished.set('mes-api', mes.recorded.getFinishedSpans());
  } finally {
    await shop.provider.shutdown();
    await mes.provider.shutdown();
  }

  // Every export was acknowledged, and together they carried every span.
  for (const [service, p] of [['shop-api', shop], ['mes-api', mes]]) {
    assert.ok(p.recording.results.length > 0, `${service}: nothing was exported`);
    for (const r of p.recording.results) {
      assert.equal(r.code, 0, `${service}: an export failed: ${r.error}`);
    }
    assert.equal(
      p.recording.results.reduce((n, r) => n + r.spans, 0),
      finished.get(service).length,
      `${service}: exported span count`);
    assert.equal(finished.get(service).length, 4, `${service}: spans created`);
  }
  return { orderId, messageId, traceId, spans: [...finished.values()].flat() };
}

// GET /api/traces/{traceId} holds exactly the SDK's spans, each as the SDK finished it.
async function assertStoredTrace(api, traceId, spans) {
  const res = await pollJson(
    `${api}/api/traces/${traceId}`,
    (r) => r.status === 200 && flattenBatches(r.body.batches).length >= spans.length);
  assert.equal(res.status, 200, res.text);
  const stored = flattenBatches(res.body.batches);
  assert.deepEqual(
    stored.map((s) => `${s.span.spanId} ${s.span.name}`).sort(),
    spans.map((s) => `${s.spanContext().spanId} ${s.name}`).sort(),
    'the stored trace holds exactly the spans the SDK created');
  for (const sdk of spans) {
    assertSameSpan(stored.find((s) => s.span.spanId === sdk.spanContext().spanId), sdk);
  }

  const named = (name) => stored.find((s) => s.span.name === name).span;
  assert.deepEqual(
    named('mes.price.calc').attributes.find((kv) => kv.key === 'polygon_count').value,
    { intValue: '48213' },
    'polygon_count stays an int');
  const consume = named('mq.consume.price');
  const publish = named('mq.publish.price');
  assert.equal(consume.kind, 5, 'CONSUMER');
  assert.equal(publish.kind, 4, 'PRODUCER');
  assert.equal(consume.parentSpanId, publish.spanId);
  assert.deepEqual(
    consume.links.map((l) => [l.traceId, l.spanId]),
    [[traceId, publish.spanId]],
    'the consumer links to the producer');
  assert.equal(named('mes.geometry.check').status.code, 2, 'ERROR');
  assert.equal(named('mes.price.calculated').status.code, 1, 'OK');
}

// Tempo's search by tag finds the order's trace, and only it.
async function assertSearchFinds(api, orderId, traceId, root) {
  const res = await getJson(`${api}/api/search?tags=${encodeURIComponent(`order_id=${orderId}`)}`);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body.traces, [
    {
      traceID: traceId,
      rootServiceName: 'shop-api',
      rootTraceName: 'order.root',
      startTimeUnixNano: String(nanosOf(root.startTime)),
      durationMs: Number((nanosOf(root.endTime) - nanosOf(root.startTime)) / 1_000_000n),
    },
  ]);
}

// The order list shows the order under its current status and its partner, not its old one.
async function assertListed(api, orderId, traceId) {
  const listed = await getJson(`${api}/api/v1/orders?status=PRICE_CALCULATED&limit=1000`);
  assert.equal(listed.status, 200, listed.text);
  assert.equal(listed.body.count, listed.body.orders.length);
  const summary = listed.body.orders.find((o) => o.order_id === orderId);
  assert.ok(summary, `${orderId} is not listed under PRICE_CALCULATED: ${listed.text}`);
  assert.equal(summary.current_status, 'PRICE_CALCULATED');
  assert.equal(summary.partner_id, kPartnerId);
  assert.equal(summary.trace_id, traceId);

  const byPartner = await getJson(`${api}/api/v1/orders?partner_id=${kPartnerId}&limit=1000`);
  assert.equal(byPartner.status, 200, byPartner.text);
  assert.ok(byPartner.body.orders.some((o) => o.order_id === orderId), byPartner.text);

  const submitted = await getJson(`${api}/api/v1/orders?status=SUBMITTED&limit=1000`);
  assert.equal(submitted.status, 200, submitted.text);
  assert.ok(
    !submitted.body.orders.some((o) => o.order_id === orderId),
    'an order that moved on is no longer listed under its old status');
}

describe('ordertrace receives the OpenTelemetry JS SDK', () => {
  let server;

  before(async () => {
    server = await startOrdertrace();
  });
  after(async () => {
    await server?.stop();
  });

  for (const exporter of kExporters) {
    const name = `${exporter.name}: an order's lifecycle reads back`;
    test(name, { timeout: kTestTimeoutMs }, async () => {
      const { orderId, messageId, traceId, spans } = await exportOrderLifecycle(
        () => exporter.make(server),
        exporter.key);
      const api = server.apiUrl;

      const order = await pollJson(
        `${api}/api/v1/orders/${encodeURIComponent(orderId)}`,
        (r) => r.status === 200 && r.body.current_status === 'PRICE_CALCULATED');
      assert.equal(order.status, 200, order.text);
      assert.match(order.contentType, /^application\/json/);
      assertOrder(order.body, { orderId, messageId, traceId, spans });

      await assertStoredTrace(api, traceId, spans);
      await assertSearchFinds(api, orderId, traceId, spans.find((s) => s.name === 'order.root'));
      await assertListed(api, orderId, traceId);
    });
  }

  describe('malformed input', () => {
    async function postTraces(body, contentType) {
      const res = await fetch(server.otlpHttpUrl, {
        method: 'POST',
        headers: { 'Content-Type': contentType },
        body,
        signal: AbortSignal.timeout(kRequestTimeoutMs),
      });
      const text = await res.text();
      return { status: res.status, contentType: res.headers.get('content-type'), text };
    }

    test('a body that is not JSON is refused with 400', async () => {
      const res = await postTraces('{"resourceSpans": [', 'application/json');
      assert.equal(res.status, 400, res.text);
      assert.match(res.contentType, /^application\/json/);
      assert.equal(JSON.parse(res.text).code, 3, 'INVALID_ARGUMENT');
    });

    test('an unknown content type is refused with 415', async () => {
      const res = await postTraces('resourceSpans', 'text/plain');
      assert.equal(res.status, 415, res.text);
    });

    test('an all-zero traceId costs that span alone', async () => {
      const orderId = `e2e-partial-${randomUUID()}`;
      const traceId = randomBytes(16).toString('hex');
      const spanId = randomBytes(8).toString('hex');
      const now = BigInt(Date.now() - 10_000) * 1_000_000n;
      const span = (trace, id, name) => ({
        traceId: trace,
        spanId: id,
        name,
        kind: 1,
        startTimeUnixNano: String(now),
        endTimeUnixNano: String(now + 1_000_000n),
        attributes: [{ key: 'order_id', value: { stringValue: orderId } }],
      });
      const request = {
        resourceSpans: [
          {
            resource: { attributes: [{ key: 'service.name', value: { stringValue: 'shop-api' } }] },
            scopeSpans: [
              {
                scope: { name: 'e2e.partial' },
                spans: [
                  span(traceId, spanId, 'valid.span'),
                  span('0'.repeat(32), randomBytes(8).toString('hex'), 'zero.trace'),
                ],
              },
            ],
          },
        ],
      };
      const res = await postTraces(JSON.stringify(request), 'application/json');
      assert.equal(res.status, 200, res.text);
      const body = JSON.parse(res.text);
      assert.equal(body.partialSuccess?.rejectedSpans, '1', res.text);
      assert.ok(body.partialSuccess.errorMessage, 'the rejection says why');

      const stored = await pollJson(
        `${server.apiUrl}/api/traces/${traceId}`,
        (r) => r.status === 200);
      assert.equal(stored.status, 200, stored.text);
      assert.deepEqual(
        flattenBatches(stored.body.batches).map((s) => [s.span.spanId, s.span.name]),
        [[spanId, 'valid.span']]);
      const order = await getJson(`${server.apiUrl}/api/v1/orders/${orderId}`);
      assert.equal(order.status, 200, order.text);
      assert.equal(order.body.trace_id, traceId);
    });

    test('an unknown order is 404 with a JSON error', async () => {
      const res = await getJson(`${server.apiUrl}/api/v1/orders/unknown-${randomUUID()}`);
      assert.equal(res.status, 404, res.text);
      assert.match(res.contentType, /^application\/json/);
      assert.equal(res.body.error.status, 404);
      assert.match(res.body.error.message, /unknown/);
    });

    test('a malformed trace id is 400', async () => {
      const res = await getJson(`${server.apiUrl}/api/traces/xyz`);
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.error.status, 400);
    });

    test('an unknown trace id is 404', async () => {
      const res = await getJson(`${server.apiUrl}/api/traces/${randomBytes(16).toString('hex')}`);
      assert.equal(res.status, 404, res.text);
    });
  });
});
