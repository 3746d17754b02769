#!/usr/bin/env bash
# Builds the SQS emulator used by the broker tests — goaws, at the version
# pinned in tools/go.mod (checksums in tools/go.sum), wrapped by tools/main.go
# so that it binds a loopback port — from the Go module proxy into a cache
# directory, once, and prints the binary's path.
#
#   NITRO_GOAWS_CACHE  cache directory (default: $XDG_CACHE_HOME or
#                      ~/.cache, then nitro-cosigner/goaws)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
module=github.com/Admiral-Piett/goaws
version="$(awk -v m="$module" '$1 == m { print $2 }' "$here/tools/go.mod")"
if [[ -z "$version" ]]; then
	echo "build.sh: $module is not pinned in tools/go.mod" >&2
	exit 1
fi
# The wrapper is ours, so the cache key covers it as well as the pin.
sum="$(cat "$here/tools/go.mod" "$here/tools/go.sum" "$here/tools/main.go" | sha256sum | cut -c1-12)"
cache="${NITRO_GOAWS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nitro-cosigner/goaws}"
bin="$cache/goaws-$version-$sum"

if [[ ! -x "$bin" ]]; then
	mkdir -p "$cache"
	tmp="$(mktemp "$cache/.goaws.XXXXXX")"
	trap 'rm -f "$tmp"' EXIT
	echo "build.sh: building $module@$version (first time only)" >&2
	(cd "$here/tools" && go build -trimpath -o "$tmp" .)
	mv -f "$tmp" "$bin"
	trap - EXIT
fi
echo "$bin"
