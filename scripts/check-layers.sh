#!/usr/bin/env bash
# check-layers.sh — checks the one-way dependency rule of user/: a folder may include headers
# from itself and from the folders listed before it in LAYERS (and include/, build/ headers),
# never from a folder after it. Prints each violation and "layers: N passed, N failed"
# (one check per source file); exits non-zero on any violation.
set -u
cd "$(dirname "$0")/.." || exit 1
LAYERS=(util kernel parsers conn telemetry export agent)
rank() {
	local i
	for i in "${!LAYERS[@]}"; do [ "${LAYERS[$i]}" = "$1" ] && echo "$i" && return; done
	echo -1
}
passed=0 failed=0
while IFS= read -r f; do
	folder=${f#user/}
	folder=${folder%%/*}
	own=$(rank "$folder")
	ok=1
	if [ "$own" -lt 0 ]; then
		echo "  $f: folder '$folder' is not in the layer list"
		ok=0
	fi
	while IFS= read -r inc; do
		dep=${inc%%/*}
		[ "$dep" = "$inc" ] && continue # not a user/ header (include/, build/)
		r=$(rank "$dep")
		if [ "$r" -lt 0 ] || [ "$r" -gt "$own" ]; then
			echo "  $f includes \"$inc\": $folder may not depend on $dep"
			ok=0
		fi
	done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
	if [ "$ok" -eq 1 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done < <(find user -name '*.[ch]' | sort)
echo "layers: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
