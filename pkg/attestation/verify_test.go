package attestation_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
)

// sentinels are the errors every Verify failure must wrap one of.
var sentinels = []error{attestation.ErrMalformed, attestation.ErrChain, attestation.ErrSignature}

func TestVectorTableIsComplete(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "*.cbor"))
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, v := range vectors {
		listed = append(listed, filepath.Join("testdata", v.file))
	}
	slices.Sort(listed)
	if !slices.Equal(files, listed) {
		t.Fatalf("testdata has %v, the vector table lists %v", files, listed)
	}
}

func TestVerifyVectors(t *testing.T) {
	t.Parallel()
	for _, v := range vectors {
		t.Run(v.file, func(t *testing.T) {
			t.Parallel()
			raw := v.read(t)
			if !bytes.HasPrefix(raw, []byte{0x84, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0, 0x59}) {
				t.Fatalf("unexpected first bytes % x", raw[:8])
			}
			doc, err := attestation.Verify(raw, attestation.VerifyOptions{Time: v.time()})
			if v.badSig {
				if !errors.Is(err, attestation.ErrSignature) || doc != nil {
					t.Fatalf("Verify = %v, %v; want nil, ErrSignature", doc, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify at its timestamp: %v", err)
			}
			checkVectorFields(t, v, raw, doc)
		})
	}
}

func checkVectorFields(t *testing.T, v vector, raw []byte, doc *attestation.Document) {
	t.Helper()
	if doc.ModuleID != v.moduleID {
		t.Errorf("ModuleID = %q, want %q", doc.ModuleID, v.moduleID)
	}
	if !doc.Timestamp.Equal(v.time()) || doc.Timestamp.Location() != time.UTC {
		t.Errorf("Timestamp = %v, want %v UTC", doc.Timestamp, v.time())
	}
	if doc.Digest != "SHA384" {
		t.Errorf("Digest = %q", doc.Digest)
	}
	if got := hex.EncodeToString(doc.PCRs[0]); len(doc.PCRs) != 16 || got[:8] != v.pcr0 {
		t.Errorf("%d PCRs, PCR0 = %s…, want 16 PCRs, PCR0 %s…", len(doc.PCRs), got[:8], v.pcr0)
	}
	for i, pcr := range doc.PCRs {
		if len(pcr) != 48 {
			t.Errorf("PCR%d is %d bytes", i, len(pcr))
		}
	}
	if doc.IsDebug() != v.debug {
		t.Errorf("IsDebug = %v, want %v", doc.IsDebug(), v.debug)
	}
	checkOptional(t, "PublicKey", doc.PublicKey, v.publicKey)
	checkOptional(t, "UserData", doc.UserData, v.userData)
	checkOptional(t, "Nonce", doc.Nonce, v.nonce)
	if len(doc.CABundle) != 4 || !bytes.Equal(doc.CABundle[0], attestation.AWSNitroRoot().Raw) {
		t.Errorf("cabundle has %d entries, first is the AWS root: %v", len(doc.CABundle), len(doc.CABundle) > 0 && bytes.Equal(doc.CABundle[0], attestation.AWSNitroRoot().Raw))
	}
	if !bytes.Equal(doc.Raw, raw) || doc.SHA256() != sha256.Sum256(raw) || attestation.DocDigest(raw) != doc.SHA256() {
		t.Error("Raw or its digest differ from the input")
	}
}

func checkOptional(t *testing.T, name string, got []byte, want int) {
	t.Helper()
	switch {
	case want == absent && got != nil:
		t.Errorf("%s = %d bytes, want absent", name, len(got))
	case want != absent && (got == nil || len(got) != want):
		t.Errorf("%s = %d bytes (nil %v), want %d", name, len(got), got == nil, want)
	}
}

func TestVectorContents(t *testing.T) {
	t.Parallel()
	userdata := prodUserData.verify(t)
	if string(userdata.UserData) != "Hello World!\n" {
		t.Errorf("user_data = %q", userdata.UserData)
	}
	debug := debugAnjuna.verify(t)
	if string(debug.Nonce) != "Nonce\n" {
		t.Errorf("nonce = %q", debug.Nonce)
	}
	rsa := prodRSA.verify(t)
	if _, err := x509.ParsePKIXPublicKey(rsa.PublicKey); err != nil {
		t.Errorf("public_key is not an SPKI: %v", err)
	}
}

func TestVerifyVectorsAfterLeafExpiry(t *testing.T) {
	t.Parallel()
	for _, v := range validVectors() {
		t.Run(v.file, func(t *testing.T) {
			t.Parallel()
			doc := v.verify(t)
			late := doc.Certificate.NotAfter.Add(time.Second)
			if late.Sub(v.time()) > 4*time.Hour {
				t.Fatalf("leaf lives until %v, more than 4h after the document", doc.Certificate.NotAfter)
			}
			doc, err := attestation.Verify(v.read(t), attestation.VerifyOptions{Time: late})
			if !errors.Is(err, attestation.ErrChain) || doc != nil {
				t.Fatalf("Verify after leaf expiry = %v, %v; want nil, ErrChain", doc, err)
			}
			early := doc0NotBefore(t, v).Add(-time.Second)
			if _, err := attestation.Verify(v.read(t), attestation.VerifyOptions{Time: early}); !errors.Is(err, attestation.ErrChain) {
				t.Fatalf("Verify before leaf validity = %v; want ErrChain", err)
			}
		})
	}
}

func doc0NotBefore(t *testing.T, v vector) time.Time {
	t.Helper()
	return v.verify(t).Certificate.NotBefore
}

func TestVerifyIndefiniteLengthPayload(t *testing.T) {
	t.Parallel()
	v := indefMap
	raw := v.read(t)
	// 84 44 a1013822 a0 59 hhhh: the payload starts at offset 10 and ends
	// before the signature's head (58 60) and 96 bytes.
	if raw[10] != 0xbf || raw[len(raw)-99] != 0xff {
		t.Fatalf("%s: payload is not an indefinite-length map", v.file)
	}
	if doc := v.verify(t); doc.ModuleID != v.moduleID {
		t.Fatalf("ModuleID = %q", doc.ModuleID)
	}
}

func TestVerifyTagged(t *testing.T) {
	t.Parallel()
	for _, v := range validVectors() {
		t.Run(v.file, func(t *testing.T) {
			t.Parallel()
			tagged := append([]byte{0xd2}, v.read(t)...) // tag 18
			doc, err := attestation.Verify(tagged, attestation.VerifyOptions{Time: v.time()})
			if err != nil {
				t.Fatalf("tagged COSE_Sign1: %v", err)
			}
			if !bytes.Equal(doc.Raw, tagged) {
				t.Error("Raw is not the tagged input")
			}
		})
	}
}

func TestVerifyWrongRoots(t *testing.T) {
	t.Parallel()
	ca, err := attestsim.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	pools := map[string]*x509.CertPool{
		"empty pool":        x509.NewCertPool(),
		"attestsim root":    ca.Roots(),
		"leaf's own bundle": bundlePool(t, prodNoPK),
	}
	for name, pool := range pools {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			v := prodNoPK
			doc, err := attestation.Verify(v.read(t), attestation.VerifyOptions{Time: v.time(), Roots: pool})
			if !errors.Is(err, attestation.ErrChain) || doc != nil {
				t.Fatalf("Verify = %v, %v; want nil, ErrChain", doc, err)
			}
		})
	}
}

