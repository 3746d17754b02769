#!/usr/bin/env bash
# Lints the cosigner API's .proto files (proto/) and generates their Go code
# with buf, protoc-gen-go and protoc-gen-go-grpc at the versions pinned in
# this directory's go.mod (checksums in go.sum). The three tools are built
# from the Go module proxy into a cache directory, once per pin.
#
#   gen.sh generate   lint, format the .proto files, and write the generated
#                     code into proto/ (removing generated files whose
#                     .proto is gone)
#   gen.sh check      lint, check the formatting, generate into a temporary
#                     directory, and fail with a diff if the committed code
#                     differs in any way
#
#   NITRO_PROTOC_CACHE  cache directory (default: $XDG_CACHE_HOME or
#                       ~/.cache, then nitro-cosigner/protoc)
set -euo pipefail

die() {
	echo "gen.sh: $*" >&2
	exit 1
}

mode="${1:-}"
[[ "$mode" == generate || "$mode" == check ]] || die "usage: gen.sh generate|check"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
protodir="$root/proto"
export GOTOOLCHAIN=local GOFLAGS=-mod=readonly

# protoc-gen-go's output must match the protobuf runtime the main module
# builds with, so both must name the same version.
pin() { awk -v m="$1" '$1 == m { print $2 }' "$2"; }
runtime="$(pin google.golang.org/protobuf "$root/go.mod")"
generator="$(pin google.golang.org/protobuf "$here/go.mod")"
[[ -n "$runtime" && "$runtime" == "$generator" ]] ||
	die "google.golang.org/protobuf is $runtime in go.mod but $generator in tools/protoc/go.mod"

# Build the tools once per (go.mod, go.sum, Go version).
cache="${NITRO_PROTOC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nitro-cosigner/protoc}"
sha256() { if command -v sha256sum >/dev/null; then sha256sum; else shasum -a 256; fi; }
stamp="$({ cat "$here/go.mod" "$here/go.sum"; go env GOVERSION; } | sha256 | cut -c1-16)"
bin="$cache/bin-$stamp"
if [[ ! -x "$bin/buf" || ! -x "$bin/protoc-gen-go" || ! -x "$bin/protoc-gen-go-grpc" ]]; then
	mkdir -p "$cache"
	tmpbin="$(mktemp -d "$cache/.bin.XXXXXX")"
	chmod 755 "$tmpbin"
	trap 'rm -rf "$tmpbin"' EXIT
	echo "gen.sh: building buf, protoc-gen-go and protoc-gen-go-grpc (first time only)" >&2
	(cd "$here" && go build -trimpath -o "$tmpbin/" tool)
	rm -rf "$bin"
	mv "$tmpbin" "$bin" || [[ -x "$bin/buf" ]] # another run may have won
	trap - EXIT
fi
export PATH="$bin:$PATH"
export BUF_CACHE_DIR="$cache/buf"

cd "$protodir"
buf lint
if [[ "$mode" == generate ]]; then
	buf format --write
else
	buf format --diff --exit-code || die "the .proto files are not buf-formatted: run make proto"
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
mkdir "$out/generated" "$out/committed"
buf generate --template buf.gen.yaml --output "$out/generated" .

# Generated files are the *.pb.go files under proto/. copy_generated SRC DST
# copies them, with their relative paths, from SRC to DST.
generated() { (cd "$1" && find . -name '*.pb.go' -type f | LC_ALL=C sort); }
copy_generated() { generated "$1" | (cd "$1" && tar -cf - -T -) | (cd "$2" && tar -xf -); }

if [[ "$mode" == generate ]]; then
	generated "$protodir" | (cd "$protodir" && xargs rm -f)
	copy_generated "$out/generated" "$protodir"
	exit 0
fi

copy_generated "$protodir" "$out/committed"
if ! (cd "$out" && diff -ru committed generated); then
	die "generated code is out of date: run make proto"
fi
