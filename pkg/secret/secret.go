// Package secret holds secret bytes (key shares, data keys, private keys) so
// that they cannot be printed, logged or compared by accident.
//
// A Bytes value redacts itself in every fmt verb, in String, GoString,
// slog's LogValue, JSON and text encoding; it cannot be compared with ==
// (it is a struct holding a slice), only with Equal, which runs in constant
// time. Reveal hands out the bytes to the code that must use them; that code
// must not keep, print or wrap them in an error.
//
// Wipe zeroes the bytes it holds. Go cannot promise that no other copy
// exists (the garbage collector may have moved or copied them), so wiping is
// hygiene that shortens a secret's life, not a guarantee.
package secret

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
)

// redacted is what a secret prints as, whatever the verb.
const redacted = "[REDACTED]"

// Bytes is a secret byte string. The zero value is an empty secret.
type Bytes struct {
	b []byte
}

// New returns a secret holding a copy of b. The caller should wipe b if it
// no longer needs it.
func New(b []byte) Bytes {
	return Bytes{b: append([]byte(nil), b...)}
}

// Reveal returns the secret bytes themselves, not a copy. Do not keep them
// past the Bytes value's life, print them, or put them in an error.
func (s Bytes) Reveal() []byte { return s.b }

// Len returns the secret's length in bytes. The length is not secret.
func (s Bytes) Len() int { return len(s.b) }

// Equal reports whether s and o hold the same bytes, in time that depends
// only on their lengths.
func (s Bytes) Equal(o Bytes) bool {
	return subtle.ConstantTimeCompare(s.b, o.b) == 1
}

// Wipe overwrites the secret with zeros. Every copy of this Bytes value
// shares the same backing array, so all of them read zeros afterwards.
func (s Bytes) Wipe() { clear(s.b) }

// String implements fmt.Stringer and never shows the secret.
func (s Bytes) String() string { return redacted }

// GoString implements fmt.GoStringer (%#v) and never shows the secret.
func (s Bytes) GoString() string { return "secret.Bytes" + redacted }

// Format implements fmt.Formatter so that no verb (%x, %d, %q, ...) can
// reach the bytes.
func (s Bytes) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, s.GoString())
		return
	}
	fmt.Fprint(f, redacted)
}

// LogValue implements slog.LogValuer.
func (s Bytes) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText implements encoding.TextMarshaler; it also makes encoding/json
// write the redacted form instead of base64 bytes.
func (s Bytes) MarshalText() ([]byte, error) { return []byte(redacted), nil }
