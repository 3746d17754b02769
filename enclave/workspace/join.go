package workspace

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	auditfmt "github.com/nitro-cosigner/nitro-cosigner/pkg/audit"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
	ws "github.com/nitro-cosigner/nitro-cosigner/pkg/workspace"
)

// JoinConfig configures Join, the joining side of pairing. Every field
// but ApprovalKey, Every, Now and Logger is required.
type JoinConfig struct {
	Token    string // the pairing token as the admin gave it
	Identity *wire.IdentityKey
	Member   wire.Member // this cosigner's ID and keys (PCRs unused)
	// ApprovalKey is this cosigner's approval-callback key (PKIX DER).
	ApprovalKey []byte
	// Attest returns a fresh attestation document whose user_data is
	// Member.Binding().
	Attest func(ctx context.Context) ([]byte, error)
	Link   Link
	Store  Store
	Audit  Auditor
	Every  time.Duration // how often the request is sent again (default 5 s)
	Now    func() time.Time
	Logger *slog.Logger
}

// Joiner runs pairing for a cosigner started with a token.
type Joiner struct {
	cfg   JoinConfig
	tok   *ws.SignedToken
	inbox chan []byte
}

// NewJoiner parses the token; it fails with a clear error for a malformed
// or expired one.
func NewJoiner(cfg JoinConfig) (*Joiner, error) {
	if cfg.Identity == nil || cfg.Attest == nil || cfg.Link == nil || cfg.Store == nil || cfg.Audit == nil {
		return nil, errors.New("workspace: join: Identity, Attest, Link, Store and Audit are required")
	}
	if cfg.Every <= 0 {
		cfg.Every = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	tok, err := ws.ParseToken(cfg.Token)
	if err != nil {
		return nil, fmt.Errorf("pairing token: %w", err)
	}
	if cfg.Now().Unix() >= tok.Token.Expires {
		return nil, fmt.Errorf("pairing token: %w (at %s)", ws.ErrTokenExpired, time.Unix(tok.Token.Expires, 0).UTC().Format(time.RFC3339))
	}
	return &Joiner{cfg: cfg, tok: tok, inbox: make(chan []byte, queueLen)}, nil
}

// Deliver queues a workspace message from the link (never blocks).
func (j *Joiner) Deliver(_ context.Context, frame []byte) {
	select {
	case j.inbox <- frame:
	default:
	}
}

// Run sends the pairing request to the token's members every Every until
// a chain of versions arrives that starts at the token's version and ends
// at one listing this cosigner with its keys; it stores the chain and
// returns the newest version. It ends with an error when the token
// expires first, or when ctx ends.
func (j *Joiner) Run(ctx context.Context) (*ws.Version, error) {
	log := j.cfg.Logger
	t := j.tok.Token
	log.Info("pairing: requesting to join", "workspace", t.Workspace, "token", t.ID, "members", t.Members,
		"expires", time.Unix(t.Expires, 0).UTC().Format(time.RFC3339))
	tick := time.NewTicker(j.cfg.Every)
	defer tick.Stop()
	j.request(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
			if j.cfg.Now().Unix() >= t.Expires {
				return nil, fmt.Errorf("pairing: %w before the admins approved", ws.ErrTokenExpired)
			}
			j.request(ctx)
		case frame := <-j.inbox:
			kind, msg, err := ws.DecodeMessage(frame)
			if err != nil || kind != ws.KindVersions {
				continue
			}
			chain, err := j.verify(msg.(*ws.Update))
			if err != nil {
				log.Info("pairing: versions received but not usable yet", "reason", err.Error())
				continue
			}
			if err := j.storeChain(ctx, chain); err != nil {
				return nil, err
			}
			last := chain[len(chain)-1]
			log.Info("pairing: joined", "workspace", last.Doc.Workspace, "version", last.Doc.Version, "sha256", last.HashHex(),
				"members", last.Doc.MemberIDs())
			return last, nil
		}
	}
}

func (j *Joiner) request(ctx context.Context) {
	doc, err := j.cfg.Attest(ctx)
	if err != nil {
		j.cfg.Logger.Warn("pairing: attestation failed", "err", err)
		return
	}
	m := j.cfg.Member
	r := &ws.PairRequest{Token: j.cfg.Token, ID: m.ID, Identity: hex.EncodeToString(m.Identity),
		Encryption: hex.EncodeToString(m.Encryption.Bytes()), Attestation: doc, Time: j.cfg.Now().UnixMilli()}
	if len(j.cfg.ApprovalKey) > 0 {
		r.ApprovalKey = hex.EncodeToString(j.cfg.ApprovalKey)
	}
	sr, err := ws.SignRequest(r, j.cfg.Identity)
	if err != nil {
		return
	}
	frame, err := ws.EncodeMessage(ws.KindPair, sr)
	if err != nil {
		return
	}
	for _, to := range j.tok.Token.Members {
		sctx, cancel := context.WithTimeout(ctx, sendTimeout)
		if err := j.cfg.Link.Send(sctx, to, frame); err != nil {
			j.cfg.Logger.Debug("pairing: request not sent", "to", to, "err", err)
		}
		cancel()
	}
}

// verify checks a received chain: its first version is the one the token
// names (and the token's admin is one of its admins), each next one
// follows with its predecessor's quorum, and the last lists this cosigner
// with its keys.
func (j *Joiner) verify(u *ws.Update) ([]*ws.Version, error) {
	if len(u.Versions) == 0 {
		return nil, errors.New("empty")
	}
	first, err := ws.FromStore(mustEncode(u.Versions[0]))
	if err != nil {
		return nil, err
	}
	if err := j.tok.CheckGenesis(first); err != nil {
		return nil, err
	}
	chain := []*ws.Version{first}
	for _, s := range u.Versions[1:] {
		v, err := ws.Next(chain[len(chain)-1], s)
		if err != nil {
			return nil, err
		}
		chain = append(chain, v)
	}
	last := chain[len(chain)-1].Doc.Member(j.cfg.Member.ID)
	if last == nil || last.Identity != hex.EncodeToString(j.cfg.Member.Identity) ||
		last.Encryption != hex.EncodeToString(j.cfg.Member.Encryption.Bytes()) || last.Token != j.tok.Token.ID {
		return nil, errors.New("this cosigner is not (yet) a member")
	}
	return chain, nil
}

func mustEncode(s ws.Signed) []byte {
	b, _ := s.Encode()
	return b
}

func (j *Joiner) storeChain(ctx context.Context, chain []*ws.Version) error {
	last := chain[len(chain)-1]
	if _, err := j.cfg.Audit.Append(ctx, auditfmt.Event{Type: auditfmt.WorkspaceChanged, Details: map[string]string{
		"workspace": last.Doc.Workspace, "version": fmt.Sprint(last.Doc.Version), "sha256": last.HashHex(),
		"via": "paired with token " + j.tok.Token.ID, "from_version": fmt.Sprint(chain[0].Doc.Version)}}); err != nil {
		return fmt.Errorf("pairing: audit before storing the workspace: %w", err)
	}
	for _, v := range chain {
		raw, err := v.Signed.Encode()
		if err != nil {
			return err
		}
		if err := j.cfg.Store.PutWorkspace(ctx, v.Doc.Version, raw); err != nil {
			return fmt.Errorf("pairing: storing version %d: %w", v.Doc.Version, err)
		}
	}
	return nil
}
