package app

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/apiclient"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/cliflag"
	ws "github.com/nitro-cosigner/nitro-cosigner/pkg/workspace"
	cosignerv1 "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// The workspace commands. bootstrap is offline; the others call a member's
// WorkspaceService, build the next version locally from the version it
// holds (deterministically, so that two admins making the same change
// sign the same bytes), sign it with --admin-key and propose it. The
// member applies it once the admin quorum of the version it holds has
// approved, and sends it to every member.

func workspaceCommands() []command {
	return []command{
		{"workspace bootstrap", "create version 1 of a new workspace, approved by its admins (offline)", runWorkspaceBootstrap},
		{"workspace show", "show the workspace a cosigner holds", runWorkspaceShow},
		{"workspace invite", "create a one-time pairing token for a new cosigner", runWorkspaceInvite},
		{"workspace requests", "list the verified pairing requests awaiting approval", runWorkspaceRequests},
		{"workspace approve", "approve adding the cosigner of a pairing request", runWorkspaceApprove},
		{"workspace remove", "approve removing a cosigner from the roster", runWorkspaceRemove},
		{"workspace add-user", "approve adding (or replacing) an API user", runWorkspaceAddUser},
		{"workspace revoke-user", "approve revoking an API user", runWorkspaceRevokeUser},
		{"workspace set-admins", "approve replacing the admin keys and quorum", runWorkspaceSetAdmins},
		{"workspace set-policy", "approve the signing policy every member runs", runWorkspaceSetPolicy},
	}
}

// maxWorkspaceFile bounds the files the workspace commands read.
const maxWorkspaceFile = 2 << 20

func runWorkspaceBootstrap(_ context.Context, args []string, io IO) int {
	var (
		id, out                     string
		members, adminPubs, signers stringList
		users                       stringList
		quorum                      int
		asJSON                      bool
	)
	fs := newFlagSet("workspace bootstrap", "", io)
	fs.StringVar(&id, "id", "", "the workspace ID: 1 to 64 printable ASCII characters without spaces (required)")
	fs.Var(&members, "member", "a first member's roster entry `file` (cosigner-enclave --member-out; repeat for each)")
	fs.Var(&adminPubs, "admin", "PEM `file` of admin public keys (PKIX, Ed25519 or P-256; repeatable)")
	fs.IntVar(&quorum, "quorum", 2, "admin approvals every change needs")
	fs.Var(&signers, "admin-key", "an admin's PKCS#8 PEM private key `file` approving version 1 (repeat until the quorum)")
	fs.Var(&users, "user", "an API user as NAME:ROLE[+ROLE...]:`CERT.pem` (its client certificate or PKIX public key; roles admin, signer, auditor; repeatable)")
	fs.StringVar(&out, "out", "", "write the approved version 1 here: cosigner-enclave --workspace reads it (required)")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	if code, done := parse(fs, args, 0); done {
		return code
	}
	if id == "" || out == "" || len(members) == 0 || len(adminPubs) == 0 {
		return usageError(io, "workspace bootstrap", errors.New("--id, --member, --admin and --out are required"))
	}
	v, err := bootstrapVersion(id, members, adminPubs, quorum, users, signers)
	if err != nil {
		return usageError(io, "workspace bootstrap", err)
	}
	raw, _ := v.Signed.Encode()
	if err := os.WriteFile(out, append(raw, '\n'), 0o644); err != nil {
		fmt.Fprintf(io.Err, "cosignerctl workspace bootstrap: %v\n", err)
		return ExitFail
	}
	if asJSON {
		return writeJSON(io, workspaceJSON(v))
	}
	fmt.Fprintf(io.Out, "wrote %s:\n", out)
	printWorkspace(io, v)
	return ExitOK
}

// bootstrapVersion builds and approves version 1 and checks that the
// approvals reach the quorum.
func bootstrapVersion(id string, memberFiles, adminFiles []string, quorum int, userSpecs, keyFiles []string) (*ws.Version, error) {
	var members []ws.Member
	for _, f := range memberFiles {
		var m ws.Member
		b, err := readFileLimited(f)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("--member %s: not a roster entry", f)
		}
		members = append(members, m)
	}
	var admins []crypto.PublicKey
	for _, f := range adminFiles {
		keys, err := readPublicKeys(f)
		if err != nil {
			return nil, fmt.Errorf("--admin %s: %w", f, err)
		}
		admins = append(admins, keys...)
	}
	var users []ws.User
	for _, spec := range userSpecs {
		u, err := parseUserSpec(spec, nil)
		if err != nil {
			return nil, err
		}
		users = append(users, u)
	}
	_, raw, err := ws.NewDoc(id, members, admins, quorum, users)
	if err != nil {
		return nil, err
	}
	s := ws.Signed{Doc: raw}
	for _, f := range keyFiles {
		key, err := readAdminKey(f)
		if err != nil {
			return nil, err
		}
		a, err := ws.Approve(raw, key)
		if err != nil {
			return nil, fmt.Errorf("--admin-key %s: %w", f, err)
		}
		s.Approvals = append(s.Approvals, a)
	}
	v, err := ws.Genesis(s)
	if err != nil {
		return nil, fmt.Errorf("version 1 is not approved: %w (give --admin-key for at least --quorum admins)", err)
	}
	return v, nil
}

