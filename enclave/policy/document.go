package policy

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"
	"time"
)

// MaxWindow is the longest rolling window a limit may declare. Window
// spends are kept this long whatever the current document says, so that a
// later document with a longer window still sees every spend it counts.
const MaxWindow = 31 * 24 * time.Hour

// KeyID names a threshold key: 32 bytes, written in documents as 64
// lowercase hex digits.
type KeyID [32]byte

// String returns the ID in lowercase hex.
func (k KeyID) String() string { return hex.EncodeToString(k[:]) }

// The document's JSON schema. Every field is optional except version; an
// absent list is empty and an absent flag is false.
type documentJSON struct {
	Version uint64                 `json:"version"`
	Default *ruleSetJSON           `json:"default,omitempty"`
	Keys    map[string]ruleSetJSON `json:"keys,omitempty"`
}

type ruleSetJSON struct {
	Kinds              []string    `json:"kinds,omitempty"`
	ChainIDs           []uint64    `json:"chain_ids,omitempty"`
	AnyDestination     bool        `json:"any_destination,omitempty"`
	AllowDestinations  []string    `json:"allow_destinations,omitempty"`
	DenyDestinations   []string    `json:"deny_destinations,omitempty"`
	Limits             []limitJSON `json:"limits,omitempty"`
	AllowBlindSigning  bool        `json:"allow_blind_signing,omitempty"`
	AllowContractCalls bool        `json:"allow_contract_calls,omitempty"`
}

type limitJSON struct {
	Asset         string  `json:"asset"`
	ChainID       *uint64 `json:"chain_id,omitempty"`
	MaxPerTx      *string `json:"max_per_tx,omitempty"`
	WindowSeconds *uint64 `json:"window_seconds,omitempty"`
	MaxPerWindow  *string `json:"max_per_window,omitempty"`
}

// Document is a parsed, validated policy document. It is immutable and
// safe for concurrent use.
type Document struct {
	raw     []byte
	version uint64
	def     *ruleSet
	keys    map[KeyID]*ruleSet
}

// ruleSet is one compiled rule set: the default or a key's override.
type ruleSet struct {
	name     string // "default" or "keys/<hex>", for Decision.Rule
	kinds    map[string]bool
	chains   map[uint64]bool
	any      bool
	allow    map[string]bool // canonical addresses
	deny     map[string]bool
	limits   map[string]*limit // by asset key
	blind    bool
	contract bool
}

// limit is one asset's limits; a nil amount means no such limit.
type limit struct {
	asset        string
	maxPerTx     *big.Int
	window       time.Duration
	maxPerWindow *big.Int
}

// Parse parses and validates a policy document. It refuses, with an error
// wrapping ErrMalformed that does not echo the document:
//
//   - an empty document or one longer than MaxDocumentSize;
//   - anything but one JSON object, in valid UTF-8, with nothing after it;
//   - null, duplicate object keys, object keys outside [a-z0-9_]{1,64}
//     (so no key differs from a schema field only by case), nesting deeper
//     than 6 levels;
//   - unknown fields, values of the wrong type, numbers that are negative,
//     fractional, in exponent form or beyond 2^64-1;
//   - version 0 or above 2^63-1 (the keystore's range);
//   - key IDs that are not 64 lowercase hex digits;
//   - in a rule set: kinds outside [a-z0-9][a-z0-9_.-]{0,63}, chain ID 0,
//     addresses of no known shape, any repeated entry (after
//     canonicalization), any_destination with a non-empty
//     allow_destinations;
//   - in a limit: an unknown asset, a chain_id missing for an Ethereum
//     asset, present for btc or absent from the rule set's chain_ids,
//     amounts that are not decimal integers below 2^256 without sign or
//     leading zero, window_seconds without max_per_window or the reverse,
//     a window longer than MaxWindow, two limits for the same asset.
func Parse(b []byte) (*Document, error) {
	if len(b) == 0 || len(b) > MaxDocumentSize {
		return nil, fmt.Errorf("%w: size must be 1 to %d bytes", ErrMalformed, MaxDocumentSize)
	}
	var dj documentJSON
	if err := decodeStrict(b, &dj); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	d, err := compile(dj)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	d.raw = bytes.Clone(b)
	return d, nil
}

