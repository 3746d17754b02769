package app

import (
	"bytes"
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

var ethTestTo = common.HexToAddress("0x000000000000000000000000000000000000bEEF")

// ethTestTxs are unsigned transactions of each type signed, as
// go-ethereum's JSON marshals them.
func ethTestTxs() map[string]*types.Transaction {
	chain := big.NewInt(31337)
	al := types.AccessList{{Address: ethTestTo, StorageKeys: []common.Hash{{1}}}}
	return map[string]*types.Transaction{
		"legacy":   types.NewTx(&types.LegacyTx{Nonce: 3, GasPrice: big.NewInt(2e9), Gas: 21000, To: &ethTestTo, Value: big.NewInt(5)}),
		"creation": types.NewTx(&types.LegacyTx{Nonce: 0, GasPrice: big.NewInt(1), Gas: 100000, Data: []byte{0x60, 0x00}}),
		"2930": types.NewTx(&types.AccessListTx{ChainID: chain, Nonce: 1, GasPrice: big.NewInt(3e9), Gas: 30000,
			To: &ethTestTo, Value: big.NewInt(7), Data: []byte{1, 2}, AccessList: al}),
		"1559": types.NewTx(&types.DynamicFeeTx{ChainID: chain, Nonce: 9, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(4e9),
			Gas: 21000, To: &ethTestTo, Value: big.NewInt(1e18), AccessList: al}),
	}
}

// TestParseEthTxJSON: go-ethereum's JSON of an unsigned transaction comes
// back as the transaction's canonical encoding, with the same signing
// hash; a legacy transaction carries the chain ID as v (EIP-155).
func TestParseEthTxJSON(t *testing.T) {
	for name, want := range ethTestTxs() {
		t.Run(name, func(t *testing.T) {
			js, err := json.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			raw, chainID, err := parseEthTxJSON(js)
			if err != nil {
				t.Fatalf("%s: %v", js, err)
			}
			var got types.Transaction
			if err := got.UnmarshalBinary(raw); err != nil {
				t.Fatal(err)
			}
			wantChain := uint64(0) // a legacy transaction without v names none
			if want.Type() != types.LegacyTxType {
				wantChain = want.ChainId().Uint64()
			}
			if chainID != wantChain {
				t.Errorf("chain ID %d, want %d", chainID, wantChain)
			}
			signer := types.LatestSignerForChainID(big.NewInt(31337))
			if signer.Hash(&got) != signer.Hash(want) || got.Type() != want.Type() {
				t.Errorf("%s parses to another transaction", js)
			}
			if enc, _ := got.MarshalBinary(); !bytes.Equal(enc, raw) {
				t.Error("the encoding is not canonical")
			}
		})
	}
}

func TestParseEthTxJSONLegacyChainID(t *testing.T) {
	raw, chainID, err := parseEthTxJSON([]byte(`{"type":"0x0","chainId":"0x7a69","nonce":"0x0","gas":"0x5208","gasPrice":"0x1","to":"0x000000000000000000000000000000000000bEEF"}`))
	if err != nil || chainID != 31337 {
		t.Fatalf("chain %d, %v", chainID, err)
	}
	var tx types.Transaction
	if err := tx.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	if v, r, s := tx.RawSignatureValues(); v.Uint64() != 31337 || r.Sign() != 0 || s.Sign() != 0 {
		t.Errorf("v, r, s = %v, %v, %v; want the chain ID, 0, 0", v, r, s)
	}
}

// TestParseEthTxJSONRefuses lists what is refused, each with the reason.
func TestParseEthTxJSONRefuses(t *testing.T) {
	base := `"nonce":"0x0","gas":"0x5208","to":"0x000000000000000000000000000000000000bEEF"`
	dyn := `"type":"0x2","chainId":"0x1","maxFeePerGas":"0x2","maxPriorityFeePerGas":"0x1",` + base
	for _, c := range []struct{ js, want string }{
		{`{` + dyn + `,"authorizationList":[]}`, "unknown field"},
		{`{` + dyn + `}{}`, "data after"},
		{`{` + dyn + `,"r":"0x1"}`, "signed already"},
		{`{` + dyn + `,"yParity":"0x1"}`, "signed already"},
		{`{` + dyn + `,"hash":"0x0000000000000000000000000000000000000000000000000000000000000001"}`, `"hash" is not`},
		{`{` + dyn + `,"gasPrice":"0x1"}`, "a field of another type"},
		{`{` + dyn + `,"input":"0x01","data":"0x02"}`, `"input" and "data" differ`},
		{`{"type":"0x2","maxFeePerGas":"0x2","maxPriorityFeePerGas":"0x1",` + base + `}`, `needs "chainId"`},
		{`{"type":"0x0",` + base + `}`, `needs "gasPrice"`},
		{`{"type":"0x0","gasPrice":"0x1","maxFeePerGas":"0x1",` + base + `}`, "a field of another type"},
		{`{"type":"0x1","chainId":"0x1",` + base + `}`, `needs "chainId" and "gasPrice"`},
		{`{"type":"0x3","chainId":"0x1",` + base + `}`, "only 0x0"},
		{`{"type":"0x2","chainId":"0x10000000000000000","maxFeePerGas":"0x2","maxPriorityFeePerGas":"0x1",` + base + `}`, "64 bits"},
		{`{"type":"0x2","chainId":"0x1","maxFeePerGas":"0x2","maxPriorityFeePerGas":"0x1","gas":"0x1"}`, `"nonce" and "gas" are required`},
		{`{` + strings.Replace(dyn, "bEEF", "BeEF", 1) + `}`, "wrong EIP-55 checksum"},
		{`{` + strings.Replace(dyn, "0x000000000000000000000000000000000000bEEF", "000000000000000000000000000000000000beef00", 1) + `}`, "not a 0x address"},
		{`{` + strings.Replace(dyn, `"0x5208"`, `"5208"`, 1) + `}`, "go-ethereum's JSON form"},
	} {
		if _, _, err := parseEthTxJSON([]byte(c.js)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.js, err, c.want)
		}
	}
	// All lower or all upper case addresses carry no checksum.
	for _, to := range []string{"0x000000000000000000000000000000000000beef", "0X000000000000000000000000000000000000BEEF"} {
		if _, _, err := parseEthTxJSON([]byte(`{` + strings.Replace(dyn, "0x000000000000000000000000000000000000bEEF", to, 1) + `}`)); err != nil {
			t.Errorf("to %s: %v", to, err)
		}
	}
}

// FuzzParseEthTxJSON: whatever parses is a canonical encoding that
// go-ethereum decodes.
func FuzzParseEthTxJSON(f *testing.F) {
	for _, tx := range ethTestTxs() {
		js, _ := json.Marshal(tx)
		f.Add(js)
	}
	f.Fuzz(func(t *testing.T, js []byte) {
		raw, _, err := parseEthTxJSON(js)
		if err != nil {
			return
		}
		var tx types.Transaction
		if err := tx.UnmarshalBinary(raw); err != nil {
			t.Fatalf("%s parses to bytes go-ethereum cannot decode: %v", js, err)
		}
		if enc, _ := tx.MarshalBinary(); !bytes.Equal(enc, raw) {
			t.Fatalf("%s parses to a non-canonical encoding", js)
		}
	})
}
