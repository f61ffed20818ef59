#!/usr/bin/env bash
# Runs every test section in order — the include-layer check, unit tests, the same under ASan+UBSan, the promtool checks
# (when tests/prom/run.sh exists), a short fuzz run, the end-to-end tests — and adds up their
# "N passed, N failed" summaries into one last line "N passed, N failed". Exits non-zero if anything
# failed. Expects the binaries to be built already (`make test` does that); BUILD selects the build
# directory (default build), FUZZ_SECONDS the seconds per fuzzer (default 10).
set -u
cd "$(dirname "$0")/.." || exit 1
build=${BUILD:-build}
export BUILD=$build
total_passed=0 total_failed=0 rc=0
failures=$(mktemp)
trap 'rm -f "$failures"' EXIT

# section NAME COMMAND... — runs COMMAND, shows its output, adds its last "N passed, N failed".
section() {
	local name=$1 out st line p f
	shift
	echo "=== $name"
	out=$(mktemp)
	"$@" 2>&1 | tee "$out"
	st=${PIPESTATUS[0]}
	line=$(grep -Eo '[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
	# The lines naming what failed, repeated at the very end where a truncated log still shows them.
	grep -E '^ *(FAIL|--- FAIL)|: FAILED|crashed \(exit|no summary|despite 0 failures|^  [a-z_0-9]+: [0-9]+ passed, [1-9][0-9]* failed$' "$out" |
		sed "s/^ */$name: /" >>"$failures"
	rm -f "$out"
	if [ -z "$line" ]; then
		echo "--- $name: no summary line (exit $st), counted as 1 failure"
		total_failed=$((total_failed + 1)) rc=1
		return
	fi
	p=${line%% passed*}
	f=${line#*passed, }
	f=${f%% failed*}
	total_passed=$((total_passed + p)) total_failed=$((total_failed + f))
	if [ "$st" -ne 0 ]; then
		rc=1
		[ "$f" -eq 0 ] && total_failed=$((total_failed + 1)) && echo "--- $name: exit $st"
	fi
}

section "layers" scripts/check-layers.sh
section "unit" tests/run-unit.sh "$build/tests"
section "unit (ASan+UBSan)" env ASAN_OPTIONS=detect_leaks=1 tests/run-unit.sh "$build/tests-asan"
if [ -x tests/prom/run.sh ]; then
	section "promtool" tests/prom/run.sh
fi
section "fuzz (${FUZZ_SECONDS:-10} s each)" tests/run-fuzz.sh "$build/fuzz" "${FUZZ_SECONDS:-10}"
section "e2e" tests/run-e2e.sh

if [ -s "$failures" ]; then
	echo "=== what failed (repeated from above)"
	head -40 "$failures"
fi
echo "$total_passed passed, $total_failed failed"
[ "$rc" -eq 0 ] && [ "$total_failed" -eq 0 ]
