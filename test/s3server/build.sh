#!/usr/bin/env bash
# Builds the real S3 server used by end-to-end tests — versitygw, at the
# version pinned in tools/go.mod (checksums in tools/go.sum) — from the Go
# module proxy into a cache directory, once, and prints the binary's path.
#
#   NITRO_S3SERVER_CACHE  cache directory (default: $XDG_CACHE_HOME or
#                         ~/.cache, then nitro-cosigner/s3server)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
module=github.com/versity/versitygw
version="$(awk -v m="$module" '$1 == m { print $2 }' "$here/tools/go.mod")"
if [[ -z "$version" ]]; then
	echo "build.sh: $module is not pinned in tools/go.mod" >&2
	exit 1
fi
cache="${NITRO_S3SERVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nitro-cosigner/s3server}"
bin="$cache/versitygw-$version"

if [[ ! -x "$bin" ]]; then
	mkdir -p "$cache"
	tmp="$(mktemp "$cache/.versitygw.XXXXXX")"
	trap 'rm -f "$tmp"' EXIT
	echo "build.sh: building $module@$version (first time only)" >&2
	(cd "$here/tools" && go build -trimpath -o "$tmp" "$module/cmd/versitygw")
	mv -f "$tmp" "$bin"
	trap - EXIT
fi
echo "$bin"
