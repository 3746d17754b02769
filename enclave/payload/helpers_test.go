package payload

import (
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/ethereum/go-ethereum/crypto"
)

// ethSigner is a test key standing in for a CMP key.
type ethSigner struct {
	prv *ecdsa.PrivateKey
	pub []byte // compressed
}

func newEthSigner(t testing.TB, hexKey string) ethSigner {
	t.Helper()
	prv, err := crypto.HexToECDSA(hexKey)
	if err != nil {
		t.Fatal(err)
	}
	return ethSigner{prv: prv, pub: crypto.CompressPubkey(&prv.PublicKey)}
}

// testEthKey is an arbitrary fixed key.
func testEthKey(t testing.TB) ethSigner {
	return newEthSigner(t, "b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291")
}

// sign signs digest the way the MPC engine returns it: low s, recovery ID.
func (s ethSigner) sign(t testing.TB, digest [DigestSize]byte) Signature {
	t.Helper()
	sig, err := crypto.Sign(digest[:], s.prv)
	if err != nil {
		t.Fatal(err)
	}
	return Signature{R: [32]byte(sig[:32]), S: [32]byte(sig[32:64]), RecoveryID: sig[64]}
}

// taprootSigner is a test key standing in for a FROST key: its x-only
// public key is the output key, untweaked.
type taprootSigner struct {
	prv   *btcec.PrivateKey
	xonly []byte
}

func newTaprootSigner(t testing.TB, hexKey string) taprootSigner {
	t.Helper()
	b, err := hex.DecodeString(hexKey)
	if err != nil {
		t.Fatal(err)
	}
	prv, _ := btcec.PrivKeyFromBytes(b)
	return taprootSigner{prv: prv, xonly: schnorr.SerializePubKey(prv.PubKey())}
}

func testTaprootKey(t testing.TB) taprootSigner {
	return newTaprootSigner(t, "0b432b2677937381aef05bb02a66ecd012773062cf3fa2549e44f58ed2401710")
}

func (s taprootSigner) sign(t testing.TB, digest [DigestSize]byte) [64]byte {
	t.Helper()
	sig, err := schnorr.Sign(s.prv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return [64]byte(sig.Serialize())
}

func (s taprootSigner) signature(t testing.TB, digest [DigestSize]byte) Signature {
	sig := s.sign(t, digest)
	return Signature{R: [32]byte(sig[:32]), S: [32]byte(sig[32:])}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readJSON(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func mustParse(t testing.TB, req Request, pub []byte) *Parsed {
	t.Helper()
	p, err := Parse(req, pub)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

// wantInvalid checks that err wraps ErrInvalid and does not quote big input.
func wantInvalid(t testing.TB, err error) {
	t.Helper()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, want ErrInvalid", err)
	}
	if len(err.Error()) > 120 {
		t.Fatalf("error too long (echoes input?): %q", err)
	}
}

func oneDigest(t testing.TB, p *Parsed) [DigestSize]byte {
	t.Helper()
	d := p.Digests()
	if len(d) != 1 {
		t.Fatalf("%d digests, want 1", len(d))
	}
	return d[0]
}

func bigInt(n int64) *big.Int { return big.NewInt(n) }
