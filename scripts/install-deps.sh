#!/usr/bin/env bash
# install-deps.sh — installs periscope's build/run dependencies (and, with
# --test, what the tests need) from Debian 12 packages. Idempotent: only
# missing packages are installed, and when nothing is missing it does nothing
# (not even apt-get update). Services installed here are not started: the
# tests start their own instances.
#
#   scripts/install-deps.sh [--test] [--dry-run]
#
#   --test     also the test set (servers, load generators, language runtimes)
#   --dry-run  only print what is missing and would be installed
set -euo pipefail

BUILD_PKGS=(clang llvm libbpf-dev libelf-dev zlib1g-dev libprotobuf-c-dev protobuf-c-compiler
	libcurl4-openssl-dev libcapstone-dev bpftool make pkg-config)
TEST_PKGS=(protobuf-compiler nginx curl wrk prometheus python3 redis-server redis-tools
	postgresql postgresql-contrib mariadb-server mariadb-client memcached python3-fastapi
	python3-uvicorn python3-flask python3-httpx python3-redis python3-psycopg2 gunicorn golang-go
	nodejs npm openssl procps iproute2 hyperfine linux-perf libclang-rt-14-dev
	libnghttp2-dev nghttp2-client nghttp2-server python3-grpcio golang-google-grpc-dev)

with_tests=0
dry_run=0
for arg in "$@"; do
	case "$arg" in
	--test) with_tests=1 ;;
	--dry-run) dry_run=1 ;;
	-h | --help)
		sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "install-deps.sh: unknown argument: $arg (try --help)" >&2
		exit 2
		;;
	esac
done

wanted=("${BUILD_PKGS[@]}")
if ((with_tests)); then
	wanted+=("${TEST_PKGS[@]}")
	# a Node.js from elsewhere (e.g. NodeSource, which bundles npm) is kept
	if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
		filtered=()
		for p in "${wanted[@]}"; do
			[[ "$p" == nodejs || "$p" == npm ]] || filtered+=("$p")
		done
		wanted=("${filtered[@]}")
	fi
fi

installed() {
	[[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

missing=()
for p in "${wanted[@]}"; do
	installed "$p" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
	echo "install-deps.sh: all ${#wanted[@]} packages are installed"
	exit 0
fi

echo "install-deps.sh: missing: ${missing[*]}"
if ((dry_run)); then
	exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
	echo "install-deps.sh: must run as root to install: ${missing[*]}" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-deps.sh: apt-get not found: this script supports Debian 12 only" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if ! apt-get update; then
	echo "install-deps.sh: apt-get update failed" >&2
	exit 1
fi

# only names this release has (a candidate version); drop the others
to_install=()
for p in "${missing[@]}"; do
	candidate="$(apt-cache policy "$p" 2>/dev/null | sed -n 's/^ *Candidate: *//p')"
	if [[ -z "$candidate" || "$candidate" == "(none)" ]]; then
		echo "install-deps.sh: warning: no package '$p' in this Debian release, skipped" >&2
	else
		to_install+=("$p")
	fi
done
if ((${#to_install[@]} == 0)); then
	echo "install-deps.sh: nothing installable" >&2
	exit 1
fi

# keep the installed services from starting (exit 101: "action forbidden"),
# unless the system already has a policy of its own
policy="${POLICY_RC_D:-/usr/sbin/policy-rc.d}" # overridable for testing this script
own_policy=0
if [[ ! -e "$policy" ]]; then
	printf '#!/bin/sh\n# temporary, from periscope scripts/install-deps.sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	own_policy=1
fi
cleanup() {
	if ((own_policy)); then
		rm -f "$policy"
	fi
}
trap cleanup EXIT

echo "install-deps.sh: installing: ${to_install[*]}"
if ! apt-get install -y --no-install-recommends "${to_install[@]}"; then
	echo "install-deps.sh: apt-get install failed for: ${to_install[*]}" >&2
	exit 1
fi
echo "install-deps.sh: done"
