package payload

import (
	"errors"
	"fmt"
	"math/big"
	"slices"
)

// MaxSize is the largest payload Parse accepts, in bytes.
const MaxSize = 128 << 10

// DigestSize is the size of every digest to sign.
const DigestSize = 32

var (
	// ErrInvalid means the payload, the request or the key was refused.
	// It is wrapped with a short reason that never quotes the input.
	ErrInvalid = errors.New("payload: invalid")
	// ErrSignature means a signature handed to a Finish method does not
	// verify under the key for the digest Parse computed, or the signed
	// artefact failed its final check. Nothing is returned with it.
	ErrSignature = errors.New("payload: signature does not verify")
)

func invalid(reason string) error { return fmt.Errorf("%w: %s", ErrInvalid, reason) }

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Kind is the type of a sign payload.
type Kind uint8

const (
	// EthTransaction is an unsigned legacy, EIP-2930 or EIP-1559 transaction.
	EthTransaction Kind = iota + 1
	// EIP191 is a personal_sign message.
	EIP191
	// EIP712 is typed data in eth_signTypedData_v4 JSON.
	EIP712
	// TaprootPSBT is a binary PSBT spending Taproot outputs by key path.
	TaprootPSBT
	// RawDigest is a 32-byte digest signed blind.
	RawDigest
)

func (k Kind) String() string {
	switch k {
	case EthTransaction:
		return "eth-transaction"
	case EIP191:
		return "eip191"
	case EIP712:
		return "eip712"
	case TaprootPSBT:
		return "taproot-psbt"
	case RawDigest:
		return "raw-digest"
	}
	return "unknown-kind"
}

// Scheme is the signature scheme a payload needs.
type Scheme uint8

const (
	// SchemeECDSA is ECDSA on secp256k1 (a CMP key).
	SchemeECDSA Scheme = iota + 1
	// SchemeSchnorr is BIP-340 Schnorr on secp256k1 (a FROST Taproot key).
	SchemeSchnorr
)

func (s Scheme) String() string {
	switch s {
	case SchemeECDSA:
		return "ecdsa"
	case SchemeSchnorr:
		return "schnorr-bip340"
	}
	return "unknown-scheme"
}

// Request is a payload as the API carries it between parties: the caller's
// bytes, never a digest computed by someone else.
type Request struct {
	Kind  Kind
	Bytes []byte
	// ChainID is the Ethereum chain: needed for a legacy transaction whose
	// v is zero, checked against the chain a typed transaction or an
	// EIP-712 domain names, and carried as the caller's statement for
	// EIP-191 messages and EIP-712 documents without a chainId. Zero
	// means unset; it must be zero for the Bitcoin and raw kinds.
	ChainID uint64
	// Network names the Bitcoin network of a TaprootPSBT, which decides
	// how output addresses are written: "mainnet", "testnet3", "testnet4",
	// "signet" or "regtest". It must be empty for the other kinds.
	Network string
}

// Asset names for Transfer.Asset other than ERC-20 contract addresses.
const (
	AssetNative = "native" // ether, or the chain's native coin
	AssetBTC    = "btc"
)

// Transfer is value a payload moves.
type Transfer struct {
	// Asset is AssetNative, AssetBTC, or the EIP-55 address of the
	// contract an ERC-20 transfer call goes to. Whether that contract is a
	// token the policy knows is the policy's business.
	Asset string
	// To is the recipient: an EIP-55 address, or a Bitcoin address.
	To string
	// Amount is in the asset's base unit (wei, token units, satoshi).
	Amount *big.Int
	// Self says the recipient is the signing key's own address (change).
	Self bool
}

// Call describes an Ethereum transaction that is more than a plain value
// transfer or a decoded ERC-20 transfer.
type Call struct {
	// To is the contract called, or the address a contract creation will
	// deploy to (from the sender and nonce).
	To     string
	Create bool
	// Selector is the calldata's 4-byte selector as 0x-prefixed hex, or
	// empty when the calldata is shorter than 4 bytes or Create is set.
	Selector string
	// Approval is set for an ERC-20 approve(address,uint256) call.
	Approval *Approval
}

