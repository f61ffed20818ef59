#!/usr/bin/env bash
# Runs every libFuzzer binary in DIR (default build/fuzz) for SECONDS (default 10) each, seeded from
# tests/fuzz/corpus/<name without fuzz_>/ when that exists (copied to a temporary directory so the
# tree stays clean), and prints "fuzz: N passed, N failed". Crash inputs are kept under
# $FUZZ_ARTIFACTS (default a temporary directory, printed on failure).
set -u
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-build/fuzz}
seconds=${2:-10}
passed=0 failed=0
work=$(mktemp -d /tmp/periscope-fuzz.XXXXXX)
artifacts=${FUZZ_ARTIFACTS:-$work/artifacts}
mkdir -p "$artifacts"
cleanup() { if [ "$failed" -eq 0 ]; then rm -rf "$work"; else rm -rf "$work/corpus"; fi; }
trap cleanup EXIT
for bin in "$dir"/fuzz_* "$dir"/*/fuzz_*; do
	if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then continue; fi
	name=$(basename "$bin")
	corpus=$work/corpus/$name
	mkdir -p "$corpus"
	seed=$here/fuzz/corpus/${name#fuzz_}
	[ -d "$seed" ] && cp -r "$seed"/. "$corpus"/
	log=$work/$name.log
	if "$bin" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=0 -artifact_prefix="$artifacts/$name-" "$corpus" >"$log" 2>&1; then
		passed=$((passed + 1))
		runs=$(grep -Eo '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 | tr -dc 0-9)
		echo "  $name: ok (${runs:-?} runs in ${seconds} s)"
	else
		failed=$((failed + 1))
		echo "  $name: FAILED, log and crash input below (artifacts in $artifacts)"
		tail -40 "$log"
	fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
