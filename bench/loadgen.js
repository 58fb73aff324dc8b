// Load generator for bench/run.py: one Node.js process holding many WebSocket sessions.
// Needs no npm package: a minimal RFC 6455 client on net.Socket (GET upgrade with a check of
// Sec-WebSocket-Accept, masked client frames, unmasked server frames reassembled if fragmented,
// ping -> pong, close handshake, no compression offered).  Adapted from
// shared/peer-bench/client/loadgen.js (its `raw` engine and `roomkeeper` adapter).
//
// Both servers of the bench (roomkeeper and bench/floor_server.py) speak the same client protocol:
//   connect  ws://H:P/ws?sdkappid=S&userid=U&usersig=SIG   (a precomputed TLS-sig v2 UserSig, --users FILE)
//   join     send {"type":"enter_room","id":1,"str_room_id":R,"role":"audience"}
//            joined on {"type":"reply","id":1,"ok":true,...}; any other frame before it is skipped
//   told     the first frame whose JSON "type" is "room_dismissed"
// The sessions stay open after the dismiss (roomkeeper keeps them logged in), so the dismiss report
// is printed once every joined, reading client was told (or was closed without it).
//
// Options: --port P --n N --window W (handshakes in flight) --src a,b,c (source addresses)
//          --users FILE  {"sdkappid":S,"warmup":[[user,sig],...],"join":[[user,sig],...]}
//          --room R      room of every client, or --room-prefix X [--room-offset K]: client i joins
//                        room X+(K+i)
//          --slow-every K  every K-th joined client (i % K == K-1) is a slow consumer: once joined it
//                        stops reading (socket paused) until the `resume` command
//          --join-timeout-ms T (default 120000); handshake timeout 20 s per client
// Stdin commands (one per line):
//   warmup K   connect+join K warm-up users to room "warmup", then close them
//   join       connect+join the --n users (at most --window handshakes in flight)
//   report     print the dismiss report now (else printed when every reading client was told)
//   resume     slow consumers start reading again; prints {"ev":"resumed",...} when all of them were
//              told, or after 10 s
//   quit
// Timestamps: process.hrtime.bigint() = CLOCK_MONOTONIC ns, the clock of Python's time.monotonic_ns().
'use strict';
const net = require('net');
const crypto = require('crypto');
const fs = require('fs');
const readline = require('readline');

const argv = process.argv.slice(2);
const opt = {};
for (let i = 0; i < argv.length; i++) if (argv[i].startsWith('--')) opt[argv[i].slice(2)] = argv[i + 1];
const HOST = opt.host || '127.0.0.1';
const PORT = parseInt(opt.port || '7580', 10);
const N = parseInt(opt.n || '100', 10);
const WINDOW = parseInt(opt.window || '100', 10);
const SRC = (opt.src || '127.0.0.1').split(',');
const ROOM = opt.room || 'lobby';
const ROOM_PREFIX = opt['room-prefix'] || null;
const ROOM_OFFSET = parseInt(opt['room-offset'] || '0', 10);
const SLOW_EVERY = parseInt(opt['slow-every'] || '0', 10);
const JOIN_TIMEOUT_MS = parseInt(opt['join-timeout-ms'] || '120000', 10);

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const now = () => Number(process.hrtime.bigint());

let USERS;
try {
  USERS = JSON.parse(fs.readFileSync(opt.users, 'utf8'));
  if (!(USERS.join.length >= N)) throw new Error(`--users has ${USERS.join.length} join users, need ${N}`);
} catch (e) {
  out({ ev: 'error', msg: 'needs --users FILE: ' + e.message });
  process.exit(2);
}

// Per-client state in flat arrays (cheap for 20k clients).
let tMsg, tClose, tJoinStart, tJoinEnd, clients;
let isSlow = null;
let closedCount = 0, reported = false, joinedTarget = 0, doneCount = 0, slowJoined = 0, slowTold = 0;
let resumeWaiter = null;
const errors = {};
const noteErr = (e) => { const k = String(e && (e.code || e.message) || e).slice(0, 80); errors[k] = (errors[k] || 0) + 1; };

