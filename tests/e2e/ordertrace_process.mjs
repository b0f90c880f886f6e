// Starts a real ordertrace on free loopback ports with a fresh data folder, for the end-to-end
// tests. Not a test file itself (node --test only picks up *.test.mjs here).
import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const kHost = '127.0.0.1';
const kReadyTimeoutMs = 15_000;
const kStopTimeoutMs = 5_000;
const kStartAttempts = 3;

// The binary under test: $ORDERTRACE_BIN, else the default build's.
export function ordertraceBinary() {
  const fromEnv = process.env.ORDERTRACE_BIN;
  const bin = fromEnv
    ? path.resolve(fromEnv)
    : fileURLToPath(new URL('../../build/src/ordertrace', import.meta.url));
  try {
    accessSync(bin, fsConstants.X_OK);
  } catch {
    throw new Error(
      `ordertrace binary not found or not executable at ${bin}; build it ` +
        '(ninja -C build ordertrace) or set ORDERTRACE_BIN');
  }
  return bin;
}

// `count` distinct free loopback ports: all are held open at once so that they differ, then
// released for the server to take.
export async function freePorts(count) {
  const servers = [];
  try {
    for (let i = 0; i < count; ++i) {
      const server = net.createServer();
      servers.push(server);
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, kHost, resolve);
      });
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(() => resolve()))));
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// A running ordertrace. Call stop() when done, also after a failure.
class OrdertraceProcess {
  constructor(child, ports, dataDir, ca) {
    this.child = child;
    this.ca = ca;  // the CA the server's certificate chains to; undefined: plain HTTP
    this.grpcPort = ports[0];
    this.otlpHttpPort = ports[1];
    this.apiPort = ports[2];
    this.dataDir = dataDir;
    this.output = '';
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    child.stdout.on('data', (d) => (this.output += d));
    child.stderr.on('data', (d) => (this.output += d));
    // A test process that dies without reaching stop() must not leave the server behind.
    this.onExit = () => this.child.kill('SIGKILL');
    process.once('exit', this.onExit);
  }

  get scheme() {
    return this.ca ? 'https' : 'http';
  }
  get apiUrl() {
    return `${this.scheme}://${kHost}:${this.apiPort}`;
  }
  get otlpHttpUrl() {
    return `${this.scheme}://${kHost}:${this.otlpHttpPort}/v1/traces`;
  }
  get otlpGrpcUrl() {
    return `${this.scheme}://${kHost}:${this.grpcPort}`;
  }

  // GET `path` on the API: { status, body }. Over TLS it trusts only this.ca (fetch cannot be
  // given a CA).
  async get(path, timeoutMs = 1000) {
    if (!this.ca) {
      const res = await fetch(`${this.apiUrl}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
      return { status: res.status, body: await res.text() };
    }
    return new Promise((resolve, reject) => {
      const req = https.get(`${this.apiUrl}${path}`, { ca: this.ca, timeout: timeoutMs }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode, body }));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
    });
  }

  // Resolves once GET /readyz answers 200; rejects when the process exits or time runs out.
  async waitReady() {
    const deadline = Date.now() + kReadyTimeoutMs;
    let exited = null;
    this.exited.then((e) => (exited = e));
    while (Date.now() < deadline) {
      if (exited) {
        throw new Error(
          `ordertrace exited (code ${exited.code}, signal ${exited.signal}) before it was ` +
            `ready:\n${this.output}`);
      }
      try {
        const res = await this.get('/readyz');
        if (res.status === 200) return;
      } catch {
        // Not listening yet.
      }
      await sleep(100);
    }
    throw new Error(`ordertrace was not ready within ${kReadyTimeoutMs} ms:\n${this.output}`);
  }

  // SIGTERM, then SIGKILL after a grace period; removes the data folder.
  async stop() {
    process.removeListener('exit', this.onExit);
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), kStopTimeoutMs);
      await this.exited;
      clearTimeout(timer);
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

// Starts ordertrace and waits until it is ready. Retries on fresh ports when a start fails
// (another process may have taken a port between probing and binding). `config`: an
// ordertrace.yaml to start with; `ca`: the CA (PEM) its `tls:` certificate chains to, which
// makes the URLs https.
export async function startOrdertrace({ config, ca } = {}) {
  const bin = ordertraceBinary();
  let lastError;
  for (let attempt = 0; attempt < kStartAttempts; ++attempt) {
    const ports = await freePorts(3);
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'ordertrace-e2e-'));
    const child = spawn(
      bin,
      [
        '--data-dir', dataDir,
        '--otlp-grpc-listen', `${kHost}:${ports[0]}`,
        '--otlp-http-listen', `${kHost}:${ports[1]}`,
        '--http-listen', `${kHost}:${ports[2]}`,
        ...(config ? ['--config', config] : []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    const server = new OrdertraceProcess(child, ports, dataDir, ca);
    try {
      await server.waitReady();
      return server;
    } catch (e) {
      lastError = e;
      await server.stop();
    }
  }
  throw lastError;
}
