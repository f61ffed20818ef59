#!/usr/bin/env bash
# bench.sh — periscope's benchmarks (`make bench`; not part of `make test`).
#
#   scripts/bench.sh [--out FILE]      (default bench/RESULTS.md)
#
# Runs scripts/bench_run.py as root: wrk against nginx with the agent off and on
# (throughput, latency, agent CPU per request incl. BPF run time, RSS, drops),
# Redis under a fixed-rate client, record/replay throughput, valgrind
# allocations and top costs, and the agent's memory with many idle connections.
# Writes the Markdown report with the machine and the date. About 4-5 minutes;
# knobs (BENCH_PAIRS, BENCH_SECONDS, BENCH_SKIP, ...) are described in
# scripts/bench_run.py.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

if [ "$(id -u)" -ne 0 ]; then
	echo "bench: needs root (eBPF, bpftool)" >&2
	exit 1
fi
missing=()
for tool in wrk nginx redis-server redis-cli bpftool curl taskset /usr/bin/python3; do
	command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "bench: missing ${missing[*]} (scripts/install-deps.sh --test)" >&2
	exit 1
fi
command -v valgrind >/dev/null 2>&1 ||
	echo "bench: valgrind not installed: the allocation and callgrind numbers are skipped" >&2

# 100,000 idle connections need file descriptors in the holder and in nginx.
ulimit -Hn 300000 2>/dev/null || true
ulimit -n 300000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# BPF run-time statistics: on for the bench, restored afterwards.
stats=/proc/sys/kernel/bpf_stats_enabled
old_stats=$(cat "$stats" 2>/dev/null || echo 1)
if [ "$old_stats" != 1 ]; then
	sysctl -q -w kernel.bpf_stats_enabled=1
	trap 'sysctl -q -w kernel.bpf_stats_enabled='"$old_stats" EXIT
fi

cd "$repo"
/usr/bin/python3 "$here/bench_run.py" "$@"
echo "bench: results in ${2:-bench/RESULTS.md}"
