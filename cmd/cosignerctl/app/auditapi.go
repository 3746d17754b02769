package app

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/apiclient"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/audit"
	cosignerv1 "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

func runAuditExport(ctx context.Context, args []string, io IO) int {
	var (
		out   string
		start uint64
	)
	fs, a := newAPIFlags("audit export", "", io, defaultTimeout)
	fs.StringVar(&out, "out", "", "write the export file here (required)")
	fs.Uint64Var(&start, "start-seq", 0, "first entry to export (default 1)")
	if code, done := parse(fs, args, 0); done {
		return code
	}
	if out == "" {
		return usageError(io, a.cmd, errors.New("--out is required"))
	}
	return a.run(ctx, io, func(ctx context.Context, c *apiclient.Conn) error {
		n, err := exportTo(ctx, c, start, out)
		if err != nil {
			return err
		}
		fmt.Fprintf(io.Err, "wrote %s (%d bytes)\n", out, n)
		return verifyExport(io, a, out, c.Attested())
	})
}

// exportTo writes the ExportAudit stream to name, through a temporary
// file so that a broken stream leaves no partial export behind.
func exportTo(ctx context.Context, c *apiclient.Conn, start uint64, name string) (int64, error) {
	stream, err := cosignerv1.NewAuditServiceClient(c).ExportAudit(ctx, &cosignerv1.ExportAuditRequest{StartSeq: start})
	if err != nil {
		return 0, err
	}
	tmp := name + ".partial"
	f, err := os.Create(tmp)
	if err != nil {
		return 0, err
	}
	n, err := copyChunks(f, stream)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return n, err
}

func copyChunks(w io.Writer, stream cosignerv1.AuditService_ExportAuditClient) (int64, error) {
	var n int64
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		m, err := w.Write(resp.GetChunk())
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
}

// verifyExport checks the written export with pkg/audit, pinned to the
// attested identity key, and prints the summary as audit verify does.
func verifyExport(io IO, a *apiFlags, name string, at *apiclient.Attestation) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	var opts audit.VerifyOptions
	if at != nil {
		opts.IdentityKey = at.IdentityKey
	}
	sum, err := audit.Verify(f, opts)
	if err != nil {
		printBroken(io, err, a.asJSON)
		return &answered{"the export does not verify; kept for inspection in " + name}
	}
	if at != nil && sum.CosignerID != at.CosignerID {
		return &answered{"the export is of another cosigner than the attested one"}
	}
	if printSummary(io, sum, a.asJSON) != ExitOK {
		return &answered{"writing the output failed"}
	}
	return nil
}

func runAuditStream(ctx context.Context, args []string, io IO) int {
	var start, limit uint64
	fs, a := newAPIFlags("audit stream", "", io, 0)
	fs.Uint64Var(&start, "start-seq", 0, "first entry to show (default 1); the next entry's number shows only new ones")
	fs.Uint64Var(&limit, "limit", 0, "stop after this many entries (default: follow until interrupted or --timeout)")
	if code, done := parse(fs, args, 0); done {
		return code
	}
	return a.run(ctx, io, func(ctx context.Context, c *apiclient.Conn) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := cosignerv1.NewAuditServiceClient(c).StreamAudit(ctx, &cosignerv1.StreamAuditRequest{StartSeq: start})
		if err != nil {
			return err
		}
		err = followAudit(io, a, stream, c.Attested(), limit)
		// Interrupted, or --timeout (which the server may notice first):
		// the end of following, not a failure.
		if ctx.Err() != nil || (a.timeout > 0 && status.Code(err) == codes.DeadlineExceeded) {
			return nil
		}
		return err
	})
}

// followAudit checks and prints the header, then each entry, until limit
// entries (0: no limit) or the end of the stream.
func followAudit(std IO, a *apiFlags, stream cosignerv1.AuditService_StreamAuditClient, at *apiclient.Attestation, limit uint64) error {
	msg, err := stream.Recv()
	if err != nil {
		return err
	}
	v, err := newStreamVerifier(msg.GetHeader(), at)
	if err != nil {
		return err
	}
	if err := printStreamHeader(std, a, msg.GetHeader(), at != nil); err != nil {
		return err
	}
	for n := uint64(0); limit == 0 || n < limit; n++ {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		rec, err := v.check(msg.GetEntry())
		if err != nil {
			return err
		}
		if err := printStreamEntry(std, a, rec); err != nil {
			return err
		}
	}
	return nil
}

// streamVerifier checks StreamAudit entries as audit.Verify checks an
// export's: each signed by the header's key, in sequence, linked by hash.
type streamVerifier struct {
	key      ed25519.PublicKey
	cosigner string
	next     uint64
	prev     [audit.HashSize]byte
}

