#!/usr/bin/env bash
# run.sh — checks the Prometheus side of periscope: the alert rules file
# (promtool check rules), its unit tests (promtool test rules) and the Grafana
# dashboard JSON. Prints "prom: N passed, N failed"; exit status 1 on failure.
# Skips (0 passed, 0 failed) when promtool is not installed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
rules="$root/deploy/prometheus/periscope-alerts.yml"
tests="$here/alerts_test.yml"
dashboard="$root/deploy/grafana/periscope-red.json"
passed=0 failed=0

check() {
	local name=$1; shift
	local out
	if out=$("$@" 2>&1); then
		passed=$((passed + 1))
		echo "  ok   $name"
	else
		failed=$((failed + 1))
		echo "  FAIL $name"
		printf '%s\n' "$out" | sed 's/^/       /'
	fi
}

check_dashboard() {
	python3 - "$dashboard" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
exprs = []
def walk(p):
    for t in p.get("targets", []):
        exprs.append(t.get("expr", ""))
    for c in p.get("panels", []):
        walk(c)
for p in d["panels"]:
    walk(p)
names = {v["name"] for v in d["templating"]["list"]}
assert {"DS_PROMETHEUS", "service", "route"} <= names, names
assert any(i.get("name") == "DS_PROMETHEUS" for i in d.get("__inputs", [])), "no __inputs"
text = "\n".join(exprs)
for needle in ("http_server_request_duration_seconds_count",
               "http_server_request_duration_seconds_bucket",
               "histogram_quantile(0.5", "histogram_quantile(0.95", "histogram_quantile(0.99",
               'http_response_status_code=~\\"5..\\"'.replace('\\"', '"'),
               "service_name", "http_route"):
    assert needle in text, "dashboard lacks " + needle
for p in d["panels"]:
    ds = json.dumps(p.get("datasource", {}))
    assert p.get("type") == "row" or "${DS_PROMETHEUS}" in ds, p.get("title")
PY
}

if ! command -v promtool >/dev/null 2>&1; then
	echo "promtool not installed: skipping"
	echo "prom: 0 passed, 0 failed"
	exit 0
fi
check "promtool check rules" promtool check rules "$rules"
check "promtool test rules" promtool test rules "$tests"
if command -v python3 >/dev/null 2>&1; then
	check "grafana dashboard" check_dashboard
fi
echo "prom: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
