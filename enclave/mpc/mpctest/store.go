package mpctest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
)

// Failure modes for MemStore.PutKey.
type Failure int

const (
	// NoFailure stores normally.
	NoFailure Failure = iota
	// FailBefore returns an error without storing.
	FailBefore
	// FailAfter stores, then returns an error (durability unknown to the
	// caller).
	FailAfter
)

// ErrInjected is the error returned by an injected failure.
var ErrInjected = errors.New("mpctest: injected store failure")

// MemStore is an in-memory mpc.Store. It enforces the epoch rule of the
// Store contract and records violations instead of hiding them.
type MemStore struct {
	mu         sync.Mutex
	recs       map[mpc.KeyID]mpc.KeyRecord
	fail       Failure
	puts       int
	violations []string
}

// NewMemStore returns an empty store.
func NewMemStore() *MemStore {
	return &MemStore{recs: map[mpc.KeyID]mpc.KeyRecord{}}
}

// Clone returns an independent copy of s's records.
func (s *MemStore) Clone() *MemStore {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := NewMemStore()
	for k, r := range s.recs {
		c.recs[k] = r.Clone()
	}
	return c
}

// SetFailure makes later PutKey calls fail as f says.
func (s *MemStore) SetFailure(f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = f
}

// Puts counts successful and failed-after PutKey calls that stored.
func (s *MemStore) Puts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.puts
}

// Violations lists contract violations seen (e.g. an epoch going back).
func (s *MemStore) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

// PutKey implements mpc.Store.
func (s *MemStore) PutKey(ctx context.Context, rec mpc.KeyRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail == FailBefore {
		return ErrInjected
	}
	if old, ok := s.recs[rec.Key]; ok && old.Epoch >= rec.Epoch {
		s.violations = append(s.violations, fmt.Sprintf("key %s: epoch %d after %d", rec.Key, rec.Epoch, old.Epoch))
		return fmt.Errorf("mpctest: key %s: epoch %d is not newer than %d", rec.Key, rec.Epoch, old.Epoch)
	}
	s.recs[rec.Key] = rec.Clone()
	s.puts++
	if s.fail == FailAfter {
		return ErrInjected
	}
	return nil
}

// GetKey implements mpc.Store.
func (s *MemStore) GetKey(ctx context.Context, key mpc.KeyID) (mpc.KeyRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.recs[key]
	if !ok {
		return mpc.KeyRecord{}, fmt.Errorf("key %s: %w", key, mpc.ErrKeyNotFound)
	}
	return rec.Clone(), nil
}
