package audit

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

// Type names what an entry records. Types are lower-case names (a letter,
// then letters, digits or '_', at most MaxTypeSize bytes); a verifier
// accepts any well-formed name, so that new types do not break older
// verifiers.
type Type string

// The event types the cosigner writes.
const (
	KeyCreated    Type = "key_created"    // a key generation finished
	KeyRefreshed  Type = "key_refreshed"  // a key's shares were refreshed
	SignRequested Type = "sign_requested" // a sign request arrived (before policy)
	SignDecided   Type = "sign_decided"   // policy and approval decided: Decision and Reason
	Signed        Type = "signed"         // our signature share or signature left the enclave
	SignFailed    Type = "sign_failed"    // an allowed signing session failed
	PolicyChanged Type = "policy_changed" // a new policy version was stored
	AdminAction   Type = "admin_action"   // any other administrative call

	WorkspaceChanged Type = "workspace_changed" // a new workspace version was stored
	WorkspaceRefused Type = "workspace_refused" // an offered workspace version was refused (stale, fork, quorum)
	PairingRequested Type = "pairing_requested" // a pairing request verified and awaits the admins
	PairingRefused   Type = "pairing_refused"   // a pairing token or request was refused
)

// Decision is the outcome a sign_decided entry records.
type Decision string

// Decisions. The empty Decision means the entry records none.
const (
	Allow Decision = "allow"
	Deny  Decision = "deny"
)

// Bounds on an entry's fields, in bytes.
const (
	MaxCosignerIDSize = 64  // printable ASCII without spaces, as in pkg/wire
	MaxTypeSize       = 32  // see Type
	MaxActorSize      = 256 // the caller's identity, e.g. a certificate subject
	MaxKeyIDSize      = 128
	MaxRequestIDSize  = 128
	MaxReasonSize     = 512
	MaxDetails        = 16  // pairs in Details
	MaxDetailKeySize  = 64  // lower-case letters, digits, '_', '-', '.'
	MaxDetailValSize  = 256 // like the other text fields
	MaxEntrySize      = 8 << 10
	HashSize          = 32 // SHA-256
)

// maxTime is the last instant an entry may carry: RFC 3339 has four-digit
// years.
var maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC)

// ErrInvalid means an entry breaks a rule of the format: a field out of
// bounds, a malformed or non-canonical encoding.
var ErrInvalid = errors.New("audit: invalid entry")

// Event is what a caller records: everything in an entry except what the
// log itself assigns (sequence, time, cosigner, previous hash).
type Event struct {
	Type      Type
	Actor     string            // caller identity; empty for the cosigner's own actions
	KeyID     string            // the key concerned, if any
	RequestID string            // request or idempotency key, if any
	Decision  Decision          // required for sign_decided
	Reason    string            // why: a policy rule, an approver's answer, an error class
	Details   map[string]string // small extra facts (chain ID, digest, policy version)
}

// Entry is one link of the audit chain.
type Entry struct {
	Seq        uint64    // 1 for the first entry, then +1 each
	Time       time.Time // UTC, millisecond precision
	CosignerID string
	Event
	PrevHash [HashSize]byte // the previous entry's hash; zeros for entry 1
}

// entryVersion is the first element of every encoded entry.
const entryVersion = 1

// entryCBOR is the encoded form: a fixed-order array, so that no map
// ordering is involved except for Details, which Core Deterministic
// Encoding sorts.
type entryCBOR struct {
	_          struct{} `cbor:",toarray"`
	Version    uint64
	Seq        uint64
	TimeMillis int64
	CosignerID string
	Type       string
	Actor      string
	KeyID      string
	RequestID  string
	Decision   string
	Reason     string
	Details    map[string]string
	PrevHash   []byte
}

var (
	encMode = mustEncMode()
	decMode = mustDecMode()
)

func mustEncMode() cbor.EncMode {
	opts := cbor.CoreDetEncOptions()
	opts.NilContainers = cbor.NilContainerAsEmpty
	em, err := opts.EncMode()
	if err != nil {
		panic(err) // static options
	}
	return em
}

// mustDecMode is strict: no duplicate keys, indefinite lengths or tags, and
// sizes bounded. Anything else non-canonical is caught by re-encoding.
func mustDecMode() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:  4,
		MaxArrayElements: 16,
		MaxMapPairs:      MaxDetails,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
	}.DecMode()
	if err != nil {
		panic(err) // static options
	}
	return dm
}

// Marshal checks e and returns its encoding: the CBOR array
// [version, seq, time, cosigner, type, actor, key_id, request_id,
// decision, reason, details, prev_hash] in Core Deterministic Encoding.
func (e Entry) Marshal() ([]byte, error) {
	if err := e.validate(); err != nil {
		return nil, err
	}
	b, err := encMode.Marshal(entryCBOR{
		Version: entryVersion, Seq: e.Seq, TimeMillis: e.Time.UnixMilli(),
		CosignerID: e.CosignerID, Type: string(e.Type), Actor: e.Actor,
		KeyID: e.KeyID, RequestID: e.RequestID, Decision: string(e.Decision),
		Reason: e.Reason, Details: e.Details, PrevHash: e.PrevHash[:],
	})
	if err != nil {
		return nil, fmt.Errorf("%w: encoding: %v", ErrInvalid, err)
	}
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("%w: encoded entry longer than %d bytes", ErrInvalid, MaxEntrySize)
	}
	return b, nil
}

