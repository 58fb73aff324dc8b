// Admin API load client for bench/run.py: a fixed number of keep-alive HTTP/1.1 connections, each
// sending its next request as soon as the previous response is complete.  No npm package needed.
//
//   node adminload.js --port P --conns 16 --file REQUESTS.json [--max-ms 30000] [--src a,b]
//   node adminload.js --port P --conns 16 --get /healthz --count 20000
//
// REQUESTS.json: {"requests": ["<raw HTTP request, latin-1>", ...]}, each sent exactly once (so
// they can be distinct signed requests).  Bounded in count (the list / --count) and in time
// (--max-ms).  A response is "ok" when its status is 200 and its body holds no "Error"/"error"
// key (Tencent Cloud API 3.0 answers errors with HTTP 200).  Prints one JSON line.
'use strict';
const net = require('net');
const fs = require('fs');

const argv = process.argv.slice(2);
const opt = {};
for (let i = 0; i < argv.length; i++) if (argv[i].startsWith('--')) opt[argv[i].slice(2)] = argv[i + 1];
const PORT = parseInt(opt.port, 10);
const CONNS = parseInt(opt.conns || '16', 10);
const MAX_MS = parseInt(opt['max-ms'] || '30000', 10);
const SRC = (opt.src || '127.0.0.1').split(',');
const now = () => Number(process.hrtime.bigint());

let requests;
if (opt.file) {
  requests = JSON.parse(fs.readFileSync(opt.file, 'utf8')).requests.map((r) => Buffer.from(r, 'latin1'));
} else {
  const get = Buffer.from(`GET ${opt.get} HTTP/1.1\r\nHost: 127.0.0.1:${PORT}\r\n\r\n`, 'latin1');
  requests = new Array(parseInt(opt.count || '10000', 10)).fill(get);
}
const TOTAL = requests.length;
const lat = new Float64Array(TOTAL);
let next = 0, done = 0, ok = 0, reconnects = 0, finished = false;
const statuses = {};
const errorSamples = [];
const netErrors = {};
const t0 = now();

function finish(why) {
  if (finished) return; finished = true;
  const t1 = now();
  const l = Array.from(lat.subarray(0, done)).sort((a, b) => a - b);
  const q = (p) => (l.length ? l[Math.min(l.length - 1, Math.floor(p * l.length))] : null);
  process.stdout.write(JSON.stringify({
    ev: 'admin_done', why, conns: CONNS, sent: next, done, ok, statuses, error_samples: errorSamples,
    net_errors: netErrors, reconnects, elapsed_ms: (t1 - t0) / 1e6, rate: done / ((t1 - t0) / 1e9),
    p50_ms: q(0.5), p90_ms: q(0.9), p99_ms: q(0.99), max_ms: l.length ? l[l.length - 1] : null,
  }) + '\n');
  process.exit(0);
}
setTimeout(() => finish('max-ms'), MAX_MS);

function client(c) {
  let sock = null, buf = null, tSent = 0, busy = false;
  function connect() {
    sock = net.connect({ host: '127.0.0.1', port: PORT, localAddress: SRC[c % SRC.length] });
    sock.setNoDelay(true);
    buf = null; busy = false;
    sock.on('connect', sendNext);
    sock.on('error', (e) => { const k = String(e.code || e.message); netErrors[k] = (netErrors[k] || 0) + 1; });
    sock.on('close', () => {
      if (finished) return;
      if (busy) { done++; lat[done - 1] = (now() - tSent) / 1e6; statuses.closed = (statuses.closed || 0) + 1; }
      if (next < TOTAL) { reconnects++; connect(); } else if (done >= next) finish('all');
    });
    sock.on('data', onData);
  }
  function sendNext() {
    if (finished) return;
    if (next >= TOTAL) { sock.end(); if (done >= TOTAL) finish('all'); return; }
    const req = requests[next++];
    busy = true; tSent = now();
    sock.write(req);
  }
  function onData(d) {
    buf = buf ? Buffer.concat([buf, d]) : d;
    for (;;) {
      const k = buf.indexOf('\r\n\r\n');
      if (k < 0) return;
      const head = buf.toString('latin1', 0, k);
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      const clen = m ? parseInt(m[1], 10) : 0;
      if (buf.length < k + 4 + clen) return;
      const body = buf.toString('utf8', k + 4, k + 4 + clen);
      buf = buf.length > k + 4 + clen ? buf.subarray(k + 4 + clen) : null;
      const t = now();
      const status = head.slice(9, 12);
      statuses[status] = (statuses[status] || 0) + 1;
      lat[done++] = (t - tSent) / 1e6;
      busy = false;
      if (status === '200' && !/"(Error|error)"\s*:/.test(body)) ok++;
      else if (errorSamples.length < 5) errorSamples.push(body.slice(0, 200));
      if (done >= TOTAL) { finish('all'); return; }
      const closing = /\r\nconnection:\s*close/i.test(head);
      if (closing) return;           // the server closes; 'close' reconnects
      sendNext();
      if (!buf) return;
    }
  }
  connect();
}
for (let c = 0; c < CONNS; c++) client(c);
