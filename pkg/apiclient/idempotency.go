package apiclient

import (
	"crypto/rand"
	"fmt"
)

// MaxIdempotencyKey is the longest idempotency key the API accepts.
const MaxIdempotencyKey = 128

// NewIdempotencyKey returns a random UUID (version 4), a good idempotency
// key for a call that changes state (see proto/cosigner/v1/common.proto).
func NewIdempotencyKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// ValidIdempotencyKey reports whether k is 1 to MaxIdempotencyKey
// printable ASCII characters (0x21 to 0x7e), as the API requires.
func ValidIdempotencyKey(k string) bool {
	if len(k) == 0 || len(k) > MaxIdempotencyKey {
		return false
	}
	for i := range len(k) {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}
