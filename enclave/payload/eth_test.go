package payload

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/holiman/uint256"
)

// TestEIP155Vector parses the EIP-155 example's signing data (a legacy
// transaction whose v holds the chain ID) and checks the digest and the
// signed transaction against the EIP.
func TestEIP155Vector(t *testing.T) {
	var v struct{ PrivateKey, SigningData, SigningHash, SignedTx string }
	readJSON(t, "eip155_example.json", &v)
	key := newEthSigner(t, v.PrivateKey)
	p := mustParse(t, Request{Kind: EthTransaction, Bytes: mustHex(t, v.SigningData)}, key.pub)
	d := oneDigest(t, p)
	if hex.EncodeToString(d[:]) != v.SigningHash {
		t.Fatalf("digest %x, want %s", d, v.SigningHash)
	}
	if p.Summary.ChainID != 1 || p.Scheme != SchemeECDSA {
		t.Fatalf("summary %+v scheme %v", p.Summary, p.Scheme)
	}
	out, err := p.FinishEth(key.sign(t, d))
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(out.Raw) != v.SignedTx || out.V.Int64() != 37 {
		t.Fatalf("signed %x v %v, want %s v 37", out.Raw, out.V, v.SignedTx)
	}
}

var (
	alice = common.HexToAddress("0x3535353535353535353535353535353535353535")
	token = common.HexToAddress("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48")
)

func unsignedBytes(t testing.TB, data types.TxData) []byte {
	t.Helper()
	b, err := types.NewTx(data).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEthTransactionTypes checks each accepted type against go-ethereum:
// the digest is the signer's hash and the finished transaction is the one
// types.SignTx makes with the same key.
func TestEthTransactionTypes(t *testing.T) {
	key := testEthKey(t)
	al := types.AccessList{{Address: token, StorageKeys: []common.Hash{{1}}}}
	cases := []struct {
		name     string
		data     types.TxData
		reqChain uint64
		chain    uint64
	}{
		{"legacy chain from request", &types.LegacyTx{Nonce: 3, GasPrice: big.NewInt(7e9), Gas: 21000, To: &alice, Value: big.NewInt(5)}, 56, 56},
		{"legacy chain in v", &types.LegacyTx{Nonce: 3, GasPrice: big.NewInt(7e9), Gas: 21000, To: &alice, Value: big.NewInt(5), V: big.NewInt(10)}, 0, 10},
		{"legacy chain in v and request", &types.LegacyTx{Nonce: 3, GasPrice: big.NewInt(7e9), Gas: 21000, To: &alice, Value: big.NewInt(5), V: big.NewInt(10)}, 10, 10},
		{"eip2930", &types.AccessListTx{ChainID: big.NewInt(1), Nonce: 1, GasPrice: big.NewInt(3e9), Gas: 50000, To: &alice, Value: big.NewInt(1e18), AccessList: al}, 0, 1},
		{"eip1559", &types.DynamicFeeTx{ChainID: big.NewInt(8453), Nonce: 9, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(4e10), Gas: 30000, To: &alice, Value: big.NewInt(12345), AccessList: al}, 8453, 8453},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw := unsignedBytes(t, tc.data)
			p := mustParse(t, Request{Kind: EthTransaction, Bytes: raw, ChainID: tc.reqChain}, key.pub)
			signer := types.LatestSignerForChainID(new(big.Int).SetUint64(tc.chain))
			tx := types.NewTx(tc.data)
			if tx.Type() == types.LegacyTxType { // the EIP-155 form's v is not part of the transaction
				tx = types.NewTx(&types.LegacyTx{Nonce: tx.Nonce(), GasPrice: tx.GasPrice(), Gas: tx.Gas(), To: tx.To(), Value: tx.Value()})
			}
			d := oneDigest(t, p)
			if want := signer.Hash(tx); d != want {
				t.Fatalf("digest %x, want %x", d, want)
			}
			out, err := p.FinishEth(key.sign(t, d))
			if err != nil {
				t.Fatal(err)
			}
			ref, err := types.SignTx(tx, signer, key.prv)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := ref.MarshalBinary()
			if !bytes.Equal(out.Raw, want) || out.TxHash != ref.Hash() {
				t.Fatalf("signed tx differs from go-ethereum's\n got %x\nwant %x", out.Raw, want)
			}
			if p.Summary.ChainID != tc.chain || p.Summary.From != crypto.PubkeyToAddress(key.prv.PublicKey).Hex() {
				t.Fatalf("summary %+v", p.Summary)
			}
			if wantFee := new(big.Int).Mul(big.NewInt(int64(tx.Gas())), tx.GasPrice()); p.Summary.Fee.Cmp(wantFee) != 0 {
				t.Fatalf("fee %v, want %v", p.Summary.Fee, wantFee)
			}
		})
	}
}

