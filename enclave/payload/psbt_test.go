package payload

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// TestBIP341Vector checks the digest computation against the BIP-341
// key-path vectors for the inputs signed with DEFAULT and ALL. The vector
// spends coins of many keys and script types, so it goes straight to
// taprootDigests rather than through Parse, which would refuse them.
func TestBIP341Vector(t *testing.T) {
	var v struct {
		RawUnsignedTx string
		UtxosSpent    []struct {
			ScriptPubKey string
			AmountSats   int64
		}
		InputSpending []struct {
			TxinIndex int
			HashType  txscript.SigHashType
			SigHash   string
		}
	}
	readJSON(t, "bip341_keypath.json", &v)
	var tx wire.MsgTx
	if err := tx.Deserialize(bytes.NewReader(mustHex(t, v.RawUnsignedTx))); err != nil {
		t.Fatal(err)
	}
	pkt, err := psbt.NewFromUnsignedTx(&tx)
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range v.UtxosSpent {
		pkt.Inputs[i].WitnessUtxo = wire.NewTxOut(u.AmountSats, mustHex(t, u.ScriptPubKey))
	}
	hashTypes := make([]txscript.SigHashType, len(tx.TxIn))
	for _, in := range v.InputSpending {
		hashTypes[in.TxinIndex] = in.HashType
	}
	digests, err := taprootDigests(pkt, hashTypes)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range v.InputSpending {
		if got := hex.EncodeToString(digests[in.TxinIndex][:]); got != in.SigHash {
			t.Errorf("input %d: sighash %s, want %s", in.TxinIndex, got, in.SigHash)
		}
	}
}

// regtestAddr is BIP-173's P2WPKH example on regtest.
const regtestAddr = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"

// psbtSpec describes a test PSBT spending coins of one key.
type psbtSpec struct {
	amounts []int64 // one input per amount, paying to the key
	outputs []*wire.TxOut
	edit    func(*psbt.Packet)
}

func (s psbtSpec) build(t testing.TB, key taprootSigner) []byte {
	t.Helper()
	script := p2tr(t, key.xonly)
	tx := wire.NewMsgTx(2)
	for i := range s.amounts {
		tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.Hash{byte(i + 1)}, Index: uint32(i)}, nil, nil))
	}
	for _, out := range s.outputs {
		tx.AddTxOut(out)
	}
	pkt, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range s.amounts {
		pkt.Inputs[i].WitnessUtxo = wire.NewTxOut(a, script)
	}
	if s.edit != nil {
		s.edit(pkt)
	}
	var buf bytes.Buffer
	if err := pkt.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func p2tr(t testing.TB, xonly []byte) []byte {
	t.Helper()
	pub, err := schnorr.ParsePubKey(xonly)
	if err != nil {
		t.Fatal(err)
	}
	script, err := txscript.PayToTaprootScript(pub)
	if err != nil {
		t.Fatal(err)
	}
	return script
}

func addrOut(t testing.TB, addr string, params *chaincfg.Params, value int64) *wire.TxOut {
	t.Helper()
	a, err := btcutil.DecodeAddress(addr, params)
	if err != nil {
		t.Fatal(err)
	}
	script, err := txscript.PayToAddrScript(a)
	if err != nil {
		t.Fatal(err)
	}
	return wire.NewTxOut(value, script)
}

