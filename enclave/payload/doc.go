// Package payload parses the typed payloads a cosigner is asked to sign,
// computes their digests itself, and turns threshold signatures into the
// signed artefacts callers broadcast. Every participating enclave runs
// Parse on the caller's bytes: no signer ever trusts another party's
// digest, summary or parse.
//
// # Kinds
//
// A Request carries a Kind and the caller's bytes:
//
//   - EthTransaction: an unsigned Ethereum transaction in its canonical
//     encoding: a legacy RLP list (9 fields: v = 0 or the chain ID, r = s =
//     0; the chain ID comes from v or Request.ChainID, one of which must be
//     set and both agree), or an EIP-2718 envelope of type 1 (EIP-2930) or 2
//     (EIP-1559) with a non-zero chain ID (equal to Request.ChainID if that
//     is set) and zero signature values. Blob (3) and set-code (4)
//     transactions are refused. The bytes must be exactly what go-ethereum
//     re-encodes. Digest: the EIP-155 / EIP-2718 signing hash of
//     types.LatestSignerForChainID. Finish with FinishEth: v, r, s and the
//     signed raw transaction.
//   - EIP191: any message (personal_sign, version 0x45). Digest:
//     accounts.TextHash. Finish with FinishEth: a 65-byte r‖s‖v, v = 27/28.
//   - EIP712: eth_signTypedData_v4 JSON. Digest: apitypes.TypedDataAndHash.
//     Finish with FinishEth, as for EIP191.
//   - TaprootPSBT: a binary BIP-174 PSBT (version 0) whose inputs are all
//     Taproot key-path spends by the signing key. One digest per input: the
//     BIP-341 signature hash, computed by btcd's txscript from the witness
//     UTXOs of all inputs. Finish with FinishPSBT: the finalized PSBT and
//     the network transaction.
//   - RawDigest: exactly 32 bytes, signed as they are (blind signing). The
//     summary says Blind; only a key whose policy allows blind signing may
//     sign it. Finish with FinishDigest.
//
// # Keys
//
// Parse takes the public key that will sign (after any derivation): a
// 33-byte compressed secp256k1 key for ECDSA, which every Ethereum kind
// needs and whose Keccak address is the sender, or a 32-byte BIP-340 x-only
// key for Schnorr, which TaprootPSBT needs. RawDigest takes either. The
// Taproot key is used as the output key itself, with no BIP-86 tweak,
// because that is the key the FROST engine (enclave/mpc) signs for: every
// PSBT input must spend a witness UTXO whose script is OP_1 <key>. Inputs
// paying to anything else, including the BIP-86 tweak of the key, are
// refused, so a PSBT can never make us sign for coins we did not check.
//
// # What is checked
//
// Every input is at most MaxSize bytes. Parsing is strict: trailing bytes,
// non-canonical encodings, duplicate JSON keys, JSON nulls, non-integer
// JSON numbers and invalid UTF-8 are refused. Ethereum: transaction type,
// zero signature values, a chain ID that fits in 64 bits, ERC-20
// transfer(address,uint256) and approve(address,uint256) calldata decoded
// with exact length and zero address padding (a malformed one is refused
// outright, since a token contract may still execute it). EIP-712: the
// document is rebuilt from an exact-key JSON tree; the primary type and
// EIP712Domain must be declared; struct type names are identifiers that
// do not name an atomic type; a domain chainId must agree with
// Request.ChainID when both are set; sizes are bounded so hashing stays
// cheap. PSBT: every input has a witness UTXO paying to the key, no script
// path data, no existing signatures or final scripts, sighash type DEFAULT
// or ALL (the others let someone else change the transaction after we
// sign); a non-witness UTXO, if present, must match; no input is spent
// twice; every output is a standard address of Request.Network (or a
// zero-value OP_RETURN); amounts are in range and outputs do not exceed
// inputs.
//
// # Summary
//
// Parsed.Summary is what the policy engine evaluates: chain ID, sender,
// the value each payload moves (native ether, ERC-20 tokens as decoded
// from calldata, bitcoin per output), whether an Ethereum transaction
// calls or creates a contract beyond a plain transfer (with a decoded ERC-20
// approval, if any), the EIP-712 domain, the maximum network fee, and the
// blind flag. Addresses are canonical strings: EIP-55 for Ethereum, the
// network's bech32, bech32m or base58 encoding for Bitcoin.
//
// # Finishing
//
// The Finish methods check each signature against the key and the digest
// Parse computed before they build anything, and for Ethereum transactions
// also recover the sender from the signed transaction; a signature that
// does not verify is ErrSignature, never a result. The finished PSBT is
// run through the txscript engine, input by input, before it is returned.
//
// # Errors
//
// Every refusal of the caller's bytes wraps ErrInvalid with a short fixed
// reason; library error text, which can quote the input, never reaches the
// caller. Parsing never panics: the fuzz targets in this package hold that.
// Two library calls do panic on hostile input and run under recover
// (safeCall): btcd's psbt.NewFromRawBytes (v1.1.10, on a Taproot BIP-32
// derivation whose hash count overflows int) and go-ethereum's
// apitypes.TypedDataAndHash (on a null array item, which the JSON reader
// already refuses; the recover is for shapes not yet found).
package payload