func newStreamVerifier(h *cosignerv1.AuditHeader, at *apiclient.Attestation) (*streamVerifier, error) {
	switch {
	case h == nil:
		return nil, errors.New("the stream does not start with a header")
	case len(h.GetIdentityPublicKey()) != ed25519.PublicKeySize || len(h.GetPrevHash()) != audit.HashSize || h.GetFirstSeq() == 0:
		return nil, errors.New("malformed stream header")
	case at != nil && !at.IdentityKey.Equal(ed25519.PublicKey(h.GetIdentityPublicKey())):
		return nil, errors.New("the stream's identity key is not the attested one")
	case at != nil && h.GetCosignerId() != at.CosignerID:
		return nil, errors.New("the stream is of another cosigner than the attested one")
	}
	return &streamVerifier{
		key: h.GetIdentityPublicKey(), cosigner: h.GetCosignerId(),
		next: h.GetFirstSeq(), prev: [audit.HashSize]byte(h.GetPrevHash()),
	}, nil
}

func (v *streamVerifier) check(e *cosignerv1.AuditEntry) (audit.Record, error) {
	if e == nil {
		return audit.Record{}, fmt.Errorf("entry %d: missing", v.next)
	}
	rec, err := audit.Open(v.key, e.GetEntry(), e.GetSignature())
	switch {
	case err != nil:
		return audit.Record{}, fmt.Errorf("entry %d: %w", v.next, err)
	case rec.Entry.Seq != v.next || e.GetSeq() != v.next:
		return audit.Record{}, fmt.Errorf("entry %d: expected entry %d, found entry %d", v.next, v.next, rec.Entry.Seq)
	case string(rec.Hash[:]) != string(e.GetHash()):
		return audit.Record{}, fmt.Errorf("entry %d: hash is not the entry's", v.next)
	case rec.Entry.PrevHash != v.prev:
		return audit.Record{}, fmt.Errorf("entry %d: does not link to the previous entry", v.next)
	case rec.Entry.CosignerID != v.cosigner:
		return audit.Record{}, fmt.Errorf("entry %d: names another cosigner", v.next)
	}
	v.next, v.prev = v.next+1, rec.Hash
	return rec, nil
}

// streamHeaderJSON and streamEntryJSON are what audit stream --json
// prints, one object per line: {"header": ...}, then {"entry": ...}.
type streamHeaderJSON struct {
	CosignerID          string `json:"cosigner_id"`
	IdentityKey         string `json:"identity_key"`
	IdentityAttested    bool   `json:"identity_attested"`
	FirstSeq            uint64 `json:"first_seq"`
	PrevHash            string `json:"prev_hash"`
	AttestationDocument string `json:"attestation_document,omitempty"`
}

type streamEntryJSON struct {
	Seq       uint64            `json:"seq"`
	Time      string            `json:"time"`
	Cosigner  string            `json:"cosigner"`
	Type      string            `json:"type"`
	Actor     string            `json:"actor,omitempty"`
	KeyID     string            `json:"key_id,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
	Decision  string            `json:"decision,omitempty"`
	Reason    string            `json:"reason,omitempty"`
	Details   map[string]string `json:"details,omitempty"`
	PrevHash  string            `json:"prev_hash"`
	Hash      string            `json:"hash"`
	Entry     string            `json:"entry"`
	Signature string            `json:"signature"`
}

func printStreamHeader(io IO, a *apiFlags, h *cosignerv1.AuditHeader, attested bool) error {
	if a.asJSON {
		return writeJSONLine(io, map[string]streamHeaderJSON{"header": {
			h.GetCosignerId(), hex.EncodeToString(h.GetIdentityPublicKey()), attested, h.GetFirstSeq(),
			hex.EncodeToString(h.GetPrevHash()), hex.EncodeToString(h.GetAttestationDocument()),
		}})
	}
	pinned := "NOT attested"
	if attested {
		pinned = "attested"
	}
	fmt.Fprintf(io.Out, "audit log of cosigner %s from entry %d, identity key %x (%s)\n",
		printable(h.GetCosignerId()), h.GetFirstSeq(), h.GetIdentityPublicKey(), pinned)
	return nil
}

func printStreamEntry(io IO, a *apiFlags, r audit.Record) error {
	e := r.Entry
	if a.asJSON {
		return writeJSONLine(io, map[string]streamEntryJSON{"entry": {
			e.Seq, e.Time.UTC().Format(time.RFC3339Nano), e.CosignerID, string(e.Type), e.Actor, e.KeyID,
			e.RequestID, string(e.Decision), e.Reason, e.Details, hex.EncodeToString(e.PrevHash[:]),
			hex.EncodeToString(r.Hash[:]), hex.EncodeToString(r.Raw), hex.EncodeToString(r.Sig),
		}})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s %s", e.Seq, e.Time.UTC().Format(time.RFC3339Nano), e.Type)
	for _, f := range [][2]string{{"actor", e.Actor}, {"key", e.KeyID}, {"request", e.RequestID},
		{"decision", string(e.Decision)}, {"reason", e.Reason}} {
		if f[1] != "" {
			fmt.Fprintf(&b, " %s=%q", f[0], f[1])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(e.Details)) {
		fmt.Fprintf(&b, " %s=%q", k, e.Details[k])
	}
	fmt.Fprintln(io.Out, b.String())
	return nil
}
