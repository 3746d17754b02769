package sealed

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/kms"
)

// The wrapped key object, version 1:
//
//	magic "NCWK" | version 0x01 | field | field | field
//	field = u16 length (big-endian) | bytes
//
// with the fields, in order: the KMS key ID, the cosigner ID, and KMS's
// CiphertextBlob. Nothing follows the last field.
//
// Nothing in it is secret. Its header is not MACed: on reading, both IDs
// must equal the Config's, and the Config's are what KMS itself binds —
// the key ID by Decrypt's KeyId, the cosigner ID by the encryption context
// — so an altered header is refused before KMS is asked, and an altered
// blob is refused by KMS. The header turns a misconfiguration (another
// key, another cosigner) into a clear error instead of an opaque KMS
// refusal.
const (
	wrappedMagic   = "NCWK"
	wrappedVersion = 1
	// maxKeyIDSize bounds the KMS key ID (an alias ARN is at most 2048).
	maxKeyIDSize = 2048
	// maxWrappedObjectSize bounds the object read from S3.
	maxWrappedObjectSize = len(wrappedMagic) + 1 + 3*2 + maxKeyIDSize + kms.MaxCosignerIDSize + kms.MaxWrappedKeySize
)

// wrappedKey is the decoded wrapped key object.
type wrappedKey struct {
	KeyID      string
	CosignerID string
	Blob       []byte
}

// errMalformed is the one error for every object that does not decode.
var errMalformed = errors.New("malformed wrapped key object")

// encode returns the object's bytes.
func (w wrappedKey) encode() ([]byte, error) {
	if err := w.checkSizes(); err != nil {
		return nil, err
	}
	b := append([]byte(wrappedMagic), wrappedVersion)
	for _, f := range [][]byte{[]byte(w.KeyID), []byte(w.CosignerID), w.Blob} {
		b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
		b = append(b, f...)
	}
	return b, nil
}

func (w wrappedKey) checkSizes() error {
	switch {
	case w.KeyID == "" || len(w.KeyID) > maxKeyIDSize:
		return fmt.Errorf("%w: KMS key ID must be 1 to %d bytes", ErrConfig, maxKeyIDSize)
	case w.CosignerID == "" || len(w.CosignerID) > kms.MaxCosignerIDSize:
		return fmt.Errorf("%w: cosigner ID must be 1 to %d bytes", ErrConfig, kms.MaxCosignerIDSize)
	case len(w.Blob) == 0 || len(w.Blob) > kms.MaxWrappedKeySize:
		return fmt.Errorf("sealed: wrapped key must be 1 to %d bytes", kms.MaxWrappedKeySize)
	}
	return nil
}

// decodeWrapped parses an object. It returns errMalformed for anything
// that is not exactly one version-1 encoding, and nothing with an error.
func decodeWrapped(b []byte) (wrappedKey, error) {
	rest, ok := cutPrefix(b, append([]byte(wrappedMagic), wrappedVersion))
	if !ok {
		return wrappedKey{}, errMalformed
	}
	var fields [3][]byte
	for i := range fields {
		fields[i], rest, ok = cutField(rest)
		if !ok {
			return wrappedKey{}, errMalformed
		}
	}
	w := wrappedKey{KeyID: string(fields[0]), CosignerID: string(fields[1]), Blob: fields[2]}
	if len(rest) != 0 || w.checkSizes() != nil {
		return wrappedKey{}, errMalformed
	}
	return w, nil
}

func cutPrefix(b, prefix []byte) ([]byte, bool) {
	if len(b) < len(prefix) || string(b[:len(prefix)]) != string(prefix) {
		return nil, false
	}
	return b[len(prefix):], true
}

// cutField splits a length-prefixed field off b, copying it.
func cutField(b []byte) (field, rest []byte, ok bool) {
	if len(b) < 2 {
		return nil, nil, false
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b)-2 < n {
		return nil, nil, false
	}
	return append([]byte(nil), b[2:2+n]...), b[2+n:], true
}

// matches checks a decoded object against the configuration. The message
// names the configured values only, never the stored (untrusted) ones.
func (w wrappedKey) matches(c Config) error {
	if w.CosignerID != c.CosignerID {
		return fmt.Errorf("%w: the wrapped key at %s%s belongs to another cosigner than %q",
			ErrConfig, c.location(), wrappedKeyName, c.CosignerID)
	}
	if w.KeyID != c.KMSKeyID {
		return fmt.Errorf("%w: the wrapped key at %s%s was made with another KMS key than %q "+
			"(the key identifier must be spelled as at init)", ErrConfig, c.location(), wrappedKeyName, c.KMSKeyID)
	}
	return nil
}
