#!/usr/bin/env bash
# `make demo`: what nitro-cosigner can show today, on any machine. It grows
# into a whole devnet as the engine, state and wire land.
set -euo pipefail
cd "$(dirname "$0")/.."
vectors=pkg/attestation/testdata
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== building cosignerctl"
go build -trimpath -o "$work/cosignerctl" ./cmd/cosignerctl
ctl="$work/cosignerctl"

step() { printf '\n== %s\n$ %s\n' "$1" "${*:2}"; }

step "verify a real AWS Nitro document (2021, production) at its own timestamp" \
	cosignerctl attestation verify --at doc --json anjuna_2021-03-24_prod_rsa_pubkey.cbor
"$ctl" attestation verify --at doc --json "$vectors/anjuna_2021-03-24_prod_rsa_pubkey.cbor"

step "the same document today: its 3-hour leaf certificate has long expired" \
	cosignerctl attestation verify anjuna_2021-03-24_prod_rsa_pubkey.cbor
if "$ctl" attestation verify "$vectors/anjuna_2021-03-24_prod_rsa_pubkey.cbor"; then exit 1; fi

step "a real document whose COSE signature was altered" \
	cosignerctl attestation verify --at doc eternis_2024-07-23_BADSIG.cbor
if "$ctl" attestation verify --at doc --allow-debug "$vectors/eternis_2024-07-23_BADSIG.cbor"; then exit 1; fi

step "a debug-mode enclave's document is refused unless --allow-debug" \
	cosignerctl attestation verify --at doc anjuna_2024-01-24_debug_pk_ud_nonce.cbor
if "$ctl" attestation verify --at doc "$vectors/anjuna_2024-01-24_debug_pk_ud_nonce.cbor"; then exit 1; fi

pcr0=$(printf 'ab%.0s' $(seq 48))
step "mint a document with the NSM simulator (test CA, development builds only)" \
	cosignerctl attestation simulate --pcr 0=ab…ab --pcr 1=… --pcr 2=… --nonce 0badc0de --out doc.cbor --root-out root.pem
"$ctl" attestation simulate --pcr "0=$pcr0" --pcr "1=$pcr0" --pcr "2=$pcr0" --nonce 0badc0de \
	--out "$work/doc.cbor" --root-out "$work/root.pem"

step "it verifies only against the simulator's root, with the expected PCR0" \
	cosignerctl attestation verify --root root.pem --pcr 0=ab…ab doc.cbor
"$ctl" attestation verify --root "$work/root.pem" --pcr "0=$pcr0" "$work/doc.cbor"

step "and never against the pinned AWS root" cosignerctl attestation verify doc.cbor
if "$ctl" attestation verify "$work/doc.cbor"; then exit 1; fi

printf '\ndemo finished: every check above behaved as expected\n'