// Approval is a decoded ERC-20 approve call.
type Approval struct {
	Token   string // the contract called, EIP-55
	Spender string // EIP-55
	Amount  *big.Int
}

// Typed describes the EIP-712 document being signed.
type Typed struct {
	PrimaryType string
	// Domain fields, as the document gives them (empty when absent);
	// VerifyingContract is EIP-55 when it is an address.
	Name, Version, VerifyingContract string
}

// Summary is the policy-facing description of a parsed payload.
type Summary struct {
	// ChainID is the Ethereum chain (zero when none applies). For
	// transactions and EIP-712 domains with a chainId it is bound into the
	// digest; otherwise it is Request.ChainID, the caller's statement.
	ChainID uint64
	// Network is the Bitcoin network, for TaprootPSBT.
	Network string
	// From is the signing key's address: EIP-55 for the Ethereum kinds, its
	// Taproot address for TaprootPSBT, empty for RawDigest.
	From string
	// Transfers lists the value moved, in payload order.
	Transfers []Transfer
	// Call is set for Ethereum transactions that call or create a contract
	// beyond a plain value transfer or a decoded ERC-20 transfer.
	Call *Call
	// Typed is set for EIP712.
	Typed *Typed
	// Fee is the most the payload can spend on fees: gas × gas price (or
	// max fee per gas) for transactions, inputs − outputs for a PSBT; nil
	// for messages and digests.
	Fee *big.Int
	// Blind is set for RawDigest: nothing is known of what is signed.
	Blind bool
}

// Signature is one threshold signature over a digest of Parsed.
type Signature struct {
	// R and S: ECDSA r and s (s in the lower half of the order), or the
	// BIP-340 R.x and s.
	R, S [32]byte
	// RecoveryID (ECDSA only) is the parity of R's Y coordinate: 0 or 1.
	RecoveryID byte
}

// Parsed is a payload parsed and hashed locally. The Finish methods use
// only its unexported state, so changing the exported fields cannot change
// what is verified or built.
type Parsed struct {
	Kind    Kind
	Scheme  Scheme
	Summary Summary

	digests [][DigestSize]byte
	key     []byte
	eth     *ethState
	btc     *btcState
}

// Digests returns the digests to sign, in order: one for every kind but
// TaprootPSBT, which has one per input.
func (p *Parsed) Digests() [][DigestSize]byte { return slices.Clone(p.digests) }

// Parse checks req against the signing key pub (33-byte compressed for
// ECDSA, 32-byte x-only for Schnorr) and computes the digests to sign. It
// returns an error wrapping ErrInvalid for anything it refuses.
func Parse(req Request, pub []byte) (*Parsed, error) {
	if len(req.Bytes) == 0 || len(req.Bytes) > MaxSize {
		return nil, invalid("payload empty or too large")
	}
	if req.Network != "" && req.Kind != TaprootPSBT {
		return nil, invalid("network applies only to a PSBT")
	}
	switch req.Kind {
	case EthTransaction, EIP191, EIP712:
		key, err := parseEthKey(pub)
		if err != nil {
			return nil, err
		}
		return parseEth(req, key)
	case TaprootPSBT:
		return parsePSBT(req, pub)
	case RawDigest:
		return parseRaw(req, pub)
	}
	return nil, invalid("unknown kind")
}

func newParsed(kind Kind, scheme Scheme, key []byte, digests ...[DigestSize]byte) *Parsed {
	return &Parsed{Kind: kind, Scheme: scheme, key: slices.Clone(key), digests: digests}
}

// safeCall runs a library function on untrusted input and turns a panic
// into ErrInvalid. It guards only the calls that were seen to panic (see
// the callers), so that a panic elsewhere still fails loudly in tests.
func safeCall(reason string, f func() error) (err error) {
	defer func() {
		if recover() != nil {
			err = invalid(reason)
		}
	}()
	return f()
}
