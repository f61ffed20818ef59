// grpc_app.js — a gRPC server and client with @grpc/grpc-js, no generated code: a service
// definition with raw-bytes (identity) serializers. Service demo.Echo: Unary (request
// "abort:<code>" fails with that code) and ServerStream.
//
//   node grpc_app.js server PORT LOG    serve; one line per finished call in LOG: "<method> <code>"
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

const [mode, port, arg] = process.argv.slice(2);
if (mode === 'server') {
  const log = (line) => fs.appendFileSync(arg, line + '\n');
  const server = new grpc.Server();
  server.addService(def, {
    Unary(call, cb) {
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
} else {
  const Client = grpc.makeGenericClientConstructor(def, 'Echo');
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
