package node

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/api"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/coord"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
)

// Keys belong to the API user who created them: the keygen proposal names
// the owner, and every party stores it with its share (key metadata), so
// that a sign request reaching any member is checked against the same
// owner. Config.MaySign (the workspace: the owner, or a user its Signers
// list) decides who may sign with an owner's keys.

// keygenRequest is what a keygen proposal's Request carries.
type keygenRequest struct {
	Owner string `json:"owner"`
}

const maxOwner = 128

func encodeKeygenRequest(owner string) ([]byte, error) {
	if len(owner) > maxOwner {
		return nil, fmt.Errorf("%w: caller name too long", api.ErrInvalidArgument)
	}
	return json.Marshal(keygenRequest{Owner: owner})
}

// ownerOf reads the owner a keygen proposal names ("" if none).
func ownerOf(p *coord.Proposal) string {
	var r keygenRequest
	if len(p.Request) == 0 || json.Unmarshal(p.Request, &r) != nil || len(r.Owner) > maxOwner {
		return ""
	}
	return r.Owner
}

// OwnerJudge wraps the judge so that a keygen this party accepts stores
// the owner its proposal names with this party's share, in store (the
// Node's Config.Store; the initiator stores the owner with the key's
// display name, see CreateKey).
func OwnerJudge(j coord.Judge, store *mpcStore) coord.Judge { return ownerJudge{j, store} }

type ownerJudge struct {
	inner coord.Judge
	store *mpcStore
}

func (o ownerJudge) Judge(ctx context.Context, from mpc.PartyID, p *coord.Proposal) (coord.Task, error) {
	if p.Op != coord.OpKeygen && p.Op != coord.OpFROSTKeygen {
		return o.inner.Judge(ctx, from, p)
	}
	id := mpc.KeyID(p.Session)
	set := o.store.expectOwner(id, ownerOf(p))
	task, err := o.inner.Judge(ctx, from, p)
	if err != nil {
		if set {
			o.store.forget(id)
		}
		return task, err
	}
	done := task.Done
	task.Done = func(res coord.Result, err error) {
		if set {
			o.store.forget(id)
		}
		if done != nil {
			done(res, err)
		}
	}
	return task, nil
}

// checkOwner refuses a sign by a caller the key's owner does not let sign
// (PERMISSION_DENIED). Keys stored without an owner (made before
// ownership) are signed for any caller with the signer role.
func (n *Node) checkOwner(ctx context.Context, caller api.Caller, key mpc.KeyID) error {
	if n.cfg.MaySign == nil {
		return nil
	}
	info, err := n.cfg.Keystore.GetKeyInfo(ctx, keystore.KeyID(key))
	if err != nil {
		return nil // an unknown key fails later, with NOT_FOUND
	}
	var meta keyMetadata
	if len(info.Metadata) > 0 && json.Unmarshal(info.Metadata, &meta) != nil {
		return fmt.Errorf("node: key %s: metadata does not parse", key)
	}
	if meta.Owner == "" || n.cfg.MaySign(caller.ID, meta.Owner) {
		return nil
	}
	return fmt.Errorf("%w: the key's owner does not let this caller sign with it", api.ErrPermissionDenied)
}
