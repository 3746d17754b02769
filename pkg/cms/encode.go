package cms

import (
	"encoding/binary"
	"errors"
)

// chunkSize is the largest OCTET STRING chunk Marshal writes in the
// constructed encryptedContent.
const chunkSize = 1024

// Identifier octets (class, form, tag) used by Marshal.
const (
	idInteger     = 0x02
	idOctetString = 0x04
	idNull        = 0x05
	idOID         = 0x06
	idSequence    = 0x30
	idSet         = 0x31
	idContext0    = 0x80 // [0] primitive
	idContext0C   = 0xa0 // [0] constructed
	idContext1C   = 0xa1 // [1] constructed
)

// Marshal encodes e in the shape KMS emits: indefinite lengths on the
// ContentInfo, its [0], the EnvelopedData, the EncryptedContentInfo and the
// constructed encryptedContent (chunks of at most 1024 bytes); definite
// lengths inside the recipient and the algorithm identifiers. Parse accepts
// the result and returns parts equal to e's.
func (e *EnvelopedData) Marshal() ([]byte, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	ktri := tlv(idSequence, concat(
		tlv(idInteger, []byte{2}),
		tlv(idContext0, e.RecipientSKI),
		oaepSHA256AlgID,
		tlv(idOctetString, e.EncryptedKey),
	))
	eci := indefinite(idSequence,
		tlv(idOID, oidData),
		tlv(idSequence, concat(tlv(idOID, oidAES256CBC), tlv(idOctetString, e.IV))),
		indefinite(idContext0C, chunks(e.EncryptedContent)...),
	)
	env := indefinite(idSequence, tlv(idInteger, []byte{2}), tlv(idSet, ktri), eci)
	return indefinite(idSequence, tlv(idOID, oidEnvelopedData), indefinite(idContext0C, env)), nil
}

// check verifies that e's parts have sizes Parse accepts.
func (e *EnvelopedData) check() error {
	switch {
	case len(e.RecipientSKI) != SKISize:
		return errors.New("cms: RecipientSKI must be 32 bytes")
	case len(e.EncryptedKey) == 0 || len(e.EncryptedKey) > maxEncryptedKeySize:
		return errors.New("cms: EncryptedKey must be 1..512 bytes")
	case len(e.IV) != IVSize:
		return errors.New("cms: IV must be 16 bytes")
	case len(e.EncryptedContent) == 0 || len(e.EncryptedContent)%blockSize != 0:
		return errors.New("cms: EncryptedContent must be a positive multiple of 16 bytes")
	case len(e.EncryptedContent) > MaxSize-1024:
		return errors.New("cms: EncryptedContent too large")
	}
	return nil
}

// tlv encodes a definite-length element (DER length octets).
func tlv(id byte, content []byte) []byte {
	out := append([]byte{id}, lengthOctets(len(content))...)
	return append(out, content...)
}

// lengthOctets encodes n in the shortest DER form.
func lengthOctets(n int) []byte {
	if n < 0x80 {
		return []byte{byte(n)}
	}
	var buf [4]byte
	binary.BigEndian.PutUint32(buf[:], uint32(n))
	i := 0
	for buf[i] == 0 {
		i++
	}
	return append([]byte{0x80 | byte(4-i)}, buf[i:]...)
}

// indefinite encodes a constructed element with an indefinite length: the
// identifier, 0x80, the parts, and the end-of-contents octets 00 00.
func indefinite(id byte, parts ...[]byte) []byte {
	out := concat(append([][]byte{{id, 0x80}}, parts...)...)
	return append(out, 0, 0)
}

// chunks splits b into primitive OCTET STRINGs of at most chunkSize bytes.
func chunks(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		n := min(len(b), chunkSize)
		out = append(out, tlv(idOctetString, b[:n]))
		b = b[n:]
	}
	return out
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
