package payload

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the fuzz seed corpus in testdata/fuzz")

// checkRefusal holds for every failed Parse: ErrInvalid, nothing returned.
func checkRefusal(t *testing.T, p *Parsed, err error) {
	t.Helper()
	if !errors.Is(err, ErrInvalid) || p != nil {
		t.Fatalf("refusal is %v with result %v; want ErrInvalid and nil", err, p)
	}
	if len(err.Error()) > 120 {
		t.Fatalf("error too long: %q", err)
	}
}

// FuzzParseEth: Parse never panics; on success the bytes are go-ethereum's
// canonical encoding, the digest is go-ethereum's signing hash, parsing is
// deterministic, and a real signature finishes into a transaction whose
// recovered sender is the key's address.
func FuzzParseEth(f *testing.F) {
	for _, s := range ethSeeds(f) {
		f.Add(s.b, s.chain)
	}
	key := testEthKey(f)
	f.Fuzz(func(t *testing.T, b []byte, chain uint64) {
		req := Request{Kind: EthTransaction, Bytes: b, ChainID: chain}
		p, err := Parse(req, key.pub)
		if err != nil {
			checkRefusal(t, p, err)
			return
		}
		var tx types.Transaction
		if err := tx.UnmarshalBinary(b); err != nil {
			t.Fatalf("accepted bytes go-ethereum does not decode: %v", err)
		}
		if enc, _ := tx.MarshalBinary(); !bytes.Equal(enc, b) {
			t.Fatal("accepted a non-canonical encoding")
		}
		d := oneDigest(t, p)
		if d != p.eth.signer.Hash(p.eth.tx) {
			t.Fatal("digest is not the signer's hash")
		}
		again, err := Parse(req, key.pub)
		if err != nil || again.Digests()[0] != d || !reflect.DeepEqual(again.Summary, p.Summary) {
			t.Fatalf("second parse differs: %v", err)
		}
		out, err := p.FinishEth(key.sign(t, d))
		if err != nil {
			t.Fatalf("FinishEth: %v", err)
		}
		var signed types.Transaction
		if err := signed.UnmarshalBinary(out.Raw); err != nil {
			t.Fatalf("signed transaction does not decode: %v", err)
		}
		from, err := types.Sender(types.LatestSignerForChainID(signed.ChainId()), &signed)
		if err != nil || from != crypto.PubkeyToAddress(key.prv.PublicKey) || signed.ChainId().Uint64() != p.Summary.ChainID {
			t.Fatalf("signed transaction recovers to %v (%v)", from, err)
		}
	})
}

// FuzzParseEIP712: Parse never panics; on success the document's JSON tree,
// re-encoded by encoding/json, parses to the same digest and summary.
func FuzzParseEIP712(f *testing.F) {
	for _, s := range eip712Seeds(f) {
		f.Add(s.b, s.chain)
	}
	key := testEthKey(f)
	f.Fuzz(func(t *testing.T, b []byte, chain uint64) {
		p, err := Parse(Request{Kind: EIP712, Bytes: b, ChainID: chain}, key.pub)
		if err != nil {
			checkRefusal(t, p, err)
			return
		}
		tree, err := decodeJSON(b)
		if err != nil {
			t.Fatal(err)
		}
		canon, err := json.Marshal(tree)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(Request{Kind: EIP712, Bytes: canon, ChainID: chain}, key.pub)
		if err != nil {
			t.Fatalf("re-encoded document refused: %v\n%s", err, canon)
		}
		if again.Digests()[0] != p.Digests()[0] || !reflect.DeepEqual(again.Summary, p.Summary) {
			t.Fatalf("re-encoded document parses differently\n%s", canon)
		}
	})
}

