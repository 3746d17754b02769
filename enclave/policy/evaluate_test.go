package policy

import (
	"bytes"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"
)

func fill(b byte) KeyID {
	var k KeyID
	copy(k[:], bytes.Repeat([]byte{b}, len(k)))
	return k
}

var (
	key1 = fill(1) // no rule set of its own: the default applies
	key2 = fill(2) // has its own rule set in testdata/example.json

	t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

const (
	allowedETH  = "0x1111111111111111111111111111111111111111"
	mixedETH    = "0xabcdef0000000000000000000000000000000000" // listed as 0xAbCdEf...
	deniedETH   = "0x2222222222222222222222222222222222222222"
	deniedMixed = "0xDeaDbeefdEAdbeefdEadbEEFdeadbeEFdEaDbeeF" // listed in this case
	bothETH     = "0x3333333333333333333333333333333333333333" // allowed and denied
	otherETH    = "0x4444444444444444444444444444444444444444"
	usdc        = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
	usdcKey     = "eip155:1/erc20:0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
	ethKey      = "eip155:1/native"
	bech32BTC   = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
	base58BTC   = "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"
)

func ethTransfer(to string, amount int64) Transfer {
	return Transfer{Asset: AssetNative, To: to, Amount: big.NewInt(amount)}
}

func tokenTransfer(token, to string, amount int64) Transfer {
	return Transfer{Asset: token, To: to, Amount: big.NewInt(amount)}
}

// ethRequest sends amount wei on chain 1 from key1 to allowedETH.
func ethRequest(amount int64) Request {
	return Request{KeyID: key1, Kind: "eth-transaction", ChainID: big.NewInt(1),
		Transfers: []Transfer{ethTransfer(allowedETH, amount)}, At: t0}
}

func btcRequest(to string, amount int64) Request {
	return Request{KeyID: key1, Kind: "taproot-psbt", At: t0,
		Transfers: []Transfer{{Asset: AssetBTC, To: to, Amount: big.NewInt(amount)}}}
}

func spent(asset string, amount int64, ago time.Duration) Spend {
	return Spend{Asset: asset, Amount: big.NewInt(amount), At: t0.Add(-ago)}
}

func window(spends ...Spend) WindowState { return WindowState{Spends: spends} }

type evalCase struct {
	name   string
	req    Request
	window WindowState
	code   Code
	rule   string
}

func TestEvaluate(t *testing.T) {
	d, err := Parse(readExample(t))
	if err != nil {
		t.Fatal(err)
	}
	var cases []evalCase
	for _, group := range [][]evalCase{
		basicCases(), destinationCases(), limitCases(), windowCases(), tokenCases(),
		flagCases(), keyCases(), btcCases(), badRequestCases(),
	} {
		cases = append(cases, group...)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := Evaluate(d, c.req, c.window)
			if got.Code != c.code || got.Allow != (c.code == CodeAllowed) || got.Rule != c.rule || got.Version != 3 {
				t.Fatalf("Evaluate = %+v; want code %s, rule %q", got, c.code, c.rule)
			}
			if !strings.HasPrefix(got.Reason, string(c.code)+": ") || len(got.Reason) <= len(c.code)+2 {
				t.Fatalf("reason %q does not start with its code and explain", got.Reason)
			}
		})
	}
}

func basicCases() []evalCase {
	msg := Request{KeyID: key1, Kind: "eip191", At: t0}
	chain5 := ethRequest(1)
	chain5.ChainID = big.NewInt(5)
	huge := ethRequest(1)
	huge.ChainID = new(big.Int).Lsh(big.NewInt(1), 64)
	base := ethRequest(1)
	base.ChainID = big.NewInt(8453)
	return []evalCase{
		{"allowed", ethRequest(1000), WindowState{}, CodeAllowed, "default"},
		{"message without chain", msg, WindowState{}, CodeAllowed, "default"},
		{"kind not allowed", Request{KeyID: key1, Kind: "eip712", At: t0}, WindowState{}, CodeKindNotAllowed, "default.kinds"},
		{"chain not allowed", chain5, WindowState{}, CodeChainNotAllowed, "default.chain_ids"},
		{"chain beyond 2^64", huge, WindowState{}, CodeBadRequest, ""},
		{"second chain, no limits", withAmount(base, "1000000000000000000000000"), WindowState{}, CodeAllowed, "default"},
	}
}

func withAmount(r Request, amount string) Request {
	v, _ := new(big.Int).SetString(amount, 10)
	r.Transfers = []Transfer{{Asset: r.Transfers[0].Asset, To: r.Transfers[0].To, Amount: v}}
	return r
}

func withTransfers(r Request, ts ...Transfer) Request {
	r.Transfers = ts
	return r
}

