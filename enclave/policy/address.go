package policy

import (
	"errors"
	"math/big"
	"strconv"
	"strings"
)

// Asset names of the document and of Transfer.Asset; any other asset is
// an ERC-20 contract address.
const (
	AssetNative = "native" // the chain's own coin (ether on chain 1)
	AssetBTC    = "btc"
)

// maxUint256 is the largest amount accepted anywhere.
var maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

// isETHAddress reports whether s is "0x" and 40 hex digits of any case.
func isETHAddress(s string) bool {
	if len(s) != 42 || s[:2] != "0x" {
		return false
	}
	for i := 2; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// bech32Prefixes are the human-readable parts (with separator) of Bitcoin
// segwit addresses, whose encoding is case-insensitive.
var bech32Prefixes = []string{"bc1", "tb1", "bcrt1"}

// canonicalAddress returns the form in which destinations are compared:
//
//   - an Ethereum address ("0x" and 40 hex digits) in lowercase: EIP-55
//     mixed case is a checksum, not part of the address, and is not
//     verified here;
//   - a bech32 or bech32m Bitcoin address (bc1..., tb1..., bcrt1...) in
//     lowercase, since bech32 is case-insensitive;
//   - any other Bitcoin address (base58: P2PKH, P2SH) exactly as given,
//     since base58 is case-sensitive.
//
// Anything that is none of these (empty, too short or long, characters
// outside [A-Za-z0-9]) is refused. The shapes are checked, not the
// checksums: a mistyped address can only fail to match.
func canonicalAddress(s string) (string, bool) {
	if isETHAddress(s) {
		return strings.ToLower(s), true
	}
	if len(s) < 14 || len(s) > 90 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return "", false
		}
	}
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		return "", false // a malformed Ethereum address, not a Bitcoin one
	}
	lower := strings.ToLower(s)
	for _, p := range bech32Prefixes {
		if strings.HasPrefix(lower, p) {
			return lower, true
		}
	}
	return s, true
}

// AssetKey names an asset the way limits and window spends do:
//
//   - "eip155:<chain ID>/native" for AssetNative on an Ethereum chain;
//   - "eip155:<chain ID>/erc20:<lowercase contract address>" for an ERC-20
//     token;
//   - "btc" for AssetBTC, which has no chain ID.
//
// So the same contract address or "native" on two chains are two assets.
// chainID must be nil for AssetBTC and a positive integer below 2^64
// otherwise.
func AssetKey(chainID *big.Int, asset string) (string, error) {
	if asset == AssetBTC {
		if chainID != nil {
			return "", errors.New("btc takes no chain ID")
		}
		return AssetBTC, nil
	}
	if chainID == nil {
		return "", errors.New("an Ethereum asset needs a chain ID")
	}
	if !chainID.IsUint64() || chainID.Sign() == 0 {
		return "", errors.New("chain ID out of range")
	}
	return ethAssetKey(chainID.Uint64(), asset)
}

func ethAssetKey(chainID uint64, asset string) (string, error) {
	prefix := "eip155:" + strconv.FormatUint(chainID, 10) + "/"
	switch {
	case asset == AssetNative:
		return prefix + AssetNative, nil
	case isETHAddress(asset):
		return prefix + "erc20:" + strings.ToLower(asset), nil
	}
	return "", errors.New(`asset must be "native", "btc" or an ERC-20 contract address`)
}

// parseAmount parses a decimal string of base units: digits only, no sign,
// no leading zero, below 2^256.
func parseAmount(s string) (*big.Int, bool) {
	if s == "" || len(s) > 78 || (s[0] == '0' && len(s) > 1) {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return nil, false
		}
	}
	v, ok := new(big.Int).SetString(s, 10)
	if !ok || v.Cmp(maxUint256) > 0 {
		return nil, false
	}
	return v, true
}
