package link

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Protocol versions this package speaks.
const (
	MinVersion = 1
	Version    = 1
)

// Limits.
const (
	// DefaultMaxFrame is the frame limit of a Config that names none: the
	// limit every broker adapter shares.
	DefaultMaxFrame = 1 << 20
	// MaxFrameLimit is the largest frame limit a side may configure or
	// announce.
	MaxFrameLimit = 4 << 20
	// MaxIDLen bounds a recipient cosigner ID.
	MaxIDLen = 48
	// MaxInFlight bounds the IN records a parent may have sent on one link
	// and not yet seen ACKed.
	MaxInFlight = 16
	// MaxRecordSize bounds a record's length field.
	MaxRecordSize = 1 + outFixed + MaxIDLen + MaxFrameLimit
)

// Kind is a record's kind.
type Kind uint8

// Record kinds.
const (
	KindHello   Kind = 1
	KindWelcome Kind = 2
	KindOut     Kind = 3
	KindIn      Kind = 4
	KindAck     Kind = 5
	KindPing    Kind = 6
	KindPong    Kind = 7
)

var kindNames = [...]string{"", "HELLO", "WELCOME", "OUT", "IN", "ACK", "PING", "PONG"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Hello is the enclave's opening record.
type Hello struct {
	MinVersion, MaxVersion uint16
	// MaxFrame is the largest IN frame the enclave accepts.
	MaxFrame uint32
}

// Welcome is the parent's answer to Hello.
type Welcome struct {
	Version uint16
	// MaxFrame is the largest OUT frame the parent accepts.
	MaxFrame uint32
}

// Record is one record. Which fields count depends on Kind: Seq for OUT,
// IN and ACK (a sequence number, not zero) and for PING and PONG (a
// nonce); To for OUT; Frame for OUT and IN; Hello and Welcome for their
// kinds.
type Record struct {
	Kind    Kind
	Seq     uint64
	To      string
	Frame   []byte
	Hello   Hello
	Welcome Welcome
}

var (
	// ErrMalformed is wrapped by every parsing failure. The message names
	// the rule broken and never repeats the input.
	ErrMalformed = errors.New("link: malformed record")
	// ErrFrameTooLarge is returned for a frame above the receiver's limit.
	ErrFrameTooLarge = errors.New("link: frame too large")
	// ErrInvalidID is returned for a recipient ID that CheckID refuses.
	ErrInvalidID = errors.New("link: invalid cosigner ID")
	// ErrVersion is returned when the two sides share no version.
	ErrVersion = errors.New("link: no common protocol version")
)

// magic opens HELLO and WELCOME, so a link dialed to the wrong port fails
// at once.
const magic = "NCLK"

// Body sizes.
const (
	helloSize   = 4 + 2 + 2 + 4
	welcomeSize = 4 + 2 + 4
	seqSize     = 8
	outFixed    = seqSize + 1
)

// CheckID reports whether id can name a cosigner: 1 to MaxIDLen ASCII
// letters, digits, '-' or '_', starting with a letter or digit (the rule
// of parent/broker.CheckID, which this package may not import).
func CheckID(id string) error {
	if len(id) == 0 || len(id) > MaxIDLen || !isAlnum(id[0]) {
		return ErrInvalidID
	}
	for i := 1; i < len(id); i++ {
		if !isAlnum(id[i]) && id[i] != '-' && id[i] != '_' {
			return ErrInvalidID
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// Marshal encodes r as one record, length prefix included, checking it as
// Parse would with a frame limit of maxFrame.
func Marshal(r Record, maxFrame int) ([]byte, error) {
	head, err := appendHead(nil, r, maxFrame)
	if err != nil {
		return nil, err
	}
	return append(head, r.Frame...), nil
}

// appendHead appends everything of r's encoding but its frame, which
// follows it on the wire.
func appendHead(dst []byte, r Record, maxFrame int) ([]byte, error) {
	if err := check(r, maxFrame); err != nil {
		return dst, err
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(1+bodySize(r)))
	dst = append(dst, byte(r.Kind))
	switch r.Kind {
	case KindHello:
		dst = append(dst, magic...)
		dst = binary.BigEndian.AppendUint16(dst, r.Hello.MinVersion)
		dst = binary.BigEndian.AppendUint16(dst, r.Hello.MaxVersion)
		return binary.BigEndian.AppendUint32(dst, r.Hello.MaxFrame), nil
	case KindWelcome:
		dst = append(dst, magic...)
		dst = binary.BigEndian.AppendUint16(dst, r.Welcome.Version)
		return binary.BigEndian.AppendUint32(dst, r.Welcome.MaxFrame), nil
	case KindOut:
		dst = binary.BigEndian.AppendUint64(dst, r.Seq)
		return append(append(dst, byte(len(r.To))), r.To...), nil
	}
	return binary.BigEndian.AppendUint64(dst, r.Seq), nil // IN, ACK, PING, PONG
}

// bodySize is the length of r's body.
func bodySize(r Record) int {
	switch r.Kind {
	case KindHello:
		return helloSize
	case KindWelcome:
		return welcomeSize
	case KindOut:
		return outFixed + len(r.To) + len(r.Frame)
	case KindIn:
		return seqSize + len(r.Frame)
	}
	return seqSize
}

// check enforces on r the rules Parse enforces.
func check(r Record, maxFrame int) error {
	switch r.Kind {
	case KindHello:
		return checkHello(r.Hello)
	case KindWelcome:
		return checkWelcome(r.Welcome)
	case KindOut:
		if err := CheckID(r.To); err != nil {
			return err
		}
		return checkSeqFrame(r.Seq, r.Frame, maxFrame)
	case KindIn:
		return checkSeqFrame(r.Seq, r.Frame, maxFrame)
	case KindAck:
		return checkSeq(r.Seq)
	case KindPing, KindPong:
		return nil
	}
	return malformed("unknown kind")
}

func checkHello(h Hello) error {
	switch {
	case h.MinVersion == 0 || h.MinVersion > h.MaxVersion:
		return malformed("bad version range")
	case h.MaxFrame == 0 || h.MaxFrame > MaxFrameLimit:
		return malformed("bad frame limit")
	}
	return nil
}

func checkWelcome(w Welcome) error {
	switch {
	case w.Version == 0:
		return malformed("bad version")
	case w.MaxFrame == 0 || w.MaxFrame > MaxFrameLimit:
		return malformed("bad frame limit")
	}
	return nil
}

func checkSeqFrame(seq uint64, frame []byte, maxFrame int) error {
	if err := checkSeq(seq); err != nil {
		return err
	}
	switch {
	case len(frame) == 0:
		return malformed("empty frame")
	case len(frame) > maxFrame:
		return ErrFrameTooLarge
	}
	return nil
}

func checkSeq(seq uint64) error {
	if seq == 0 {
		return malformed("zero sequence number")
	}
	return nil
}

func malformed(why string) error { return fmt.Errorf("%w: %s", ErrMalformed, why) }

// Parse decodes a record's kind and body (the bytes after its length
// field) with a frame limit of maxFrame. The returned Frame aliases body.
func Parse(body []byte, maxFrame int) (Record, error) {
	if len(body) == 0 {
		return Record{}, malformed("empty record")
	}
	r, err := parseBody(Kind(body[0]), body[1:])
	if err != nil {
		return Record{}, err
	}
	if err := check(r, maxFrame); err != nil {
		return Record{}, err
	}
	return r, nil
}

func parseBody(k Kind, b []byte) (Record, error) {
	switch k {
	case KindHello:
		return parseHello(b)
	case KindWelcome:
		return parseWelcome(b)
	case KindOut:
		return parseOut(b)
	case KindIn:
		if len(b) < seqSize {
			return Record{}, malformed("short IN")
		}
		return Record{Kind: k, Seq: binary.BigEndian.Uint64(b), Frame: b[seqSize:]}, nil
	case KindAck, KindPing, KindPong:
		if len(b) != seqSize {
			return Record{}, malformed("bad length")
		}
		return Record{Kind: k, Seq: binary.BigEndian.Uint64(b)}, nil
	}
	return Record{}, malformed("unknown kind")
}

func parseHello(b []byte) (Record, error) {
	if len(b) != helloSize || string(b[:4]) != magic {
		return Record{}, malformed("bad HELLO")
	}
	h := Hello{
		MinVersion: binary.BigEndian.Uint16(b[4:]),
		MaxVersion: binary.BigEndian.Uint16(b[6:]),
		MaxFrame:   binary.BigEndian.Uint32(b[8:]),
	}
	return Record{Kind: KindHello, Hello: h}, nil
}

func parseWelcome(b []byte) (Record, error) {
	if len(b) != welcomeSize || string(b[:4]) != magic {
		return Record{}, malformed("bad WELCOME")
	}
	w := Welcome{Version: binary.BigEndian.Uint16(b[4:]), MaxFrame: binary.BigEndian.Uint32(b[6:])}
	return Record{Kind: KindWelcome, Welcome: w}, nil
}

func parseOut(b []byte) (Record, error) {
	if len(b) < outFixed {
		return Record{}, malformed("short OUT")
	}
	n := int(b[seqSize])
	if len(b) < outFixed+n {
		return Record{}, malformed("short OUT")
	}
	r := Record{
		Kind:  KindOut,
		Seq:   binary.BigEndian.Uint64(b),
		To:    string(b[outFixed : outFixed+n]),
		Frame: b[outFixed+n:],
	}
	return r, nil
}
