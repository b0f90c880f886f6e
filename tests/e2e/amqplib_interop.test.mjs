// Interop: a price request published by Node's `amqplib` under the official
// OpenTelemetry amqplib instrumentation is continued by the C++ mes-api in the same trace.
//
// The test starts its own RabbitMQ (scripts/rabbitmq.sh, needs root), ordertrace and mes-api on
// free loopback ports. A JS "partner gateway" (the OpenTelemetry JS SDK, exporting OTLP/HTTP
// protobuf to ordertrace) publishes one price request to `alexandrite.price` inside an active
// span; the instrumentation makes the PRODUCER span and injects its `traceparent` into the
// message headers. The test then reads the trace back from ordertrace and checks that mes-api's
// `mq.consume.price` span (CONSUMER) is in that trace, a child of and linked to the JS publish
// span, as docs/services.md ("Traces") asks of a message without `order_traceparent`.
//
// A tap queue bound next to mes-api's own queue lets the test see each message exactly as the
// broker delivers it (read with basic.get, which the instrumentation does not trace).
//
// Needs MES_API_BIN (run.sh --mes-api passes it) and ORDERTRACE_BIN; fails, not skips, without.
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { accessSync, constants as fsConstants, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { SpanKind, context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator, suppressTracing } from '@opentelemetry/core';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { AmqplibInstrumentation } from '@opentelemetry/instrumentation-amqplib';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';

import { freePorts, startOrdertrace } from './ordertrace_process.mjs';

// The instrumentation patches amqplib when it is require()d (require-in-the-middle), so the
// context manager, the propagator and the instrumentation come first, then amqplib is loaded
// through require, never through a static import (which would load it before the patch).
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
const amqplibInstrumentation = new AmqplibInstrumentation();
const amqp = createRequire(import.meta.url)('amqplib');

// A test process ended by a signal still stops what it started: exit() runs the 'exit'
// handlers below and in ordertrace_process.mjs (RabbitMQ is not a child, it would outlive us).
for (const [signal, number] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]]) {
  process.once(signal, () => process.exit(128 + number));
}

const kHost = '127.0.0.1';
const kService = 'partner-gateway-js';
const kExchange = 'alexandrite.price';
const kRoutingKey = 'price.request';
const kMesQueue = 'mes.price.requests';
const kPolygonCount = 12000;
const kSubmittedVersion = 3;

const kRabbitStartTimeoutMs = 90_000;
const kRabbitStopTimeoutMs = 60_000;
const kMesReadyTimeoutMs = 20_000;
const kTopologyTimeoutMs = 20_000;
const kTraceTimeoutMs = 30_000;
const kStopTimeoutMs = 10_000;
const kRequestTimeoutMs = 5_000;
const kExportTimeoutMs = 10_000;

const kOtlpKind = { INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 };

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function repoRoot() {
  return process.env.ORDERTRACE_REPO_ROOT
    ? path.resolve(process.env.ORDERTRACE_REPO_ROOT)
    : fileURLToPath(new URL('../..', import.meta.url));
}

// The mes-api under test: $MES_API_BIN. No default on purpose: a missing binary fails the test.
function mesApiBinary() {
  const fromEnv = process.env.MES_API_BIN;
  if (!fromEnv) {
    throw new Error(
      'MES_API_BIN is not set: this interop test needs the C++ mes-api. Build it ' +
        '(cmake --build build --target mes-api) and run tests/e2e/run.sh --mes-api ' +
        'build/services/mes-api [build/src/ordertrace], or set MES_API_BIN');
  }
  const bin = path.resolve(fromEnv);
  try {
    accessSync(bin, fsConstants.X_OK);
  } catch {
    throw new Error(`MES_API_BIN=${fromEnv}: no executable mes-api at ${bin}; build it first`);
  }
  return bin;
}

function run(file, args, timeoutMs) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error) {
        error.message += `\nstdout: ${stdout}\nstderr: ${stderr}`;
        reject(error);
      } else {
        resolve({ stdout, stderr });
      }
    });
  });
}

