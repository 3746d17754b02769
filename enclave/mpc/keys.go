package mpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/fxamacker/cbor/v2"
	"github.com/taurusgroup/multi-party-sig/pkg/math/curve"
	"github.com/taurusgroup/multi-party-sig/pkg/party"
	"github.com/taurusgroup/multi-party-sig/pkg/taproot"
	"github.com/taurusgroup/multi-party-sig/protocols/cmp"
	"github.com/taurusgroup/multi-party-sig/protocols/frost"
)

// keyState is a decoded key held in memory. It prints redacted.
type keyState struct {
	redactor
	meta KeyRecord // Share is nil: the decoded config below replaces it
	cmp  *cmp.Config
	tap  *frost.TaprootConfig
}

var errCorruptKey = errors.New("mpc: stored key is inconsistent")

// decodeKey parses and cross-checks a stored record.
func decodeKey(rec KeyRecord) (*keyState, error) {
	var ks *keyState
	var err error
	switch rec.Scheme {
	case SchemeECDSA:
		ks, err = decodeCMP(rec)
	case SchemeTaproot:
		ks, err = decodeTaproot(rec)
	default:
		err = fmt.Errorf("%w: unknown scheme", errCorruptKey)
	}
	if err != nil {
		return nil, fmt.Errorf("decoding key %s: %w", rec.Key, err)
	}
	return ks, nil
}

func decodeCMP(rec KeyRecord) (*keyState, error) {
	cfg := cmp.EmptyConfig(curve.Secp256k1{})
	if err := cfg.UnmarshalBinary(rec.Share); err != nil {
		return nil, errCorruptKey // the library's text may quote share bytes
	}
	got, err := cmpRecord(rec.Key, rec.Epoch, cfg)
	if err != nil {
		return nil, err
	}
	if err := sameMeta(rec, got); err != nil {
		return nil, err
	}
	return &keyState{meta: metaOnly(rec), cmp: cfg}, nil
}

// cmpRecord builds the record for a CMP config.
func cmpRecord(key KeyID, epoch uint64, cfg *cmp.Config) (KeyRecord, error) {
	share, err := cfg.MarshalBinary()
	if err != nil {
		return KeyRecord{}, fmt.Errorf("marshalling CMP config: %w", err)
	}
	pub, err := cfg.PublicPoint().MarshalBinary()
	if err != nil {
		return KeyRecord{}, fmt.Errorf("marshalling public key: %w", err)
	}
	return KeyRecord{
		Key: key, Scheme: SchemeECDSA, Epoch: epoch, Threshold: cfg.Threshold + 1,
		Parties: fromLib(cfg.PartyIDs()), Self: PartyID(cfg.ID),
		PublicKey: pub, ChainCode: slices.Clone(cfg.ChainKey), Share: share,
	}, nil
}

// sessionCMP returns a private deep copy of the key's CMP config for one
// presign, full sign or refresh session. The library's big numbers
// (saferith.Nat) rewrite their own limbs when compared, so two sessions
// using one config race (the race detector caught it in concurrent
// presigns). A copy costs about 6 ms, under 0.5 % of those operations. The
// online sign only reads the config and uses the shared one.
func (ks *keyState) sessionCMP() (*cmp.Config, error) {
	b, err := ks.cmp.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("copying CMP config: %w", err)
	}
	defer clear(b)
	cfg := cmp.EmptyConfig(curve.Secp256k1{})
	if err := cfg.UnmarshalBinary(b); err != nil {
		return nil, errCorruptKey
	}
	return cfg, nil
}

// sessionTaproot returns a private deep copy of the key's FROST config for
// one sign session. The library normalises points in place (ToAffine in
// Equal, XBytes, HasEvenY), so sessions must not share them. Copying a few
// points costs nanoseconds.
func (ks *keyState) sessionTaproot() *frost.TaprootConfig {
	src := ks.tap
	cfg := &frost.TaprootConfig{
		ID: src.ID, Threshold: src.Threshold,
		PrivateShare:       curve.Secp256k1{}.NewScalar().Set(src.PrivateShare).(*curve.Secp256k1Scalar),
		PublicKey:          slices.Clone(src.PublicKey),
		ChainKey:           slices.Clone(src.ChainKey),
		VerificationShares: make(map[party.ID]*curve.Secp256k1Point, len(src.VerificationShares)),
	}
	for id, p := range src.VerificationShares {
		cfg.VerificationShares[id] = new(curve.Secp256k1Point).Set(p).(*curve.Secp256k1Point)
	}
	return cfg
}

// taprootShare is the stored form of a FROST Taproot config, which the
// library does not marshal itself.
type taprootShare struct {
	Version            int
	ID                 string
	Threshold          int
	PrivateShare       []byte
	PublicKey          []byte
	ChainKey           []byte
	VerificationShares map[string][]byte
}

const taprootShareVersion = 1

var encMode = mustEncMode()

func mustEncMode() cbor.EncMode {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err) // static options; unreachable
	}
	return em
}

func taprootRecord(key KeyID, epoch uint64, cfg *frost.TaprootConfig) (KeyRecord, error) {
	share, err := encodeTaproot(cfg)
	if err != nil {
		return KeyRecord{}, err
	}
	ids := slices.Sorted(maps.Keys(cfg.VerificationShares))
	return KeyRecord{
		Key: key, Scheme: SchemeTaproot, Epoch: epoch, Threshold: cfg.Threshold + 1,
		Parties: fromLib(ids), Self: PartyID(cfg.ID),
		PublicKey: slices.Clone(cfg.PublicKey), ChainCode: slices.Clone(cfg.ChainKey), Share: share,
	}, nil
}

