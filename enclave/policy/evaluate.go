package policy

import (
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"
)

// MaxTransfers is the most transfers one request may carry.
const MaxTransfers = 64

// Transfer is value leaving the key in a request: Amount base units of
// Asset (AssetNative, AssetBTC or an ERC-20 contract address) to To.
type Transfer struct {
	Asset  string
	To     string
	Amount *big.Int
}

// Request is what a signer is asked to sign, as its own payload parser
// understood it. The policy trusts these fields: they must come from this
// enclave's parsing of the payload, never from the coordinator or caller.
type Request struct {
	KeyID KeyID
	// Kind is the payload kind (for example "eth-transaction", "eip712",
	// "taproot-psbt", "raw-digest"); the rule set's kinds must list it.
	Kind string
	// ChainID is the Ethereum chain ID; nil for Bitcoin and for payloads
	// bound to no chain.
	ChainID *big.Int
	// Transfers list every value leaving the key; Bitcoin change back to
	// the key is not a transfer. enclave/payload decodes them (ERC-20
	// transfer calls included) from the payload every party parses itself.
	Transfers []Transfer
	// ContractCall is set when the payload calls contract code beyond a
	// plain transfer or a decoded ERC-20 transfer.
	ContractCall bool
	// Blind is set when the enclave cannot see what it signs (a raw
	// digest).
	Blind bool
	// At is the time of the request, for rolling windows. Engine sets it
	// from its own clock.
	At time.Time
}

// Spend is value counted against a key's rolling windows: Amount of Asset
// (an AssetKey) at At.
type Spend struct {
	Asset  string
	Amount *big.Int
	At     time.Time
}

// WindowState is the spends already counted for the request's key. Spends
// older than a limit's window do not count for it; nil or non-positive
// amounts count as nothing.
type WindowState struct {
	Spends []Spend
}

// Code is the stable, machine-readable reason of a Decision.
type Code string

// Decision codes. New codes may be added; existing ones keep their
// meaning.
const (
	CodeAllowed                Code = "allowed"
	CodeNoPolicy               Code = "no_policy"
	CodeBadRequest             Code = "bad_request"
	CodeNoRule                 Code = "no_rule"
	CodeKindNotAllowed         Code = "kind_not_allowed"
	CodeChainNotAllowed        Code = "chain_not_allowed"
	CodeBlindSigningNotAllowed Code = "blind_signing_not_allowed"
	CodeContractCallNotAllowed Code = "contract_call_not_allowed"
	CodeAssetNotAllowed        Code = "asset_not_allowed"
	CodeDestinationDenied      Code = "destination_denied"
	CodeDestinationNotAllowed  Code = "destination_not_allowed"
	CodePerTxLimitExceeded     Code = "per_tx_limit_exceeded"
	CodeWindowLimitExceeded    Code = "window_limit_exceeded"

	codeNone Code = ""
)

// Decision is the outcome of an evaluation. Only Allow matters to the
// signing path; the zero Decision refuses.
type Decision struct {
	Allow bool
	Code  Code
	// Reason is Code, ": " and a human explanation. It names assets,
	// transfer positions and amounts of the request, nothing else.
	Reason string
	// Rule names the rule that decided: the rule set ("default" or
	// "keys/<key ID>") and, for a refusal, the field, as in
	// "default.chain_ids" or "keys/<key ID>.limits[eip155:1/native]".
	Rule string
	// Version is the document's version (0 without a document).
	Version uint64
}

// resolved is a validated transfer: asset key, canonical destination.
type resolved struct {
	asset  string
	to     string
	amount *big.Int
}

