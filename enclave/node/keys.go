package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/api"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/coord"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
)

// keyMetadata is what the keystore keeps beside a key this cosigner
// created. Other parties store none: a display name is local.
type keyMetadata struct {
	DisplayName string `json:"display_name,omitempty"`
	// Owner is the API user who created the key (see owner.go); every
	// party stores it.
	Owner string `json:"owner,omitempty"`
}

// CreateKey proposes a keygen among req.Parties and returns the stored key.
func (n *Node) CreateKey(ctx context.Context, req api.CreateKeyParams, progress func(api.Progress)) (api.Key, error) {
	op, err := keygenOp(req.Scheme)
	if err != nil {
		return api.Key{}, err
	}
	if err := n.checkParties(req.Parties, req.Threshold); err != nil {
		return api.Key{}, err
	}
	p, err := n.proposal(op, req.Parties, n.cfg.KeygenTime)
	if err != nil {
		return api.Key{}, err
	}
	p.Threshold = req.Threshold
	if p.Request, err = encodeKeygenRequest(req.Caller.ID); err != nil {
		return api.Key{}, err
	}
	id := mpc.KeyID(p.Session)
	meta, err := json.Marshal(keyMetadata{DisplayName: req.DisplayName, Owner: req.Caller.ID})
	if err != nil {
		return api.Key{}, err
	}
	n.cfg.Store.expect(id, meta)
	defer n.cfg.Store.forget(id)
	report(progress, api.Progress{Kind: api.ProgressQueued, At: n.cfg.Now()})
	report(progress, api.Progress{Kind: api.ProgressSessionStarted, At: n.cfg.Now(), Session: p.Session,
		Key: id, Parties: p.Parties, Deadline: p.Deadline})
	res, err := n.cfg.Coord.Initiate(ctx, p)
	if err != nil {
		return api.Key{}, sessionErr(err)
	}
	return n.Key(ctx, res.Key.Key)
}

// RefreshKey proposes a refresh among all of the key's parties.
func (n *Node) RefreshKey(ctx context.Context, _ api.Caller, id mpc.KeyID, progress func(api.Progress)) (api.Key, error) {
	info, err := n.engineKey(ctx, id)
	if err != nil {
		return api.Key{}, err
	}
	if info.Scheme != mpc.SchemeECDSA {
		return api.Key{}, fmt.Errorf("%w: only CMP keys can be refreshed", api.ErrUnimplemented)
	}
	p, err := n.proposal(coord.OpRefresh, info.Parties, n.cfg.KeygenTime)
	if err != nil {
		return api.Key{}, err
	}
	p.Key, p.Epoch = id, info.Epoch
	report(progress, api.Progress{Kind: api.ProgressQueued, At: n.cfg.Now()})
	report(progress, api.Progress{Kind: api.ProgressSessionStarted, At: n.cfg.Now(), Session: p.Session,
		Key: id, Parties: p.Parties, Deadline: p.Deadline})
	if _, err := n.cfg.Coord.Initiate(ctx, p); err != nil {
		return api.Key{}, sessionErr(err)
	}
	return n.Key(ctx, id)
}

func report(progress func(api.Progress), p api.Progress) {
	if progress != nil {
		progress(p)
	}
}

func keygenOp(s mpc.Scheme) (coord.Op, error) {
	switch s {
	case mpc.SchemeECDSA:
		return coord.OpKeygen, nil
	case mpc.SchemeTaproot:
		return coord.OpFROSTKeygen, nil
	}
	return 0, fmt.Errorf("%w: unknown key scheme", api.ErrInvalidArgument)
}

// checkParties requires a party set of roster members, this cosigner
// among them, and a threshold the set can meet.
func (n *Node) checkParties(parties []mpc.PartyID, threshold int) error {
	roster := n.cfg.Roster()
	switch {
	case len(parties) < mpc.MinParties || len(parties) > mpc.MaxParties:
		return fmt.Errorf("%w: a key needs %d to %d parties", api.ErrInvalidArgument, mpc.MinParties, mpc.MaxParties)
	case !slices.Contains(parties, n.Self()):
		return fmt.Errorf("%w: this cosigner must be one of the parties", api.ErrInvalidArgument)
	case threshold < 2 || threshold > len(parties):
		return fmt.Errorf("%w: threshold must be 2 to the number of parties", api.ErrInvalidArgument)
	}
	for _, p := range parties {
		if !slices.Contains(roster, p) {
			return fmt.Errorf("%w: party %q is not in the roster", api.ErrInvalidArgument, p)
		}
	}
	return nil
}

