package cms

// A minimal BER reader, written by hand on purpose.
//
// encoding/asn1 and golang.org/x/crypto/cryptobyte read DER only (cryptobyte
// refuses indefinite lengths), and the common pkcs7 packages that convert BER
// to DER reject the SubjectKeyIdentifier rid KMS uses. KMS emits indefinite
// lengths, constructed encodings and definite-length inner parts, so this
// reader handles exactly what X.690 BER allows for such input and nothing
// more: low tag numbers (no high-tag-number form), definite lengths of at
// most four length octets, indefinite lengths on constructed elements only,
// and a nesting limit. Every read is bounds-checked; nothing here panics.

import "errors"

const (
	classUniversal = 0
	classContext   = 2

	tagInteger     = 2
	tagOctetString = 4
	tagOID         = 6
	tagSequence    = 16
	tagSet         = 17

	// maxDepth bounds the nesting of indefinite-length elements the reader
	// recurses into. KMS output nests five deep; real inputs never need more.
	maxDepth = 16

	// maxLengthOctets bounds the long-form length: inputs are far below
	// 2^32 bytes.
	maxLengthOctets = 4
)

var (
	errTruncated  = errors.New("truncated element")
	errTagForm    = errors.New("unsupported tag form")
	errLength     = errors.New("invalid length")
	errDepth      = errors.New("nesting too deep")
	errIndefPrim  = errors.New("indefinite length on a primitive element")
	errTrailing   = errors.New("trailing data")
	errUnexpected = errors.New("unexpected element")
)

// element is one decoded BER TLV. content holds the content octets: for an
// indefinite-length element, everything between the header and its
// end-of-contents marker. raw is the whole encoding, header included.
type element struct {
	class       int
	tag         int
	constructed bool
	content     []byte
	raw         []byte
}

// is reports whether e has the given class, tag and form.
func (e element) is(class, tag int, constructed bool) bool {
	return e.class == class && e.tag == tag && e.constructed == constructed
}

// readElement decodes the element at the start of b and returns it with the
// bytes that follow it. depth counts the indefinite-length ancestors.
func readElement(b []byte, depth int) (element, []byte, error) {
	if depth > maxDepth {
		return element{}, nil, errDepth
	}
	e, hdrLen, length, indefinite, err := readHeader(b)
	if err != nil {
		return element{}, nil, err
	}
	body := b[hdrLen:]
	if indefinite {
		n, err := indefiniteContentLen(body, depth+1)
		if err != nil {
			return element{}, nil, err
		}
		e.content, e.raw = body[:n], b[:hdrLen+n+2]
		return e, body[n+2:], nil
	}
	if length > len(body) {
		return element{}, nil, errTruncated
	}
	e.content, e.raw = body[:length], b[:hdrLen+length]
	return e, body[length:], nil
}

// readHeader decodes the identifier and length octets at the start of b.
func readHeader(b []byte) (e element, hdrLen, length int, indefinite bool, err error) {
	if len(b) < 2 {
		return e, 0, 0, false, errTruncated
	}
	id := b[0]
	if id&0x1f == 0x1f {
		return e, 0, 0, false, errTagForm
	}
	e = element{class: int(id >> 6), tag: int(id & 0x1f), constructed: id&0x20 != 0}
	length, lenLen, indefinite, err := readLength(b[1:])
	if err != nil {
		return e, 0, 0, false, err
	}
	if indefinite && !e.constructed {
		return e, 0, 0, false, errIndefPrim
	}
	return e, 1 + lenLen, length, indefinite, nil
}

// readLength decodes length octets. It returns the length, how many octets
// encode it, and whether the length is indefinite (0x80).
func readLength(b []byte) (length, n int, indefinite bool, err error) {
	first := b[0]
	switch {
	case first < 0x80:
		return int(first), 1, false, nil
	case first == 0x80:
		return 0, 1, true, nil
	}
	count := int(first & 0x7f)
	if count > maxLengthOctets || count >= len(b) {
		return 0, 0, false, errLength
	}
	for _, c := range b[1 : 1+count] {
		length = length<<8 | int(c)
	}
	if length < 0 {
		return 0, 0, false, errLength
	}
	return length, 1 + count, false, nil
}

// indefiniteContentLen returns how many bytes of b precede the
// end-of-contents marker (00 00) that closes an indefinite-length element,
// skipping over nested elements.
func indefiniteContentLen(b []byte, depth int) (int, error) {
	off := 0
	for {
		rest := b[off:]
		if len(rest) < 2 {
			return 0, errTruncated
		}
		if rest[0] == 0 && rest[1] == 0 {
			return off, nil
		}
		_, after, err := readElement(rest, depth)
		if err != nil {
			return 0, err
		}
		off = len(b) - len(after)
	}
}

// readChildren decodes the content of a constructed element as a list of
// elements. An end-of-contents marker among them is an error: markers only
// close indefinite lengths, which readElement has already consumed.
func readChildren(e element, depth int) ([]element, error) {
	if !e.constructed {
		return nil, errUnexpected
	}
	var out []element
	for b := e.content; len(b) > 0; {
		child, rest, err := readElement(b, depth)
		if err != nil {
			return nil, err
		}
		if child.is(classUniversal, 0, false) {
			return nil, errUnexpected
		}
		out = append(out, child)
		b = rest
	}
	return out, nil
}

// readOne decodes b as exactly one element with nothing after it.
func readOne(b []byte) (element, error) {
	e, rest, err := readElement(b, 0)
	if err != nil {
		return element{}, err
	}
	if len(rest) != 0 {
		return element{}, errTrailing
	}
	return e, nil
}