// Version returns the document's version.
func (d *Document) Version() uint64 { return d.version }

// Canonical returns the bytes admins sign and the keystore stores: exactly
// the bytes Parse accepted. There is no re-encoding, so what an admin
// reviewed is what is signed, stored and returned by a get; Parse is
// strict enough that those bytes have one meaning (see Parse). Two
// documents that differ only in whitespace or field order are different
// documents and need their own signatures.
func (d *Document) Canonical() []byte { return bytes.Clone(d.raw) }

func compile(dj documentJSON) (*Document, error) {
	if dj.Version == 0 || dj.Version > math.MaxInt64 {
		return nil, errors.New("version must be 1 to 2^63-1")
	}
	d := &Document{version: dj.Version, keys: make(map[KeyID]*ruleSet, len(dj.Keys))}
	if dj.Default != nil {
		rs, err := compileRuleSet("default", *dj.Default)
		if err != nil {
			return nil, err
		}
		d.def = rs
	}
	// Sorted, so that the first error reported does not depend on map
	// order.
	names := make([]string, 0, len(dj.Keys))
	for name := range dj.Keys {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		id, err := parseKeyID(name)
		if err != nil {
			return nil, err
		}
		rs, err := compileRuleSet("keys/"+name, dj.Keys[name])
		if err != nil {
			return nil, err
		}
		d.keys[id] = rs
	}
	return d, nil
}

func parseKeyID(s string) (KeyID, error) {
	var id KeyID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) || hex.EncodeToString(b) != s {
		return id, errors.New("keys: key IDs must be 64 lowercase hex digits")
	}
	copy(id[:], b)
	return id, nil
}

func compileRuleSet(name string, rj ruleSetJSON) (*ruleSet, error) {
	rs := &ruleSet{name: name, any: rj.AnyDestination, blind: rj.AllowBlindSigning, contract: rj.AllowContractCalls}
	var err error
	if rs.kinds, err = compileKinds(rj.Kinds); err != nil {
		return nil, fmt.Errorf("%s: kinds: %w", name, err)
	}
	if rs.chains, err = compileChains(rj.ChainIDs); err != nil {
		return nil, fmt.Errorf("%s: chain_ids: %w", name, err)
	}
	if rs.any && len(rj.AllowDestinations) > 0 {
		return nil, fmt.Errorf("%s: any_destination and allow_destinations exclude each other", name)
	}
	if rs.allow, err = compileAddresses(rj.AllowDestinations); err != nil {
		return nil, fmt.Errorf("%s: allow_destinations: %w", name, err)
	}
	if rs.deny, err = compileAddresses(rj.DenyDestinations); err != nil {
		return nil, fmt.Errorf("%s: deny_destinations: %w", name, err)
	}
	rs.limits = make(map[string]*limit, len(rj.Limits))
	for i, lj := range rj.Limits {
		l, err := compileLimit(lj, rs.chains)
		if err != nil {
			return nil, fmt.Errorf("%s: limits[%d]: %w", name, i, err)
		}
		if rs.limits[l.asset] != nil {
			return nil, fmt.Errorf("%s: limits[%d]: a second limit for the same asset", name, i)
		}
		rs.limits[l.asset] = l
	}
	return rs, nil
}

// Kinds are the payload kinds a rule set may allow, as the signer names
// them (enclave/payload's Kind.String). A document naming any other kind
// is refused rather than silently allowing nothing.
var Kinds = []string{"eth-transaction", "eip191", "eip712", "taproot-psbt", "raw-digest"}

func compileKinds(kinds []string) (map[string]bool, error) {
	out := make(map[string]bool, len(kinds))
	for i, k := range kinds {
		if !slices.Contains(Kinds, k) {
			return nil, fmt.Errorf("[%d]: unknown kind (want one of %s)", i, strings.Join(Kinds, ", "))
		}
		if out[k] {
			return nil, fmt.Errorf("[%d]: repeated", i)
		}
		out[k] = true
	}
	return out, nil
}