// UnmarshalEntry decodes an encoded entry. It accepts only what Marshal
// produces: a valid entry in its one canonical encoding.
func UnmarshalEntry(b []byte) (Entry, error) {
	if len(b) > MaxEntrySize {
		return Entry{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalid, MaxEntrySize)
	}
	var c entryCBOR
	if err := decMode.Unmarshal(b, &c); err != nil {
		return Entry{}, fmt.Errorf("%w: malformed encoding", ErrInvalid)
	}
	e, err := c.entry()
	if err != nil {
		return Entry{}, err
	}
	again, err := e.Marshal()
	if err != nil {
		return Entry{}, err
	}
	if !bytes.Equal(again, b) {
		return Entry{}, fmt.Errorf("%w: non-canonical encoding", ErrInvalid)
	}
	return e, nil
}

func (c *entryCBOR) entry() (Entry, error) {
	switch {
	case c.Version != entryVersion:
		return Entry{}, fmt.Errorf("%w: unsupported entry version", ErrInvalid)
	case len(c.PrevHash) != HashSize:
		return Entry{}, fmt.Errorf("%w: prev_hash is not %d bytes", ErrInvalid, HashSize)
	case c.TimeMillis < 0 || c.TimeMillis > maxTime.UnixMilli():
		return Entry{}, fmt.Errorf("%w: time out of range", ErrInvalid)
	}
	e := Entry{
		Seq: c.Seq, Time: time.UnixMilli(c.TimeMillis).UTC(), CosignerID: c.CosignerID,
		Event: Event{
			Type: Type(c.Type), Actor: c.Actor, KeyID: c.KeyID, RequestID: c.RequestID,
			Decision: Decision(c.Decision), Reason: c.Reason, Details: c.Details,
		},
	}
	if len(e.Details) == 0 {
		e.Details = nil
	}
	copy(e.PrevHash[:], c.PrevHash)
	return e, nil
}

// validate checks every field against the format's rules.
func (e Entry) validate() error {
	switch {
	case e.Seq == 0 || e.Seq > math.MaxInt64:
		return fmt.Errorf("%w: sequence out of range", ErrInvalid)
	case e.Seq == 1 && e.PrevHash != [HashSize]byte{}:
		return fmt.Errorf("%w: entry 1 must have a zero prev_hash", ErrInvalid)
	case e.Time.Before(time.UnixMilli(0)) || e.Time.After(maxTime):
		return fmt.Errorf("%w: time out of range", ErrInvalid)
	case !validName(e.CosignerID):
		return fmt.Errorf("%w: cosigner ID must be 1 to %d bytes of printable ASCII", ErrInvalid, MaxCosignerIDSize)
	}
	return e.Event.Validate()
}

// Validate checks the event's fields against the format's rules.
func (ev Event) Validate() error {
	texts := []struct {
		name, s string
		max     int
	}{
		{"actor", ev.Actor, MaxActorSize},
		{"key ID", ev.KeyID, MaxKeyIDSize},
		{"request ID", ev.RequestID, MaxRequestIDSize},
		{"reason", ev.Reason, MaxReasonSize},
	}
	for _, t := range texts {
		if !validText(t.s, t.max) {
			return fmt.Errorf("%w: %s must be at most %d bytes of UTF-8 without control characters", ErrInvalid, t.name, t.max)
		}
	}
	if err := ev.validateType(); err != nil {
		return err
	}
	return validateDetails(ev.Details)
}

func (ev Event) validateType() error {
	switch {
	case !ev.Type.valid():
		return fmt.Errorf("%w: malformed event type", ErrInvalid)
	case ev.Decision != "" && ev.Decision != Allow && ev.Decision != Deny:
		return fmt.Errorf("%w: decision must be %q, %q or empty", ErrInvalid, Allow, Deny)
	case ev.Type == SignDecided && ev.Decision == "":
		return fmt.Errorf("%w: %s needs a decision", ErrInvalid, SignDecided)
	}
	return nil
}

func validateDetails(d map[string]string) error {
	if len(d) > MaxDetails {
		return fmt.Errorf("%w: more than %d details", ErrInvalid, MaxDetails)
	}
	for k, v := range d {
		if !validDetailKey(k) {
			return fmt.Errorf("%w: malformed detail key", ErrInvalid)
		}
		if !validText(v, MaxDetailValSize) {
			return fmt.Errorf("%w: detail value must be at most %d bytes of UTF-8 without control characters", ErrInvalid, MaxDetailValSize)
		}
	}
	return nil
}

// valid reports whether t is a well-formed type name.
func (t Type) valid() bool {
	if len(t) == 0 || len(t) > MaxTypeSize || t[0] < 'a' || t[0] > 'z' {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// ValidCosignerID reports whether id is a well-formed cosigner ID: 1 to
// MaxCosignerIDSize bytes of printable ASCII without spaces (the rule
// pkg/wire applies).
func ValidCosignerID(id string) bool { return validName(id) }

func validName(s string) bool {
	if len(s) == 0 || len(s) > MaxCosignerIDSize {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

func validDetailKey(k string) bool {
	if len(k) == 0 || len(k) > MaxDetailKeySize {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// validText reports whether s is at most max bytes of valid UTF-8 without
// control characters (which could rewrite a terminal or a log line).
func validText(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}

// Clean makes s acceptable as a text field of at most max bytes: control
// characters become U+FFFD, invalid UTF-8 too, and the result is cut at a
// character boundary. Use it for text from outside the enclave (an
// approver's reason) so that recording it cannot fail.
func Clean(s string, max int) string {
	var b []byte
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			r = utf8.RuneError
		}
		if len(b)+utf8.RuneLen(r) > max {
			break
		}
		b = utf8.AppendRune(b, r)
	}
	return string(b)
}
