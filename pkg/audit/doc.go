// Package audit defines the cosigner's audit log format: the entries, how
// they are hashed into a chain and signed by the enclave identity key, the
// export stream, and the offline verifier (Verify) that cosignerctl audit
// verify runs. It does no I/O of its own beyond the reader and writer it is
// given, and imports neither enclave/ nor parent/; the log itself lives in
// enclave/audit.
//
// # Entries
//
// An Entry records one event: its sequence number (1, 2, 3, … without
// gaps), the time (UTC, milliseconds), the cosigner ID, the event type (an
// extensible lower-case name: key_created, key_refreshed, sign_requested,
// sign_decided, signed, sign_failed, policy_changed, admin_action), the
// actor (the caller's identity), the key ID, the request or idempotency
// key, for sign_decided the decision (allow or deny), a reason, a small map
// of details, and the previous entry's hash. Every text field is bounded
// (Max* constants) and must be UTF-8 without control characters; Clean
// makes outside text fit. Unknown but well-formed types verify, so that a
// newer cosigner's log still verifies with an older cosignerctl.
//
// An entry is encoded as a CBOR array in Core Deterministic Encoding
// (RFC 8949 §4.2.1), at most MaxEntrySize bytes:
//
//	[ 1,            ; format version
//	  seq,          ; uint, >= 1
//	  time,         ; int, unix milliseconds
//	  cosigner_id,  ; tstr, 1..64 bytes of printable ASCII
//	  type,         ; tstr
//	  actor,        ; tstr
//	  key_id,       ; tstr
//	  request_id,   ; tstr
//	  decision,     ; tstr: "allow", "deny" or ""
//	  reason,       ; tstr
//	  details,      ; map tstr => tstr, at most 16 pairs
//	  prev_hash ]   ; bstr .size 32, zeros for entry 1
//
// Absent text fields are empty strings and absent details an empty map, so
// each entry has exactly one encoding; UnmarshalEntry accepts only that one
// (it re-encodes and compares).
//
//	hash      = SHA-256("nitro-cosigner audit entry v1" || 0x00 || entry)
//	signature = Ed25519(identity key, "nitro-cosigner audit signature v1" || 0x00 || hash)
//
// The chain is the prev_hash links; the keystore refuses an entry that does
// not extend it, and Verify refuses an export in which any link is broken.
//
// # Export
//
// An export is UTF-8 text, one JSON object per line (JSON Lines), each line
// ending in "\n" and at most MaxLineSize bytes. Every line is written by
// Go's encoding/json from a fixed structure (keys in the order shown,
// no white space, lower-case hex, padded standard base64), and Verify
// accepts a line only if it is byte for byte what this package writes, so
// no byte of an export can change without Verify failing.
//
// The first line is the header:
//
//	{"format":"nitro-cosigner-audit-export","version":1,"cosigner_id":"co-1",
//	 "identity_key":"<hex Ed25519 public key>","first_seq":1,
//	 "prev_hash":"<hex hash of entry first_seq-1, zeros when first_seq is 1>",
//	 "attestation":"<base64 attestation document, optional>"}
//
// Then one line per entry, first_seq, first_seq+1, …:
//
//	{"seq":1,"time":"2025-01-02T03:04:05.678Z","cosigner":"co-1","type":"sign_decided",
//	 "actor":"…","key_id":"…","request_id":"…","decision":"deny","reason":"…",
//	 "details":{"chain_id":"1"},"prev_hash":"<hex>","hash":"<hex>",
//	 "entry":"<base64 CBOR entry>","sig":"<base64 signature>"}
//
// The fields before prev_hash are a readable copy of the signed entry
// (empty ones left out) so that a verified export can be searched with jq
// or loaded into a SIEM; the signed bytes are "entry", and the readable
// copy must match them. A verifier written in another language need not
// reproduce Go's JSON: it can check the chain from "entry", "hash" and
// "sig" alone and compare the readable fields by value. The last line is
// the end record:
//
//	{"end":true,"last_seq":12,"last_hash":"<hex>","time":"<export time>","sig":"<base64>"}
//
// whose signature is Ed25519 over
//
//	"nitro-cosigner audit export end v1" || 0x00 ||
//	CBOR [cosigner_id, identity_key, first_seq, prev_hash,
//	      last_seq, last_hash, time (unix ms), SHA-256(attestation) or h'']
//
// so that it authenticates the header and shows that no entry was cut off
// the end. An export of no entries has last_seq = first_seq-1 and
// last_hash = prev_hash.
//
// The identity key in the header is only a claim: pin it
// (VerifyOptions.IdentityKey, from the cosigner's attestation document or
// roster) to learn who wrote the log. The attestation document, if
// present, binds that key (pkg/wire.BindingUserData) and can be checked
// with cosignerctl attestation verify; Verify does not evaluate it.
// Entry times are recorded, not checked: a clock may step back.
package audit