func destinationCases() []evalCase {
	r := ethRequest(1)
	return []evalCase{
		{"destination denied", withTransfers(r, ethTransfer(deniedETH, 1)), WindowState{}, CodeDestinationDenied, "default.deny_destinations"},
		{"deny wins over allow", withTransfers(r, ethTransfer(bothETH, 1)), WindowState{}, CodeDestinationDenied, "default.deny_destinations"},
		{"denied, other case", withTransfers(r, ethTransfer(strings.ToLower(deniedMixed), 1)), WindowState{}, CodeDestinationDenied, "default.deny_destinations"},
		{"denied, upper case", withTransfers(r, ethTransfer("0x"+strings.ToUpper(deniedMixed[2:]), 1)), WindowState{}, CodeDestinationDenied, "default.deny_destinations"},
		{"not in allow list", withTransfers(r, ethTransfer(otherETH, 1)), WindowState{}, CodeDestinationNotAllowed, "default.allow_destinations"},
		{"allowed, listed mixed case", withTransfers(r, ethTransfer(mixedETH, 1)), WindowState{}, CodeAllowed, "default"},
		{"allowed, EIP-55 case", withTransfers(r, ethTransfer("0xABCDEF0000000000000000000000000000000000", 1)), WindowState{}, CodeAllowed, "default"},
		{"second transfer denied", withTransfers(r, ethTransfer(allowedETH, 1), ethTransfer(deniedETH, 0)), WindowState{}, CodeDestinationDenied, "default.deny_destinations"},
		{"zero amount still checked", withTransfers(r, ethTransfer(otherETH, 0)), WindowState{}, CodeDestinationNotAllowed, "default.allow_destinations"},
	}
}

func limitCases() []evalCase {
	r := ethRequest(1)
	return []evalCase{
		{"at per-tx limit", ethRequest(1000), WindowState{}, CodeAllowed, "default"},
		{"over per-tx limit", ethRequest(1001), WindowState{}, CodePerTxLimitExceeded, "default.limits[" + ethKey + "]"},
		{"per-tx sums transfers", withTransfers(r, ethTransfer(allowedETH, 600), ethTransfer(mixedETH, 401)), WindowState{}, CodePerTxLimitExceeded, "default.limits[" + ethKey + "]"},
		{"per-tx sum at limit", withTransfers(r, ethTransfer(allowedETH, 600), ethTransfer(mixedETH, 400)), WindowState{}, CodeAllowed, "default"},
		{"2^256-1 over limit", withAmount(r, maxUint256.String()), WindowState{}, CodePerTxLimitExceeded, "default.limits[" + ethKey + "]"},
	}
}

func windowCases() []evalCase {
	limit := "default.limits[" + ethKey + "]"
	return []evalCase{
		{"window at limit", ethRequest(500), window(spent(ethKey, 1000, time.Minute), spent(ethKey, 1000, 59*time.Minute)), CodeAllowed, "default"},
		{"window exceeded", ethRequest(501), window(spent(ethKey, 1000, time.Minute), spent(ethKey, 1000, 59*time.Minute)), CodeWindowLimitExceeded, limit},
		{"old spend expired", ethRequest(1000), window(spent(ethKey, 2000, time.Hour)), CodeAllowed, "default"},
		{"spend just inside", ethRequest(1000), window(spent(ethKey, 2000, time.Hour-time.Nanosecond)), CodeWindowLimitExceeded, limit},
		{"future spend counts", ethRequest(1000), window(spent(ethKey, 2000, -time.Hour)), CodeWindowLimitExceeded, limit},
		{"other asset's spends", ethRequest(1000), window(spent(usdcKey, 100000, 0), spent("eip155:8453/native", 9999, 0), spent(AssetBTC, 9999, 0)), CodeAllowed, "default"},
		{"nil and negative spends", ethRequest(1000), window(Spend{Asset: ethKey, At: t0}, spent(ethKey, -5000, 0), spent(ethKey, 1500, 0)), CodeAllowed, "default"},
		{"zero total skips window", ethRequest(0), window(spent(ethKey, 9000, 0)), CodeAllowed, "default"},
	}
}