// parseUserSpec parses NAME:ROLES:FILE; signers may be nil.
func parseUserSpec(spec string, signers []string) (ws.User, error) {
	parts := strings.SplitN(spec, ":", 3)
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return ws.User{}, fmt.Errorf("--user %q: want NAME:ROLE[+ROLE...]:FILE", spec)
	}
	pub, err := readUserKey(parts[2])
	if err != nil {
		return ws.User{}, fmt.Errorf("--user %s: %w", parts[0], err)
	}
	return ws.NewUser(parts[0], strings.Split(parts[1], "+"), pub, signers)
}

// readUserKey reads a PEM certificate or PKIX public key.
func readUserKey(name string) (crypto.PublicKey, error) {
	b, err := readFileLimited(name)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s holds no PEM block", name)
	}
	switch blk.Type {
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return cert.PublicKey, nil
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(blk.Bytes)
	}
	return nil, fmt.Errorf("%s: want a CERTIFICATE or PUBLIC KEY, not %s", name, blk.Type)
}

func readPublicKeys(name string) ([]crypto.PublicKey, error) {
	b, err := readFileLimited(name)
	if err != nil {
		return nil, err
	}
	var keys []crypto.PublicKey
	for rest := b; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM public key")
	}
	return keys, nil
}

func readFileLimited(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAllLimited(f, maxWorkspaceFile)
}

// heldVersion reads the version a member holds.
func heldVersion(ctx context.Context, c *apiclient.Conn) (*ws.Version, error) {
	resp, err := cosignerv1.NewWorkspaceServiceClient(c).GetWorkspace(ctx, &cosignerv1.GetWorkspaceRequest{})
	if err != nil {
		return nil, err
	}
	v, err := ws.FromStore(resp.GetSignedVersion())
	if err != nil {
		return nil, fmt.Errorf("the cosigner's workspace: %w", err)
	}
	if v.Doc.Version != resp.GetVersion() || string(v.Hash[:]) != string(resp.GetDocumentSha256()) {
		return nil, errors.New("the cosigner's workspace: version or hash does not match its document")
	}
	return v, nil
}

func runWorkspaceShow(ctx context.Context, args []string, io IO) int {
	var out string
	fs, a := newAPIFlags("workspace show", "", io, defaultTimeout)
	fs.StringVar(&out, "out", "", "also write the signed version to this file")
	if code, done := parse(fs, args, 0); done {
		return code
	}
	return a.run(ctx, io, func(ctx context.Context, c *apiclient.Conn) error {
		v, err := heldVersion(ctx, c)
		if err != nil {
			return err
		}
		if out != "" {
			raw, _ := v.Signed.Encode()
			if err := os.WriteFile(out, raw, 0o644); err != nil {
				return err
			}
		}
		if a.asJSON {
			return jsonResult(io, workspaceJSON(v))
		}
		printWorkspace(io, v)
		return nil
	})
}