const WS_KEY = crypto.randomBytes(16).toString('base64');
const WS_ACCEPT = crypto.createHash('sha1').update(WS_KEY + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
const upgradeReq = (path) => Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${HOST}:${PORT}\r\nUpgrade: websocket\r\n` +
  `Connection: Upgrade\r\nSec-WebSocket-Key: ${WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
// the UserSig alphabet [A-Za-z0-9*_-] needs no escaping
const wsPath = (user) => `/ws?sdkappid=${USERS.sdkappid}&userid=${encodeURIComponent(user[0])}` +
  `&usersig=${encodeURIComponent(user[1])}`;
const MASK = crypto.randomBytes(4);

function frame(opcode, payload) {           // masked client frame
  const len = payload.length;
  let hdr;
  if (len < 126) { hdr = Buffer.allocUnsafe(6); hdr[1] = 0x80 | len; MASK.copy(hdr, 2); }
  else if (len < 65536) { hdr = Buffer.allocUnsafe(8); hdr[1] = 0x80 | 126; hdr.writeUInt16BE(len, 2); MASK.copy(hdr, 4); }
  else { hdr = Buffer.allocUnsafe(14); hdr[1] = 0x80 | 127; hdr.writeBigUInt64BE(BigInt(len), 2); MASK.copy(hdr, 10); }
  hdr[0] = 0x80 | opcode;
  const body = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) body[i] = payload[i] ^ MASK[i & 3];
  return Buffer.concat([hdr, body]);
}

// One raw WebSocket client: {send(text), close(), pause(), resume()} with callbacks
// onOpen(), onText(str), onClosed(), onError(err).
// Reads go through `onread` into one shared buffer (no 'data' event, no Buffer allocated per
// read): about half the client CPU per received frame of a plain 'data' listener, which keeps the
// load generator off the critical path when 19,000 notifications arrive within ~100 ms.  What a
// callback keeps beyond its own call (partial frames, fragments) is copied out of the buffer.
const SHARED = Buffer.allocUnsafe(1 << 16);

function rawConn(i, cb, path) {
  let upgraded = false, buf = null, closeSent = false, closeRecv = false, closedFired = false;
  let frag = null;
  const sock = net.connect({ host: HOST, port: PORT, localAddress: SRC[i % SRC.length],
    onread: { buffer: SHARED, callback: (nread, b) => { onData(b.subarray(0, nread)); } } });
  sock.setNoDelay(true);
  const hsTimer = setTimeout(() => { cb.onError(new Error('handshake timeout')); sock.destroy(); }, 20000);
  let closeTimer = null;
  const conn = {
    send(text) { if (!closeSent && !sock.destroyed) sock.write(frame(1, Buffer.from(text))); },
    close() {
      if (closeSent || sock.destroyed) return;
      closeSent = true;
      sock.write(frame(8, Buffer.from([0x03, 0xe8])));             // 1000
      if (closeRecv) sock.end();
      else closeTimer = setTimeout(() => sock.destroy(), 5000);     // bounded wait for the server's reply
    },
    pause() { sock.pause(); },
    resume() { sock.resume(); },
  };
  sock.on('connect', () => sock.write(upgradeReq(path)));
  sock.on('error', (e) => cb.onError(e));
  sock.on('close', () => {
    clearTimeout(hsTimer); if (closeTimer) clearTimeout(closeTimer);
    if (!closedFired) { closedFired = true; cb.onClosed(); }
  });
  function onData(d) {
    buf = buf ? Buffer.concat([buf, d]) : d;
    if (!upgraded) {
      const k = buf.indexOf('\r\n\r\n');
      if (k < 0) { if (buf.length > 65536) sock.destroy(); else buf = Buffer.from(buf); return; }
      const head = buf.toString('latin1', 0, k);
      if (!head.startsWith('HTTP/1.1 101') || head.indexOf(WS_ACCEPT) < 0) {
        cb.onError(new Error('bad handshake: ' + head.split('\r\n')[0])); buf = null; sock.destroy(); return;
      }
      clearTimeout(hsTimer);
      upgraded = true; buf = buf.length > k + 4 ? buf.subarray(k + 4) : null;
      cb.onOpen();
      if (!buf) return;
    }
    let off = 0;
    while (buf && buf.length - off >= 2) {
      const b0 = buf[off], b1 = buf[off + 1];
      let len = b1 & 0x7f, p = off + 2;
      if (len === 126) { if (buf.length - off < 4) break; len = buf.readUInt16BE(off + 2); p = off + 4; }
      else if (len === 127) { if (buf.length - off < 10) break; len = Number(buf.readBigUInt64BE(off + 2)); p = off + 10; }
      if (b1 & 0x80) { p += 4; }                                     // (servers must not mask)
      if (buf.length < p + len) break;
      const payload = buf.subarray(p, p + len);
      off = p + len;
      const op = b0 & 0x0f, fin = b0 & 0x80;
      if (op === 1 || op === 2 || op === 0) {
        if (!fin) { frag = frag ? Buffer.concat([frag, payload]) : Buffer.from(payload); continue; }
        let data = payload;
        if (op === 0 && frag) { data = Buffer.concat([frag, payload]); frag = null; }
        cb.onText(data.toString());
      } else if (op === 9) {                                        // ping -> pong
        if (!closeSent) sock.write(frame(10, payload));
      } else if (op === 8) {                                        // close
        closeRecv = true;
        if (!closeSent) {
          closeSent = true;
          sock.write(frame(8, payload.length >= 2 ? Buffer.from(payload.subarray(0, 2)) : Buffer.alloc(0)));
        }
        sock.end();
      }
    }
    buf = buf && off < buf.length ? Buffer.from(buf.subarray(off)) : null;   // copy out of SHARED
  }
  return conn;
}

const joinMsg = (room) => JSON.stringify({ type: 'enter_room', id: 1, str_room_id: room, role: 'audience' });

// Open one client; calls done(ok) exactly once when joined or failed.
function openClient(i, room, done, track, user) {
  let settled = false;
  const settle = (ok) => { if (!settled) { settled = true; done(ok); } };
  let joined = false, closed = false;
  const slow = track && isSlow !== null && isSlow[i] === 1;
  let conn;
  const cb = {
    onError: (e) => { noteErr(e); settle(false); },
    onClosed: () => {
      closed = true;
      if (track && joined && tClose[i] === 0) {
        tClose[i] = now(); closedCount++;
        if (tMsg[i] === 0 && !slow) doneCount++;        // closed without the notification
        maybeReport();
      }
      settle(false);
    },
    onOpen: () => conn.send(joinMsg(room)),
    onText: (s) => {
      if (!joined) {                                   // wait for the enter_room reply, skip the rest
        if (!s.includes('"reply"')) return;
        let m; try { m = JSON.parse(s); } catch (e) { noteErr(new Error('unparsable server frame')); return; }
        if (m.type !== 'reply' || m.id !== 1) return;
        if (m.ok === true) {
          joined = true;
          if (track) tJoinEnd[i] = now();
          if (slow) { slowJoined++; conn.pause(); }   // a slow consumer stops reading from here on
          settle(true);
          return;
        }
        noteErr(new Error('enter_room refused: ' + JSON.stringify(m).slice(0, 60)));
        settle(false); conn.close(); return;
      }
      if (track && tMsg[i] === 0 && s.includes('room_dismissed')) {
        const t = now();
        let m; try { m = JSON.parse(s); } catch (e) { return; }
        if (m.type !== 'room_dismissed') return;
        tMsg[i] = t;
        if (slow) { slowTold++; if (resumeWaiter && slowTold >= slowJoined) resumeWaiter(); return; }
        if (tClose[i] === 0) { doneCount++; maybeReport(); }
      }
    },
  };
  conn = rawConn(i, cb, wsPath(user));
  conn.isClosed = () => closed;
  return conn;
}

// Connect `count` clients with at most WINDOW in flight; resolve with stats.
function connectMany(count, roomOf, track, users) {
  return new Promise((resolve) => {
    let next = 0, inflight = 0, ok = 0, failed = 0, finished = false;
    const list = new Array(count);
    const t0 = now();
    const deadline = setTimeout(() => finish(true), JOIN_TIMEOUT_MS);
    function finish(timedOut) {
      if (finished) return; finished = true; clearTimeout(deadline);
      resolve({ list, ok, failed, timedOut: !!timedOut, t_start: t0, t_end: now() });
    }
    function launch() {
      while (inflight < WINDOW && next < count && !finished) {
        const i = next++; inflight++;
        if (track) tJoinStart[i] = now();
        list[i] = openClient(i, roomOf(i), (good) => {
          inflight--; if (good) ok++; else failed++;
          if (ok + failed === count) finish(false); else launch();
        }, track, users[i]);
      }
    }
    launch();
  });
}

function maybeReport() {
  if (reported || joinedTarget <= 0) return;
  if (doneCount >= joinedTarget - slowJoined) report('all_told_or_closed');
}
function report(why) {
  if (reported) return; reported = true;
  const tm = [], tc = [];
  for (let i = 0; i < N; i++) {                         // reading (not slow) joined clients only
    if (tJoinEnd[i] === 0 || (isSlow !== null && isSlow[i] === 1)) continue;
    tm.push(tMsg[i]); tc.push(tClose[i]);
  }
  out({ ev: 'dismiss_report', why, closed: closedCount, joined: joinedTarget, slow_joined: slowJoined,
        done: doneCount, t_msg: tm, t_close: tc, errors });
}

async function handle(line) {
  const [cmd, arg] = line.trim().split(/\s+/);
  if (cmd === 'warmup') {
    const k = Math.min(parseInt(arg || '20', 10), USERS.warmup.length);
    const r = await connectMany(k, () => 'warmup', false, USERS.warmup);
    for (const c of r.list) if (c) c.close();
    const tEnd = Date.now() + 5000;
    while (Date.now() < tEnd && r.list.some((c) => c && !c.isClosed())) await new Promise((res) => setTimeout(res, 20));
    out({ ev: 'warmup_done', ok: r.ok, failed: r.failed, errors });
  } else if (cmd === 'join') {
    tMsg = new Float64Array(N); tClose = new Float64Array(N);
    tJoinStart = new Float64Array(N); tJoinEnd = new Float64Array(N);
    if (SLOW_EVERY > 0) { isSlow = new Uint8Array(N); for (let i = SLOW_EVERY - 1; i < N; i += SLOW_EVERY) isSlow[i] = 1; }
    for (const k of Object.keys(errors)) delete errors[k];
    const roomOf = ROOM_PREFIX !== null ? (i) => ROOM_PREFIX + (ROOM_OFFSET + i) : () => ROOM;
    const r = await connectMany(N, roomOf, true, USERS.join);
    clients = r.list; joinedTarget = r.ok;
    const lat = [];
    for (let i = 0; i < N; i++) if (tJoinEnd[i] > 0) lat.push((tJoinEnd[i] - tJoinStart[i]) / 1e6);
    lat.sort((a, b) => a - b);
    const q = (p) => lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : null;
    out({ ev: 'joined', ok: r.ok, failed: r.failed, timed_out: r.timedOut, t_start: r.t_start, t_end: r.t_end,
          join_ms_p50: q(0.5), join_ms_p99: q(0.99), join_ms_max: lat.length ? lat[lat.length - 1] : null,
          slow_joined: slowJoined, premature_closes: closedCount, errors });
  } else if (cmd === 'report') {
    report('requested');
  } else if (cmd === 'resume') {
    const t0 = now();
    const done = new Promise((res) => { resumeWaiter = res; if (slowTold >= slowJoined) res(); });
    for (let i = 0; i < N; i++) if (isSlow !== null && isSlow[i] === 1 && clients[i]) clients[i].resume();
    await Promise.race([done, new Promise((res) => setTimeout(res, 10000))]);
    out({ ev: 'resumed', slow_joined: slowJoined, slow_told: slowTold, ms: (now() - t0) / 1e6 });
  } else if (cmd === 'quit') {
    process.exit(0);
  }
}

const rl = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
rl.on('line', (l) => { chain = chain.then(() => handle(l)).catch((e) => out({ ev: 'error', msg: String(e) })); });
rl.on('close', () => process.exit(0));
// bounded: whatever happens, this process ends after --max-seconds (default 900)
setTimeout(() => { out({ ev: 'error', msg: 'max-seconds reached' }); process.exit(3); },
  1000 * parseInt(opt['max-seconds'] || '900', 10)).unref();
out({ ev: 'ready', pid: process.pid, n: N, window: WINDOW, src: SRC.length, slow_every: SLOW_EVERY, node: process.version });
