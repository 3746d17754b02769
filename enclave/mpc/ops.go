package mpc

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/taurusgroup/multi-party-sig/pkg/ecdsa"
	"github.com/taurusgroup/multi-party-sig/pkg/math/curve"
	"github.com/taurusgroup/multi-party-sig/pkg/party"
	"github.com/taurusgroup/multi-party-sig/pkg/taproot"
	"github.com/taurusgroup/multi-party-sig/protocols/cmp"
	"github.com/taurusgroup/multi-party-sig/protocols/frost"
)

// DigestSize is the length of the digest every sign takes.
const DigestSize = 32

// anyScheme lets sessionKey accept a key of either scheme.
const anyScheme Scheme = 0

var errBadResult = errors.New("the library returned an unexpected result")

func toLibID(id PartyID) party.ID { return party.ID(id) }

// Keygen runs CMP key generation among spec.Parties: a threshold-of-n
// ECDSA key, threshold (2 to n) being the number of parties needed to sign.
// The key's ID is the session ID. The key is returned once stored.
func (e *Engine) Keygen(ctx context.Context, spec SessionSpec, threshold int) (KeyInfo, error) {
	parties, err := checkKeygen(spec, e.self, threshold)
	if err != nil {
		return KeyInfo{}, err
	}
	start := cmp.Keygen(curve.Secp256k1{}, toLibID(e.self), toLib(parties), threshold-1, nil)
	res, err := e.runSession(ctx, OpKeygen, spec, parties, start)
	if err != nil {
		return KeyInfo{}, err
	}
	cfg, ok := res.(*cmp.Config)
	if !ok {
		return KeyInfo{}, sessionErr(OpKeygen, spec.ID, errBadResult)
	}
	return e.storeCMP(ctx, KeyID(spec.ID), 0, cfg)
}

func checkKeygen(spec SessionSpec, self PartyID, threshold int) ([]PartyID, error) {
	parties, err := checkSpec(spec, self)
	if err != nil {
		return nil, err
	}
	if threshold < 2 || threshold > len(parties) {
		return nil, fmt.Errorf("%w: threshold must be 2 to %d", ErrInvalidRequest, len(parties))
	}
	return parties, nil
}

func (e *Engine) storeCMP(ctx context.Context, key KeyID, epoch uint64, cfg *cmp.Config) (KeyInfo, error) {
	rec, err := cmpRecord(key, epoch, cfg)
	if err != nil {
		return KeyInfo{}, err
	}
	return e.storeKey(ctx, rec, &keyState{cmp: cfg})
}

// Refresh runs CMP refresh among all of the key's parties: new shares, the
// same public key, epoch + 1. Presignatures of the old epoch are dropped.
// The new shares are used only once stored.
func (e *Engine) Refresh(ctx context.Context, spec SessionSpec, key KeyID, epoch uint64) (KeyInfo, error) {
	ks, parties, err := e.sessionKey(ctx, spec, key, epoch, SchemeECDSA)
	if err != nil {
		return KeyInfo{}, err
	}
	if !slices.Equal(parties, ks.meta.Parties) {
		return KeyInfo{}, fmt.Errorf("%w: refresh needs every party of the key", ErrInvalidRequest)
	}
	own, err := ks.sessionCMP()
	if err != nil {
		return KeyInfo{}, err
	}
	res, err := e.runSession(ctx, OpRefresh, spec, parties, cmp.Refresh(own, nil))
	if err != nil {
		return KeyInfo{}, err
	}
	cfg, ok := res.(*cmp.Config)
	if !ok || !cfg.PublicPoint().Equal(ks.cmp.PublicPoint()) {
		return KeyInfo{}, sessionErr(OpRefresh, spec.ID, errBadResult)
	}
	info, err := e.storeCMP(ctx, key, epoch+1, cfg)
	if err == nil {
		e.resetPools(key, epoch+1)
	}
	return info, err
}