// A private RabbitMQ node on a free loopback port, through scripts/rabbitmq.sh.
class Rabbit {
  constructor(script, dir, url) {
    this.script = script;
    this.dir = dir;
    this.url = url;
    this.onExit = () => {
      spawnSync('bash', [script, 'stop', dir], { stdio: 'ignore', timeout: kRabbitStopTimeoutMs });
      rmSync(dir, { recursive: true, force: true });
    };
    process.once('exit', this.onExit);
  }

  static async start() {
    const script = path.join(repoRoot(), 'scripts', 'rabbitmq.sh');
    let lastError;
    for (let attempt = 0; attempt < 2; ++attempt) {
      const [port] = await freePorts(1);
      const dir = mkdtempSync(path.join(os.tmpdir(), 'ordertrace-rabbitmq-'));
      try {
        const { stdout } = await run('bash', [script, 'start', dir, String(port)],
          kRabbitStartTimeoutMs);
        const url = stdout.trim().split('\n').pop();
        assert.match(url, /^amqp:\/\//, `rabbitmq.sh printed no AMQP URL: ${stdout}`);
        return new Rabbit(script, dir, url);
      } catch (e) {
        lastError = e;
        await run('bash', [script, 'stop', dir], kRabbitStopTimeoutMs).catch(() => {});
        rmSync(dir, { recursive: true, force: true });
      }
    }
    throw new Error(`could not start RabbitMQ: ${lastError.message}`);
  }

  async stop() {
    process.removeListener('exit', this.onExit);
    try {
      await run('bash', [this.script, 'stop', this.dir], kRabbitStopTimeoutMs);
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

// A running mes-api. Call stop() when done, also after a failure.
class MesApi {
  constructor({ amqpUrl, otlpEndpoint }) {
    this.bin = mesApiBinary();
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'ordertrace-mes-api-'));
    this.amqpUrl = amqpUrl;
    this.otlpEndpoint = otlpEndpoint;
    this.output = '';
  }

  get url() {
    return `http://${kHost}:${this.port}`;
  }

  // Starts it and waits until its HTTP port answers; retries on a fresh port if it exits.
  async start() {
    let lastError;
    for (let attempt = 0; attempt < 2; ++attempt) {
      [this.port] = await freePorts(1);
      this.output = '';
      this.child = spawn(
        this.bin,
        [
          '--http-listen', `${kHost}:${this.port}`,
          '--amqp-url', this.amqpUrl,
          '--otlp-endpoint', this.otlpEndpoint,
          '--db', path.join(this.dir, 'mes.db'),
          '--time-scale', '3600',
        ],
        { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
      this.child.stdout.on('data', (d) => (this.output += d));
      this.child.stderr.on('data', (d) => (this.output += d));
      this.exit = null;
      this.exited = new Promise((resolve) => {
        this.child.once('exit', (code, signal) => resolve((this.exit = { code, signal })));
      });
      this.onExit = () => {
        this.child.kill('SIGKILL');
        rmSync(this.dir, { recursive: true, force: true });
      };
      process.once('exit', this.onExit);
      try {
        await this.waitListening();
        return;
      } catch (e) {
        lastError = e;
        await this.kill();
      }
    }
    throw lastError;
  }

  async waitListening() {
    const deadline = Date.now() + kMesReadyTimeoutMs;
    while (Date.now() < deadline) {
      if (this.exit) {
        throw new Error(`mes-api exited (code ${this.exit.code}, signal ${this.exit.signal}) ` +
          `before its HTTP port answered:\n${this.output}`);
      }
      try {
        // Any HTTP answer means the server is up.
        const res = await fetch(`${this.url}/api/dashboard/new-orders?limit=1`,
          { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        return;
      } catch {
        // Not listening yet.
      }
      await sleep(100);
    }
    throw new Error(`mes-api did not answer HTTP within ${kMesReadyTimeoutMs} ms:\n${this.output}`);
  }

  assertRunning(when) {
    assert.equal(this.exit, null,
      `mes-api exited ${when} (${JSON.stringify(this.exit)}):\n${this.output}`);
  }

  // SIGTERM, then SIGKILL after a grace period. Returns how it ended.
  async stop() {
    process.removeListener('exit', this.onExit);
    if (this.exit === null) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), kStopTimeoutMs);
      await this.exited;
      clearTimeout(timer);
    }
    return this.exit;
  }

  async kill() {
    process.removeListener('exit', this.onExit);
    if (this.exit === null) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }

  cleanUp() {
    rmSync(this.dir, { recursive: true, force: true });
  }
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

// GETs `url` until `done(response)` holds or `timeoutMs` runs out; returns the last response.
async function pollJson(url, done, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let res;
  for (;;) {
    try {
      res = await getJson(url);
      if (done(res)) return res;
    } catch (e) {
      res = { status: 0, text: String(e) };
    }
    if (Date.now() >= deadline) return res;
    await sleep(250);
  }
}

function fromAnyValue(v) {
  if ('stringValue' in v) return v.stringValue;
  if ('boolValue' in v) return v.boolValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return v.doubleValue;
  if ('arrayValue' in v) return (v.arrayValue.values ?? []).map(fromAnyValue);
  return undefined;
}

function fromAttributes(list) {
  return Object.fromEntries((list ?? []).map((kv) => [kv.key, fromAnyValue(kv.value)]));
}

// Every span of a GET /api/traces answer, with its service and attributes as plain objects.
function flattenBatches(batches) {
  const out = [];
  for (const rs of batches ?? []) {
    const service = fromAttributes(rs.resource?.attributes)['service.name'];
    for (const ss of rs.scopeSpans ?? []) {
      for (const span of ss.spans ?? []) {
        out.push({ service, span, attributes: fromAttributes(span.attributes) });
      }
    }
  }
  return out;
}

function describeSpans(spans) {
  return spans
    .map((s) => `  ${s.service} ${s.span.name} span=${s.span.spanId} parent=${s.span.parentSpanId}`)
    .join('\n');
}

// Parses a W3C traceparent (version 00).
function parseTraceparent(value) {
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(String(value));
  return m ? { traceId: m[1], spanId: m[2], flags: m[3] } : null;
}

// Reads the message `messageId` from `queue` (basic.get, which is not traced), skipping any
// other (left by an earlier failed test), waiting up to `timeoutMs`.
async function getMessage(channel, queue, messageId, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const msg = await channel.get(queue, { noAck: true });
    if (msg && msg.properties.messageId === messageId) return msg;
    if (!msg) {
      if (Date.now() >= deadline) {
        throw new Error(`message ${messageId} did not arrive on the tap queue ${queue}`);
      }
      await sleep(50);
    }
  }
}

// A price request as docs/services.md ("Messages") describes it.
function priceRequest(orderId) {
  return Buffer.from(JSON.stringify({
    order_id: orderId,
    event_version: kSubmittedVersion,
    polygon_count: kPolygonCount,
  }));
}

// Publishes on a confirm channel and waits for the broker's confirm; an unroutable message
// (mandatory, returned) fails.
async function publishConfirmed(channel, content, options) {
  let returned = null;
  const onReturn = (msg) => (returned = msg);
  channel.once('return', onReturn);
  try {
    await new Promise((resolve, reject) => {
      channel.publish(kExchange, kRoutingKey, content, { ...options, mandatory: true },
        (err) => (err ? reject(new Error(`the broker nacked the publish: ${err}`)) : resolve()));
    });
    await channel.waitForConfirms();
  } finally {
    channel.removeListener('return', onReturn);
  }
  assert.equal(returned, null, 'the price request was unroutable (returned by the broker)');
}

describe('a message published by Node amqplib under the OpenTelemetry instrumentation', () => {
  let rabbit;
  let ordertrace;
  let mes;
  let provider;
  let recorded;
  let recording;
  let connection;
  let publishChannel;
  let tapChannel;
  let tapQueue;

  before(async () => {
    mesApiBinary(); // fail first and clearly when the binary is missing
    rabbit = await Rabbit.start();
    ordertrace = await startOrdertrace();

    recorded = new InMemorySpanExporter();
    recording = new RecordingExporter(
      new ProtoTraceExporter({ url: ordertrace.otlpHttpUrl, timeoutMillis: kExportTimeoutMs }));
    provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': kService, 'deployment.environment': 'e2e' }),
      spanProcessors: [
        new BatchSpanProcessor(recording, { scheduledDelayMillis: 100 }),
        new SimpleSpanProcessor(recorded),
      ],
    });
    amqplibInstrumentation.setTracerProvider(provider);

    mes = new MesApi({ amqpUrl: rabbit.url, otlpEndpoint: ordertrace.otlpHttpUrl });
    await mes.start();

    connection = await amqp.connect(rabbit.url);
    // mes-api declares its topology at start, not necessarily before its HTTP port opens:
    // wait for the exchange (a failed check closes its channel, so one channel per attempt).
    const deadline = Date.now() + kTopologyTimeoutMs;
    for (;;) {
      const check = await connection.createChannel();
      check.on('error', () => {});
      try {
        await check.checkExchange(kExchange);
        await check.checkQueue(kMesQueue);
        await check.close();
        break;
      } catch (e) {
        if (Date.now() >= deadline) {
          throw new Error(`mes-api did not declare exchange ${kExchange} and queue ${kMesQueue} ` +
            `within ${kTopologyTimeoutMs} ms (${e.message}):\n${mes.output}`);
        }
        await sleep(200);
      }
    }
    publishChannel = await connection.createConfirmChannel();
    tapChannel = await connection.createChannel();
    ({ queue: tapQueue } = await tapChannel.assertQueue('', { exclusive: true, autoDelete: true }));
    await tapChannel.bindQueue(tapQueue, kExchange, kRoutingKey);
  }, { timeout: 180_000 });

  after(async () => {
    // Each step runs even when an earlier one fails; RabbitMQ is always stopped.
    const steps = [
      () => connection?.close(),
      () => provider?.shutdown(),
      async () => {
        await mes?.kill();
        mes?.cleanUp();
      },
      () => ordertrace?.stop(),
      () => rabbit?.stop(),
    ];
    const errors = [];
    for (const step of steps) {
      try {
        await step();
      } catch (e) {
        errors.push(e);
      }
    }
    amqplibInstrumentation.disable();
    if (errors.length) throw errors[0];
  }, { timeout: 120_000 });

  test('mes-api continues the JS publish span in the same trace', { timeout: 90_000 }, async () => {
    const orderId = `e2e-amqplib-${randomUUID()}`;
    const messageId = randomUUID();
    const tracer = provider.getTracer('ordertrace-e2e');

    // The JS side: a parent span, and inside it the instrumented publish.
    const parent = await tracer.startActiveSpan(
      'partner.request_price',
      { kind: SpanKind.INTERNAL, attributes: { order_id: orderId } },
      async (span) => {
        try {
          await publishConfirmed(publishChannel, priceRequest(orderId), {
            persistent: true,
            contentType: 'application/json',
            messageId,
            headers: { order_id: orderId },
          });
        } finally {
          span.end();
        }
        return span;
      });
    const traceId = parent.spanContext().traceId;

    // The instrumentation made a PRODUCER span under the parent...
    const producers = recorded.getFinishedSpans().filter((s) => s.kind === SpanKind.PRODUCER);
    assert.equal(producers.length, 1,
      `the amqplib instrumentation recorded ${producers.length} publish spans (is it patching ` +
        'amqplib?)');
    const publish = producers[0];
    assert.equal(publish.spanContext().traceId, traceId);
    assert.equal(publish.parentSpanContext?.spanId, parent.spanContext().spanId);
    assert.equal(publish.attributes['messaging.system'], 'rabbitmq');
    const publishSpanId = publish.spanContext().spanId;

    // ...and injected its context into the headers the broker delivers.
    const delivered = await getMessage(tapChannel, tapQueue, messageId);
    assert.equal(delivered.properties.messageId, messageId);
    assert.equal(delivered.properties.deliveryMode, 2, 'persistent');
    const headers = delivered.properties.headers ?? {};
    assert.equal(String(headers.order_id), orderId);
    const carried = parseTraceparent(headers.traceparent);
    assert.ok(carried, `no valid traceparent header on the message: ${JSON.stringify(headers)}`);
    assert.equal(carried.traceId, traceId, 'traceparent carries the JS trace id');
    assert.equal(carried.spanId, publishSpanId, 'traceparent carries the JS publish span');
    assert.equal(headers.order_traceparent, undefined, 'a foreign publisher sends no order root');

    await provider.forceFlush();
    assert.ok(recording.results.length > 0, 'the JS SDK exported nothing');
    for (const r of recording.results) {
      assert.equal(r.code, 0, `a JS export to ordertrace failed: ${r.error}`);
    }

    // ordertrace holds the trace with mes-api's consume and transition spans in it.
    const wanted = (spans) =>
      spans.some((s) => s.service === 'mes-api' && s.span.name === 'mq.consume.price') &&
      spans.some((s) => s.service === 'mes-api' && s.span.name === 'mes.price.start') &&
      spans.some((s) => s.span.spanId === publishSpanId);
    const res = await pollJson(
      `${ordertrace.apiUrl}/api/traces/${traceId}`,
      (r) => r.status === 200 && wanted(flattenBatches(r.body?.batches)),
      kTraceTimeoutMs);
    mes.assertRunning('while handling the price request');
    const spans = res.status === 200 ? flattenBatches(res.body?.batches) : [];
    assert.ok(wanted(spans),
      `within ${kTraceTimeoutMs} ms the JS trace ${traceId} did not get mes-api's ` +
        `mq.consume.price and mes.price.start (last answer ${res.status}); it holds:\n` +
        `${describeSpans(spans)}\n--- mes-api output:\n${mes.output}`);

    const jsPublish = spans.find((s) => s.span.spanId === publishSpanId);
    assert.equal(jsPublish.service, kService);
    assert.equal(jsPublish.span.traceId, traceId);
    assert.equal(jsPublish.span.kind, kOtlpKind.PRODUCER);
    assert.equal(jsPublish.span.parentSpanId, parent.spanContext().spanId);
    assert.ok(spans.some((s) => s.span.spanId === parent.spanContext().spanId),
      'the JS parent span is in the trace');

    const consumes = spans.filter((s) => s.service === 'mes-api' && s.span.name === 'mq.consume.price');
    assert.equal(consumes.length, 1, `one consume span expected:\n${describeSpans(spans)}`);
    const consume = consumes[0];
    assert.equal(consume.span.traceId, traceId, 'same trace as the JS publish span');
    assert.equal(consume.span.kind, kOtlpKind.CONSUMER, 'mq.consume.price is a CONSUMER span');
    assert.deepEqual(
      (consume.span.links ?? []).map((l) => [l.traceId, l.spanId]),
      [[traceId, publishSpanId]],
      'mq.consume.price links to the JS publish span');
    assert.equal(consume.span.parentSpanId, publishSpanId,
      'without order_traceparent the consume span is the child of its publisher\'s span');
    assert.equal(consume.attributes['messaging.system'], 'rabbitmq');
    assert.equal(consume.attributes.order_id, orderId);
    assert.equal(consume.attributes['messaging.message.id'], messageId);
    assert.equal(consume.attributes.message_id, messageId);
    assert.equal(consume.attributes['messaging.destination.name'], kExchange);
    assert.equal(consume.attributes['messaging.rabbitmq.destination.routing_key'], kRoutingKey);
    assert.equal(consume.attributes.queue, kMesQueue);
    assert.equal(consume.attributes.retry_count, 0);

    const start = spans.find((s) => s.service === 'mes-api' && s.span.name === 'mes.price.start');
    assert.equal(start.span.traceId, traceId);
    assert.equal(start.attributes.order_id, orderId);
    assert.equal(start.attributes.new_status, 'PRICE_CALCULATION_STARTED');
    assert.equal(start.attributes.event_version, kSubmittedVersion + 1);

    // mes-api's own view: the calculation finished (time scale 3600 makes it take milliseconds).
    const order = await pollJson(
      `${mes.url}/api/orders/${encodeURIComponent(orderId)}`,
      (r) => r.status === 200 && r.body?.status === 'PRICE_CALCULATED',
      kTraceTimeoutMs);
    assert.equal(order.status, 200, order.text);
    assert.equal(order.body.status, 'PRICE_CALCULATED', order.text);
    assert.equal(order.body.polygon_count, kPolygonCount, order.text);
    assert.equal(order.body.complexity_class, 'simple', order.text);
  });

  test('a malformed traceparent from a plain publisher does not break mes-api',
    { timeout: 90_000 }, async () => {
      const orderId = `e2e-amqplib-bad-tp-${randomUUID()}`;
      const messageId = randomUUID();
      const malformed = '00-not-a-trace-id-zz';
      const recordedBefore = recorded.getFinishedSpans().length;

      // Tracing suppressed: the instrumentation records nothing and injects nothing, so the
      // message goes out exactly as a plain amqplib publisher sends it.
      await context.with(suppressTracing(context.active()), () =>
        publishConfirmed(publishChannel, priceRequest(orderId), {
          persistent: true,
          contentType: 'application/json',
          messageId,
          headers: { order_id: orderId, traceparent: malformed, tracestate: 'x=1' },
        }));
      assert.equal(recorded.getFinishedSpans().length, recordedBefore, 'no JS span was recorded');
      const delivered = await getMessage(tapChannel, tapQueue, messageId);
      assert.equal(delivered.properties.messageId, messageId);
      assert.equal(String(delivered.properties.headers?.traceparent), malformed,
        'the malformed traceparent reached the broker unchanged');

      // mes-api stays up and handles the request (an invalid traceparent is ignored, W3C).
      const order = await pollJson(
        `${mes.url}/api/orders/${encodeURIComponent(orderId)}`,
        (r) => r.status === 200 && r.body?.status === 'PRICE_CALCULATED',
        kTraceTimeoutMs);
      mes.assertRunning('after a message with a malformed traceparent');
      assert.equal(order.status, 200, `mes-api GET /api/orders/${orderId}: ${order.text}\n` +
        `--- mes-api output:\n${mes.output}`);
      assert.equal(order.body.status, 'PRICE_CALCULATED', order.text);

      // Its consume span starts a fresh trace: no parent, no link from the bad header.
      const found = await pollJson(
        `${ordertrace.apiUrl}/api/search?tags=${encodeURIComponent(`order_id=${orderId}`)}`,
        (r) => r.status === 200 && (r.body?.traces ?? []).length > 0,
        kTraceTimeoutMs);
      assert.equal(found.status, 200, found.text);
      assert.equal(found.body.traces.length, 1, found.text);
      const traceId = found.body.traces[0].traceID;
      assert.match(traceId, /^[0-9a-f]{32}$/);
      const res = await pollJson(
        `${ordertrace.apiUrl}/api/traces/${traceId}`,
        (r) => r.status === 200 &&
          flattenBatches(r.body?.batches).some((s) => s.span.name === 'mq.consume.price'),
        kTraceTimeoutMs);
      const spans = res.status === 200 ? flattenBatches(res.body?.batches) : [];
      const consume = spans.find((s) => s.span.name === 'mq.consume.price');
      assert.ok(consume, `no mq.consume.price in trace ${traceId}:\n${describeSpans(spans)}`);
      assert.equal(consume.span.parentSpanId, undefined, 'no parent from a malformed traceparent');
      assert.deepEqual(consume.span.links ?? [], [], 'no link from a malformed traceparent');
      assert.equal(consume.attributes.order_id, orderId);
    });

  test('mes-api stops cleanly on SIGTERM', { timeout: 30_000 }, async () => {
    mes.assertRunning('before SIGTERM');
    const exit = await mes.stop();
    assert.deepEqual(exit, { code: 0, signal: null },
      `SIGTERM should stop mes-api with exit code 0:\n${mes.output}`);
  });
});