func erc20(sel [4]byte, to common.Address, amount *big.Int) []byte {
	b := append([]byte{}, sel[:]...)
	b = append(b, common.LeftPadBytes(to.Bytes(), 32)...)
	return append(b, common.LeftPadBytes(amount.Bytes(), 32)...)
}

func TestEthSummary(t *testing.T) {
	key := testEthKey(t)
	self := crypto.PubkeyToAddress(key.prv.PublicKey)
	amount, _ := new(big.Int).SetString("115792089237316195423570985008687907853269984665640564039457584007913129639935", 10)
	tx := func(to *common.Address, value int64, data []byte) types.TxData {
		return &types.DynamicFeeTx{ChainID: big.NewInt(1), Nonce: 7, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2), Gas: 100000, To: to, Value: big.NewInt(value), Data: data}
	}
	cases := []struct {
		name      string
		data      types.TxData
		transfers []Transfer
		call      *Call
	}{
		{"plain transfer", tx(&alice, 100, nil), []Transfer{{AssetNative, alice.Hex(), big.NewInt(100), false}}, nil},
		{"self transfer", tx(&self, 100, nil), []Transfer{{AssetNative, self.Hex(), big.NewInt(100), true}}, nil},
		{"nothing", tx(&alice, 0, nil), nil, nil},
		{"erc20 transfer", tx(&token, 0, erc20(selTransfer, alice, amount)),
			[]Transfer{{token.Hex(), alice.Hex(), amount, false}}, nil},
		{"erc20 transfer with value", tx(&token, 3, erc20(selTransfer, alice, big.NewInt(9))),
			[]Transfer{{AssetNative, token.Hex(), big.NewInt(3), false}, {token.Hex(), alice.Hex(), big.NewInt(9), false}}, nil},
		{"erc20 approve", tx(&token, 0, erc20(selApprove, alice, amount)), nil,
			&Call{To: token.Hex(), Selector: "0x095ea7b3", Approval: &Approval{token.Hex(), alice.Hex(), amount}}},
		{"transferFrom is a call", tx(&token, 0, append([]byte{0x23, 0xb8, 0x72, 0xdd}, make([]byte, 96)...)), nil,
			&Call{To: token.Hex(), Selector: "0x23b872dd"}},
		{"call with value", tx(&alice, 5, []byte{1, 2, 3, 4, 5}),
			[]Transfer{{AssetNative, alice.Hex(), big.NewInt(5), false}}, &Call{To: alice.Hex(), Selector: "0x01020304"}},
		{"short calldata", tx(&alice, 0, []byte{1}), nil, &Call{To: alice.Hex()}},
		{"create", tx(nil, 8, []byte{0x60, 0x00}),
			[]Transfer{{AssetNative, crypto.CreateAddress(self, 7).Hex(), big.NewInt(8), false}},
			&Call{To: crypto.CreateAddress(self, 7).Hex(), Create: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := mustParse(t, Request{Kind: EthTransaction, Bytes: unsignedBytes(t, tc.data)}, key.pub)
			if !equalTransfers(p.Summary.Transfers, tc.transfers) {
				t.Fatalf("transfers %+v, want %+v", p.Summary.Transfers, tc.transfers)
			}
			if !equalCall(p.Summary.Call, tc.call) {
				t.Fatalf("call %+v, want %+v", p.Summary.Call, tc.call)
			}
		})
	}
}

func equalTransfers(a, b []Transfer) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Asset != b[i].Asset || a[i].To != b[i].To || a[i].Amount.Cmp(b[i].Amount) != 0 || a[i].Self != b[i].Self {
			return false
		}
	}
	return true
}

func equalCall(a, b *Call) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.To != b.To || a.Create != b.Create || a.Selector != b.Selector || (a.Approval == nil) != (b.Approval == nil) {
		return false
	}
	if a.Approval == nil {
		return true
	}
	return a.Approval.Token == b.Approval.Token && a.Approval.Spender == b.Approval.Spender && a.Approval.Amount.Cmp(b.Approval.Amount) == 0
}

