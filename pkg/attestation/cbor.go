package attestation

import (
	"errors"
	"io"

	"github.com/fxamacker/cbor/v2"
)

// CBOR major types (RFC 8949, section 3.1) and simple values.
const (
	majorUint  = 0
	majorBytes = 2
	majorText  = 3
	majorArray = 4
	majorMap   = 5
	cborNull   = 0xf6
)

var (
	// decMode is strict: duplicate map keys, tags and invalid UTF-8 are
	// errors, and nesting and container sizes are capped at what a Nitro
	// document needs (COSE array > payload map > pcrs map or cabundle array).
	decMode = mustDecMode(cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthAllowed, // AWS emits indefinite maps
		TagsMd:           cbor.TagsForbidden,      // tag 18 is stripped by hand
		MaxNestedLevels:  4,
		MaxArrayElements: maxCABundle,
		MaxMapPairs:      maxPCRs,
		UTF8:             cbor.UTF8RejectInvalid,
	})

	// encMode keeps struct field order (the order AWS emits);
	// sortedMode orders map keys (PCR indexes ascending).
	encMode    = mustEncMode(cbor.EncOptions{})
	sortedMode = mustEncMode(cbor.CoreDetEncOptions())
)

// mustDecMode and mustEncMode only see the constant options above, so they
// fail at init or never.
func mustDecMode(opts cbor.DecOptions) cbor.DecMode {
	dm, err := opts.DecMode()
	if err != nil {
		panic("attestation: bad CBOR decoding options: " + err.Error())
	}
	return dm
}

func mustEncMode(opts cbor.EncOptions) cbor.EncMode {
	em, err := opts.EncMode()
	if err != nil {
		panic("attestation: bad CBOR encoding options: " + err.Error())
	}
	return em
}

// majorType returns the CBOR major type of the first data item in raw, or -1.
func majorType(raw []byte) int {
	if len(raw) == 0 {
		return -1
	}
	return int(raw[0] >> 5)
}

func isNull(raw []byte) bool {
	return len(raw) == 1 && raw[0] == cborNull
}

var errType = errors.New("wrong CBOR type")

// decodeAs decodes raw into v after checking that it has the major type
// want, so that the decoder's lenient conversions (null to zero values,
// for instance) never apply.
func decodeAs(raw []byte, want int, v any) error {
	if majorType(raw) != want {
		return errType
	}
	if err := decMode.Unmarshal(raw, v); err != nil {
		return errors.New(cborProblem(err))
	}
	return nil
}

// cborProblem names what is wrong with a CBOR input without repeating any of
// it: the library's messages may quote map keys from the input.
func cborProblem(err error) string {
	var (
		dup   *cbor.DupMapKeyError
		extra *cbor.ExtraneousDataError
		typ   *cbor.UnmarshalTypeError
		tags  *cbor.TagsMdError
		nest  *cbor.MaxNestedLevelError
		arr   *cbor.MaxArrayElementsError
		pairs *cbor.MaxMapPairsError
	)
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated CBOR"
	case errors.As(err, &dup):
		return "duplicate map key"
	case errors.As(err, &extra):
		return "trailing bytes"
	case errors.As(err, &typ):
		return errType.Error()
	case errors.As(err, &tags):
		return "unexpected CBOR tag"
	case errors.As(err, &nest), errors.As(err, &arr), errors.As(err, &pairs):
		return "CBOR nesting or size limit exceeded"
	default:
		return "invalid CBOR"
	}
}
