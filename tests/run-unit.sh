#!/usr/bin/env bash
# Runs every unit-test binary in $1 and adds up their "N passed, N failed" lines.
set -u
dir=$1
passed=0 failed=0 rc=0
for t in "$dir"/test_* "$dir"/*/test_*; do
	[ -x "$t" ] || continue
	out=$("$t" 2>&1); st=$?
	line=$(printf '%s\n' "$out" | grep -E '^[a-z_0-9]+: [0-9]+ passed, [0-9]+ failed$' | tail -1)
	if [ $st -ne 0 ] || [ -z "$line" ]; then
		printf '%s\n' "$out" | tail -40
		rc=1
	fi
	if [ -n "$line" ]; then
		p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
		f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')
		passed=$((passed + p)); failed=$((failed + f))
		echo "  $line"
	else
		echo "  $(basename "$t"): crashed (exit $st)"; failed=$((failed + 1))
	fi
done
echo "unit ($dir): $passed passed, $failed failed"
[ $failed -eq 0 ] && [ $rc -eq 0 ]