// validKind reports whether k is [a-z0-9][a-z0-9_.-]{0,63}.
func validKind(k string) bool {
	if k == "" || len(k) > 64 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '_' || c == '.' || c == '-')
		if !ok {
			return false
		}
	}
	return true
}

func compileChains(ids []uint64) (map[uint64]bool, error) {
	out := make(map[uint64]bool, len(ids))
	for i, id := range ids {
		if id == 0 {
			return nil, fmt.Errorf("[%d]: chain ID 0", i)
		}
		if out[id] {
			return nil, fmt.Errorf("[%d]: repeated", i)
		}
		out[id] = true
	}
	return out, nil
}

func compileAddresses(addrs []string) (map[string]bool, error) {
	out := make(map[string]bool, len(addrs))
	for i, a := range addrs {
		c, ok := canonicalAddress(a)
		if !ok {
			return nil, fmt.Errorf("[%d]: not an Ethereum or Bitcoin address", i)
		}
		if out[c] {
			return nil, fmt.Errorf("[%d]: repeated", i)
		}
		out[c] = true
	}
	return out, nil
}

func compileLimit(lj limitJSON, chains map[uint64]bool) (*limit, error) {
	asset, err := limitAsset(lj, chains)
	if err != nil {
		return nil, err
	}
	l := &limit{asset: asset}
	if lj.MaxPerTx != nil {
		if l.maxPerTx, err = amountField("max_per_tx", *lj.MaxPerTx); err != nil {
			return nil, err
		}
	}
	if (lj.WindowSeconds == nil) != (lj.MaxPerWindow == nil) {
		return nil, errors.New("window_seconds and max_per_window go together")
	}
	if lj.WindowSeconds == nil {
		return l, nil
	}
	if secs := *lj.WindowSeconds; secs == 0 || secs > uint64(MaxWindow/time.Second) {
		return nil, fmt.Errorf("window_seconds: must be 1 to %d", uint64(MaxWindow/time.Second))
	}
	l.window = time.Duration(*lj.WindowSeconds) * time.Second
	if l.maxPerWindow, err = amountField("max_per_window", *lj.MaxPerWindow); err != nil {
		return nil, err
	}
	return l, nil
}

func limitAsset(lj limitJSON, chains map[uint64]bool) (string, error) {
	if lj.Asset == "" {
		return "", errors.New("asset: required")
	}
	if lj.Asset == AssetBTC {
		if lj.ChainID != nil {
			return "", errors.New("chain_id: btc takes none")
		}
		return AssetBTC, nil
	}
	if lj.ChainID == nil {
		return "", errors.New("chain_id: required for an Ethereum asset")
	}
	if !chains[*lj.ChainID] {
		return "", errors.New("chain_id: not one of the rule set's chain_ids")
	}
	asset, err := ethAssetKey(*lj.ChainID, lj.Asset)
	if err != nil {
		return "", fmt.Errorf("asset: %w", err)
	}
	return asset, nil
}

func amountField(name, s string) (*big.Int, error) {
	v, ok := parseAmount(s)
	if !ok {
		return nil, fmt.Errorf("%s: must be a decimal integer below 2^256, without sign or leading zero", name)
	}
	return v, nil
}

// ruleFor returns the key's rule set, else the default, else nil.
func (d *Document) ruleFor(key KeyID) *ruleSet {
	if rs, ok := d.keys[key]; ok {
		return rs
	}
	return d.def
}

// longestWindow returns the longest window of the key's rule set (0
// without one): spends older than that count for no limit.
func (d *Document) longestWindow(key KeyID) time.Duration {
	rs := d.ruleFor(key)
	if rs == nil {
		return 0
	}
	var w time.Duration
	for _, l := range rs.limits {
		w = max(w, l.window)
	}
	return w
}