func tokenCases() []evalCase {
	r := ethRequest(0)
	limit := "default.limits[" + usdcKey + "]"
	return []evalCase{
		{"token allowed", withTransfers(r, tokenTransfer(usdc, allowedETH, 500)), WindowState{}, CodeAllowed, "default"},
		{"token address case", withTransfers(r, tokenTransfer(strings.ToLower(usdc), allowedETH, 500)), WindowState{}, CodeAllowed, "default"},
		{"token per-tx limit", withTransfers(r, tokenTransfer(usdc, allowedETH, 501)), WindowState{}, CodePerTxLimitExceeded, limit},
		{"token and native counted apart", withTransfers(r, tokenTransfer(usdc, allowedETH, 500), ethTransfer(allowedETH, 1000)), WindowState{}, CodeAllowed, "default"},
		{"token window", withTransfers(r, tokenTransfer(usdc, allowedETH, 401)), window(spent(usdcKey, 200, time.Minute)), CodeWindowLimitExceeded, limit},
		{"native spends do not count for token", withTransfers(r, tokenTransfer(usdc, allowedETH, 500)), window(spent(ethKey, 2500, 0)), CodeAllowed, "default"},
		{"token recipient denied", withTransfers(r, tokenTransfer(usdc, deniedETH, 1)), WindowState{}, CodeDestinationDenied, "default.deny_destinations"},
		{"token recipient not allowed", withTransfers(r, tokenTransfer(usdc, otherETH, 1)), WindowState{}, CodeDestinationNotAllowed, "default.allow_destinations"},
		{"unlisted token", withTransfers(r, tokenTransfer(otherETH, allowedETH, 1)), WindowState{}, CodeAssetNotAllowed, "default.limits"},
		{"token on another chain", func() Request {
			q := withTransfers(r, tokenTransfer(usdc, allowedETH, 1))
			q.ChainID = big.NewInt(8453)
			return q
		}(), WindowState{}, CodeAssetNotAllowed, "default.limits"},
	}
}

func flagCases() []evalCase {
	blind := Request{KeyID: key1, Kind: "eth-transaction", ChainID: big.NewInt(1), Blind: true, At: t0}
	call := ethRequest(0)
	call.ContractCall = true
	return []evalCase{
		{"blind refused by default", blind, WindowState{}, CodeBlindSigningNotAllowed, "default.allow_blind_signing"},
		{"contract call refused by default", call, WindowState{}, CodeContractCallNotAllowed, "default.allow_contract_calls"},
	}
}

func keyCases() []evalCase {
	own := "keys/" + key2.String()
	blind := Request{KeyID: key2, Kind: "raw-digest", Blind: true, At: t0}
	call := ethRequest(5000)
	call.KeyID, call.ContractCall = key2, true
	anyDest := withTransfers(call, ethTransfer(otherETH, 1))
	denied := withTransfers(call, ethTransfer(deniedETH, 1))
	msg := Request{KeyID: key2, Kind: "eip191", At: t0}
	base := ethRequest(1)
	base.KeyID, base.ChainID = key2, big.NewInt(8453)
	token := withTransfers(call, tokenTransfer(usdc, otherETH, 1))
	unknown := ethRequest(1)
	unknown.KeyID = fill(9)
	return []evalCase{
		{"unknown key uses default", unknown, WindowState{}, CodeAllowed, "default"},
		{"own rule set: blind allowed", blind, WindowState{}, CodeAllowed, own},
		{"own rule set: call, no limit", call, WindowState{}, CodeAllowed, own},
		{"own rule set: any destination", anyDest, WindowState{}, CodeAllowed, own},
		{"own rule set: deny still wins", denied, WindowState{}, CodeDestinationDenied, own + ".deny_destinations"},
		{"own rule set replaces default kinds", msg, WindowState{}, CodeKindNotAllowed, own + ".kinds"},
		{"own rule set replaces default chains", base, WindowState{}, CodeChainNotAllowed, own + ".chain_ids"},
		{"own rule set replaces default limits", token, WindowState{}, CodeAssetNotAllowed, own + ".limits"},
	}
}

func btcCases() []evalCase {
	return []evalCase{
		{"btc bech32", btcRequest(bech32BTC, 100000), WindowState{}, CodeAllowed, "default"},
		{"btc bech32 uppercase", btcRequest(strings.ToUpper(bech32BTC), 1), WindowState{}, CodeAllowed, "default"},
		{"btc base58", btcRequest(base58BTC, 1), WindowState{}, CodeAllowed, "default"},
		{"btc base58 other case", btcRequest(strings.ToLower(base58BTC), 1), WindowState{}, CodeDestinationNotAllowed, "default.allow_destinations"},
		{"btc per-tx limit", btcRequest(bech32BTC, 100001), WindowState{}, CodePerTxLimitExceeded, "default.limits[btc]"},
		{"btc kind not allowed", func() Request { r := btcRequest(bech32BTC, 1); r.Kind = "btc_legacy"; return r }(), WindowState{}, CodeKindNotAllowed, "default.kinds"},
	}
}