// Evaluate decides req under doc with the key's window state. It is pure
// and deterministic: the same arguments give the same Decision. Checks run
// in this order and the first failure decides:
//
//  1. a document exists (no_policy);
//  2. the request is well formed: a valid kind, a time, at most
//     MaxTransfers transfers, each with an amount in [0, 2^256), an asset
//     that fits the chain ID (btc without one, Ethereum assets with one)
//     and a destination of the asset's address shape (bad_request);
//  3. a rule set applies: the key's own, else the default — a key's rule
//     set replaces the default entirely (no_rule);
//  4. kinds lists the kind (kind_not_allowed);
//  5. a chain ID, if any, is in chain_ids (chain_not_allowed);
//  6. a blind request needs allow_blind_signing
//     (blind_signing_not_allowed);
//  7. a contract call needs allow_contract_calls
//     (contract_call_not_allowed);
//  8. for each transfer in order: its asset has a limits entry
//     (asset_not_allowed); its destination is not denied
//     (destination_denied) — deny wins over allow — and, unless
//     any_destination, is allowed (destination_not_allowed);
//  9. for each asset, in asset-key order, with the request's total of that
//     asset: total <= max_per_tx (per_tx_limit_exceeded), and, when the
//     total is positive, the window's spends plus total <= max_per_window
//     (window_limit_exceeded). A spend counts in a window of length w when
//     it is later than At - w (a spend exactly w old has expired).
func Evaluate(doc *Document, req Request, window WindowState) Decision {
	if doc == nil {
		return refuse(nil, "", CodeNoPolicy, "", "no policy document is stored")
	}
	ts, err := resolveTransfers(req)
	if err != nil {
		return refuse(doc, "", CodeBadRequest, "", err.Error())
	}
	rs := doc.ruleFor(req.KeyID)
	if rs == nil {
		return refuse(doc, "", CodeNoRule, "", "no rule set for this key and no default")
	}
	for _, check := range []func(*ruleSet, Request, []resolved) (Code, string, string){
		checkKind, checkChain, checkBlind, checkContractCall, checkTransfers,
	} {
		if code, field, text := check(rs, req, ts); code != codeNone {
			return refuse(doc, rs.name, code, field, text)
		}
	}
	if code, field, text := checkLimits(rs, req, ts, window); code != codeNone {
		return refuse(doc, rs.name, code, field, text)
	}
	return Decision{
		Allow: true, Code: CodeAllowed, Rule: rs.name, Version: doc.version,
		Reason: string(CodeAllowed) + ": " + "every rule of " + rs.name + " passed",
	}
}

func refuse(doc *Document, ruleSet string, code Code, field, text string) Decision {
	d := Decision{Code: code, Reason: string(code) + ": " + text, Rule: ruleSet}
	if field != "" {
		d.Rule += "." + field
	}
	if doc != nil {
		d.Version = doc.version
	}
	return d
}

