package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Limits of the JSON a document may use.
const (
	// MaxDocumentSize is the largest policy document accepted, in bytes.
	MaxDocumentSize = 256 << 10
	maxDepth        = 6
	maxObjectKeyLen = 64
)

// checkStructure refuses what encoding/json would silently accept or
// resolve in a way a reader of the document might not expect: invalid
// UTF-8 (replaced by U+FFFD), duplicate object keys (the last one wins),
// keys that differ from the schema's only by case (matched
// case-insensitively), null (leaves the field unset), trailing data. It
// also bounds nesting. Object keys must be [a-z0-9_]{1,64}: every schema
// field name is, and so is a key ID in lowercase hex. Errors do not echo
// the document.
func checkStructure(b []byte) error {
	if !utf8.Valid(b) {
		return errors.New("not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return errors.New("not JSON")
	}
	if tok != json.Delim('{') {
		return errors.New("not a JSON object")
	}
	if err := checkObject(dec, 1); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the document")
	}
	return nil
}

// checkObject checks an object whose '{' was just read, up to its '}'.
func checkObject(dec *json.Decoder, depth int) error {
	seen := make(map[string]bool)
	for {
		tok, err := dec.Token()
		if err != nil {
			return errors.New("not JSON")
		}
		if tok == json.Delim('}') {
			return nil
		}
		key, ok := tok.(string)
		if !ok {
			return errors.New("not JSON")
		}
		if !isObjectKey(key) {
			return fmt.Errorf("object keys must be 1 to %d characters of [a-z0-9_]", maxObjectKeyLen)
		}
		if seen[key] {
			return fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		if err := checkValue(dec, depth); err != nil {
			return err
		}
	}
}

// checkArray checks an array whose '[' was just read, up to its ']'.
func checkArray(dec *json.Decoder, depth int) error {
	for dec.More() {
		if err := checkValue(dec, depth); err != nil {
			return err
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim(']') {
		return errors.New("not JSON")
	}
	return nil
}

func checkValue(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return errors.New("not JSON")
	}
	switch tok {
	case nil:
		return errors.New("null is not allowed")
	case json.Delim('{'), json.Delim('['):
		if depth >= maxDepth {
			return fmt.Errorf("nested deeper than %d levels", maxDepth)
		}
		if tok == json.Delim('{') {
			return checkObject(dec, depth+1)
		}
		return checkArray(dec, depth+1)
	}
	return nil
}

func isObjectKey(k string) bool {
	if k == "" || len(k) > maxObjectKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// decodeStrict checks b's structure and decodes it into v, refusing
// unknown fields. Errors name schema paths, never document values.
func decodeStrict(b []byte, v any) error {
	if err := checkStructure(b); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describeDecodeError(err)
	}
	return nil
}

// describeDecodeError keeps the schema path of a decoding error and drops
// the rest (encoding/json quotes offending values).
func describeDecodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Errorf("%s: wrong type or out of range", te.Field)
	}
	const unknown = "json: unknown field "
	if msg := err.Error(); len(msg) > len(unknown) && msg[:len(unknown)] == unknown {
		// The name passed isObjectKey: short and harmless.
		return fmt.Errorf("unknown field %s", msg[len(unknown):])
	}
	return errors.New("does not match the schema")
}
