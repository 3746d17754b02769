package replica

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
)

// HKDF labels of the keys derived from the data key.
const (
	segmentLabel  = "nitro-cosigner segment v1"
	manifestLabel = "nitro-cosigner manifest v1"
)

// Segment format, version 1:
//
//	magic "NCSG" | version 0x01 | kind | nonce (12) | AES-256-GCM(ciphertext || tag)
//
// with associated data
//
//	segmentLabel 0x00 | header (6 bytes) | u16 len(cosigner) | cosigner | u64 gen | u64 seq
//
// A record segment's plaintext is a keystore change record; a seal's is the
// u64 generation that continues the history.
const (
	segmentMagic   = "NCSG"
	segmentVersion = 1
	headerSize     = len(segmentMagic) + 2
	nonceSize      = 12
	overhead       = headerSize + nonceSize + 16
)

type segmentKind byte

const (
	kindRecord segmentKind = 1
	kindSeal   segmentKind = 2
)

// errOpen is the one error for every segment that fails to open.
var errOpen = errors.New("segment fails authentication")

// keys are the replica's keys, derived from the data key.
type keys struct {
	seg cipher.AEAD
	mac secret.Bytes
}

func deriveKeys(dataKey secret.Bytes) (keys, error) {
	if dataKey.Len() != keystore.KeySize {
		return keys{}, fmt.Errorf("replica: data key must be %d bytes", keystore.KeySize)
	}
	segKey, err := hkdf.Key(sha256.New, dataKey.Reveal(), nil, segmentLabel, 32)
	if err != nil {
		return keys{}, fmt.Errorf("replica: deriving segment key: %w", err)
	}
	defer clear(segKey)
	macKey, err := hkdf.Key(sha256.New, dataKey.Reveal(), nil, manifestLabel, 32)
	if err != nil {
		return keys{}, fmt.Errorf("replica: deriving manifest key: %w", err)
	}
	defer clear(macKey)
	block, err := aes.NewCipher(segKey)
	if err != nil {
		return keys{}, fmt.Errorf("replica: segment cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return keys{}, fmt.Errorf("replica: segment cipher: %w", err)
	}
	return keys{seg: aead, mac: secret.New(macKey)}, nil
}

// position is where a segment lives; it is bound into its authentication.
type position struct {
	cosigner string
	gen, seq uint64
}

func header(kind segmentKind) []byte {
	return append([]byte(segmentMagic), segmentVersion, byte(kind))
}

func (p position) ad(hdr []byte) []byte {
	ad := append([]byte(segmentLabel), 0)
	ad = append(ad, hdr...)
	ad = binary.BigEndian.AppendUint16(ad, uint16(len(p.cosigner)))
	ad = append(ad, p.cosigner...)
	ad = binary.BigEndian.AppendUint64(ad, p.gen)
	return binary.BigEndian.AppendUint64(ad, p.seq)
}

// seal encrypts plaintext as a segment of kind at p.
func (k keys) seal(p position, kind segmentKind, plaintext []byte) ([]byte, error) {
	hdr := header(kind)
	out := make([]byte, 0, overhead+len(plaintext))
	out = append(out, hdr...)
	nonce := out[len(out) : len(out)+nonceSize]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("replica: segment nonce: %w", err)
	}
	out = out[:len(out)+nonceSize]
	return k.seg.Seal(out, nonce, plaintext, p.ad(hdr)), nil
}

// open authenticates and decrypts a segment read from p. It returns the
// kind and plaintext, or errOpen whatever is wrong.
func (k keys) open(p position, b []byte) (segmentKind, []byte, error) {
	if len(b) < overhead || string(b[:len(segmentMagic)]) != segmentMagic || b[len(segmentMagic)] != segmentVersion {
		return 0, nil, errOpen
	}
	kind := segmentKind(b[headerSize-1])
	if kind != kindRecord && kind != kindSeal {
		return 0, nil, errOpen
	}
	nonce := b[headerSize : headerSize+nonceSize]
	pt, err := k.seg.Open(nil, nonce, b[headerSize+nonceSize:], p.ad(b[:headerSize]))
	if err != nil {
		return 0, nil, errOpen
	}
	return kind, pt, nil
}