// FuzzDecodeJSON: the strict reader accepts only what encoding/json calls
// valid, and its tree survives a round trip through encoding/json.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range eip712Seeds(f) {
		f.Add(s.b)
	}
	f.Add([]byte(`{"a":[1,-2,"x",true,{}],"b":"\u00e9"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tree, err := decodeJSON(b)
		if err != nil {
			checkRefusal(t, nil, err)
			return
		}
		if !json.Valid(b) {
			t.Fatal("accepted invalid JSON")
		}
		canon, err := json.Marshal(tree)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeJSON(canon)
		if err != nil || !reflect.DeepEqual(again, tree) {
			t.Fatalf("round trip differs: %v", err)
		}
	})
}

// FuzzParsePSBT: Parse never panics; on success the PSBT re-serialized by
// btcd parses to the same digests and summary, the digests are txscript's,
// and real signatures finish into a transaction the script engine accepts.
func FuzzParsePSBT(f *testing.F) {
	for _, s := range psbtSeeds(f) {
		f.Add(s.b)
	}
	key := testTaprootKey(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		req := Request{Kind: TaprootPSBT, Bytes: b, Network: "regtest"}
		p, err := Parse(req, key.xonly)
		if err != nil {
			checkRefusal(t, p, err)
			return
		}
		pkt, err := psbt.NewFromRawBytes(bytes.NewReader(b), false)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := pkt.Serialize(&buf); err != nil {
			t.Fatal(err)
		}
		req.Bytes = buf.Bytes()
		again, err := Parse(req, key.xonly)
		if err != nil || !reflect.DeepEqual(again.Digests(), p.Digests()) || !reflect.DeepEqual(again.Summary, p.Summary) {
			t.Fatalf("re-serialized PSBT parses differently: %v", err)
		}
		checkDigestsWithTxscript(t, b, p.Digests(), p.btc.hashTypes)
		sigs := make([][64]byte, len(p.Digests()))
		for i, d := range p.Digests() {
			sigs[i] = key.sign(t, d)
		}
		if _, err := p.FinishPSBT(sigs); err != nil {
			t.Fatalf("FinishPSBT: %v", err)
		}
	})
}

// FuzzParse drives every kind with arbitrary requests and keys: Parse never
// panics, refuses with ErrInvalid only, and a result is self-consistent.
func FuzzParse(f *testing.F) {
	eth, tap := testEthKey(f), testTaprootKey(f)
	f.Add(uint8(RawDigest), make([]byte, 32), uint64(0), "", eth.pub)
	f.Add(uint8(RawDigest), make([]byte, 32), uint64(0), "", tap.xonly)
	f.Add(uint8(EIP191), []byte("hello"), uint64(1), "", eth.pub)
	f.Add(uint8(TaprootPSBT), []byte("psbt\xff"), uint64(0), "regtest", tap.xonly)
	f.Fuzz(func(t *testing.T, kind uint8, b []byte, chain uint64, network string, pub []byte) {
		p, err := Parse(Request{Kind: Kind(kind), Bytes: b, ChainID: chain, Network: network}, pub)
		if err != nil {
			checkRefusal(t, p, err)
			return
		}
		if p.Kind != Kind(kind) || len(p.Digests()) == 0 || (p.Kind != TaprootPSBT && len(p.Digests()) != 1) {
			t.Fatalf("inconsistent result %+v", p)
		}
		if p.Summary.Blind != (p.Kind == RawDigest) {
			t.Fatal("blind flag wrong")
		}
	})
}

type seed struct {
	name  string
	b     []byte
	chain uint64
	// refused marks a regression seed Parse must refuse.
	refused bool
}

func ethSeeds(t testing.TB) []seed {
	var v struct{ SigningData string }
	readJSON(t, "eip155_example.json", &v)
	to := common.HexToAddress("0x3535353535353535353535353535353535353535")
	return []seed{
		{"eip155-example", mustHex(t, v.SigningData), 0, false},
		{"legacy", unsignedBytes(t, &types.LegacyTx{Nonce: 1, GasPrice: big.NewInt(1), Gas: 21000, To: &to, Value: big.NewInt(1)}), 5, false},
		{"eip2930", unsignedBytes(t, &types.AccessListTx{ChainID: big.NewInt(1), Gas: 21000, GasPrice: big.NewInt(1), To: &to, Value: big.NewInt(0),
			AccessList: types.AccessList{{Address: to, StorageKeys: []common.Hash{{1}}}}}), 0, false},
		{"eip1559-erc20", unsignedBytes(t, &types.DynamicFeeTx{ChainID: big.NewInt(10), GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(1), Gas: 60000,
			To: &to, Value: big.NewInt(0), Data: erc20(selTransfer, to, big.NewInt(77))}), 10, false},
		{"eip1559-approve", unsignedBytes(t, &types.DynamicFeeTx{ChainID: big.NewInt(10), GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(1), Gas: 60000,
			To: &to, Value: big.NewInt(0), Data: erc20(selApprove, to, big.NewInt(77))}), 0, false},
		{"eip1559-create", unsignedBytes(t, &types.DynamicFeeTx{ChainID: big.NewInt(1), GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(1), Gas: 60000,
			Value: big.NewInt(3), Data: []byte{0x60, 0x80}}), 0, false},
	}
}

func eip712Seeds(t testing.TB) []seed {
	return []seed{
		{"mail", readFile(t, "eip712_mail.json"), 0, false},
		{"permit", []byte(fmt.Sprintf(permitTemplate, `"0x1"`, `"1000"`)), 1, false},
		{"arrays", []byte(`{"types":{"EIP712Domain":[{"name":"salt","type":"bytes32"}],"A":[{"name":"xs","type":"uint8[]"},{"name":"b","type":"bytes"},{"name":"n","type":"int256[][]"}]},"primaryType":"A","domain":{"salt":"0x` +
			"00000000000000000000000000000000000000000000000000000000000000ff" + `"},"message":{"xs":[1,2,3],"b":"0x0102","n":[[-1],[2,3]]}}`), 0, false},
	}
}

