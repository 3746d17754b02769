// Package node is the enclave's API-facing core: it implements
// enclave/api's Node over the MPC engine, the coordinator (enclave/coord),
// the keystore, the policy engine, the audit log and the attester. It owns
// no goroutines; enclave/app starts the engine, coordinator and server.
//
// What a call does:
//
//   - CreateKey and RefreshKey propose a keygen or refresh through the
//     coordinator; every party's Judge audits it when it ends.
//   - Sign parses the payload here first (so a bad request fails before
//     any peer hears of it), picks the signers (this cosigner and the
//     next threshold-1 parties of the key, in the key's order), claims a
//     presignature for a single ECDSA digest when the pool has one, and
//     proposes the sign; every signer — this one included — runs its own
//     Judge (parse, policy, approval, audit). The signatures are checked
//     and assembled by enclave/payload (signed transaction, PSBT, or
//     signature bytes) before they are returned.
//   - SetPolicy checks the admin quorum, writes the policy_changed audit
//     entry, then stores the version: the entry exists before the change
//     takes effect.
//   - Attest asks the NSM for a document whose user_data binds the
//     cosigner ID, the identity and encryption keys and the API's TLS
//     certificate (wire.BindingUserData).
package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/api"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/audit"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/coord"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/nsm"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/policy"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
)

// Session deadlines. CMP keygen and a full CMP sign take seconds to tens
// of seconds on small machines; the deadlines leave room for slow peers
// and stay below coord.MaxDeadline.
const (
	DefaultKeygenTimeout = 5 * time.Minute
	DefaultSignTimeout   = 3 * time.Minute
)

// Engine is the part of *mpc.Engine the node uses.
type Engine interface {
	Key(ctx context.Context, id mpc.KeyID) (mpc.KeyInfo, error)
	DeriveKey(ctx context.Context, key mpc.KeyID, path []uint32) (mpc.DerivedKey, error)
	ClaimPresignature(key mpc.KeyID, epoch uint64, signers []mpc.PartyID) (mpc.PresignatureID, bool)
	EnablePool(ctx context.Context, key mpc.KeyID, signers []mpc.PartyID) error
}

// Initiator runs proposals; *coord.Coordinator satisfies it.
type Initiator interface {
	Initiate(ctx context.Context, p coord.Proposal) (coord.Result, error)
}

// Config configures a Node. Every field but the timeouts, Now and Logger
// is required.
type Config struct {
	Identity *Identity
	Engine   Engine
	Coord    Initiator
	Keystore *keystore.Store
	Store    *mpcStore // the engine's store (NewStore)
	Policy   *policy.Engine
	Audit    *audit.Log
	Attester nsm.Attester
	TLSCert  [sha256.Size]byte // fingerprint of the API's certificate
	Roster   func() []mpc.PartyID
	// MaySign, if set, reports whether an API user may sign with keys
	// another (or the same) user owns (the workspace's rule); nil lets
	// every caller with the signer role sign.
	MaySign    func(user, owner string) bool
	KeygenTime time.Duration
	SignTime   time.Duration
	Now        func() time.Time
	Logger     *slog.Logger
}

// NewStore returns the engine's Store over the keystore; give the same
// value to the engine and to Config.Store.
func NewStore(ks *keystore.Store) *mpcStore { return newMPCStore(ks) }

// Node implements api.Node.
type Node struct {
	cfg Config
	log *slog.Logger
}

var _ api.Node = (*Node)(nil)

// ErrConfig is returned by New for an unusable configuration.
var ErrConfig = errors.New("node: bad configuration")

// New checks cfg and returns a Node.
func New(cfg Config) (*Node, error) {
	if cfg.Identity == nil || cfg.Engine == nil || cfg.Coord == nil || cfg.Keystore == nil || cfg.Store == nil ||
		cfg.Policy == nil || cfg.Audit == nil || cfg.Attester == nil || cfg.Roster == nil {
		return nil, fmt.Errorf("%w: a required field is missing", ErrConfig)
	}
	if cfg.KeygenTime <= 0 {
		cfg.KeygenTime = DefaultKeygenTimeout
	}
	if cfg.SignTime <= 0 {
		cfg.SignTime = DefaultSignTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Node{cfg: cfg, log: log}, nil
}

// Self is this cosigner's ID.
func (n *Node) Self() mpc.PartyID { return n.cfg.Identity.ID }

// Attest returns a fresh document binding the identity and the TLS
// certificate, with the caller's nonce.
func (n *Node) Attest(_ context.Context, nonce []byte) (api.Attestation, error) {
	id := n.cfg.Identity
	fp := n.cfg.TLSCert
	doc, err := n.cfg.Attester.Attest(nsm.Request{Nonce: nonce, UserData: id.APIBinding(fp)})
	if err != nil {
		return api.Attestation{}, fmt.Errorf("%w: attestation: %v", api.ErrUnavailable, err)
	}
	return api.Attestation{
		Document: doc, CosignerID: string(id.ID), IdentityKey: id.Key.Public(),
		EncryptionKey: id.Encryption.Public().Bytes(), TLSCertificate: fp,
	}, nil
}

// Member is this cosigner's roster entry (PCRs left to the caller).
func (id *Identity) Member() wire.Member {
	return wire.Member{ID: string(id.ID), Identity: id.Key.Public(), Encryption: id.Encryption.Public()}
}

// auditTimeout bounds writing an audit entry about something that already
// happened.
const auditTimeout = 30 * time.Second