func runWorkspaceInvite(ctx context.Context, args []string, io IO) int {
	var (
		keyFile string
		ttl     time.Duration
		pcrs    = cliflag.PCRs{}
	)
	fs, a := newAPIFlags("workspace invite", "", io, defaultTimeout)
	fs.StringVar(&keyFile, "admin-key", "", "the inviting admin's PKCS#8 PEM private key (required)")
	fs.DurationVar(&ttl, "ttl", time.Hour, "how long the token is valid (at most 168h)")
	fs.Var(pcrs, "pcr", "PCR the new cosigner's enclave must have, as N=HEX (repeatable; default: PCR0, 1, 2 and 8 of the cosigner called); without --devnet the cosigner called must attest them too")
	if code, done := parse(fs, args, 0); done {
		return code
	}
	if a.devnet == "" {
		a.pcrs = pcrs
	}
	if keyFile == "" {
		return usageError(io, a.cmd, errors.New("--admin-key is required"))
	}
	key, err := readAdminKey(keyFile)
	if err != nil {
		return usageError(io, a.cmd, err)
	}
	return a.run(ctx, io, func(ctx context.Context, c *apiclient.Conn) error {
		v, err := heldVersion(ctx, c)
		if err != nil {
			return err
		}
		want := map[int][]byte(pcrs)
		if len(want) == 0 {
			want = imagePCRs(c.Attested())
		}
		if len(want) == 0 {
			return errors.New("the cosigner called attests no image PCRs (a debug enclave?): give --pcr")
		}
		tok, err := ws.NewToken(v, want, ttl, time.Now())
		if err != nil {
			return err
		}
		text, err := tok.Issue(key)
		if err != nil {
			return err
		}
		if a.asJSON {
			return jsonResult(io, map[string]any{"token": text, "id": tok.ID, "workspace": tok.Workspace, "version": tok.Version,
				"expires": time.Unix(tok.Expires, 0).UTC().Format(time.RFC3339), "pcrs": tok.PCRs})
		}
		fmt.Fprintf(io.Out, "%s\n", text)
		fmt.Fprintf(io.Err, "pairing token %s for workspace %s (version %d), expires %s; start the new cosigner with --pair TOKEN\n",
			tok.ID, tok.Workspace, tok.Version, time.Unix(tok.Expires, 0).UTC().Format(time.RFC3339))
		return nil
	})
}

// imagePCRs are the image measurements (PCR0, 1, 2, 8) a cosigner attests.
func imagePCRs(att *apiclient.Attestation) map[int][]byte {
	out := map[int][]byte{}
	if att == nil || att.Document == nil {
		return out
	}
	for _, i := range []int{0, 1, 2, 8} {
		if v, ok := att.Document.PCRs[i]; ok && strings.Trim(hex.EncodeToString(v), "0") != "" {
			out[i] = v
		}
	}
	return out
}

func runWorkspaceRequests(ctx context.Context, args []string, io IO) int {
	fs, a := newAPIFlags("workspace requests", "", io, defaultTimeout)
	if code, done := parse(fs, args, 0); done {
		return code
	}
	return a.run(ctx, io, func(ctx context.Context, c *apiclient.Conn) error {
		reqs, err := pairingRequests(ctx, c)
		if err != nil {
			return err
		}
		if a.asJSON {
			return jsonResult(io, reqs)
		}
		if len(reqs) == 0 {
			fmt.Fprintln(io.Out, "no pairing request awaits approval")
		}
		for _, r := range reqs {
			fmt.Fprintf(io.Out, "%s  token %s  identity %s  module %s  PCRs %s\n", r.ID, r.Token, r.Identity, r.module, shortPCRs(r.PCRs))
		}
		return nil
	})
}

type pendingMember struct {
	ws.Member
	module string
}

func pairingRequests(ctx context.Context, c *apiclient.Conn) ([]pendingMember, error) {
	resp, err := cosignerv1.NewWorkspaceServiceClient(c).ListPairingRequests(ctx, &cosignerv1.ListPairingRequestsRequest{})
	if err != nil {
		return nil, err
	}
	out := []pendingMember{}
	for _, r := range resp.GetRequests() {
		var m ws.Member
		if err := json.Unmarshal(r.GetMember(), &m); err != nil {
			return nil, errors.New("the cosigner sent a pairing request that does not parse")
		}
		out = append(out, pendingMember{m, printable(r.GetModuleId())})
	}
	return out, nil
}

func shortPCRs(p map[string]string) string {
	var s []string
	for _, k := range slices.Sorted(maps.Keys(p)) {
		v := p[k]
		s = append(s, k+"="+v[:min(len(v), 16)]+"…")
	}
	return strings.Join(s, " ")
}

// changeFlags are the flags of the commands that propose a change.
type changeFlags struct {
	*apiFlags
	keyFile string
	key     crypto.Signer
}

func newChangeFlags(cmd, positional string, io IO) (*flag.FlagSet, *changeFlags) {
	fs, a := newAPIFlags(cmd, positional, io, defaultTimeout)
	a.withIdempotencyKey(fs)
	ch := &changeFlags{apiFlags: a}
	fs.StringVar(&ch.keyFile, "admin-key", "", "your admin PKCS#8 PEM private key, which approves the change (required)")
	return fs, ch
}

func (ch *changeFlags) load() error {
	if ch.keyFile == "" {
		return errors.New("--admin-key is required")
	}
	var err error
	ch.key, err = readAdminKey(ch.keyFile)
	return err
}

