#!/usr/bin/env node
// Development stand-in for `attachd serve --dev --config F`: just enough of SPEC §3–§5 (tickets,
// cookie delivery, Origin check, attach.v1 frames, control, PTY via script(1)) to develop the client.
//
// NOT the product and not a test: the e2e suite runs the real binary by default. Use it only as
//   ATTACHD_BIN=e2e/support/fake-attachd.mjs npm run e2e
// to check the web client against the contract while the Rust server is unfinished.

import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, existsSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const args = process.argv.slice(2);
if (args[0] !== 'serve') {
  console.error('usage: fake-attachd serve --dev --config FILE');
  process.exit(2);
}
const configPath = args[args.indexOf('--config') + 1];
const config = configPath ? readFileSync(configPath, 'utf8') : '';
const tokenHashes = [...config.matchAll(/sha256\s*=\s*"([0-9a-f]{64})"/g)].map((m) => m[1]);
const lifetime = /max_lifetime\s*=\s*"(\d+)s"/.exec(config);
const maxLifetimeMs = lifetime ? Number(lifetime[1]) * 1000 : 8 * 3600 * 1000;
const listen = process.env.ATTACHD__SERVER__LISTEN ?? '127.0.0.1:8080';
const [host, portText] = listen.split(':');
const port = Number(portText);
const webRoot = process.env.ATTACHD__SERVER__WEB_ROOT ?? path.resolve('web/dist');
const allowedOrigins = new Set([`http://127.0.0.1:${port}`, `http://localhost:${port}`]);
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const sessions = new Map(); // id -> session
const tickets = new Map(); // ticket -> {sessionId, role, expires, used}

function json(res, status, body, headers = {}) {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers });
  res.end(body === undefined ? '' : JSON.stringify(body));
}
const fail = (res, status, error, message = error) => json(res, status, { error, message });

function authenticate(req) {
  const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
  if (!m) return null;
  const digest = createHash('sha256').update(m[1]).digest('hex');
  return tokenHashes.includes(digest) ? { subject: 'alice', tenant: 'acme' } : null;
}

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

function createSession() {
  const id = randomUUID();
  // script(1) gives /bin/sh a real PTY (echo, line editing) without native modules.
  const proc = spawn('script', ['-qfec', '/bin/sh', '/dev/null'], {
    env: { ...process.env, TERM: 'xterm-256color', PS1: '$ ' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const s = { id, name: null, command: ['/bin/sh'], created_at: new Date().toISOString(), proc, scrollback: Buffer.alloc(0), conns: new Set(), holder: null };
  const onOutput = (chunk) => {
    s.scrollback = Buffer.concat([s.scrollback, chunk]).subarray(-65536);
    for (const c of s.conns) c.sendBinary(chunk);
  };
  proc.stdout.on('data', onOutput);
  proc.stderr.on('data', onOutput);
  proc.on('exit', (code) => {
    for (const c of s.conns) {
      c.sendText({ type: 'exit', code: code ?? -1 });
      c.close(1000, 'process exited');
    }
    sessions.delete(id);
  });
  sessions.set(id, s);
  return s;
}

const view = (s) => ({ id: s.id, name: s.name, command: s.command, created_at: s.created_at });

function serveStatic(req, res) {
  const url = new URL(req.url, 'http://x');
  const rel = url.pathname === '/' ? 'index.html' : decodeURIComponent(url.pathname).replace(/^\/+/, '');
  const file = path.resolve(webRoot, rel);
  if (!file.startsWith(path.resolve(webRoot)) || !existsSync(file) || !statSync(file).isFile()) return fail(res, 404, 'not_found');
  const type = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css' }[path.extname(file)] ?? 'application/octet-stream';
  res.writeHead(200, { 'Content-Type': type, 'Content-Security-Policy': CSP, 'X-Content-Type-Options': 'nosniff' });
  res.end(readFileSync(file));
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/healthz') return json(res, 200, { ok: true });
  if (!url.pathname.startsWith('/api/')) return serveStatic(req, res);
  const principal = authenticate(req);
  if (!principal) return fail(res, 401, 'unauthorized');
  if (url.pathname === '/api/v1/sessions' && req.method === 'GET') return json(res, 200, [...sessions.values()].map(view));
  if (url.pathname === '/api/v1/sessions' && req.method === 'POST') {
    await readBody(req);
    return json(res, 201, view(createSession()));
  }
  const m = /^\/api\/v1\/sessions\/([^/]+)\/attach-tickets$/.exec(url.pathname);
  if (m && req.method === 'POST') {
    const s = sessions.get(decodeURIComponent(m[1]));
    if (!s) return fail(res, 404, 'not_found');
    const body = await readBody(req);
    if (body.role !== 'driver' && body.role !== 'observer') return fail(res, 400, 'invalid_role');
    const ticket = randomBytes(24).toString('base64url');
    tickets.set(ticket, { sessionId: s.id, role: body.role, expires: Date.now() + 30_000, used: false });
    const out = { expires_at: new Date(Date.now() + 30_000).toISOString(), role: body.role, session_id: s.id };
    if (body.delivery === 'cookie') {
      const cookie = `attach_ticket=${ticket}; HttpOnly; SameSite=Strict; Path=/api/v1/sessions/${s.id}/attach; Max-Age=30`;
      return json(res, 201, out, { 'Set-Cookie': cookie });
    }
    return json(res, 201, { ...out, ticket });
  }
  return fail(res, 404, 'not_found');
});

// ---- WebSocket ---------------------------------------------------------------------------

function refuse(socket, status, error) {
  const body = JSON.stringify({ error, message: error });
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

function frame(opcode, payload) {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, len]) : len < 65536 ? Buffer.from([0x80 | opcode, 126, len >> 8, len & 255]) : Buffer.concat([Buffer.from([0x80 | opcode, 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(len)); return b; })()]);
  return Buffer.concat([head, payload]);
}

