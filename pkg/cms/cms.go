package cms

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
)

// Limits.
const (
	// MaxSize is the largest encoded EnvelopedData that Parse and Decrypt
	// accept. KMS's are about 0.5 KiB (plaintexts are at most 4 KiB).
	MaxSize = 64 * 1024

	// MaxPlaintextSize is the largest plaintext Encrypt accepts; its output
	// stays well below MaxSize.
	MaxPlaintextSize = 32 * 1024

	// SKISize is the size of the recipient identifier: a SHA-256.
	SKISize = sha256.Size

	// IVSize is the AES-CBC IV size.
	IVSize = 16

	// maxEncryptedKeySize is the RSA-OAEP output of a 4096-bit key.
	maxEncryptedKeySize = 512

	contentKeySize = 32 // AES-256
	blockSize      = 16 // AES
)

var (
	// ErrMalformed means the input is not the EnvelopedData shape KMS
	// emits: bad BER, a wrong structure, an unsupported algorithm or
	// parameter, or an input over MaxSize.
	ErrMalformed = errors.New("cms: malformed or unsupported EnvelopedData")

	// ErrDecrypt is the single error for every decryption failure: the
	// message is not for this key, or its key or content does not decrypt.
	ErrDecrypt = errors.New("cms: message cannot be decrypted with this key")
)

func malformed(what string) error {
	return fmt.Errorf("%w: %s", ErrMalformed, what)
}

// Object identifiers, as DER content octets.
var (
	oidEnvelopedData = mustHex("2a864886f70d010703") // 1.2.840.113549.1.7.3
	oidData          = mustHex("2a864886f70d010701") // 1.2.840.113549.1.7.1
	oidAES256CBC     = mustHex("60864801650304012a") // 2.16.840.1.101.3.4.1.42
	oidRSAESOAEP     = mustHex("2a864886f70d010107") // 1.2.840.113549.1.1.7
	oidMGF1          = mustHex("2a864886f70d010108") // 1.2.840.113549.1.1.8
	oidSHA256        = mustHex("608648016503040201") // 2.16.840.1.101.3.4.2.1
)

// oaepSHA256AlgID is the key-encryption AlgorithmIdentifier byte for byte
// as KMS emits it (see testdata):
//
//	AlgorithmIdentifier {
//	  rsaesOaep,
//	  RSAES-OAEP-params {
//	    [0] hashFunc    { sha256, NULL },
//	    [1] maskGenFunc { mgf1, { sha256, NULL } }
//	    -- pSourceFunc absent: the empty label
//	  }
//	}
var oaepSHA256AlgID = mustHex("303c06092a864886f70d010107302f" +
	"a00f300d06096086480165030402010500" +
	"a11c301a06092a864886f70d010108300d06096086480165030402010500")

// oaepSHA256AlgIDs are the encodings of that same algorithm that Parse
// accepts: RFC 4055 section 2.1 requires accepting the sha256 parameters
// both as NULL (KMS) and absent (OpenSSL), independently for the hash and
// the MGF. Every other algorithm or parameter is refused.
var oaepSHA256AlgIDs = [][]byte{
	oaepAlgID(true, true), oaepAlgID(true, false),
	oaepAlgID(false, true), oaepAlgID(false, false),
}

func oaepAlgID(hashNULL, mgfNULL bool) []byte {
	params := concat(
		tlv(idContext0C, sha256AlgID(hashNULL)),
		tlv(idContext1C, tlv(idSequence, concat(tlv(idOID, oidMGF1), sha256AlgID(mgfNULL)))),
	)
	return tlv(idSequence, concat(tlv(idOID, oidRSAESOAEP), tlv(idSequence, params)))
}

func sha256AlgID(withNULL bool) []byte {
	if withNULL {
		return tlv(idSequence, concat(tlv(idOID, oidSHA256), tlv(idNull, nil)))
	}
	return tlv(idSequence, tlv(idOID, oidSHA256))
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic("cms: bad hex constant")
	}
	return b
}

// EnvelopedData holds the parts of a KMS CiphertextForRecipient. The
// fields alias the input passed to Parse.
type EnvelopedData struct {
	// RecipientSKI is the rid: SHA-256 of the recipient's SPKI DER.
	RecipientSKI []byte
	// EncryptedKey is the RSA-OAEP-wrapped AES-256 content key.
	EncryptedKey []byte
	// IV is the AES-CBC initialisation vector (IVSize bytes).
	IV []byte
	// EncryptedContent is the AES-256-CBC ciphertext, chunks joined.
	EncryptedContent []byte
}

// SubjectKeyID returns the recipient identifier KMS uses for pub: the
// SHA-256 of its SubjectPublicKeyInfo DER.
func SubjectKeyID(pub *rsa.PublicKey) ([]byte, error) {
	if pub == nil {
		return nil, errors.New("cms: nil public key")
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("cms: encoding public key: %w", err)
	}
	sum := sha256.Sum256(spki)
	return sum[:], nil
}

// Equal reports whether e and o hold the same parts. It is for tests and
// compares in variable time: none of the parts is secret.
func (e *EnvelopedData) Equal(o *EnvelopedData) bool {
	return bytes.Equal(e.RecipientSKI, o.RecipientSKI) &&
		bytes.Equal(e.EncryptedKey, o.EncryptedKey) &&
		bytes.Equal(e.IV, o.IV) &&
		bytes.Equal(e.EncryptedContent, o.EncryptedContent)
}
