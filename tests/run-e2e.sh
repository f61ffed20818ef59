#!/usr/bin/env bash
# Runs every tests/e2e/test_*.py (each a script printing "e2e: N passed, N failed[, N skipped]")
# with /usr/bin/python3, adds up their summaries and prints one "e2e: N passed, N failed" line.
# Arguments, if any, are the test files to run. Needs root and a built agent ($BUILD/periscope).
set -u
here=$(cd "$(dirname "$0")" && pwd)
python=/usr/bin/python3
per_file_timeout=${E2E_FILE_TIMEOUT:-180}
passed=0 failed=0 skipped=0
if [ $# -gt 0 ]; then files=("$@"); else files=("$here"/e2e/test_*.py); fi
for f in "${files[@]}"; do
	[ -f "$f" ] || continue
	echo "== $(basename "$f")"
	out=$(mktemp)
	timeout --kill-after=10 "$per_file_timeout" "$python" "$f" 2>&1 | tee "$out"
	st=${PIPESTATUS[0]}
	line=$(grep -E '^e2e: [0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$out" | tail -1)
	rm -f "$out"
	if [ -z "$line" ]; then
		echo "  $(basename "$f"): no summary (exit $st$([ "$st" -eq 124 ] && echo ', timed out'))"
		failed=$((failed + 1))
		continue
	fi
	p=$(echo "$line" | sed -E 's/^e2e: ([0-9]+) passed.*/\1/')
	n=$(echo "$line" | sed -E 's/^e2e: [0-9]+ passed, ([0-9]+) failed.*/\1/')
	s=0
	case $line in *skipped) s=$(echo "$line" | sed -E 's/.* ([0-9]+) skipped$/\1/') ;; esac
	if [ "$st" -ne 0 ] && [ "$n" -eq 0 ]; then
		echo "  $(basename "$f"): exit $st despite 0 failures"
		n=1
	fi
	passed=$((passed + p)) failed=$((failed + n)) skipped=$((skipped + s))
done
summary="e2e: $passed passed, $failed failed"
[ "$skipped" -gt 0 ] && summary="$summary, $skipped skipped"
echo "$summary"
[ "$failed" -eq 0 ]
