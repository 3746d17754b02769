package attestation

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"maps"
	"slices"
	"time"
)

// MaxFutureSkew is how far in the future of the caller's clock a document's
// timestamp may be when a [Policy] sets MaxAge.
const MaxFutureSkew = time.Minute

// Policy says which verified documents are acceptable. The zero Policy
// refuses debug-mode enclaves and accepts any other verified document: set
// PCRs to pin the enclave image.
type Policy struct {
	// PCRs maps a PCR index (0..31) to its expected value (32, 48 or 64
	// bytes). Every listed PCR must be present and equal; unlisted ones are
	// not checked.
	PCRs map[int][]byte

	// AllowDebug accepts documents from debug-mode enclaves (PCR0, PCR1
	// and PCR2 all zero). Never set it in production.
	AllowDebug bool

	// Nonce, UserData and PublicKey check the optional fields. A nil
	// Matcher accepts anything.
	Nonce, UserData, PublicKey Matcher

	// MaxAge, when positive, refuses documents whose timestamp is older
	// than now-MaxAge or later than now+MaxFutureSkew.
	MaxAge time.Duration
}

// Check reports whether doc is acceptable at time now (used only when MaxAge
// is set; Check never reads the clock). It returns nil or an error wrapping
// [ErrPolicy]. The checks, in order:
//
//  1. The policy itself is valid (PCR indexes and sizes, MaxAge >= 0).
//  2. doc was returned by [Verify].
//  3. doc is not from a debug-mode enclave, unless AllowDebug ([ErrDebug]).
//  4. Each PCR of the policy, by ascending index, is present in doc and
//     equal, compared in constant time ([ErrPCRMismatch]).
//  5. The PublicKey, UserData and Nonce matchers accept their fields
//     ([ErrFieldMismatch]).
//  6. With MaxAge > 0: now is set, and now-MaxAge <= doc.Timestamp <=
//     now+MaxFutureSkew ([ErrStale]).
func (p Policy) Check(doc *Document, now time.Time) error {
	if err := p.validate(); err != nil {
		return err
	}
	if doc == nil || !doc.verified {
		return fmt.Errorf("%w: document was not returned by Verify", ErrPolicy)
	}
	if doc.IsDebug() && !p.AllowDebug {
		return ErrDebug
	}
	if err := p.checkPCRs(doc); err != nil {
		return err
	}
	if err := p.checkFields(doc); err != nil {
		return err
	}
	return p.checkAge(doc, now)
}

func (p Policy) validate() error {
	for i, v := range p.PCRs {
		if i < 0 || i >= maxPCRs || !validPCRSize(len(v)) {
			return fmt.Errorf("%w: invalid policy: PCR%d", ErrPolicy, i)
		}
	}
	if p.MaxAge < 0 {
		return fmt.Errorf("%w: invalid policy: negative MaxAge", ErrPolicy)
	}
	return nil
}

func (p Policy) checkPCRs(doc *Document) error {
	for _, i := range slices.Sorted(maps.Keys(p.PCRs)) {
		got, ok := doc.PCRs[i]
		if !ok || subtle.ConstantTimeCompare(got, p.PCRs[i]) != 1 {
			return fmt.Errorf("%w: PCR%d", ErrPCRMismatch, i)
		}
	}
	return nil
}

func (p Policy) checkFields(doc *Document) error {
	fields := []struct {
		name  string
		match Matcher
		value []byte
	}{
		{"public_key", p.PublicKey, doc.PublicKey},
		{"user_data", p.UserData, doc.UserData},
		{"nonce", p.Nonce, doc.Nonce},
	}
	for _, f := range fields {
		// The matcher gets a copy: it cannot alter the document.
		if f.match != nil && !f.match(bytes.Clone(f.value)) {
			return fmt.Errorf("%w: %s", ErrFieldMismatch, f.name)
		}
	}
	return nil
}

func (p Policy) checkAge(doc *Document, now time.Time) error {
	if p.MaxAge == 0 {
		return nil
	}
	if now.IsZero() {
		return fmt.Errorf("%w: MaxAge is set but no time was given", ErrPolicy)
	}
	age := now.Sub(doc.Timestamp)
	if age > p.MaxAge {
		return fmt.Errorf("%w: older than %v", ErrStale, p.MaxAge)
	}
	if age < -MaxFutureSkew {
		return fmt.Errorf("%w: timestamp more than %v in the future", ErrStale, MaxFutureSkew)
	}
	return nil
}

// A Matcher decides whether an optional field (public_key, user_data or
// nonce) is acceptable. It receives nil when the field is absent (CBOR null)
// and a non-nil slice, possibly empty, when it is present.
type Matcher func(field []byte) bool

// Equal matches a present field equal to want, compared in constant time.
// Equal(nil) matches a present, empty field.
func Equal(want []byte) Matcher {
	want = bytes.Clone(want)
	return func(got []byte) bool {
		return got != nil && subtle.ConstantTimeCompare(got, want) == 1
	}
}

// Absent matches an absent field.
func Absent() Matcher {
	return func(got []byte) bool { return got == nil }
}

// Func matches what f accepts. Func(nil) matches nothing, so that a missing
// function fails closed.
func Func(f func(field []byte) bool) Matcher {
	if f == nil {
		return func([]byte) bool { return false }
	}
	return f
}