func TestEthRefusals(t *testing.T) {
	key := testEthKey(t)
	good := &types.DynamicFeeTx{ChainID: big.NewInt(1), Nonce: 1, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2), Gas: 21000, To: &alice, Value: big.NewInt(1)}
	goodRaw := unsignedBytes(t, good)
	signed, err := types.SignNewTx(key.prv, types.LatestSignerForChainID(big.NewInt(1)), good)
	if err != nil {
		t.Fatal(err)
	}
	signedRaw, _ := signed.MarshalBinary()
	dirty := erc20(selTransfer, alice, big.NewInt(1))
	dirty[4] = 1
	huge := new(big.Int).Lsh(big.NewInt(1), 300)
	legacyHuge, _ := rlp.EncodeToBytes([]any{uint64(0), uint64(1), uint64(21000), alice, huge, []byte{}, uint64(1), uint64(0), uint64(0)})
	legacy6, _ := rlp.EncodeToBytes([]any{uint64(0), uint64(1), uint64(21000), alice, uint64(1), []byte{}})
	// A legacy list whose nonce has a leading zero byte.
	nonCanonical, _ := rlp.EncodeToBytes([]any{rlp.RawValue{0x83, 0x00, 0x01, 0x00}, uint64(1), uint64(21000), alice, uint64(1), []byte{}, uint64(1), uint64(0), uint64(0)})

	cases := []struct {
		name string
		req  Request
		pub  []byte
		want string
	}{
		{"empty", Request{Kind: EthTransaction}, key.pub, "empty or too large"},
		{"too large", Request{Kind: EthTransaction, Bytes: make([]byte, MaxSize+1)}, key.pub, "empty or too large"},
		{"unknown kind", Request{Kind: 99, Bytes: goodRaw}, key.pub, "unknown kind"},
		{"network on eth", Request{Kind: EthTransaction, Bytes: goodRaw, Network: "mainnet"}, key.pub, "network applies"},
		{"x-only key", Request{Kind: EthTransaction, Bytes: goodRaw}, key.pub[1:], "33-byte"},
		{"bad key", Request{Kind: EthTransaction, Bytes: goodRaw}, append([]byte{0x02}, bytes.Repeat([]byte{0xff}, 32)...), "not a secp256k1 point"},
		{"trailing byte", Request{Kind: EthTransaction, Bytes: append(bytes.Clone(goodRaw), 0)}, key.pub, "malformed transaction"},
		{"already signed", Request{Kind: EthTransaction, Bytes: signedRaw}, key.pub, "already signed"},
		{"typed chain zero", Request{Kind: EthTransaction, Bytes: unsignedBytes(t, &types.DynamicFeeTx{ChainID: big.NewInt(0), GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(1), Gas: 1, To: &token, Value: big.NewInt(0)}), ChainID: 1}, key.pub, "without a chain ID"},
		{"chain mismatch", Request{Kind: EthTransaction, Bytes: goodRaw, ChainID: 5}, key.pub, "differs from the request"},
		{"legacy without chain", Request{Kind: EthTransaction, Bytes: unsignedBytes(t, &types.LegacyTx{Gas: 21000, To: &alice, GasPrice: big.NewInt(1)})}, key.pub, "no chain ID"},
		{"legacy six fields", Request{Kind: EthTransaction, Bytes: legacy6, ChainID: 1}, key.pub, "malformed transaction"},
		{"legacy value over 256 bits", Request{Kind: EthTransaction, Bytes: legacyHuge}, key.pub, "out of range"},
		{"legacy non-canonical", Request{Kind: EthTransaction, Bytes: nonCanonical}, key.pub, "malformed transaction"},
		{"blob type", Request{Kind: EthTransaction, Bytes: unsignedBytes(t, &types.BlobTx{ChainID: uint256.NewInt(1), Gas: 21000, GasFeeCap: uint256.NewInt(1), GasTipCap: uint256.NewInt(1), BlobFeeCap: uint256.NewInt(1), Value: uint256.NewInt(0)})}, key.pub, "unsupported transaction type"},
		{"set-code type", Request{Kind: EthTransaction, Bytes: unsignedBytes(t, &types.SetCodeTx{ChainID: uint256.NewInt(1), Gas: 21000, GasFeeCap: uint256.NewInt(1), GasTipCap: uint256.NewInt(1), Value: uint256.NewInt(0), AuthList: []types.SetCodeAuthorization{{}}})}, key.pub, "unsupported transaction type"},
		{"type byte only", Request{Kind: EthTransaction, Bytes: []byte{2}}, key.pub, "malformed transaction"},
		{"erc20 short", Request{Kind: EthTransaction, Bytes: unsignedBytes(t, &types.DynamicFeeTx{ChainID: big.NewInt(1), GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(1), Gas: 1, To: &token, Value: big.NewInt(0), Data: erc20(selTransfer, alice, big.NewInt(1))[:67]})}, key.pub, "wrong length"},
		{"erc20 long", Request{Kind: EthTransaction, Bytes: unsignedBytes(t, &types.DynamicFeeTx{ChainID: big.NewInt(1), GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(1), Gas: 1, To: &token, Value: big.NewInt(0), Data: append(erc20(selTransfer, alice, big.NewInt(1)), 0)})}, key.pub, "wrong length"},
		{"erc20 dirty padding", Request{Kind: EthTransaction, Bytes: unsignedBytes(t, &types.DynamicFeeTx{ChainID: big.NewInt(1), GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(1), Gas: 1, To: &token, Value: big.NewInt(0), Data: dirty})}, key.pub, "zero-padded"},
		{"approve dirty padding", Request{Kind: EthTransaction, Bytes: unsignedBytes(t, &types.DynamicFeeTx{ChainID: big.NewInt(1), GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(1), Gas: 1, To: &token, Value: big.NewInt(0), Data: append(selApprove[:], dirty[4:]...)})}, key.pub, "zero-padded"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := Parse(tc.req, tc.pub)
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

func TestFinishEthRefusals(t *testing.T) {
	key, other := testEthKey(t), newEthSigner(t, "4646464646464646464646464646464646464646464646464646464646464646")
	raw := unsignedBytes(t, &types.DynamicFeeTx{ChainID: big.NewInt(1), GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2), Gas: 21000, To: &alice, Value: big.NewInt(1)})
	for _, kind := range []Kind{EthTransaction, EIP191} {
		t.Run(kind.String(), func(t *testing.T) {
			p := mustParse(t, Request{Kind: kind, Bytes: raw}, key.pub)
			d := oneDigest(t, p)
			good := key.sign(t, d)
			flipped := good
			flipped.RecoveryID ^= 1
			highS := good
			s := new(big.Int).Sub(crypto.S256().Params().N, new(big.Int).SetBytes(good.S[:]))
			highS.S = [32]byte(common.LeftPadBytes(s.Bytes(), 32))
			highS.RecoveryID ^= 1
			overflow := good
			overflow.RecoveryID = 2
			wrongDigest := key.sign(t, [32]byte{1})
			for name, sig := range map[string]Signature{
				"other key": other.sign(t, d), "flipped recovery": flipped, "high s": highS,
				"recovery 2": overflow, "other digest": wrongDigest, "zero": {},
			} {
				if out, err := p.FinishEth(sig); out != nil || !errors.Is(err, ErrSignature) {
					t.Errorf("%s: got %v, %v; want ErrSignature", name, out, err)
				}
			}
			if _, err := p.FinishEth(good); err != nil {
				t.Fatal(err)
			}
			if _, err := p.FinishDigest(good); !errors.Is(err, ErrInvalid) {
				t.Fatalf("FinishDigest on %v: %v", kind, err)
			}
			if _, err := p.FinishPSBT(nil); !errors.Is(err, ErrInvalid) {
				t.Fatalf("FinishPSBT on %v: %v", kind, err)
			}
		})
	}
}

func TestEIP191(t *testing.T) {
	key := testEthKey(t)
	for _, msg := range []string{"hello", "", strings.Repeat("x", 1000), "\x00\xff binary"} {
		if msg == "" {
			continue // empty payloads are refused
		}
		p := mustParse(t, Request{Kind: EIP191, Bytes: []byte(msg), ChainID: 137}, key.pub)
		d := oneDigest(t, p)
		if !bytes.Equal(d[:], accounts.TextHash([]byte(msg))) {
			t.Fatalf("digest %x differs from accounts.TextHash", d)
		}
		if p.Summary.ChainID != 137 || p.Summary.From != crypto.PubkeyToAddress(key.prv.PublicKey).Hex() || p.Summary.Fee != nil {
			t.Fatalf("summary %+v", p.Summary)
		}
		out, err := p.FinishEth(key.sign(t, d))
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Raw) != 65 || (out.Raw[64] != 27 && out.Raw[64] != 28) || out.V.Int64() != int64(out.Raw[64]) {
			t.Fatalf("signature %x v %v", out.Raw, out.V)
		}
		rec := bytes.Clone(out.Raw)
		rec[64] -= 27
		pub, err := crypto.SigToPub(d[:], rec)
		if err != nil || crypto.PubkeyToAddress(*pub) != crypto.PubkeyToAddress(key.prv.PublicKey) {
			t.Fatal("signature does not recover to the key")
		}
	}
}
