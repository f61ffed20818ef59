// logapp.js — node:http, one log line per request (see logapp.py for MODE and the lines).
const http = require('node:http');
const mode = process.env.MODE || 'text';
http.createServer((req, res) => {
  const m = /^\/r\/(\d+)/.exec(req.url);
  const i = m ? Number(m[1]) : -1;
  const level = i % 2 ? 'WARN' : 'INFO';
  if (mode === 'json') console.error(JSON.stringify({level: level.toLowerCase(), msg: 'req ' + i, n: i}));
  else console.log(level + ' req ' + i + ' handled');
  res.end('ok');
}).listen(Number(process.env.PORT), '127.0.0.1');
