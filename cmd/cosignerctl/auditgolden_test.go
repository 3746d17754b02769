package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/audit"
)

var update = flag.Bool("update", false, "regenerate the golden audit exports in testdata/script/audit_verify.txtar")

const auditScript = "testdata/script/audit_verify.txtar"

// TestAuditGolden keeps the exports in audit_verify.txtar equal to what
// pkg/audit writes today for a fixed log; -update rewrites them (the
// script's commands, the archive's comment, are kept).
func TestAuditGolden(t *testing.T) {
	ar, err := txtar.ParseFile(auditScript)
	if err != nil {
		t.Fatal(err)
	}
	want := goldenAuditFiles(t)
	if *update {
		ar.Files = want
		if err := os.WriteFile(auditScript, txtar.Format(ar), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got := map[string][]byte{}
	for _, f := range ar.Files {
		got[f.Name] = f.Data
	}
	for _, f := range want {
		if !bytes.Equal(got[f.Name], f.Data) {
			t.Errorf("%s: section %s is stale; run go test ./cmd/cosignerctl -run TestAuditGolden -update", auditScript, f.Name)
		}
	}
	if len(ar.Files) != len(want) {
		t.Errorf("%s has %d sections, want %d; run with -update", auditScript, len(ar.Files), len(want))
	}
}

func goldenKey(name string) audit.Signer {
	seed := sha256.Sum256([]byte("cosignerctl audit golden " + name))
	return audit.NewEd25519Signer(ed25519.NewKeyFromSeed(seed[:]))
}

var goldenTime = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// goldenEvents is a short, plausible history.
var goldenEvents = []audit.Event{
	{Type: audit.KeyCreated, Actor: "CN=ops-admin", KeyID: "k-eth-hot-1", RequestID: "idem-0001",
		Details: map[string]string{"scheme": "cmp-secp256k1", "threshold": "2-of-3"}},
	{Type: audit.SignRequested, Actor: "CN=payments-svc", KeyID: "k-eth-hot-1", RequestID: "req-0042",
		Details: map[string]string{"payload": "eip1559", "chain_id": "1"}},
	{Type: audit.SignDecided, Actor: "CN=payments-svc", KeyID: "k-eth-hot-1", RequestID: "req-0042",
		Decision: audit.Allow, Reason: "policy v3: destination on allow list", Details: map[string]string{"chain_id": "1"}},
	{Type: audit.Signed, Actor: "CN=payments-svc", KeyID: "k-eth-hot-1", RequestID: "req-0042"},
	{Type: audit.SignRequested, Actor: "CN=payments-svc", KeyID: "k-eth-hot-1", RequestID: "req-0043",
		Details: map[string]string{"payload": "eip1559", "chain_id": "1"}},
	{Type: audit.SignDecided, Actor: "CN=payments-svc", KeyID: "k-eth-hot-1", RequestID: "req-0043",
		Decision: audit.Deny, Reason: "policy v3: daily limit exceeded"},
	{Type: audit.PolicyChanged, Actor: "CN=ops-admin", RequestID: "idem-0002", Details: map[string]string{"version": "4"}},
	{Type: audit.AdminAction, Actor: "CN=ops-admin", Reason: "audit export"},
}

func goldenChain(t *testing.T, s audit.Signer) []audit.Record {
	var recs []audit.Record
	var prev [audit.HashSize]byte
	for i, ev := range goldenEvents {
		e := audit.Entry{Seq: uint64(i + 1), Time: goldenTime.Add(time.Duration(i) * time.Second), CosignerID: "co-1", Event: ev, PrevHash: prev}
		r, err := audit.Seal(e, s)
		if err != nil {
			t.Fatal(err)
		}
		recs, prev = append(recs, r), r.Hash
	}
	return recs
}

func goldenExport(t *testing.T, s audit.Signer, recs []audit.Record, from int) []byte {
	var buf bytes.Buffer
	h := audit.Header{CosignerID: "co-1", FirstSeq: uint64(from), Attestation: []byte("stand-in for an attestation document")}
	if from > 1 {
		h.PrevHash = recs[from-2].Hash
	}
	w, err := audit.NewWriter(&buf, h, s)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs[from-1:] {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(goldenTime.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// goldenAuditFiles returns the archive's files: keys, a valid export, and
// one tampered copy per way of breaking it.
func goldenAuditFiles(t *testing.T) []txtar.File {
	key, other := goldenKey("identity"), goldenKey("other")
	recs := goldenChain(t, key)
	valid := goldenExport(t, key, recs, 1)
	ls := bytes.SplitAfter(valid, []byte("\n"))[:len(goldenEvents)+2] // header, entries, end
	otherLs := bytes.SplitAfter(goldenExport(t, other, goldenChain(t, other), 1), []byte("\n"))
	edited := cloneLines(ls)
	edited[3] = replaceOnce(t, edited[3], `"chain_id":"1"`, `"chain_id":"137"`)
	badSig := cloneLines(ls)
	badSig[2] = otherLs[2] // same entry, signed by another key
	swapped := cloneLines(ls)
	swapped[0] = otherLs[0] // header naming another key
	reordered := cloneLines(ls)
	reordered[4], reordered[5] = reordered[5], reordered[4]
	return []txtar.File{
		{Name: "identity.hex", Data: []byte(hex.EncodeToString(key.Public()) + "\n")},
		{Name: "identity.pem", Data: pemKey(t, key.Public())},
		{Name: "other.hex", Data: []byte(hex.EncodeToString(other.Public()) + "\n")},
		{Name: "valid.jsonl", Data: valid},
		{Name: "partial.jsonl", Data: goldenExport(t, key, recs, 4)},
		{Name: "other-identity.jsonl", Data: goldenExport(t, other, goldenChain(t, other), 1)},
		{Name: "edited-detail.jsonl", Data: bytes.Join(edited, nil)},
		{Name: "deleted-entry.jsonl", Data: bytes.Join(append(cloneLines(ls[:3]), ls[4:]...), nil)},
		{Name: "reordered.jsonl", Data: bytes.Join(reordered, nil)},
		{Name: "bad-signature.jsonl", Data: bytes.Join(badSig, nil)},
		{Name: "swapped-identity.jsonl", Data: bytes.Join(swapped, nil)},
		{Name: "truncated.jsonl", Data: bytes.Join(ls[:len(ls)-1], nil)},
	}
}

func cloneLines(ls [][]byte) [][]byte { return append([][]byte(nil), ls...) }

func replaceOnce(t *testing.T, b []byte, old, new string) []byte {
	if bytes.Count(b, []byte(old)) != 1 {
		t.Fatalf("%q does not occur once in %q", old, b)
	}
	return bytes.Replace(b, []byte(old), []byte(new), 1)
}

func pemKey(t *testing.T, pub ed25519.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}