func badRequestCases() []evalCase {
	r := ethRequest(1)
	var cases []evalCase
	for name, mutate := range map[string]func(*Request){
		"empty kind":           func(r *Request) { r.Kind = "" },
		"kind with space":      func(r *Request) { r.Kind = "eth tx" },
		"no time":              func(r *Request) { r.At = time.Time{} },
		"nil amount":           func(r *Request) { r.Transfers[0].Amount = nil },
		"negative amount":      func(r *Request) { r.Transfers[0].Amount = big.NewInt(-1) },
		"amount 2^256":         func(r *Request) { r.Transfers[0].Amount = new(big.Int).Lsh(big.NewInt(1), 256) },
		"native without chain": func(r *Request) { r.ChainID = nil },
		"chain 0":              func(r *Request) { r.ChainID = new(big.Int) },
		"btc with chain":       func(r *Request) { r.Transfers[0] = Transfer{Asset: AssetBTC, To: bech32BTC, Amount: big.NewInt(1)} },
		"btc to ETH address":   func(r *Request) { r.ChainID, r.Transfers[0].Asset = nil, AssetBTC },
		"ETH to BTC address":   func(r *Request) { r.Transfers[0].To = bech32BTC },
		"garbage destination":  func(r *Request) { r.Transfers[0].To = "0x12" },
		"empty destination":    func(r *Request) { r.Transfers[0].To = "" },
		"unknown asset":        func(r *Request) { r.Transfers[0].Asset = "eth" },
		"too many transfers": func(r *Request) {
			r.Transfers = slices.Repeat([]Transfer{ethTransfer(allowedETH, 0)}, MaxTransfers+1)
		},
	} {
		q := r
		q.Transfers = slices.Clone(r.Transfers)
		mutate(&q)
		cases = append(cases, evalCase{"bad request: " + name, q, WindowState{}, CodeBadRequest, ""})
	}
	return cases
}

func TestEvaluateNoRuleAndNoPolicy(t *testing.T) {
	d := mustParse(t, `{"version":9,"keys":{"`+key2.String()+`":{"kinds":["eip191"]}}}`)
	got := Evaluate(d, ethRequest(1), WindowState{})
	if got.Allow || got.Code != CodeNoRule || got.Version != 9 {
		t.Fatalf("key without a rule set and no default: %+v", got)
	}
	if got := Evaluate(d, Request{KeyID: key2, Kind: "eip191", At: t0}, WindowState{}); !got.Allow {
		t.Fatalf("key with its own rule set: %+v", got)
	}
	empty := mustParse(t, doc(`{}`))
	if got := Evaluate(empty, Request{KeyID: key1, Kind: "eip191", At: t0}, WindowState{}); got.Code != CodeKindNotAllowed {
		t.Fatalf("empty rule set: %+v", got)
	}
	if got := Evaluate(nil, ethRequest(1), WindowState{}); got.Allow || got.Code != CodeNoPolicy {
		t.Fatalf("no document: %+v", got)
	}
	if (Decision{}).Allow {
		t.Fatal("the zero Decision allows")
	}
}

// TestEvaluateDeterministic: the order of the window's spends and
// repeated calls do not change a decision.
func TestEvaluateDeterministic(t *testing.T) {
	d, err := Parse(readExample(t))
	if err != nil {
		t.Fatal(err)
	}
	spends := []Spend{spent(ethKey, 700, time.Minute), spent(usdcKey, 50, time.Second), spent(ethKey, 800, 2*time.Hour), spent(ethKey, 900, 30*time.Minute)}
	req := withTransfers(ethRequest(0), ethTransfer(allowedETH, 901), tokenTransfer(usdc, allowedETH, 500))
	want := Evaluate(d, req, window(spends...))
	if want.Code != CodeWindowLimitExceeded {
		t.Fatalf("setup: %+v", want)
	}
	for i := range 20 {
		shuffled := slices.Clone(spends)
		for j := range shuffled {
			k := (j*7 + i) % len(shuffled)
			shuffled[j], shuffled[k] = shuffled[k], shuffled[j]
		}
		if got := Evaluate(d, req, window(shuffled...)); got != want {
			t.Fatalf("run %d: %+v, want %+v", i, got, want)
		}
	}
}

func TestAssetKey(t *testing.T) {
	for _, c := range []struct {
		chain *big.Int
		asset string
		want  string
	}{
		{big.NewInt(1), AssetNative, "eip155:1/native"},
		{big.NewInt(8453), usdc, "eip155:8453/erc20:0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"},
		{nil, AssetBTC, "btc"},
	} {
		if got, err := AssetKey(c.chain, c.asset); err != nil || got != c.want {
			t.Errorf("AssetKey(%v, %s) = %s, %v; want %s", c.chain, c.asset, got, err, c.want)
		}
	}
	for _, c := range []struct {
		chain *big.Int
		asset string
	}{
		{nil, AssetNative}, {big.NewInt(1), AssetBTC}, {big.NewInt(0), AssetNative},
		{new(big.Int).Lsh(big.NewInt(1), 64), AssetNative}, {big.NewInt(1), "Native"}, {big.NewInt(1), "0x12"},
	} {
		if got, err := AssetKey(c.chain, c.asset); err == nil {
			t.Errorf("AssetKey(%v, %s) = %s, want an error", c.chain, c.asset, got)
		}
	}
}
