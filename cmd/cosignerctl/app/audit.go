package app

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/audit"
)

// maxKeyFile bounds what --identity reads from a file.
const maxKeyFile = 4 << 10

func runAuditVerify(_ context.Context, args []string, io IO) int {
	var (
		identity string
		asJSON   bool
	)
	fs := newFlagSet("audit verify", "FILE", io)
	fs.StringVar(&identity, "identity", "", "the cosigner's identity public key the log must be signed by: 64 hex digits, or a file holding them, the raw 32 bytes or a PEM public key")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	if code, done := parse(fs, args, 1); done {
		return code
	}
	var opts audit.VerifyOptions
	if identity != "" {
		key, err := readIdentityKey(identity)
		if err != nil {
			return usageError(io, "audit verify", err)
		}
		opts.IdentityKey = key
	}
	r, closeFn, err := openExport(fs.Arg(0), io)
	if err != nil {
		return usageError(io, "audit verify", err)
	}
	defer closeFn()
	sum, err := audit.Verify(r, opts)
	if err != nil {
		return printBroken(io, err, asJSON)
	}
	return printSummary(io, sum, asJSON)
}

// openExport opens name, or standard input for "-".
func openExport(name string, io IO) (io.Reader, func(), error) {
	if name == "-" {
		return io.In, func() {}, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// readIdentityKey reads an Ed25519 public key given as hex, or from a file
// holding hex, the raw 32 bytes or a PEM PKIX public key.
func readIdentityKey(arg string) (ed25519.PublicKey, error) {
	if k, err := hexKey([]byte(arg)); err == nil {
		return k, nil
	}
	f, err := os.Open(arg)
	if err != nil {
		return nil, fmt.Errorf("--identity is neither 64 hex digits nor a readable file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", arg, maxKeyFile)
	}
	return parseKeyFile(arg, b)
}

func parseKeyFile(name string, b []byte) (ed25519.PublicKey, error) {
	if k, err := hexKey(b); err == nil {
		return k, nil
	}
	if len(b) == ed25519.PublicKeySize {
		return ed25519.PublicKey(b), nil
	}
	if block, _ := pem.Decode(b); block != nil && block.Type == "PUBLIC KEY" {
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if k, ok := pub.(ed25519.PublicKey); err == nil && ok {
			return k, nil
		}
	}
	return nil, fmt.Errorf("%s holds no Ed25519 public key (hex, raw 32 bytes or PEM)", name)
}

func hexKey(b []byte) (ed25519.PublicKey, error) {
	k, err := hex.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil || len(k) != ed25519.PublicKeySize {
		return nil, errors.New("not 64 hex digits")
	}
	return k, nil
}

// brokenJSON is what --json prints for a log that does not verify.
type brokenJSON struct {
	Valid  bool   `json:"valid"`
	Seq    uint64 `json:"seq"`
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

func printBroken(io IO, err error, asJSON bool) int {
	be, ok := errors.AsType[*audit.BrokenLinkError](err)
	if !ok {
		fmt.Fprintf(io.Err, "cosignerctl audit verify: %v\n", err)
		return ExitFail
	}
	fmt.Fprintf(io.Err, "invalid: %s\n", strings.TrimPrefix(be.Error(), "audit: "))
	if asJSON {
		writeJSON(io, brokenJSON{Seq: be.Seq, Line: be.Line, Reason: be.Reason})
	}
	return ExitFail
}

// summaryJSON is what --json prints for a log that verifies.
type summaryJSON struct {
	Valid       bool              `json:"valid"`
	CosignerID  string            `json:"cosigner_id"`
	IdentityKey string            `json:"identity_key"`
	Pinned      bool              `json:"pinned"`
	FirstSeq    uint64            `json:"first_seq"`
	LastSeq     uint64            `json:"last_seq"`
	Entries     uint64            `json:"entries"`
	PrevHash    string            `json:"prev_hash"`
	LastHash    string            `json:"last_hash"`
	ExportedAt  string            `json:"exported_at"`
	Attestation bool              `json:"attestation"`
	Types       map[string]uint64 `json:"types"`
}

func printSummary(io IO, s audit.Summary, asJSON bool) int {
	if !s.Pinned {
		fmt.Fprintln(io.Err, "warning: identity key not pinned (--identity): the log is intact, but this does not show who signed it")
	}
	exported := s.ExportedAt.UTC().Format(time.RFC3339Nano)
	if asJSON {
		out := summaryJSON{
			Valid: true, CosignerID: s.CosignerID, IdentityKey: hex.EncodeToString(s.IdentityKey),
			Pinned: s.Pinned, FirstSeq: s.FirstSeq, LastSeq: s.LastSeq, Entries: s.Entries(),
			PrevHash: hex.EncodeToString(s.PrevHash[:]), LastHash: hex.EncodeToString(s.LastHash[:]),
			ExportedAt: exported, Attestation: len(s.Attestation) > 0, Types: map[string]uint64{},
		}
		for t, n := range s.Types {
			out.Types[string(t)] = n
		}
		return writeJSON(io, out)
	}
	fmt.Fprintf(io.Out, "valid: %d entries (%d..%d) of cosigner %s, exported %s\n", s.Entries(), s.FirstSeq, s.LastSeq, s.CosignerID, exported)
	pinned := "not pinned"
	if s.Pinned {
		pinned = "pinned"
	}
	fmt.Fprintf(io.Out, "identity key: %x (%s)\n", []byte(s.IdentityKey), pinned)
	fmt.Fprintf(io.Out, "last hash: %x\n", s.LastHash)
	for _, t := range slices.Sorted(maps.Keys(s.Types)) {
		fmt.Fprintf(io.Out, "  %-16s %d\n", t, s.Types[t])
	}
	return ExitOK
}

func writeJSON(io IO, v any) int {
	enc := json.NewEncoder(io.Out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintln(io.Err, "cosignerctl:", err)
		return ExitFail
	}
	return ExitOK
}
