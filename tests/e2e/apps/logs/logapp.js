// logapp.js — node:http, one log line per request (see logapp.py for MODE and the lines).
const http = require('node:http');
const mode = process.env.MODE || 'text';
http.createServer((req, res) => {
  const m = /^\/r\/(\d+)/.exec(req.url);
  const i = m ? Number(m[1]) : -1;
  const level = i % 2 ? 'WARN' : 'INFO';
  if (mode === 'json') console.error(JSON.stringify({level: level.toLowerCase(), msg: 'req ' + i, n: i}));
  else console.log(level + ' req ' + i + ' handled');
  // DELAY_MS: answer that much later (the request stays in flight while other work runs)
  const delay = Number(process.env.DELAY_MS || 0);
  if (delay > 0) setTimeout(() => res.end('ok'), delay);
  else res.end('ok');
}).listen(Number(process.env.PORT), '127.0.0.1');
// TICK_MS: a timer that logs on its own, for no request (its lines must carry no trace id)
const tickMs = Number(process.env.TICK_MS || 0);
let ticks = 0;
if (tickMs > 0) setInterval(() => console.log('tick ' + ++ticks), tickMs);