func opReturn(t testing.TB, value int64) *wire.TxOut {
	t.Helper()
	script, err := txscript.NullDataScript([]byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	return wire.NewTxOut(value, script)
}

// TestPSBTSignAndFinalize parses a two-input PSBT (one input DEFAULT, one
// ALL), signs it, finishes it, and checks the result independently: the
// PSBT is complete, and the extracted transaction passes the script engine.
func TestPSBTSignAndFinalize(t *testing.T) {
	key := testTaprootKey(t)
	params := &chaincfg.RegressionNetParams
	self, _ := btcutil.NewAddressTaproot(key.xonly, params)
	spec := psbtSpec{
		amounts: []int64{50_000, 70_000},
		outputs: []*wire.TxOut{
			addrOut(t, regtestAddr, params, 100_000),
			wire.NewTxOut(15_000, p2tr(t, key.xonly)),
			opReturn(t, 0),
		},
		edit: func(p *psbt.Packet) { p.Inputs[1].SighashType = txscript.SigHashAll },
	}
	raw := spec.build(t, key)
	p := mustParse(t, Request{Kind: TaprootPSBT, Bytes: raw, Network: "regtest"}, key.xonly)

	if p.Scheme != SchemeSchnorr || p.Summary.Network != "regtest" || p.Summary.From != self.EncodeAddress() || p.Summary.Fee.Int64() != 5_000 {
		t.Fatalf("summary %+v", p.Summary)
	}
	want := []Transfer{
		{AssetBTC, regtestAddr, bigInt(100_000), false},
		{AssetBTC, self.EncodeAddress(), bigInt(15_000), true},
	}
	if !equalTransfers(p.Summary.Transfers, want) {
		t.Fatalf("transfers %+v", p.Summary.Transfers)
	}
	digests := p.Digests()
	checkDigestsWithTxscript(t, raw, digests, []txscript.SigHashType{txscript.SigHashDefault, txscript.SigHashAll})

	sigs := make([][64]byte, len(digests))
	for i, d := range digests {
		sigs[i] = key.sign(t, d)
	}
	out, err := p.FinishPSBT(sigs)
	if err != nil {
		t.Fatal(err)
	}
	checkFinished(t, out)
	// FinishPSBT does not change the Parsed: a second call gives the same.
	again, err := p.FinishPSBT(sigs)
	if err != nil || !bytes.Equal(again.PSBT, out.PSBT) || !bytes.Equal(again.Tx, out.Tx) {
		t.Fatalf("second FinishPSBT differs: %v", err)
	}
}

// checkDigestsWithTxscript recomputes every digest from a fresh decode.
func checkDigestsWithTxscript(t *testing.T, raw []byte, digests [][DigestSize]byte, hashTypes []txscript.SigHashType) {
	t.Helper()
	pkt, err := psbt.NewFromRawBytes(bytes.NewReader(raw), false)
	if err != nil {
		t.Fatal(err)
	}
	prev := map[wire.OutPoint]*wire.TxOut{}
	for i, in := range pkt.UnsignedTx.TxIn {
		prev[in.PreviousOutPoint] = pkt.Inputs[i].WitnessUtxo
	}
	fetcher := txscript.NewMultiPrevOutFetcher(prev)
	hashes := txscript.NewTxSigHashes(pkt.UnsignedTx, fetcher)
	for i := range digests {
		want, err := txscript.CalcTaprootSignatureHash(hashes, hashTypes[i], pkt.UnsignedTx, i, fetcher)
		if err != nil || !bytes.Equal(want, digests[i][:]) {
			t.Fatalf("input %d: digest %x, want %x (%v)", i, digests[i], want, err)
		}
	}
}

// checkFinished decodes a finished PSBT and its transaction and runs every
// input through the script engine.
func checkFinished(t *testing.T, out *PSBTSigned) {
	t.Helper()
	pkt, err := psbt.NewFromRawBytes(bytes.NewReader(out.PSBT), false)
	if err != nil || !pkt.IsComplete() {
		t.Fatalf("finished PSBT does not decode or is not complete: %v", err)
	}
	extracted, err := psbt.Extract(pkt)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := extracted.Serialize(&buf); err != nil || !bytes.Equal(buf.Bytes(), out.Tx) {
		t.Fatal("returned transaction differs from the one in the PSBT")
	}
	prev := map[wire.OutPoint]*wire.TxOut{}
	for i, in := range extracted.TxIn {
		prev[in.PreviousOutPoint] = pkt.Inputs[i].WitnessUtxo
	}
	fetcher := txscript.NewMultiPrevOutFetcher(prev)
	hashes := txscript.NewTxSigHashes(extracted, fetcher)
	for i, in := range extracted.TxIn {
		utxo := prev[in.PreviousOutPoint]
		vm, err := txscript.NewEngine(utxo.PkScript, extracted, i, txscript.StandardVerifyFlags, nil, hashes, utxo.Value, fetcher)
		if err != nil {
			t.Fatal(err)
		}
		if err := vm.Execute(); err != nil {
			t.Fatalf("input %d does not verify: %v", i, err)
		}
	}
}

// TestPSBTAddresses checks that outputs are named with the network's
// canonical address, for each standard type (BIP-173/350 and base58
// examples on mainnet).
func TestPSBTAddresses(t *testing.T) {
	key := testTaprootKey(t)
	params := &chaincfg.MainNetParams
	addrs := []string{
		"1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
		"3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
		"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
		"bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3",
		"bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
	}
	spec := psbtSpec{amounts: []int64{1_000_000}}
	for i, a := range addrs {
		spec.outputs = append(spec.outputs, addrOut(t, a, params, int64(1000*(i+1))))
	}
	p := mustParse(t, Request{Kind: TaprootPSBT, Bytes: spec.build(t, key), Network: "mainnet"}, key.xonly)
	for i, a := range addrs {
		if tr := p.Summary.Transfers[i]; tr.To != a || tr.Amount.Int64() != int64(1000*(i+1)) || tr.Asset != AssetBTC || tr.Self {
			t.Errorf("output %d: %+v, want %s", i, tr, a)
		}
	}
	if !strings.HasPrefix(p.Summary.From, "bc1p") {
		t.Fatalf("from %q", p.Summary.From)
	}
}

func TestFinishPSBTRefusals(t *testing.T) {
	key, other := testTaprootKey(t), newTaprootSigner(t, "1e4da49f6aaf4e5cd175fe08a32bb5cb4863d963921255f33d3bc31e1343907f")
	params := &chaincfg.RegressionNetParams
	spec := psbtSpec{amounts: []int64{5000, 6000}, outputs: []*wire.TxOut{addrOut(t, regtestAddr, params, 10_000)}}
	p := mustParse(t, Request{Kind: TaprootPSBT, Bytes: spec.build(t, key), Network: "regtest"}, key.xonly)
	d := p.Digests()
	good := [][64]byte{key.sign(t, d[0]), key.sign(t, d[1])}
	for name, sigs := range map[string][][64]byte{
		"other key": {other.sign(t, d[0]), other.sign(t, d[1])},
		"swapped":   {good[1], good[0]},
		"zero":      {{}, good[1]},
	} {
		if out, err := p.FinishPSBT(sigs); out != nil || !errors.Is(err, ErrSignature) {
			t.Errorf("%s: got %v, %v; want ErrSignature", name, out, err)
		}
	}
	if _, err := p.FinishPSBT(good[:1]); !errors.Is(err, ErrInvalid) {
		t.Errorf("one signature short: %v", err)
	}
	if _, err := p.FinishEth(Signature{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("FinishEth on a PSBT: %v", err)
	}
	if _, err := p.FinishPSBT(good); err != nil {
		t.Fatal(err)
	}
}

func TestPSBTRefusals(t *testing.T) {
	key, other := testTaprootKey(t), newTaprootSigner(t, "1e4da49f6aaf4e5cd175fe08a32bb5cb4863d963921255f33d3bc31e1343907f")
	params := &chaincfg.RegressionNetParams
	pay := addrOut(t, regtestAddr, params, 1000)
	pub, _ := schnorr.ParsePubKey(key.xonly)
	bip86, _ := txscript.PayToTaprootScript(txscript.ComputeTaprootKeyNoScript(pub))
	p2wpkh := addrOut(t, regtestAddr, params, 5000).PkScript
	p2pk, _ := txscript.NewScriptBuilder().AddData(append([]byte{2}, key.xonly...)).AddOp(txscript.OP_CHECKSIG).Script()
	witnessV2 := append([]byte{txscript.OP_2, 32}, key.xonly...)
	input := func(f func(*psbt.PInput)) func(*psbt.Packet) { return func(p *psbt.Packet) { f(&p.Inputs[0]) } }
	spec := func(edit func(*psbt.Packet), outs ...*wire.TxOut) psbtSpec {
		if len(outs) == 0 {
			outs = []*wire.TxOut{pay}
		}
		return psbtSpec{amounts: []int64{5000}, outputs: outs, edit: edit}
	}
	good := spec(nil).build(t, key)
	prevTx := wire.NewMsgTx(2)
	prevTx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Index: 7}, nil, nil))
	prevTx.AddTxOut(wire.NewTxOut(5000, p2tr(t, key.xonly)))

	cases := []struct {
		name string
		raw  []byte
		req  func(*Request)
		pub  []byte
		want string
	}{
		{"unknown network", good, func(r *Request) { r.Network = "litecoin" }, nil, "unknown Bitcoin network"},
		{"no network", good, func(r *Request) { r.Network = "" }, nil, "unknown Bitcoin network"},
		{"chain ID", good, func(r *Request) { r.ChainID = 1 }, nil, "chain ID does not apply"},
		{"ECDSA key", good, nil, append([]byte{2}, key.xonly...), "x-only"},
		{"trailing byte", append(bytes.Clone(good), 0), nil, nil, "data after"},
		{"base64", []byte("cHNidP8BAA=="), nil, nil, "malformed PSBT"},
		{"truncated", good[:len(good)-3], nil, nil, "malformed PSBT"},
		{"other key's coin", spec(nil).build(t, other), nil, nil, "does not pay to the signing key"},
		{"BIP-86 tweaked output", spec(input(func(in *psbt.PInput) { in.WitnessUtxo.PkScript = bip86 })).build(t, key), nil, nil, "does not pay to the signing key"},
		{"P2WPKH input", spec(input(func(in *psbt.PInput) { in.WitnessUtxo.PkScript = p2wpkh })).build(t, key), nil, nil, "does not pay to the signing key"},
		{"no witness utxo", spec(input(func(in *psbt.PInput) { in.WitnessUtxo = nil })).build(t, key), nil, nil, "no witness UTXO"},
		{"leaf script", spec(input(func(in *psbt.PInput) {
			in.TaprootLeafScript = []*psbt.TaprootTapLeafScript{{ControlBlock: append([]byte{0xc0}, key.xonly...), Script: []byte{txscript.OP_TRUE}, LeafVersion: txscript.BaseLeafVersion}}
		})).build(t, key), nil, nil, "script-path"},
		{"merkle root", spec(input(func(in *psbt.PInput) { in.TaprootMerkleRoot = make([]byte, 32) })).build(t, key), nil, nil, "script-path"},
		{"already signed", spec(input(func(in *psbt.PInput) { sig := key.sign(t, [32]byte{1}); in.TaprootKeySpendSig = sig[:] })).build(t, key), nil, nil, "already signed"},
		{"finalized", spec(input(func(in *psbt.PInput) { in.FinalScriptWitness = []byte{1, 1, 1} })).build(t, key), nil, nil, "already finalized"},
		{"witness script", spec(input(func(in *psbt.PInput) { in.WitnessScript = []byte{txscript.OP_TRUE} })).build(t, key), nil, nil, "witness script"},
		{"internal key differs", spec(input(func(in *psbt.PInput) { in.TaprootInternalKey = other.xonly })).build(t, key), nil, nil, "internal key"},
		{"sighash none", spec(input(func(in *psbt.PInput) { in.SighashType = txscript.SigHashNone })).build(t, key), nil, nil, "sighash type"},
		{"sighash single", spec(input(func(in *psbt.PInput) { in.SighashType = txscript.SigHashSingle })).build(t, key), nil, nil, "sighash type"},
		{"sighash anyonecanpay", spec(input(func(in *psbt.PInput) { in.SighashType = txscript.SigHashAll | txscript.SigHashAnyOneCanPay })).build(t, key), nil, nil, "sighash type"},
		{"non-witness utxo mismatch", spec(input(func(in *psbt.PInput) { in.NonWitnessUtxo = prevTx })).build(t, key), nil, nil, "non-witness UTXO"},
		{"amount out of range", spec(input(func(in *psbt.PInput) { in.WitnessUtxo.Value = btcutil.MaxSatoshi + 1 })).build(t, key), nil, nil, "amount out of range"},
		{"outputs exceed inputs", spec(nil, addrOut(t, regtestAddr, params, 5001)).build(t, key), nil, nil, "outputs exceed inputs"},
		{"negative output", spec(nil, wire.NewTxOut(-1, p2wpkh)).build(t, key), nil, nil, "amount out of range"},
		{"P2PK output", spec(nil, wire.NewTxOut(1000, p2pk)).build(t, key), nil, nil, "no standard address"},
		{"witness v2 output", spec(nil, wire.NewTxOut(1000, witnessV2)).build(t, key), nil, nil, "no standard address"},
		{"OP_RETURN with value", spec(nil, opReturn(t, 1)).build(t, key), nil, nil, "OP_RETURN"},
		{"spent twice", psbtSpec{amounts: []int64{5000, 5000}, outputs: []*wire.TxOut{pay}, edit: func(p *psbt.Packet) {
			p.UnsignedTx.TxIn[1].PreviousOutPoint = p.UnsignedTx.TxIn[0].PreviousOutPoint
		}}.build(t, key), nil, nil, "outpoint twice"},
		{"too many inputs", psbtSpec{amounts: make([]int64, maxPSBTInputs+1), outputs: []*wire.TxOut{wire.NewTxOut(0, p2wpkh)}}.build(t, key), nil, nil, "too many"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := Request{Kind: TaprootPSBT, Bytes: tc.raw, Network: "regtest"}
			if tc.req != nil {
				tc.req(&req)
			}
			pub := key.xonly
			if tc.pub != nil {
				pub = tc.pub
			}
			p, err := Parse(req, pub)
			if p != nil {
				t.Fatal("Parse returned a result with an error")
			}
			wantInvalid(t, err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("refused for %q, want %q", err, tc.want)
			}
		})
	}
}

