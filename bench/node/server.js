// server.js — the Node section of `make bench`: node:http answering every request at once
// (keep-alive), the cheapest handler there is, so what the agent adds stands out.
const http = require('node:http');
http.createServer((req, res) => {
  res.end('hello from node\n');
}).listen(Number(process.env.PORT), '127.0.0.1');