// sessionKey loads a key and checks the session against it: scheme, epoch,
// and a party set of the key's parties large enough to sign.
func (e *Engine) sessionKey(ctx context.Context, spec SessionSpec, key KeyID, epoch uint64, scheme Scheme) (*keyState, []PartyID, error) {
	parties, err := checkSpec(spec, e.self)
	if err != nil {
		return nil, nil, err
	}
	ks, err := e.loadKey(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	if err := checkKeyUse(ks, parties, epoch, scheme); err != nil {
		return nil, nil, err
	}
	return ks, parties, nil
}

func checkKeyUse(ks *keyState, parties []PartyID, epoch uint64, scheme Scheme) error {
	switch {
	case scheme != anyScheme && ks.meta.Scheme != scheme:
		return fmt.Errorf("%w: key is %s", ErrInvalidRequest, ks.meta.Scheme)
	case ks.meta.Epoch != epoch:
		return fmt.Errorf("%w: have epoch %d", ErrEpochMismatch, ks.meta.Epoch)
	case !isSubset(parties, ks.meta.Parties):
		return fmt.Errorf("%w: a signer does not hold the key", ErrInvalidRequest)
	case len(parties) < ks.meta.Threshold:
		return fmt.Errorf("%w: %d signers, the key needs %d", ErrInvalidRequest, len(parties), ks.meta.Threshold)
	}
	return nil
}

// Presign runs one CMP presign session among spec.Parties and keeps the
// result in the pool of the key and that signer set, under the ID
// PresignatureID(spec.ID). Background refills do the same on their own.
func (e *Engine) Presign(ctx context.Context, spec SessionSpec, key KeyID, epoch uint64) (PresignatureID, error) {
	ks, parties, err := e.sessionKey(ctx, spec, key, epoch, SchemeECDSA)
	if err != nil {
		return PresignatureID{}, err
	}
	ps, err := e.presign(ctx, spec, parties, ks)
	if err != nil {
		return PresignatureID{}, err
	}
	e.addPresig(makePoolKey(key, parties), parties, epoch, ps)
	return ps.id, nil
}

func (e *Engine) presign(ctx context.Context, spec SessionSpec, parties []PartyID, ks *keyState) (*presig, error) {
	own, err := ks.sessionCMP()
	if err != nil {
		return nil, err
	}
	res, err := e.runSession(ctx, OpPresign, spec, parties, cmp.Presign(own, toLib(parties), nil))
	if err != nil {
		return nil, err
	}
	ps, ok := res.(*ecdsa.PreSignature)
	if !ok || ps.Validate() != nil {
		return nil, sessionErr(OpPresign, spec.ID, errBadResult)
	}
	return &presig{id: PresignatureID(spec.ID), since: e.now(), ps: ps}, nil
}

// SignRequest says what to sign. Every signer gets the same request from
// the coordinator, and computes Digest itself from the payload.
type SignRequest struct {
	Key    KeyID
	Epoch  uint64
	Digest []byte // DigestSize bytes
	// Path is a non-hardened BIP-32 path below the key; empty for the key
	// itself.
	Path []uint32
	// Presignature, if set, selects the one-round sign with that
	// presignature (ECDSA, empty Path only). Zero runs a full sign.
	Presignature PresignatureID
}

// Sign signs req.Digest with the key among spec.Parties (the signers):
// CMP ECDSA from a presignature or in full, or FROST BIP-340 for Taproot
// keys. With a presignature, it is removed from this party's pool before
// the session starts, and the sign fails with ErrPresignatureUnavailable if
// this party does not have it.
func (e *Engine) Sign(ctx context.Context, spec SessionSpec, req SignRequest) (Signature, error) {
	if len(req.Digest) != DigestSize {
		return Signature{}, fmt.Errorf("%w: digest must be %d bytes", ErrInvalidRequest, DigestSize)
	}
	if err := checkPath(req.Path); err != nil {
		return Signature{}, err
	}
	ks, parties, err := e.sessionKey(ctx, spec, req.Key, req.Epoch, anyScheme)
	if err != nil {
		return Signature{}, err
	}
	switch scheme := ks.meta.Scheme; {
	case scheme == SchemeTaproot && req.Presignature.IsZero():
		return e.signTaproot(ctx, spec, parties, ks, req)
	case scheme == SchemeTaproot:
		return Signature{}, fmt.Errorf("%w: Taproot keys have no presignatures", ErrInvalidRequest)
	case req.Presignature.IsZero():
		return e.signFull(ctx, spec, parties, ks, req)
	}
	return e.signPresigned(ctx, spec, parties, ks, req)
}

func (e *Engine) signFull(ctx context.Context, spec SessionSpec, parties []PartyID, ks *keyState, req SignRequest) (Signature, error) {
	own, err := ks.sessionCMP()
	if err != nil {
		return Signature{}, err
	}
	cfg, err := deriveCMP(own, req.Path)
	if err != nil {
		return Signature{}, err
	}
	res, err := e.runSession(ctx, OpSign, spec, parties, cmp.Sign(cfg, toLib(parties), req.Digest, nil))
	if err != nil {
		return Signature{}, err
	}
	return e.finishECDSA(OpSign, spec.ID, res, cfg)
}

// signPresigned consumes the named presignature, then runs the one-round
// online protocol. Presignatures serve only the root key: combining them
// with additive derivation weakens ECDSA (Groth and Shoup, Eurocrypt 2022),
// so derived keys take the full sign.
func (e *Engine) signPresigned(ctx context.Context, spec SessionSpec, parties []PartyID, ks *keyState, req SignRequest) (Signature, error) {
	if len(req.Path) > 0 {
		return Signature{}, fmt.Errorf("%w: presignatures sign only the root key", ErrInvalidRequest)
	}
	ps, err := e.takePresig(req.Key, parties, req.Epoch, req.Presignature)
	if err != nil {
		return Signature{}, err
	}
	// One line per consumption, with the presignature's public ID (its
	// presign session's ID): the record that lets an operator or a test
	// check that no presignature was ever used twice.
	e.log.Info("presignature consumed", "key", req.Key.String(), "epoch", req.Epoch,
		"presignature", req.Presignature.String(), "session", spec.ID.String())
	start := cmp.PresignOnline(ks.cmp, ps.ps, req.Digest, nil)
	res, err := e.runSession(ctx, OpSignPresigned, spec, parties, start)
	if err != nil {
		return Signature{}, err
	}
	return e.finishECDSA(OpSignPresigned, spec.ID, res, ks.cmp)
}

func (e *Engine) finishECDSA(op Op, id SessionID, res any, cfg *cmp.Config) (Signature, error) {
	sig, ok := res.(*ecdsa.Signature)
	if !ok {
		return Signature{}, sessionErr(op, id, errBadResult)
	}
	pub, err := cfg.PublicPoint().MarshalBinary()
	if err != nil {
		return Signature{}, sessionErr(op, id, err)
	}
	out, err := ecdsaSignature(sig, pub)
	if err != nil {
		return Signature{}, sessionErr(op, id, err)
	}
	return out, nil
}

// FROSTKeygen runs FROST Taproot key generation among spec.Parties, with
// threshold (2 to n) parties needed to sign. The key's ID is the session
// ID. The key is returned once stored.
func (e *Engine) FROSTKeygen(ctx context.Context, spec SessionSpec, threshold int) (KeyInfo, error) {
	parties, err := checkKeygen(spec, e.self, threshold)
	if err != nil {
		return KeyInfo{}, err
	}
	start := frost.KeygenTaproot(toLibID(e.self), toLib(parties), threshold-1)
	res, err := e.runSession(ctx, OpFROSTKeygen, spec, parties, start)
	if err != nil {
		return KeyInfo{}, err
	}
	cfg, ok := res.(*frost.TaprootConfig)
	if !ok {
		return KeyInfo{}, sessionErr(OpFROSTKeygen, spec.ID, errBadResult)
	}
	rec, err := taprootRecord(KeyID(spec.ID), 0, cfg)
	if err != nil {
		return KeyInfo{}, err
	}
	return e.storeKey(ctx, rec, &keyState{tap: cfg})
}

func (e *Engine) signTaproot(ctx context.Context, spec SessionSpec, parties []PartyID, ks *keyState, req SignRequest) (Signature, error) {
	cfg, err := deriveTaproot(ks.sessionTaproot(), req.Path)
	if err != nil {
		return Signature{}, err
	}
	start := frost.SignTaproot(cfg, toLib(parties), req.Digest)
	res, err := e.runSession(ctx, OpFROSTSign, spec, parties, start)
	if err != nil {
		return Signature{}, err
	}
	sig, ok := res.(taproot.Signature)
	if !ok {
		return Signature{}, sessionErr(OpFROSTSign, spec.ID, errBadResult)
	}
	out, err := taprootSignature(sig, cfg.PublicKey)
	if err != nil {
		return Signature{}, sessionErr(OpFROSTSign, spec.ID, err)
	}
	return out, nil
}
