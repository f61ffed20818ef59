// server.js — a traced-chain service on Node.js http + express with no tracing code of its own.
//
// ROLE=front: GET /api/item/<id> makes one outbound GET <BACK_URL>/item/<id> with http.get
// (Node's global agent, keep-alive) and returns the back's body. ROLE=back: GET /item/<id> does one
// database operation — DB=redis: `GET item:<id>` over one net.Socket with the small RESP client
// below; DB=postgres: `SELECT name FROM items WHERE id = $1` through the pg package's pool — and
// returns JSON with the value. Both answer GET /health with "ok" and print `METHOD PATH STATUS` per
// request on stdout. Environment: ROLE, PORT, BIND, BACK_URL, DB, REDIS_HOST, REDIS_PORT, PG_HOST,
// PG_PORT, PG_USER, PG_DBNAME. BIND: unset → 127.0.0.1; `default` → `listen(port)` (Node's own
// default: a dual-stack [::] socket); else that address (e.g. ::1).
//
// With TRUTH=1 the front also has GET /api/later/<id>: it answers, then LATER_MS (default 20) ms
// later calls GET <BACK_URL>/item/<id> with fetch from a timer; and with POLL_MS set, a
// setInterval poller calls GET <BACK_URL>/item/<1000000 + n> every POLL_MS ms, for no request,
// until GET /api/stop-poll. GET /api/deferred/<id> answers and calls the same from a setImmediate
// (id % 4 == 1) or from the response's 'finish' handler (otherwise).
'use strict';

const http = require('http');
const net = require('net');
const express = require('express');

const role = process.env.ROLE || 'front';
const port = parseInt(process.env.PORT || '9001', 10);
const db = process.env.DB || 'redis';
const truth = process.env.TRUTH === '1';

// RedisClient sends commands over one connection; replies come back in order, so each pending
// command is a callback in a FIFO queue. Only bulk, simple, integer and error replies are parsed.
class RedisClient {
  constructor(host, port) {
    this.host = host;
    this.port = port;
    this.socket = null;
    this.pending = [];
    this.buffer = Buffer.alloc(0);
  }

  connect() {
    this.socket = net.createConnection({ host: this.host, port: this.port });
    this.socket.on('data', (chunk) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.drain();
    });
    const fail = (err) => {
      const waiting = this.pending;
      this.pending = [];
      this.buffer = Buffer.alloc(0);
      this.socket = null;
      for (const cb of waiting) cb(err || new Error('redis connection closed'));
    };
    this.socket.on('error', fail);
    this.socket.on('close', () => fail(null));
  }

  // drain answers every complete reply in the buffer.
  drain() {
    while (this.pending.length > 0) {
      const eol = this.buffer.indexOf('\r\n');
      if (eol < 0) return;
      const head = this.buffer.toString('latin1', 0, eol);
      let reply;
      let used;
      if (head[0] === '$') {
        const len = parseInt(head.slice(1), 10);
        if (len < 0) {
          reply = { value: null };
          used = eol + 2;
        } else {
          if (this.buffer.length < eol + 2 + len + 2) return;
          reply = { value: this.buffer.toString('utf8', eol + 2, eol + 2 + len) };
          used = eol + 2 + len + 2;
        }
      } else if (head[0] === '-') {
        reply = { error: new Error('redis: ' + head.slice(1)) };
        used = eol + 2;
      } else {
        reply = { value: head.slice(1) };
        used = eol + 2;
      }
      this.buffer = this.buffer.subarray(used);
      const cb = this.pending.shift();
      cb(reply.error || null, reply.value);
    }
  }

  get(key) {
    return new Promise((resolve, reject) => {
      if (this.socket === null) this.connect();
      const k = Buffer.from(key, 'utf8');
      this.pending.push((err, value) => (err ? reject(err) : resolve(value)));
      this.socket.write('*2\r\n$3\r\nGET\r\n$' + k.length + '\r\n' + key + '\r\n');
    });
  }
}

function getBack(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'],
        body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.setTimeout(10000, () => req.destroy(new Error('back timed out')));
    req.on('error', reject);
  });
}

const app = express();
app.disable('x-powered-by');
app.use((req, res, next) => {
  res.on('finish', () => process.stdout.write(`${req.method} ${req.path} ${res.statusCode}\n`));
  next();
});
app.get('/health', (req, res) => res.type('text/plain').send('ok'));

if (role === 'front') {
  const backUrl = (process.env.BACK_URL || '').replace(/\/+$/, '');
  app.get('/api/item/:id(\\d+)', async (req, res) => {
    try {
      const back = await getBack(`${backUrl}/item/${req.params.id}`);
      res.status(back.status).type(back.type || 'application/json').send(back.body);
    } catch (err) {
      res.status(502).type('text/plain').send(String(err));
    }
  });
  if (truth) {
    const fetchBack = (path) => fetch(`${backUrl}${path}`).then((r) => r.text())
      .catch((err) => process.stderr.write(`fetch ${path}: ${err}\n`));
    const laterMs = parseInt(process.env.LATER_MS || '20', 10);
    app.get('/api/later/:id(\\d+)', (req, res) => {
      res.type('text/plain').send('scheduled');
      setTimeout(() => fetchBack(`/item/${req.params.id}`), laterMs);
    });
    app.get('/api/deferred/:id(\\d+)', (req, res) => {
      const call = () => fetchBack(`/item/${req.params.id}`);
      if (Number(req.params.id) % 4 === 1) setImmediate(call);
      else res.on('finish', call);
      res.type('text/plain').send('scheduled');
    });
    const pollMs = parseInt(process.env.POLL_MS || '0', 10);
    if (pollMs > 0) {
      let polls = 0;
      const poller = setInterval(() => fetchBack(`/item/${1000000 + ++polls}`), pollMs);
      // the test stops the poller before the agent, so no call is in flight when it stops
      app.get('/api/stop-poll', (req, res) => {
        clearInterval(poller);
        res.type('text/plain').send('stopped');
      });
    }
  }
} else {
  let lookup;
  if (db === 'redis') {
    const redis = new RedisClient(process.env.REDIS_HOST || '127.0.0.1',
      parseInt(process.env.REDIS_PORT || '6379', 10));
    lookup = (id) => redis.get(`item:${id}`);
  } else {
    const { Pool } = require('pg');
    const pool = new Pool({
      host: process.env.PG_HOST || '127.0.0.1',
      port: parseInt(process.env.PG_PORT || '5432', 10),
      user: process.env.PG_USER || 'postgres',
      database: process.env.PG_DBNAME || 'postgres',
      max: 8,
    });
    lookup = async (id) => {
      const result = await pool.query('SELECT name FROM items WHERE id = $1', [id]);
      return result.rows.length > 0 ? result.rows[0].name : null;
    };
  }
  app.get('/item/:id(\\d+)', async (req, res) => {
    const id = parseInt(req.params.id, 10);
    try {
      const value = await lookup(id);
      res.status(value === null ? 404 : 200)
        .json({ id, name: value, db, stack: 'node' });
    } catch (err) {
      res.status(502).type('text/plain').send(String(err));
    }
  });
}

const bind = process.env.BIND || '127.0.0.1';
const server = bind === 'default' ? app.listen(port) : app.listen(port, bind);
server.on('error', (err) => {
  process.stderr.write(`node chainapp: ${err}\n`);
  process.exit(1);
});
process.on('SIGTERM', () => process.exit(0));
