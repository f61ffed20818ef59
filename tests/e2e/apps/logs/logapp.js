// logapp.js — node:http, one log line per request (see logapp.py for MODE and the lines).
// With TIMER_MS, an interval timer also prints "timer tick <n>" lines (work for no request), and
// each request is answered DELAY_MS after it is read, so the timer runs while requests are open.
const http = require('node:http');
const mode = process.env.MODE || 'text';
const timerMs = Number(process.env.TIMER_MS || 0);
const delayMs = Number(process.env.DELAY_MS || 0);
if (timerMs) {
  let ticks = 0;
  setInterval(() => console.log('timer tick ' + (++ticks)), timerMs);
}
http.createServer((req, res) => {
  const m = /^\/r\/(\d+)/.exec(req.url);
  const i = m ? Number(m[1]) : -1;
  const level = i % 2 ? 'WARN' : 'INFO';
  if (mode === 'json') console.error(JSON.stringify({level: level.toLowerCase(), msg: 'req ' + i, n: i}));
  else console.log(level + ' req ' + i + ' handled');
  if (delayMs) setTimeout(() => res.end('ok'), delayMs);
  else res.end('ok');
}).listen(Number(process.env.PORT), '127.0.0.1');