// TestPSBTNonWitnessUtxo accepts a matching full previous transaction and
// an internal key equal to the signing key.
func TestPSBTNonWitnessUtxo(t *testing.T) {
	key := testTaprootKey(t)
	prevTx := wire.NewMsgTx(2)
	prevTx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Index: 7}, nil, nil))
	prevTx.AddTxOut(wire.NewTxOut(5000, p2tr(t, key.xonly)))
	spec := psbtSpec{
		amounts: []int64{5000},
		outputs: []*wire.TxOut{opReturn(t, 0)},
		edit: func(p *psbt.Packet) {
			p.UnsignedTx.TxIn[0].PreviousOutPoint = wire.OutPoint{Hash: prevTx.TxHash(), Index: 0}
			p.Inputs[0].NonWitnessUtxo = prevTx
			p.Inputs[0].TaprootInternalKey = key.xonly
		},
	}
	p := mustParse(t, Request{Kind: TaprootPSBT, Bytes: spec.build(t, key), Network: "signet"}, key.xonly)
	if len(p.Summary.Transfers) != 0 || p.Summary.Fee.Int64() != 5000 {
		t.Fatalf("summary %+v", p.Summary)
	}
	out, err := p.FinishPSBT([][64]byte{key.sign(t, p.Digests()[0])})
	if err != nil {
		t.Fatal(err)
	}
	checkFinished(t, out)
}