// propose builds the change from the version held, approves and proposes
// it, and reports where it stands.
func (ch *changeFlags) propose(ctx context.Context, io IO, build func(context.Context, *apiclient.Conn, *ws.Version) (*ws.Doc, []byte, error)) int {
	return ch.run(ctx, io, func(ctx context.Context, c *apiclient.Conn) error {
		v, err := heldVersion(ctx, c)
		if err != nil {
			return err
		}
		d, raw, err := build(ctx, c, v)
		if err != nil {
			return err
		}
		ap, err := ws.Approve(raw, ch.key)
		if err != nil {
			return err
		}
		ch.printIdempotencyKey(io)
		req := &cosignerv1.ProposeWorkspaceVersionRequest{IdempotencyKey: ch.idempotencyKey, Document: raw}
		wa, err := approvalPB(ap)
		if err != nil {
			return err
		}
		req.Approvals = append(req.Approvals, wa)
		resp, err := cosignerv1.NewWorkspaceServiceClient(c).ProposeWorkspaceVersion(ctx, req)
		if err != nil {
			return err
		}
		state := "awaiting more approvals: the other admins run the same command"
		if resp.GetApplied() {
			state = "applied; every member receives it"
		}
		if ch.asJSON {
			return jsonResult(io, map[string]any{"version": d.Version, "sha256": hex.EncodeToString(resp.GetDocumentSha256()),
				"approvals": resp.GetApprovals(), "quorum": resp.GetQuorum(), "applied": resp.GetApplied()})
		}
		fmt.Fprintf(io.Out, "workspace %s version %d (sha256 %x): %d of %d approvals, %s\n", d.Workspace, d.Version,
			resp.GetDocumentSha256(), resp.GetApprovals(), resp.GetQuorum(), state)
		return nil
	})
}

func approvalPB(a ws.Approval) (*cosignerv1.WorkspaceApproval, error) {
	s := ws.Signed{Approvals: []ws.Approval{a}}
	der, sig, err := s.DecodeApproval(0)
	if err != nil {
		return nil, err
	}
	return &cosignerv1.WorkspaceApproval{AdminPublicKey: der, Signature: sig}, nil
}

func runWorkspaceApprove(ctx context.Context, args []string, io IO) int {
	fs, ch := newChangeFlags("workspace approve", "COSIGNER_ID", io)
	if code, done := parse(fs, args, 1); done {
		return code
	}
	if err := ch.load(); err != nil {
		return usageError(io, ch.cmd, err)
	}
	id := fs.Arg(0)
	return ch.propose(ctx, io, func(ctx context.Context, c *apiclient.Conn, v *ws.Version) (*ws.Doc, []byte, error) {
		reqs, err := pairingRequests(ctx, c)
		if err != nil {
			return nil, nil, err
		}
		i := slices.IndexFunc(reqs, func(r pendingMember) bool { return r.ID == id })
		if i < 0 {
			return nil, nil, fmt.Errorf("the cosigner called holds no verified pairing request from %q (cosignerctl workspace requests)", id)
		}
		return ws.AddMember(v, reqs[i].Member)
	})
}

func runWorkspaceRemove(ctx context.Context, args []string, io IO) int {
	fs, ch := newChangeFlags("workspace remove", "COSIGNER_ID", io)
	if code, done := parse(fs, args, 1); done {
		return code
	}
	if err := ch.load(); err != nil {
		return usageError(io, ch.cmd, err)
	}
	return ch.propose(ctx, io, func(_ context.Context, _ *apiclient.Conn, v *ws.Version) (*ws.Doc, []byte, error) {
		return ws.RemoveMember(v, fs.Arg(0))
	})
}

func runWorkspaceAddUser(ctx context.Context, args []string, io IO) int {
	var signers stringList
	fs, ch := newChangeFlags("workspace add-user", "NAME:ROLE[+ROLE...]:CERT.pem", io)
	fs.Var(&signers, "signer", "another user allowed to sign with this user's keys (repeatable)")
	if code, done := parse(fs, args, 1); done {
		return code
	}
	if err := ch.load(); err != nil {
		return usageError(io, ch.cmd, err)
	}
	u, err := parseUserSpec(fs.Arg(0), signers)
	if err != nil {
		return usageError(io, ch.cmd, err)
	}
	return ch.propose(ctx, io, func(_ context.Context, _ *apiclient.Conn, v *ws.Version) (*ws.Doc, []byte, error) {
		return ws.PutUser(v, u)
	})
}

