package api

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
)

// Limits on request fields, from the .proto comments.
const (
	MaxIdempotencyKeyLen = 128 // bytes of printable ASCII
	MaxNoteLen           = 256 // bytes of UTF-8
	MaxDisplayNameLen    = 128 // bytes of UTF-8
	MaxNonceLen          = 64
	MaxPartyIDLen        = 64 // bytes of printable ASCII
	MaxPolicyDocumentLen = 256 << 10
	DefaultPageSize      = 100
	MaxPageSize          = 1000
	DefaultMaxWait       = 30 * time.Second
	MaxMaxWait           = 120 * time.Second
	maxSignatureLen      = 256 // an approval's signature; Ed25519 is 64, ECDSA DER at most 72
	maxPathIndex         = 1<<31 - 1
)

const (
	keyNamePrefix       = "keys/"
	operationNamePrefix = "signOperations/"
	operationIDHexLen   = 32
)

// keyName is the resource name of a key.
func keyName(id mpc.KeyID) string { return keyNamePrefix + id.String() }

// parseKeyName parses "keys/{64 lower-case hex digits}". field names the
// request field in the error.
func parseKeyName(field, s string) (mpc.KeyID, error) {
	var id mpc.KeyID
	b, ok := lowerHex(strings.CutPrefix(s, keyNamePrefix))
	if !ok || len(b) != len(id) {
		return id, invalid(field, `must be "keys/" and 64 lower-case hex digits`)
	}
	copy(id[:], b)
	return id, nil
}

// operationName is the resource name of a sign operation whose ID is 32
// lower-case hex digits.
func operationName(id string) string { return operationNamePrefix + id }

// parseOperationName parses "signOperations/{32 lower-case hex digits}"
// and returns the operation ID.
func parseOperationName(field, s string) (string, error) {
	b, ok := lowerHex(strings.CutPrefix(s, operationNamePrefix))
	if !ok || len(b) != operationIDHexLen/2 {
		return "", invalid(field, `must be "signOperations/" and 32 lower-case hex digits`)
	}
	return hex.EncodeToString(b), nil
}

// lowerHex decodes s if ok and s is lower-case hex.
func lowerHex(s string, ok bool) ([]byte, bool) {
	if !ok || len(s)%2 != 0 {
		return nil, false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return nil, false
		}
	}
	b, err := hex.DecodeString(s)
	return b, err == nil
}

// checkPath checks a non-hardened BIP-32 path: at most 255 indices, each
// below 2^31.
func checkPath(field string, path []uint32) error {
	if len(path) > mpc.MaxPathDepth {
		return invalid(field, "at most 255 indices")
	}
	for _, i := range path {
		if i > maxPathIndex {
			return invalid(field, "indices must be below 2^31 (non-hardened)")
		}
	}
	return nil
}

// checkText checks free text: at most max bytes of UTF-8 without control
// characters.
func checkText(field, s string, max int) error {
	if len(s) > max || !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return invalid(field, "too long, not UTF-8, or has control characters")
	}
	return nil
}

// printableASCII reports whether s is 1 to max bytes, each 0x21 to 0x7e.
func printableASCII(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := range len(s) {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// checkIdempotencyKey checks a mutating request's idempotency_key.
func checkIdempotencyKey(s string) error {
	if !printableASCII(s, MaxIdempotencyKeyLen) {
		return invalid("idempotency_key", "required: 1 to 128 printable ASCII characters")
	}
	return nil
}

// pageSize applies ListKeys' paging rule: 0 means the default, more than
// the maximum is an error.
func pageSize(n int32) (int, error) {
	switch {
	case n == 0:
		return DefaultPageSize, nil
	case n < 0 || n > MaxPageSize:
		return 0, invalid("page_size", "0 to 1000")
	}
	return int(n), nil
}

// pageTokenVersion starts every page token, so that the format can change.
const pageTokenVersion = 1

var tokenEncoding = base64.RawURLEncoding.Strict()

// pageToken is the opaque token for the page after the key id: the
// unpadded URL-safe base64 of a version byte and the key ID.
func pageToken(id mpc.KeyID) string {
	return tokenEncoding.EncodeToString(append([]byte{pageTokenVersion}, id[:]...))
}

// parsePageToken parses a token made by pageToken; "" means the first page
// (nil).
func parsePageToken(s string) (*mpc.KeyID, error) {
	if s == "" {
		return nil, nil
	}
	var id mpc.KeyID
	b, err := tokenEncoding.DecodeString(s)
	if err != nil || len(b) != 1+len(id) || b[0] != pageTokenVersion {
		return nil, invalid("page_token", "not a token from a previous response")
	}
	copy(id[:], b[1:])
	return &id, nil
}

// maxWait applies Sign's max_wait rule: unset or 0 means 30 s, at most
// 120 s.
func maxWait(d *durationpb.Duration) (time.Duration, error) {
	if d == nil {
		return DefaultMaxWait, nil
	}
	if d.CheckValid() != nil || d.AsDuration() < 0 || d.AsDuration() > MaxMaxWait {
		return 0, invalid("max_wait", "0 to 120 s")
	}
	if d.AsDuration() == 0 {
		return DefaultMaxWait, nil
	}
	return d.AsDuration(), nil
}

// checkNonce checks an attestation nonce: 1 to 64 bytes.
func checkNonce(n []byte) error {
	if len(n) == 0 || len(n) > MaxNonceLen {
		return invalid("nonce", "1 to 64 bytes")
	}
	return nil
}