// TestPSBTLibraryPanic feeds the input that makes btcd's PSBT parser
// (v1.1.10) panic: a Taproot BIP-32 derivation claiming 2^63 leaf hashes.
// Parse must refuse it.
func TestPSBTLibraryPanic(t *testing.T) {
	key := testTaprootKey(t)
	raw := psbtWithInputEntry(t, key, 0x16, key.xonly, []byte{0xff, 0, 0, 0, 0, 0, 0, 0, 0x80, 1, 2, 3, 4})
	func() {
		defer func() { t.Logf("btcd psbt panicked: %v", recover() != nil) }()
		_, _ = psbt.NewFromRawBytes(bytes.NewReader(raw), false)
	}()
	p, err := Parse(Request{Kind: TaprootPSBT, Bytes: raw, Network: "regtest"}, key.xonly)
	if p != nil {
		t.Fatal("Parse returned a result")
	}
	wantInvalid(t, err)
}

// psbtWithInputEntry builds a one-input PSBT whose input map holds only
// the given raw key-value entry.
func psbtWithInputEntry(t testing.TB, key taprootSigner, keyType byte, keyData, value []byte) []byte {
	t.Helper()
	raw := psbtSpec{amounts: []int64{5000}, outputs: []*wire.TxOut{opReturn(t, 0)},
		edit: func(p *psbt.Packet) { p.Inputs[0] = psbt.PInput{} }}.build(t, key)
	// The serialization ends with the empty input map and the empty output
	// map: two separators.
	b := bytes.Clone(raw[:len(raw)-2])
	b = append(b, byte(1+len(keyData)), keyType)
	b = append(b, keyData...)
	b = append(b, byte(len(value)))
	b = append(b, value...)
	return append(b, 0, 0)
}
