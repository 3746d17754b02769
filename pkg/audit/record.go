package audit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
)

// Domain labels. Each is followed by one zero byte in the hashed or signed
// message, so that no two purposes share an input.
const (
	EntryHashLabel = "nitro-cosigner audit entry v1"
	SignatureLabel = "nitro-cosigner audit signature v1"
	EndLabel       = "nitro-cosigner audit export end v1"
)

// ErrSignature means a signature does not verify under the identity key.
var ErrSignature = errors.New("audit: signature does not verify")

// Signer signs with the enclave identity key.
type Signer interface {
	Public() ed25519.PublicKey
	Sign(msg []byte) []byte
}

// Record is a signed entry: the entry, its encoding, the encoding's hash
// and the identity key's signature over that hash.
type Record struct {
	Entry Entry
	Raw   []byte // Entry's canonical encoding
	Hash  [HashSize]byte
	Sig   []byte // Ed25519, over SignatureLabel || 0 || Hash
}

// Seal encodes e, hashes it and signs the hash. The returned Record's
// Entry is e as it decodes again (time cut to milliseconds, in UTC).
func Seal(e Entry, s Signer) (Record, error) {
	raw, err := e.Marshal()
	if err != nil {
		return Record{}, err
	}
	e, err = UnmarshalEntry(raw)
	if err != nil {
		return Record{}, err
	}
	h := EntryHash(raw)
	return Record{Entry: e, Raw: raw, Hash: h, Sig: s.Sign(signedMessage(h))}, nil
}

// Open decodes raw and checks sig over its hash with pub. It returns the
// Record, or an error wrapping ErrInvalid or ErrSignature, never both.
func Open(pub ed25519.PublicKey, raw, sig []byte) (Record, error) {
	e, err := UnmarshalEntry(raw)
	if err != nil {
		return Record{}, err
	}
	h := EntryHash(raw)
	if err := verifySig(pub, signedMessage(h), sig); err != nil {
		return Record{}, err
	}
	return Record{Entry: e, Raw: append([]byte(nil), raw...), Hash: h, Sig: append([]byte(nil), sig...)}, nil
}

// EntryHash returns SHA-256(EntryHashLabel || 0 || raw).
func EntryHash(raw []byte) [HashSize]byte {
	h := sha256.New()
	h.Write([]byte(EntryHashLabel))
	h.Write([]byte{0})
	h.Write(raw)
	var out [HashSize]byte
	h.Sum(out[:0])
	return out
}

func signedMessage(h [HashSize]byte) []byte {
	msg := make([]byte, 0, len(SignatureLabel)+1+HashSize)
	msg = append(msg, SignatureLabel...)
	msg = append(msg, 0)
	return append(msg, h[:]...)
}

func verifySig(pub ed25519.PublicKey, msg, sig []byte) error {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, msg, sig) {
		return ErrSignature
	}
	return nil
}

// NewEd25519Signer returns a Signer holding priv. It redacts itself when
// printed or logged. The enclave passes its identity key; tests and tools
// pass their own.
func NewEd25519Signer(priv ed25519.PrivateKey) Signer {
	return &keySigner{priv: priv}
}

type keySigner struct {
	_    [0]func() // not comparable
	priv ed25519.PrivateKey
}

func (k *keySigner) Public() ed25519.PublicKey {
	return append(ed25519.PublicKey(nil), k.priv.Public().(ed25519.PublicKey)...)
}

func (k *keySigner) Sign(msg []byte) []byte { return ed25519.Sign(k.priv, msg) }

const redactedSigner = "audit.Signer[REDACTED]"

// String implements fmt.Stringer and never shows the key.
func (k *keySigner) String() string { return redactedSigner }

// GoString implements fmt.GoStringer and never shows the key.
func (k *keySigner) GoString() string { return redactedSigner }

// Format implements fmt.Formatter so that no verb reaches the key.
func (k *keySigner) Format(f fmt.State, _ rune) { fmt.Fprint(f, redactedSigner) }

// LogValue implements slog.LogValuer.
func (k *keySigner) LogValue() slog.Value { return slog.StringValue(redactedSigner) }
