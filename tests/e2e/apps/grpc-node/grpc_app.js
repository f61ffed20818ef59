// grpc_app.js — a gRPC server and client with @grpc/grpc-js, no generated code: a service
// definition with raw-bytes (identity) serializers. Service demo.Echo: Unary (request
// "abort:<code>" fails with that code) and ServerStream.
//
//   node grpc_app.js server PORT LOG [B_PORT REDIS_PORT]
//                                       serve; one line per finished call in LOG: "<method> <code>";
//                                       with B_PORT and REDIS_PORT a Unary request "chain" first
//                                       calls B's Unary, then GETs item:1 from Redis (chains)
//   node grpc_app.js chain PORT N       N Unary "chain" calls on one channel
//   node grpc_app.js client PORT N      N Unary calls (every 5th aborts NOT_FOUND) and N/5
//                                       ServerStream calls on one channel; prints "<method> <code>"
'use strict';
const fs = require('fs');
const grpc = require('@grpc/grpc-js');

const ident = (b) => b;
const def = {
  Unary: {path: '/demo.Echo/Unary', requestStream: false, responseStream: false,
          requestSerialize: ident, requestDeserialize: ident,
          responseSerialize: ident, responseDeserialize: ident},
  ServerStream: {path: '/demo.Echo/ServerStream', requestStream: false, responseStream: true,
                 requestSerialize: ident, requestDeserialize: ident,
                 responseSerialize: ident, responseDeserialize: ident},
};
const names = Object.fromEntries(Object.entries(grpc.status).map(([k, v]) => [v, k]));

function abortCode(buf) {
  const s = buf.toString();
  return s.startsWith('abort:') ? parseInt(s.slice(6), 10) : 0;
}

const [mode, port, arg, bPort, redisPort] = process.argv.slice(2);
const Client = grpc.makeGenericClientConstructor(def, 'Echo');

// one Redis connection, GET item:1 (RESP by hand); callbacks in order
function redisClient(p) {
  const sock = require('net').connect(parseInt(p, 10), '127.0.0.1');
  const waiting = [];
  let buf = '';
  sock.on('data', (d) => {
    buf += d.toString('latin1');
    for (;;) {
      const nl = buf.indexOf('\r\n');
      if (nl < 0) return;
      const len = buf[0] === '$' ? parseInt(buf.slice(1, nl), 10) : -1;
      const end = len >= 0 ? nl + 2 + len + 2 : nl + 2;
      if (buf.length < end) return;
      buf = buf.slice(end);
      waiting.shift()();
    }
  });
  return (key, cb) => {
    waiting.push(cb);
    sock.write(`*2\r\n$3\r\nGET\r\n$${key.length}\r\n${key}\r\n`);
  };
}

if (mode === 'server') {
  const log = (line) => fs.appendFileSync(arg, line + '\n');
  const server = new grpc.Server();
  const b = bPort ? new Client('127.0.0.1:' + bPort, grpc.credentials.createInsecure()) : null;
  const redisGet = redisPort ? redisClient(redisPort) : null;
  server.addService(def, {
    Unary(call, cb) {
      if (b && call.request.toString() === 'chain') {
        b.Unary(Buffer.from('ok'), (err) => {
          if (err) { log('Unary ' + names[err.code]); cb(err); return; }
          redisGet('item:1', () => {
            log('Unary OK');
            cb(null, Buffer.from('chained'));
          });
        });
        return;
      }
      const code = abortCode(call.request);
      log('Unary ' + names[code]);
      if (code) cb({code, details: 'aborted on request'});
      else cb(null, Buffer.concat([Buffer.from('pong:'), call.request]));
    },
    ServerStream(call) {
      for (let i = 0; i < 3; i++) call.write(Buffer.from('item' + i));
      call.end();
      log('ServerStream OK');
    },
  });
  server.bindAsync('127.0.0.1:' + port, grpc.ServerCredentials.createInsecure(), (err) => {
    if (err) throw err;
    console.log('ready');
  });
} else if (mode === 'chain') {
  const c = new Client('127.0.0.1:' + port, grpc.credentials.createInsecure());
  (async () => {
    for (let i = 0; i < parseInt(arg, 10); i++) {
      const code = await new Promise((res) =>
        c.Unary(Buffer.from('chain'), (err) => res(err ? err.code : 0)));
      console.log('Unary ' + names[code]);
    }
    c.close();
  })();
} else {
  const c = new Client('127.0.0.1:' + port, grpc.credentials.createInsecure());
  const n = parseInt(arg, 10);
  (async () => {
    for (let i = 0; i < n; i++) {
      const req = Buffer.from(i % 5 === 4 ? 'abort:5' : 'ok');
      const code = await new Promise((res) => c.Unary(req, (err) => res(err ? err.code : 0)));
      console.log('Unary ' + names[code]);
    }
    for (let i = 0; i < Math.floor(n / 5); i++) {
      const code = await new Promise((res) => {
        const st = c.ServerStream(Buffer.from('node'));
        st.on('data', () => {});
        st.on('error', (e) => res(e.code));
        st.on('end', () => res(0));
      });
      console.log('ServerStream ' + names[code]);
    }
    c.close();
  })();
}
