package payload

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/ethereum/go-ethereum/crypto"
)

func TestRawDigest(t *testing.T) {
	digest := bytes.Repeat([]byte{0xab}, 32)
	t.Run("ecdsa", func(t *testing.T) {
		key := testEthKey(t)
		p := mustParse(t, Request{Kind: RawDigest, Bytes: digest}, key.pub)
		if p.Scheme != SchemeECDSA || !p.Summary.Blind || oneDigest(t, p) != [32]byte(digest) {
			t.Fatalf("parsed %+v", p)
		}
		sig := key.sign(t, [32]byte(digest))
		out, err := p.FinishDigest(sig)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := crypto.SigToPub(digest, out)
		if err != nil || !bytes.Equal(crypto.CompressPubkey(pub), key.pub) {
			t.Fatal("signature does not recover to the key")
		}
		bad := sig
		bad.RecoveryID ^= 1
		if _, err := p.FinishDigest(bad); !errors.Is(err, ErrSignature) {
			t.Fatalf("flipped recovery ID: %v", err)
		}
	})
	t.Run("schnorr", func(t *testing.T) {
		key := testTaprootKey(t)
		p := mustParse(t, Request{Kind: RawDigest, Bytes: digest}, key.xonly)
		if p.Scheme != SchemeSchnorr || !p.Summary.Blind {
			t.Fatalf("parsed %+v", p)
		}
		out, err := p.FinishDigest(key.signature(t, [32]byte(digest)))
		if err != nil {
			t.Fatal(err)
		}
		sig, _ := schnorr.ParseSignature(out)
		pub, _ := schnorr.ParsePubKey(key.xonly)
		if !sig.Verify(digest, pub) {
			t.Fatal("signature does not verify")
		}
		if _, err := p.FinishDigest(key.signature(t, [32]byte{1})); !errors.Is(err, ErrSignature) {
			t.Fatalf("signature over another digest: %v", err)
		}
		if _, err := p.FinishEth(Signature{}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("FinishEth on a Schnorr digest: %v", err)
		}
	})
}

func TestRawDigestRefusals(t *testing.T) {
	key := testEthKey(t)
	d := bytes.Repeat([]byte{1}, 32)
	cases := []struct {
		name string
		req  Request
		pub  []byte
		want string
	}{
		{"short", Request{Kind: RawDigest, Bytes: d[:31]}, key.pub, "32 bytes"},
		{"long", Request{Kind: RawDigest, Bytes: append(d, 0)}, key.pub, "32 bytes"},
		{"chain ID", Request{Kind: RawDigest, Bytes: d, ChainID: 1}, key.pub, "chain ID"},
		{"network", Request{Kind: RawDigest, Bytes: d, Network: "mainnet"}, key.pub, "network"},
		{"uncompressed key", Request{Kind: RawDigest, Bytes: d}, crypto.FromECDSAPub(&key.prv.PublicKey), "33 (compressed) or 32"},
		{"not a point", Request{Kind: RawDigest, Bytes: d}, bytes.Repeat([]byte{0xff}, 32), "not a secp256k1 point"},
		{"bad prefix", Request{Kind: RawDigest, Bytes: d}, append([]byte{4}, key.pub[1:]...), "not a secp256k1 point"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.req, tc.pub)
			wantInvalid(t, err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("refused for %q, want %q", err, tc.want)
			}
		})
	}
}

// TestDigestsCopy checks that callers cannot change what Finish verifies.
func TestDigestsCopy(t *testing.T) {
	key := testEthKey(t)
	p := mustParse(t, Request{Kind: RawDigest, Bytes: make([]byte, 32)}, key.pub)
	p.Digests()[0][0] = 1
	if oneDigest(t, p) != [32]byte{} {
		t.Fatal("Digests returned internal state")
	}
}