server.on('upgrade', (req, socket) => {
  const url = new URL(req.url, 'http://x');
  const m = /^\/api\/v1\/sessions\/([^/]+)\/attach$/.exec(url.pathname);
  if (!m) return refuse(socket, 404, 'not_found');
  if (['token', 'ticket', 'access_token', 'auth'].some((k) => url.searchParams.has(k))) return refuse(socket, 400, 'token_in_url');
  const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter(Boolean);
  if (offered.length && !offered.includes('attach.v1')) return refuse(socket, 400, 'unsupported_protocol');
  const origin = req.headers.origin;
  if (origin !== undefined && !allowedOrigins.has(origin)) return refuse(socket, 403, 'origin_not_allowed');
  const cookie = /(?:^|;\s*)attach_ticket=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
  const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
  if (cookie && !bearer && origin === undefined) return refuse(socket, 403, 'origin_not_allowed');
  const t = tickets.get(bearer ?? cookie ?? '');
  if (!t || t.expires < Date.now()) return refuse(socket, 401, 'unauthorized');
  if (t.used) return refuse(socket, 401, 'ticket_replayed');
  t.used = true;
  const s = sessions.get(decodeURIComponent(m[1]));
  if (!s || s.id !== t.sessionId) return refuse(socket, 404, 'not_found');

  const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${offered.length ? 'Sec-WebSocket-Protocol: attach.v1\r\n' : ''}\r\n`);

  const conn = {
    id: randomUUID(),
    role: t.role,
    closed: false,
    sendText: (v) => !conn.closed && socket.write(frame(1, Buffer.from(JSON.stringify(v)))),
    sendBinary: (b) => !conn.closed && socket.write(frame(2, b)),
    close: (code, reason = '') => {
      if (conn.closed) return;
      const p = Buffer.alloc(2 + Buffer.byteLength(reason));
      p.writeUInt16BE(code);
      p.write(reason, 2);
      socket.write(frame(8, p));
      conn.closed = true;
      setTimeout(() => socket.destroy(), 200);
    },
  };
  const broadcast = (v) => s.conns.forEach((c) => c.sendText(v));
  const participants = () => broadcast({ type: 'participants', drivers: [...s.conns].filter((c) => c.role === 'driver').length, observers: [...s.conns].filter((c) => c.role === 'observer').length });
  const setHolder = (c, reason) => {
    s.holder = c;
    broadcast({ type: 'control', holder: c ? { connection_id: c.id, subject: 'alice' } : null, reason });
  };
  if (conn.role === 'driver' && s.holder === null) s.holder = conn;
  s.conns.add(conn);
  allConns.add(conn);
  conn.sendText({
    type: 'hello', session_id: s.id, connection_id: conn.id, role: conn.role,
    control: { holder: s.holder?.id ?? null, you: s.holder === conn },
    idle_deadline: new Date(Date.now() + 30 * 60_000).toISOString(),
    limits: { max_message_bytes: 1048576, ping_interval_ms: 15000 },
  });
  if (s.scrollback.length) conn.sendBinary(s.scrollback);
  participants();
  const lifetime = setTimeout(() => conn.close(4002, 'max lifetime'), maxLifetimeMs);

  let buf = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (buf.length < 2) return;
      const opcode = buf[0] & 0x0f;
      let len = buf[1] & 0x7f;
      let off = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
      if (buf.length < off + 4 + len) return;
      const mask = buf.subarray(off, off + 4);
      const data = Buffer.from(buf.subarray(off + 4, off + 4 + len));
      for (let i = 0; i < data.length; i++) data[i] ^= mask[i % 4];
      buf = buf.subarray(off + 4 + len);
      if (opcode === 8) { conn.close(1000); continue; }
      if (opcode === 9) { socket.write(frame(10, data)); continue; }
      if (opcode === 2) {
        if (s.holder !== conn) conn.sendText({ type: 'error', code: 'not_driver', message: 'you do not hold control' });
        else s.proc.stdin.write(data);
        continue;
      }
      if (opcode !== 1) continue;
      let msg;
      try { msg = JSON.parse(data.toString('utf8')); } catch { conn.sendText({ type: 'error', code: 'invalid_message', message: 'bad json' }); continue; }
      if (msg.type === 'control' && msg.action === 'acquire') {
        if (conn.role !== 'driver' || (s.holder && s.holder !== conn)) conn.sendText({ type: 'error', code: 'control_denied', message: 'control is held' });
        else setHolder(conn, 'acquired');
      } else if (msg.type === 'control' && msg.action === 'release') {
        if (s.holder === conn) setHolder(null, 'released');
      } else if (msg.type === 'resize') {
        if (s.holder !== conn) conn.sendText({ type: 'error', code: 'not_driver', message: 'you do not hold control' });
      } else conn.sendText({ type: 'error', code: 'invalid_message', message: 'unknown type' });
    }
  });
  const gone = () => {
    clearTimeout(lifetime);
    conn.closed = true;
    allConns.delete(conn);
    if (!s.conns.delete(conn)) return;
    if (s.holder === conn) setHolder(null, 'disconnected');
    participants();
  };
  socket.on('close', gone);
  socket.on('error', gone);
});

const allConns = new Set();
process.on('SIGTERM', () => {
  for (const c of allConns) {
    c.sendText({ type: 'shutdown' });
    c.close(1001, 'shutting down');
  }
  server.close();
  setTimeout(() => {
    for (const s of sessions.values()) s.proc.kill('SIGKILL');
    process.exit(0);
  }, 300);
});

server.listen(port, host, () => console.log(`fake attachd listening on ${listen}`));
