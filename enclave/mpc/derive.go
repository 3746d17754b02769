package mpc

import (
	"context"
	"fmt"
	"slices"

	"github.com/taurusgroup/multi-party-sig/protocols/cmp"
	"github.com/taurusgroup/multi-party-sig/protocols/frost"
)

// hardened is the first hardened BIP-32 index. Hardened derivation needs
// the whole private key, which no party has.
const hardened = 1 << 31

// DerivedKey is a key derived from a stored key along a BIP-32 path.
type DerivedKey struct {
	// PublicKey is SEC1 compressed (ECDSA) or 32-byte x-only (Taproot).
	PublicKey []byte
	ChainCode []byte
}

// checkPath rejects hardened elements (the library would panic on them)
// and over-deep paths.
func checkPath(path []uint32) error {
	if len(path) > MaxPathDepth {
		return fmt.Errorf("%w: path deeper than %d", ErrInvalidRequest, MaxPathDepth)
	}
	for _, i := range path {
		if i >= hardened {
			return fmt.Errorf("%w: hardened path element %d", ErrInvalidRequest, i)
		}
	}
	return nil
}

// deriveCMP applies non-hardened BIP-32 derivation to every share of cfg.
// The library adds the same tweak to each share, so each party derives on
// its own and the derived shares still combine.
func deriveCMP(cfg *cmp.Config, path []uint32) (*cmp.Config, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	for _, i := range path {
		next, err := cfg.DeriveBIP32(i)
		if err != nil {
			return nil, fmt.Errorf("%w: path element %d gives no valid key", ErrInvalidRequest, i)
		}
		cfg = next
	}
	return cfg, nil
}

// deriveTaproot is deriveCMP for FROST Taproot shares: the x-only key is
// read with an even Y, and shares are negated when the child's Y is odd.
func deriveTaproot(cfg *frost.TaprootConfig, path []uint32) (*frost.TaprootConfig, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	for _, i := range path {
		next, err := cfg.DeriveChild(i)
		if err != nil {
			return nil, fmt.Errorf("%w: path element %d gives no valid key", ErrInvalidRequest, i)
		}
		cfg = next
	}
	return cfg, nil
}

// DeriveKey returns the public key and chain code at path below key,
// computed locally from this party's copy: no session, no peer.
func (e *Engine) DeriveKey(ctx context.Context, key KeyID, path []uint32) (DerivedKey, error) {
	ks, err := e.loadKey(ctx, key)
	if err != nil {
		return DerivedKey{}, err
	}
	if ks.tap != nil {
		return derivedTaproot(ks.tap, path)
	}
	return derivedCMP(ks.cmp, path)
}

func derivedCMP(cfg *cmp.Config, path []uint32) (DerivedKey, error) {
	d, err := deriveCMP(cfg, path)
	if err != nil {
		return DerivedKey{}, err
	}
	pub, err := d.PublicPoint().MarshalBinary()
	if err != nil {
		return DerivedKey{}, fmt.Errorf("marshalling derived key: %w", err)
	}
	return DerivedKey{PublicKey: pub, ChainCode: slices.Clone(d.ChainKey)}, nil
}

func derivedTaproot(cfg *frost.TaprootConfig, path []uint32) (DerivedKey, error) {
	d, err := deriveTaproot(cfg, path)
	if err != nil {
		return DerivedKey{}, err
	}
	return DerivedKey{PublicKey: slices.Clone(d.PublicKey), ChainCode: slices.Clone(d.ChainKey)}, nil
}