func encodeTaproot(cfg *frost.TaprootConfig) (Secret, error) {
	ts := taprootShare{
		Version: taprootShareVersion, ID: string(cfg.ID), Threshold: cfg.Threshold,
		PublicKey: cfg.PublicKey, ChainKey: cfg.ChainKey,
		VerificationShares: make(map[string][]byte, len(cfg.VerificationShares)),
	}
	var err error
	if ts.PrivateShare, err = cfg.PrivateShare.MarshalBinary(); err != nil {
		return nil, fmt.Errorf("marshalling FROST share: %w", err)
	}
	for id, p := range cfg.VerificationShares {
		if ts.VerificationShares[string(id)], err = p.MarshalBinary(); err != nil {
			return nil, fmt.Errorf("marshalling FROST verification share: %w", err)
		}
	}
	out, err := encMode.Marshal(&ts)
	clear(ts.PrivateShare)
	return out, err
}

func decodeTaproot(rec KeyRecord) (*keyState, error) {
	var ts taprootShare
	if err := decMode.Unmarshal(rec.Share, &ts); err != nil || ts.Version != taprootShareVersion {
		return nil, errCorruptKey
	}
	defer clear(ts.PrivateShare)
	cfg, err := taprootFromShare(ts)
	if err != nil {
		return nil, err
	}
	got, err := taprootRecord(rec.Key, rec.Epoch, cfg)
	if err != nil {
		return nil, err
	}
	if err := sameMeta(rec, got); err != nil {
		return nil, err
	}
	return &keyState{meta: metaOnly(rec), tap: cfg}, nil
}

func taprootFromShare(ts taprootShare) (*frost.TaprootConfig, error) {
	cfg := &frost.TaprootConfig{
		ID: party.ID(ts.ID), Threshold: ts.Threshold,
		PrivateShare: new(curve.Secp256k1Scalar),
		PublicKey:    taproot.PublicKey(ts.PublicKey), ChainKey: ts.ChainKey,
		VerificationShares: make(map[party.ID]*curve.Secp256k1Point, len(ts.VerificationShares)),
	}
	if cfg.PrivateShare.UnmarshalBinary(ts.PrivateShare) != nil || len(ts.PublicKey) != 32 {
		return nil, errCorruptKey
	}
	for id, b := range ts.VerificationShares {
		p := new(curve.Secp256k1Point)
		if p.UnmarshalBinary(b) != nil {
			return nil, errCorruptKey
		}
		cfg.VerificationShares[party.ID(id)] = p
	}
	own := cfg.VerificationShares[cfg.ID]
	if own == nil || !own.Equal(cfg.PrivateShare.ActOnBase()) {
		return nil, errCorruptKey
	}
	return cfg, nil
}

// sameMeta checks that a record's public fields match what its share says.
func sameMeta(stored, decoded KeyRecord) error {
	switch {
	case stored.Self != decoded.Self,
		stored.Threshold != decoded.Threshold,
		!slices.Equal(stored.Parties, decoded.Parties),
		!bytes.Equal(stored.PublicKey, decoded.PublicKey),
		!bytes.Equal(stored.ChainCode, decoded.ChainCode):
		return errCorruptKey
	}
	return nil
}

func metaOnly(rec KeyRecord) KeyRecord {
	rec = rec.Clone()
	rec.Share = nil
	return rec
}

// loadKey returns the key from the cache, or from the store.
func (e *Engine) loadKey(ctx context.Context, id KeyID) (*keyState, error) {
	e.keysMu.Lock()
	ks := e.keys[id]
	e.keysMu.Unlock()
	if ks != nil {
		return ks, nil
	}
	rec, err := e.store.GetKey(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("loading key %s: %w", id, err)
	}
	defer rec.Share.Wipe()
	if ks, err = decodeKey(rec); err != nil {
		return nil, err
	}
	return e.cacheKey(ks), nil
}

// cacheKey keeps ks unless a newer epoch is cached, and returns the one
// kept.
func (e *Engine) cacheKey(ks *keyState) *keyState {
	e.keysMu.Lock()
	defer e.keysMu.Unlock()
	if old := e.keys[ks.meta.Key]; old != nil && old.meta.Epoch >= ks.meta.Epoch {
		return old
	}
	e.keys[ks.meta.Key] = ks
	return ks
}

// storeKey makes rec durable, then caches its decoded form. The new shares
// are used only if the store accepted them.
func (e *Engine) storeKey(ctx context.Context, rec KeyRecord, ks *keyState) (KeyInfo, error) {
	defer rec.Share.Wipe()
	if err := e.store.PutKey(ctx, rec.Clone()); err != nil {
		return KeyInfo{}, fmt.Errorf("%w: key %s epoch %d: %w", ErrStore, rec.Key, rec.Epoch, err)
	}
	ks.meta = metaOnly(rec)
	e.cacheKey(ks)
	return rec.info(), nil
}

// Key returns the public description of a key.
func (e *Engine) Key(ctx context.Context, id KeyID) (KeyInfo, error) {
	ks, err := e.loadKey(ctx, id)
	if err != nil {
		return KeyInfo{}, err
	}
	return ks.meta.info(), nil
}