// resolveTransfers checks the request's form and resolves its transfers.
// Its errors are Decision text: they name positions, never values.
func resolveTransfers(req Request) ([]resolved, error) {
	switch {
	case !validKind(req.Kind):
		return nil, errors.New("kind must be [a-z0-9][a-z0-9_.-]{0,63}")
	case req.At.IsZero():
		return nil, errors.New("request has no time")
	case len(req.Transfers) > MaxTransfers:
		return nil, fmt.Errorf("more than %d transfers", MaxTransfers)
	case req.ChainID != nil && req.ChainID.Sign() <= 0:
		return nil, errors.New("chain ID must be positive")
	}
	out := make([]resolved, 0, len(req.Transfers))
	for i, t := range req.Transfers {
		r, err := resolveTransfer(req.ChainID, t)
		if err != nil {
			return nil, fmt.Errorf("transfer %d: %w", i, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func resolveTransfer(chainID *big.Int, t Transfer) (resolved, error) {
	if t.Amount == nil || t.Amount.Sign() < 0 || t.Amount.Cmp(maxUint256) > 0 {
		return resolved{}, errors.New("amount must be 0 to 2^256-1")
	}
	asset, err := AssetKey(chainID, t.Asset)
	if err != nil {
		return resolved{}, err
	}
	to, ok := canonicalAddress(t.To)
	if !ok || isETHAddress(to) == (asset == AssetBTC) {
		return resolved{}, errors.New("destination is not an address of the asset's chain")
	}
	return resolved{asset: asset, to: to, amount: t.Amount}, nil
}

func checkKind(rs *ruleSet, req Request, _ []resolved) (Code, string, string) {
	if !rs.kinds[req.Kind] {
		return CodeKindNotAllowed, "kinds", fmt.Sprintf("kind %q is not in kinds", req.Kind)
	}
	return codeNone, "", ""
}

func checkChain(rs *ruleSet, req Request, _ []resolved) (Code, string, string) {
	if req.ChainID == nil {
		return codeNone, "", ""
	}
	if !req.ChainID.IsUint64() {
		return CodeChainNotAllowed, "chain_ids", "chain ID beyond 2^64-1 is not in chain_ids"
	}
	if !rs.chains[req.ChainID.Uint64()] {
		return CodeChainNotAllowed, "chain_ids", fmt.Sprintf("chain ID %d is not in chain_ids", req.ChainID.Uint64())
	}
	return codeNone, "", ""
}

func checkBlind(rs *ruleSet, req Request, _ []resolved) (Code, string, string) {
	if req.Blind && !rs.blind {
		return CodeBlindSigningNotAllowed, "allow_blind_signing", "blind signing is not allowed"
	}
	return codeNone, "", ""
}

func checkContractCall(rs *ruleSet, req Request, _ []resolved) (Code, string, string) {
	if req.ContractCall && !rs.contract {
		return CodeContractCallNotAllowed, "allow_contract_calls", "contract calls are not allowed"
	}
	return codeNone, "", ""
}

func checkTransfers(rs *ruleSet, _ Request, ts []resolved) (Code, string, string) {
	for i, t := range ts {
		switch {
		case rs.limits[t.asset] == nil:
			return CodeAssetNotAllowed, "limits", fmt.Sprintf("transfer %d: asset %s has no limits entry", i, t.asset)
		case rs.deny[t.to]:
			return CodeDestinationDenied, "deny_destinations", fmt.Sprintf("transfer %d: destination is denied", i)
		case !rs.any && !rs.allow[t.to]:
			return CodeDestinationNotAllowed, "allow_destinations", fmt.Sprintf("transfer %d: destination is not allowed", i)
		}
	}
	return codeNone, "", ""
}

func checkLimits(rs *ruleSet, req Request, ts []resolved, window WindowState) (Code, string, string) {
	totals := assetTotals(ts)
	for _, asset := range sortedKeys(totals) {
		l, total := rs.limits[asset], totals[asset]
		field := "limits" + "[" + asset + "]"
		if l.maxPerTx != nil && total.Cmp(l.maxPerTx) > 0 {
			return CodePerTxLimitExceeded, field,
				fmt.Sprintf("%s: %s is over the per-transaction limit %s", asset, total, l.maxPerTx)
		}
		if l.window == 0 || total.Sign() == 0 {
			continue
		}
		used := windowUsage(window, asset, req.At.Add(-l.window))
		if sum := new(big.Int).Add(used, total); sum.Cmp(l.maxPerWindow) > 0 {
			return CodeWindowLimitExceeded, field,
				fmt.Sprintf("%s: %s already spent plus %s is over the limit %s per %s", asset, used, total, l.maxPerWindow, l.window)
		}
	}
	return codeNone, "", ""
}

// assetTotals sums the transfers' amounts per asset key.
func assetTotals(ts []resolved) map[string]*big.Int {
	totals := make(map[string]*big.Int)
	for _, t := range ts {
		if totals[t.asset] == nil {
			totals[t.asset] = new(big.Int)
		}
		totals[t.asset].Add(totals[t.asset], t.amount)
	}
	return totals
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// windowUsage sums the positive spends of asset later than after.
func windowUsage(w WindowState, asset string, after time.Time) *big.Int {
	used := new(big.Int)
	for _, s := range w.Spends {
		if s.Asset == asset && s.Amount != nil && s.Amount.Sign() > 0 && s.At.After(after) {
			used.Add(used, s.Amount)
		}
	}
	return used
}