func (n *Node) proposal(op coord.Op, parties []mpc.PartyID, d time.Duration) (coord.Proposal, error) {
	id, err := mpc.NewSessionID()
	if err != nil {
		return coord.Proposal{}, err
	}
	return coord.Proposal{Session: id, Op: op, Parties: slices.Clone(parties), Deadline: n.cfg.Now().Add(d)}, nil
}

// Key returns a key with its stored times and display name.
func (n *Node) Key(ctx context.Context, id mpc.KeyID) (api.Key, error) {
	info, err := n.cfg.Keystore.GetKeyInfo(ctx, keystore.KeyID(id))
	if errors.Is(err, keystore.ErrKeyNotFound) {
		return api.Key{}, fmt.Errorf("%w: key", api.ErrNotFound)
	}
	if err != nil {
		return api.Key{}, err
	}
	return apiKey(info), nil
}

// ListKeys pages through the keys in ID order.
func (n *Node) ListKeys(ctx context.Context, after *mpc.KeyID, limit int) ([]api.Key, bool, error) {
	cur := keystore.Cursor{}
	if after != nil {
		cur = keystore.After(keystore.KeyID(*after))
	}
	page, err := n.cfg.Keystore.ListKeys(ctx, cur, limit)
	if errors.Is(err, keystore.ErrInvalid) {
		return nil, false, fmt.Errorf("%w: page size", api.ErrInvalidArgument)
	}
	if err != nil {
		return nil, false, err
	}
	keys := make([]api.Key, len(page.Keys))
	for i, info := range page.Keys {
		keys[i] = apiKey(info)
	}
	return keys, page.More, nil
}

func apiKey(info keystore.KeyInfo) api.Key {
	parties := make([]mpc.PartyID, len(info.Parties))
	for i, p := range info.Parties {
		parties[i] = mpc.PartyID(p)
	}
	var meta keyMetadata
	_ = json.Unmarshal(info.Metadata, &meta) // absent or foreign metadata: no display name
	return api.Key{
		Info: mpc.KeyInfo{Key: mpc.KeyID(info.ID), Scheme: mpc.Scheme(info.Scheme), Epoch: info.Epoch,
			Threshold: info.Threshold, Parties: parties, PublicKey: info.PublicKey, ChainCode: info.ChainCode},
		DisplayName: meta.DisplayName, Created: info.CreatedAt, Updated: info.UpdatedAt,
	}
}

// DerivePublicKey derives a non-hardened child public key.
func (n *Node) DerivePublicKey(ctx context.Context, id mpc.KeyID, path []uint32) (mpc.DerivedKey, mpc.Scheme, error) {
	info, err := n.engineKey(ctx, id)
	if err != nil {
		return mpc.DerivedKey{}, 0, err
	}
	d, err := n.cfg.Engine.DeriveKey(ctx, id, path)
	if errors.Is(err, mpc.ErrInvalidRequest) {
		return mpc.DerivedKey{}, 0, fmt.Errorf("%w: derivation path", api.ErrInvalidArgument)
	}
	if err != nil {
		return mpc.DerivedKey{}, 0, err
	}
	return d, info.Scheme, nil
}

func (n *Node) engineKey(ctx context.Context, id mpc.KeyID) (mpc.KeyInfo, error) {
	info, err := n.cfg.Engine.Key(ctx, id)
	if errors.Is(err, mpc.ErrKeyNotFound) {
		return mpc.KeyInfo{}, fmt.Errorf("%w: key", api.ErrNotFound)
	}
	return info, err
}

// sessionErr maps a failed keygen or refresh to the API's errors. The
// refusal code and the parties are ours to name; peer text never is.
func sessionErr(err error) error {
	var refused *coord.RefusedError
	switch {
	case errors.As(err, &refused):
		return fmt.Errorf("%w: %s refused (%s)", api.ErrFailedPrecondition, refused.Party, refused.Code)
	case errors.Is(err, coord.ErrDeadline), errors.Is(err, mpc.ErrDeadline):
		return fmt.Errorf("%w: the parties did not finish in time", api.ErrDeadline)
	case errors.Is(err, coord.ErrBusy):
		return fmt.Errorf("%w: busy", api.ErrUnavailable)
	case errors.Is(err, coord.ErrNotStored):
		return fmt.Errorf("%w: not every party confirmed its new share is stored", api.ErrAborted)
	}
	var abort *mpc.AbortError
	var peer *mpc.PeerAbortError
	if errors.As(err, &abort) || errors.As(err, &peer) {
		return fmt.Errorf("%w: the session was aborted", api.ErrAborted)
	}
	return err
}