// bundlePool trusts the document's intermediates but not its root: a chain
// ending at an intermediate must not follow the bundle either.
func bundlePool(t *testing.T, v vector) *x509.CertPool {
	t.Helper()
	doc := v.verify(t)
	pool := x509.NewCertPool()
	for _, der := range doc.CABundle[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		pool.AddCert(c)
	}
	return pool
}

func TestVerifyExplicitAWSRoots(t *testing.T) {
	t.Parallel()
	v := prodNoPK
	if _, err := attestation.Verify(v.read(t), attestation.VerifyOptions{Time: v.time(), Roots: attestation.AWSNitroRoots()}); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyRequiresTime(t *testing.T) {
	t.Parallel()
	doc, err := attestation.Verify(prodNoPK.read(t), attestation.VerifyOptions{})
	if err == nil || doc != nil {
		t.Fatalf("Verify without Time = %v, %v; want an error", doc, err)
	}
}

func TestVerifyCopiesInput(t *testing.T) {
	t.Parallel()
	v := prodNoPK
	raw := v.read(t)
	doc, err := attestation.Verify(raw, attestation.VerifyOptions{Time: v.time()})
	if err != nil {
		t.Fatal(err)
	}
	clear(raw)
	if doc.Raw[0] != 0x84 {
		t.Fatal("Document.Raw aliases the caller's buffer")
	}
}

func TestAWSNitroRootIsPinned(t *testing.T) {
	t.Parallel()
	root := attestation.AWSNitroRoot()
	sum := sha256.Sum256(root.Raw)
	const want = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"
	if got := hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("root SHA-256 = %s, want %s", got, want)
	}
	if attestation.AWSNitroRootSHA256 != want {
		t.Fatalf("AWSNitroRootSHA256 = %s", attestation.AWSNitroRootSHA256)
	}
	if root.Subject.CommonName != "aws.nitro-enclaves" || !root.IsCA {
		t.Fatalf("unexpected root %v", root.Subject)
	}
	shared, err := os.ReadFile(filepath.Join("testdata", "aws_nitro_root_g1.pem"))
	if err != nil {
		t.Fatal(err)
	}
	embedded, err := os.ReadFile("aws_nitro_root_g1.pem")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(shared, embedded) {
		t.Fatal("embedded root differs from testdata's copy")
	}
}

func TestAWSNitroRootsAreFresh(t *testing.T) {
	t.Parallel()
	a, b := attestation.AWSNitroRoots(), attestation.AWSNitroRoots()
	if r1, r2 := attestation.AWSNitroRoot(), attestation.AWSNitroRoot(); a == b || r1 == r2 {
		t.Fatal("AWSNitroRoots or AWSNitroRoot returned a shared value")
	}
	// Adding to a returned pool must not make Verify trust the new root.
	ca, err := attestsim.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	a.AddCert(ca.Root())
	raw, err := ca.Attest(attestsim.Request{Time: pkiStart})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := attestation.Verify(raw, attestation.VerifyOptions{Time: pkiStart}); !errors.Is(err, attestation.ErrChain) {
		t.Fatalf("default roots trusted a pool addition: %v", err)
	}
}

func TestVerifiedFlag(t *testing.T) {
	t.Parallel()
	if !attestation.Verified(prodNoPK.verify(t)) {
		t.Fatal("Verify did not mark its document verified")
	}
}

func TestUnverifiedTimestamp(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.file, func(t *testing.T) {
			t.Parallel()
			got, err := attestation.UnverifiedTimestamp(v.read(t))
			if err != nil || got.UnixMilli() != v.ms {
				t.Fatalf("UnverifiedTimestamp = %v (%d), %v; want %d", got, got.UnixMilli(), err, v.ms)
			}
		})
	}
	if _, err := attestation.UnverifiedTimestamp([]byte{0x84, 0x40, 0xa0, 0x40, 0x40}); !errors.Is(err, attestation.ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
}
