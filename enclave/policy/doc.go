// Package policy is the cosigner's in-enclave transaction policy: a
// deterministic, versioned document that every signer evaluates on its own
// parse of a payload, before anything else happens to it, and that only an
// M-of-N quorum of admins can replace.
//
// # Contract
//
//   - Fail closed. Every path that cannot prove a request allowed refuses
//     it: no document, no rule set for the key, an unlisted kind, chain,
//     asset or destination, a malformed request or document, an error of
//     the keystore. The zero Decision refuses; an Engine method that
//     returns an error returns that zero Decision.
//   - Deterministic. Evaluate is a pure function of the document, the
//     request and the key's window spends: no clock, no randomness, no map
//     order. Two signers with the same document and state decide the same.
//   - Local. Every signer in a session evaluates its own stored policy on
//     its own parse of the payload (Request must be built from this
//     enclave's parsing, never from what a coordinator or caller claims).
//
// # The document
//
// A JSON object (see Parse for everything refused):
//
//	{
//	  "version": 7,
//	  "default": { <rule set> },
//	  "keys": { "<64 hex digits of a key ID>": { <rule set> } }
//	}
//
// A key listed under keys uses its own rule set, which replaces the default
// entirely (fields are not merged); any other key uses default; with
// neither, every request for the key is refused. A rule set:
//
//	{
//	  "kinds": ["eth-transaction", "taproot-psbt"],   // payload kinds allowed; empty: none
//	  "chain_ids": [1, 8453],               // Ethereum chains allowed; empty: none
//	  "any_destination": false,             // true: every destination not denied
//	  "allow_destinations": ["0x..."],      // else only these (canonical compare)
//	  "deny_destinations": ["bc1q..."],     // always refused, even if allowed
//	  "limits": [                           // assets allowed, and their limits
//	    {"asset": "native", "chain_id": 1, "max_per_tx": "1000000000000000000",
//	     "window_seconds": 86400, "max_per_window": "5000000000000000000"},
//	    {"asset": "0xa0b8...eb48", "chain_id": 1, "max_per_tx": "100000000"},
//	    {"asset": "btc", "window_seconds": 3600, "max_per_window": "10000000"}
//	  ],
//	  "allow_blind_signing": false,         // raw digests
//	  "allow_contract_calls": false         // calls beyond (ERC-20) transfers
//	}
//
// Amounts are decimal strings of base units (wei, token units, satoshi)
// below 2^256. An asset without a limits entry cannot be moved at all; an
// entry with neither limit allows any amount. Limits apply per key and per
// asset, where "native" and a token address on two chains are two assets
// (see AssetKey); a request's transfers of one asset are summed. Windows
// are rolling: a spend counts while it is younger than the window, up to
// MaxWindow (31 days).
//
// Addresses compare canonically: Ethereum addresses case-insensitively
// (EIP-55 checksums are not verified), bech32 Bitcoin addresses
// case-insensitively, base58 Bitcoin addresses exactly.
//
// # Canonical form and approval
//
// The canonical form of a document — what admins sign, what the keystore
// stores and what a get returns — is exactly the bytes Parse accepted, not
// a re-encoding. Parse's strictness (no duplicate or case-variant keys, no
// unknown fields, no null, valid UTF-8) leaves those bytes one meaning.
// SetPolicy needs VerifyApprovals to find valid signatures of at least M
// distinct configured admin keys (Ed25519 or ECDSA P-256) over
// ApprovalLabel || SHA-256(canonical), and a version above the stored one.
//
// # Window state and reservations
//
// Engine.Authorize decides and, when an allowed request moves value,
// records its per-asset totals as spends of the key in the keystore, in the
// one replicated transaction that also read the earlier spends and checked
// that the policy is still the latest (keystore.Store.ReserveSpends). So
// concurrent requests cannot both pass a window limit that only one fits
// under. A spend counts from that moment: there is no Commit, because a
// reserved spend that is never released is the safe error. Engine.Release
// takes a reservation back, and must only be called when the signature
// certainly was not produced (no share of ours left the enclave): a
// refused session, a peer that never started, an abort before our online
// share was sent. Spends older than MaxWindow are pruned, whatever the
// current windows, so that a later document with longer windows still sees
// them.
package policy
