// immediate_loop.js — the Node section of `make bench`: N event-loop iterations (one setImmediate
// each), prints the ns per iteration. Node.js's event-loop probes fire once per iteration
// (CheckImmediate), so this is their cost where it is highest: a loop that iterates for nothing.
const N = Number(process.argv[2] || 300000);
let n = 0;
const t0 = process.hrtime.bigint();
function step() {
  if (++n < N) setImmediate(step);
  else console.log((Number(process.hrtime.bigint() - t0) / N).toFixed(1));
}
step();