func runWorkspaceRevokeUser(ctx context.Context, args []string, io IO) int {
	fs, ch := newChangeFlags("workspace revoke-user", "NAME", io)
	if code, done := parse(fs, args, 1); done {
		return code
	}
	if err := ch.load(); err != nil {
		return usageError(io, ch.cmd, err)
	}
	return ch.propose(ctx, io, func(_ context.Context, _ *apiclient.Conn, v *ws.Version) (*ws.Doc, []byte, error) {
		return ws.RevokeUser(v, fs.Arg(0))
	})
}

func runWorkspaceSetAdmins(ctx context.Context, args []string, io IO) int {
	var (
		adminPubs stringList
		quorum    int
	)
	fs, ch := newChangeFlags("workspace set-admins", "", io)
	fs.Var(&adminPubs, "admin", "PEM `file` of the new admins' public keys (PKIX, Ed25519 or P-256; repeatable; required)")
	fs.IntVar(&quorum, "quorum", 2, "approvals every later change needs")
	if code, done := parse(fs, args, 0); done {
		return code
	}
	if err := ch.load(); err != nil {
		return usageError(io, ch.cmd, err)
	}
	if len(adminPubs) == 0 {
		return usageError(io, ch.cmd, errors.New("--admin is required"))
	}
	var admins []crypto.PublicKey
	for _, f := range adminPubs {
		keys, err := readPublicKeys(f)
		if err != nil {
			return usageError(io, ch.cmd, fmt.Errorf("--admin %s: %w", f, err))
		}
		admins = append(admins, keys...)
	}
	return ch.propose(ctx, io, func(_ context.Context, _ *apiclient.Conn, v *ws.Version) (*ws.Doc, []byte, error) {
		return ws.SetAdmins(v, admins, quorum) // approved by the current admins' quorum
	})
}

func runWorkspaceSetPolicy(ctx context.Context, args []string, io IO) int {
	fs, ch := newChangeFlags("workspace set-policy", "DOCUMENT", io)
	if code, done := parse(fs, args, 1); done {
		return code
	}
	if err := ch.load(); err != nil {
		return usageError(io, ch.cmd, err)
	}
	doc, err := readPolicyDocument(fs.Arg(0), io)
	if err != nil {
		return usageError(io, ch.cmd, err)
	}
	return ch.propose(ctx, io, func(_ context.Context, _ *apiclient.Conn, v *ws.Version) (*ws.Doc, []byte, error) {
		return ws.SetPolicy(v, doc)
	})
}

type wsSummary struct {
	Workspace string      `json:"workspace"`
	Version   uint64      `json:"version"`
	SHA256    string      `json:"sha256"`
	Members   []ws.Member `json:"members"`
	Admins    []string    `json:"admins"`
	Quorum    int         `json:"quorum"`
	Users     []ws.User   `json:"users"`
	Policy    string      `json:"policy_sha256,omitempty"`
	Approvals int         `json:"approvals"`
}

func workspaceJSON(v *ws.Version) wsSummary {
	var policy string
	if len(v.Doc.Policy) > 0 {
		sum := sha256.Sum256(v.Doc.Policy)
		policy = hex.EncodeToString(sum[:])
	}
	return wsSummary{v.Doc.Workspace, v.Doc.Version, v.HashHex(), v.Doc.Members, v.Doc.Admins, v.Doc.Quorum, v.Doc.Users, policy, len(v.Signed.Approvals)}
}

func printWorkspace(io IO, v *ws.Version) {
	d := v.Doc
	fmt.Fprintf(io.Out, "workspace %s version %d (sha256 %s)\n", d.Workspace, d.Version, v.HashHex())
	fmt.Fprintf(io.Out, "  admins: %d, quorum %d\n", len(d.Admins), d.Quorum)
	if len(d.Policy) > 0 {
		sum := sha256.Sum256(d.Policy)
		fmt.Fprintf(io.Out, "  policy: sha256 %x (version %s)\n", sum, documentVersion(d.Policy))
	}
	fmt.Fprintf(io.Out, "  members (%d):\n", len(d.Members))
	for _, m := range d.Members {
		fmt.Fprintf(io.Out, "    %s  identity %s  PCRs %s\n", m.ID, m.Identity, shortPCRs(m.PCRs))
	}
	fmt.Fprintf(io.Out, "  API users (%d):\n", len(d.Users))
	for _, u := range d.Users {
		extra := ""
		if len(u.Signers) > 0 {
			extra = "  signers " + strings.Join(u.Signers, ",")
		}
		fmt.Fprintf(io.Out, "    %s  roles %s%s\n", u.Name, strings.Join(u.Roles, ","), extra)
	}
}