func psbtSeeds(t testing.TB) []seed {
	key := testTaprootKey(t)
	params := &chaincfg.RegressionNetParams
	pay := addrOut(t, regtestAddr, params, 1000)
	return []seed{
		{"one-input", psbtSpec{amounts: []int64{5000}, outputs: []*wire.TxOut{pay}}.build(t, key), 0, false},
		{"two-inputs-all", psbtSpec{amounts: []int64{5000, 7000}, outputs: []*wire.TxOut{pay, wire.NewTxOut(9000, p2tr(t, key.xonly)), opReturn(t, 0)},
			edit: func(p *psbt.Packet) { p.Inputs[1].SighashType = txscript.SigHashAll }}.build(t, key), 0, false},
		{"internal-key", psbtSpec{amounts: []int64{5000}, outputs: []*wire.TxOut{pay},
			edit: func(p *psbt.Packet) { p.Inputs[0].TaprootInternalKey = key.xonly }}.build(t, key), 0, false},
		{"derivations-unknowns", psbtSpec{amounts: []int64{5000}, outputs: []*wire.TxOut{pay, wire.NewTxOut(1000, p2tr(t, key.xonly))},
			edit: func(p *psbt.Packet) {
				deriv := []*psbt.TaprootBip32Derivation{{XOnlyPubKey: key.xonly, LeafHashes: [][]byte{make([]byte, 32)}, MasterKeyFingerprint: 0x01020304, Bip32Path: []uint32{0x80000056, 0x80000000, 0x80000000, 0, 7}}}
				p.Inputs[0].TaprootBip32Derivation = deriv
				p.Inputs[0].Unknowns = []*psbt.Unknown{{Key: []byte{0xfc, 1}, Value: []byte{2}}}
				p.Outputs[1].TaprootInternalKey = key.xonly
				p.Outputs[1].TaprootBip32Derivation = deriv
				p.Unknowns = []*psbt.Unknown{{Key: []byte{0xfc, 9}, Value: []byte{9}}}
			}}.build(t, key), 0, false},
		{"regress-tap-derivation-overflow", psbtWithInputEntry(t, key, 0x16, key.xonly, []byte{0xff, 0, 0, 0, 0, 0, 0, 0, 0x80, 1, 2, 3, 4}), 0, true},
	}
}

// TestWriteFuzzSeeds rewrites testdata/fuzz from the seed builders when run
// with -update-seeds, and otherwise checks that every seed is there.
func TestWriteFuzzSeeds(t *testing.T) {
	sets := map[string][]seed{
		"FuzzParseEth": ethSeeds(t), "FuzzParseEIP712": eip712Seeds(t), "FuzzParsePSBT": psbtSeeds(t),
	}
	reqs := map[string]func(seed) (Request, []byte){
		"FuzzParseEth": func(s seed) (Request, []byte) {
			return Request{Kind: EthTransaction, Bytes: s.b, ChainID: s.chain}, testEthKey(t).pub
		},
		"FuzzParseEIP712": func(s seed) (Request, []byte) {
			return Request{Kind: EIP712, Bytes: s.b, ChainID: s.chain}, testEthKey(t).pub
		},
		"FuzzParsePSBT": func(s seed) (Request, []byte) {
			return Request{Kind: TaprootPSBT, Bytes: s.b, Network: "regtest"}, testTaprootKey(t).xonly
		},
	}
	for target, seeds := range sets {
		for _, s := range seeds {
			if _, err := Parse(reqs[target](s)); (err != nil) != s.refused {
				t.Errorf("seed %s/%s: Parse gives %v, want refused=%v", target, s.name, err, s.refused)
			}
			path := filepath.Join("testdata", "fuzz", target, s.name)
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s.b)
			if target != "FuzzParsePSBT" {
				body += fmt.Sprintf("uint64(%d)\n", s.chain)
			}
			if *updateSeeds {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if got, err := os.ReadFile(path); err != nil || string(got) != body {
				t.Errorf("seed %s missing or stale (run with -update-seeds): %v", path, err)
			}
		}
	}
}
