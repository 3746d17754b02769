package mpc_test

import (
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"math/big"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	btcecdsa "github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
)

// Independent verification: nothing here uses multi-party-sig.

// ecdsaValid checks sig over digest under the SEC1 key pub with crypto/ecdsa,
// with btcec, and by public-key recovery; it also checks low S.
func ecdsaValid(t *testing.T, pub, digest []byte, sig mpc.Signature) bool {
	t.Helper()
	pk, err := btcec.ParsePubKey(pub)
	if err != nil {
		t.Fatalf("parsing public key: %v", err)
	}
	std := stdECDSA(pk, digest, sig)
	btc := btcecValid(pk, digest, sig)
	if std != btc {
		t.Fatalf("crypto/ecdsa says %v, btcec says %v", std, btc)
	}
	if std {
		checkLowS(t, sig)
		checkRecovery(t, pk, digest, sig)
	}
	return std
}

func stdECDSA(pk *btcec.PublicKey, digest []byte, sig mpc.Signature) bool {
	// crypto/ecdsa takes secp256k1 only as a custom elliptic.Curve, which
	// only the raw coordinates can describe.
	//lint:ignore SA1019 no non-deprecated way to give crypto/ecdsa a secp256k1 key
	key := &ecdsa.PublicKey{Curve: btcec.S256(), X: pk.X(), Y: pk.Y()}
	r, s := new(big.Int).SetBytes(sig.R[:]), new(big.Int).SetBytes(sig.S[:])
	return ecdsa.Verify(key, digest, r, s)
}

func btcecValid(pk *btcec.PublicKey, digest []byte, sig mpc.Signature) bool {
	var r, s btcec.ModNScalar
	if r.SetBytes(&sig.R) != 0 || s.SetBytes(&sig.S) != 0 {
		return false
	}
	return btcecdsa.NewSignature(&r, &s).Verify(digest, pk)
}

func checkLowS(t *testing.T, sig mpc.Signature) {
	t.Helper()
	halfN := new(big.Int).Rsh(btcec.S256().N, 1)
	if new(big.Int).SetBytes(sig.S[:]).Cmp(halfN) > 0 {
		t.Error("signature has a high S")
	}
}

// checkRecovery recovers the key from the compact form (27 + 4 for a
// compressed key + recovery ID, then r, s).
func checkRecovery(t *testing.T, pk *btcec.PublicKey, digest []byte, sig mpc.Signature) {
	t.Helper()
	compact := append([]byte{27 + 4 + sig.RecoveryID}, sig.Bytes()...)
	got, _, err := btcecdsa.RecoverCompact(compact, digest)
	if err != nil || !got.IsEqual(pk) {
		t.Errorf("recovery ID %d does not recover the key (err %v)", sig.RecoveryID, err)
	}
}

// schnorrValid checks a BIP-340 signature under a 32-byte x-only key.
func schnorrValid(t *testing.T, xonly, digest []byte, sig mpc.Signature) bool {
	t.Helper()
	pk, err := schnorr.ParsePubKey(xonly)
	if err != nil {
		t.Fatalf("parsing x-only key: %v", err)
	}
	s, err := schnorr.ParseSignature(sig.Bytes())
	if err != nil {
		return false
	}
	return s.Verify(digest, pk)
}

// ckdPub is BIP-32 public child derivation, written from the BIP with
// btcec: K_i = K + IL*G, c_i = IR, IL||IR = HMAC-SHA512(c, ser_P(K)||i).
func ckdPub(t *testing.T, pub, chain []byte, path []uint32) (child, childChain []byte) {
	t.Helper()
	pk, err := btcec.ParsePubKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range path {
		pk, chain = ckdPubStep(t, pk, chain, i)
	}
	return pk.SerializeCompressed(), chain
}

func ckdPubStep(t *testing.T, pk *btcec.PublicKey, chain []byte, i uint32) (*btcec.PublicKey, []byte) {
	t.Helper()
	mac := hmac.New(sha512.New, chain)
	mac.Write(pk.SerializeCompressed())
	mac.Write(binary.BigEndian.AppendUint32(nil, i))
	sum := mac.Sum(nil)
	var il btcec.ModNScalar
	if il.SetByteSlice(sum[:32]) {
		t.Fatal("IL overflows the group order")
	}
	var tweak, parent, out btcec.JacobianPoint
	btcec.ScalarBaseMultNonConst(&il, &tweak)
	pk.AsJacobian(&parent)
	btcec.AddNonConst(&parent, &tweak, &out)
	out.ToAffine()
	return btcec.NewPublicKey(&out.X, &out.Y), sum[32:]
}

// ckdTaproot derives an x-only key the way Taproot wallets over BIP-32 do
// when the parent is x-only: the parent is read with an even Y.
func ckdTaproot(t *testing.T, xonly, chain []byte, path []uint32) []byte {
	t.Helper()
	pub := append([]byte{0x02}, xonly...)
	for _, i := range path {
		c, cc := ckdPub(t, pub, chain, []uint32{i})
		pub, chain = append([]byte{0x02}, c[1:]...), cc
	}
	return pub[1:]
}
