#!/usr/bin/env bash
# build_go_fixtures.sh — Go fixtures and reference answers for test_go_binary.
#
#   build_go_fixtures.sh OUTDIR [--big]
#       Builds with the local Go toolchain (no network, no module proxy) into
#       OUTDIR: hello_default, hello_stripped (-ldflags='-s -w'), hello_pie
#       (-buildmode=pie -ldflags='-s -w'), hello_pie_full (-buildmode=pie) from
#       go_fixtures/hello, and gosymlookup; with --big also big (~100 MB: many
#       std packages and a 96 MiB embedded blob). Files already built are kept.
#   build_go_fixtures.sh --rets BIN START STOP
#       Disassembles [START, STOP) (hex vaddrs) with binutils objdump and prints
#       "bytes HEX" (the first 16 bytes of the range) then "ret OFF" (hex,
#       relative to START) for every ret instruction.
#   build_go_fixtures.sh --nm BIN NAME
#       Prints NAME's address (hex) as `go tool nm` reports it, or "none".
#   build_go_fixtures.sh --gosym OUTDIR BIN NAME
#       Prints "START END" (hex) of NAME from Go's own debug/gosym, or "none".
#   build_go_fixtures.sh --goversion
#       Prints the local toolchain's version ("go1.19.8").
set -eu
here=$(cd "$(dirname "$0")" && pwd)

go_env() {
	export GOTOOLCHAIN=local GOPROXY=off GOFLAGS= GO111MODULE=on CGO_ENABLED=0
	export GOCACHE=${GO_FIXTURES_CACHE:-${TMPDIR:-/tmp}/periscope-gocache-$(id -u)}
	export HOME=$GOCACHE/home
	mkdir -p "$HOME"
}

build() { # SRC_DIR OUT FLAGS...
	local src=$1 out=$2 work
	shift 2
	if [ -s "$out" ] && [ "$out" -nt "$src/main.go" ]; then return 0; fi
	work=$(mktemp -d "${TMPDIR:-/tmp}/periscope-gofix.XXXXXX")
	cp "$src/main.go" "$work/"
	printf 'module fixture\n\ngo 1.17\n' >"$work/go.mod"
	if [ "$(basename "$src")" = big ]; then
		# 96 MiB of incompressible bytes, made quickly from a fixed seed.
		openssl enc -aes-128-ctr -pass pass:periscope -nosalt -pbkdf2 \
			</dev/zero 2>/dev/null | head -c $((96 * 1024 * 1024)) >"$work/blob.bin"
	fi
	(cd "$work" && go build -trimpath "$@" -o "$out.tmp" .) || {
		rm -rf "$work"
		return 1
	}
	mv "$out.tmp" "$out"
	rm -rf "$work"
}

case "${1:-}" in
--rets)
	bin=$2 start=$3 stop=$4
	objdump -d --show-raw-insn --start-address="0x$start" --stop-address="0x$stop" "$bin" 2>/dev/null |
		awk -v start="$start" -F'\t' '
		/^ *[0-9a-f]+:\t/ {
			addr = $1; sub(/^ */, "", addr); sub(/:$/, "", addr)
			nb = split($2, b, " ")
			for (i = 1; i <= nb && nbytes < 16; i++) {
				first = first b[i]
				nbytes++
			}
			if (NF >= 3) {
				m = $3; sub(/^ */, "", m)
				if (m ~ /^((rep|repz|bnd|notrack) )*ret[qlw]?( |$)/) {
					printf "ret %x\n", strtonum("0x" addr) - strtonum("0x" start)
				}
			}
		}
		END { printf "bytes %s\n", first }'
	;;
--nm)
	go_env
	go tool nm "$2" 2>/dev/null | awk -v name="$3" '$NF == name && $2 == "T" { print $1; found = 1 }
		END { if (!found) print "none" }'
	;;
--gosym)
	"$2/gosymlookup" "$3" "$4"
	;;
--goversion)
	go_env
	go env GOVERSION
	;;
"" | --*)
	echo "usage: $0 OUTDIR [--big] | --rets BIN START STOP | --nm BIN NAME | --gosym OUTDIR BIN NAME" >&2
	exit 2
	;;
*)
	out=$1
	mkdir -p "$out"
	out=$(cd "$out" && pwd)
	command -v go >/dev/null || { echo "go not found" >&2; exit 3; }
	go_env
	src=$here/go_fixtures
	build "$src/hello" "$out/hello_default"
	build "$src/hello" "$out/hello_stripped" -ldflags='-s -w'
	build "$src/hello" "$out/hello_pie" -buildmode=pie -ldflags='-s -w'
	build "$src/hello" "$out/hello_pie_full" -buildmode=pie
	build "$src/gosymlookup" "$out/gosymlookup"
	if [ "${2:-}" = --big ]; then build "$src/big" "$out/big" -ldflags='-s -w'; fi
	;;
esac
