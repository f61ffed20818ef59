"""task_loop.py — the Python section of `make bench`: N asyncio task steps that do nothing
(`await asyncio.sleep(0)`: one callback, one task step each), prints the ns per step. The asyncio
probes fire on every callback and every task step, so this is their cost where it is highest."""

import asyncio
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 300000


async def steps():
    for _ in range(N):
        await asyncio.sleep(0)


t0 = time.perf_counter_ns()
asyncio.run(steps())
print("%.1f" % ((time.perf_counter_ns() - t0) / N))
