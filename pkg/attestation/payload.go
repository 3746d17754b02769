package attestation

import (
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// payloadFields lists the payload's keys in the order AWS emits them, each
// with the function that decodes its value (types only; limits are checked
// by Document.validate).
var payloadFields = []struct {
	name   string
	decode func(d *Document, raw []byte) error
}{
	{"module_id", func(d *Document, raw []byte) error { return decodeAs(raw, majorText, &d.ModuleID) }},
	{"digest", func(d *Document, raw []byte) error { return decodeAs(raw, majorText, &d.Digest) }},
	{"timestamp", decodeTimestamp},
	{"pcrs", decodePCRs},
	{"certificate", decodeCertificate},
	{"cabundle", decodeCABundle},
	{"public_key", func(d *Document, raw []byte) error { return decodeOptional(raw, &d.PublicKey) }},
	{"user_data", func(d *Document, raw []byte) error { return decodeOptional(raw, &d.UserData) }},
	{"nonce", func(d *Document, raw []byte) error { return decodeOptional(raw, &d.Nonce) }},
}

// parsePayload runs checks 6 and 7 of Verify.
func parsePayload(payload []byte) (*Document, error) {
	var fields map[string]cbor.RawMessage
	if err := decodeAs(payload, majorMap, &fields); err != nil {
		return nil, malformed("payload: " + err.Error())
	}
	d := new(Document)
	for _, f := range payloadFields {
		raw, ok := fields[f.name]
		if !ok {
			return nil, malformed("payload: missing " + f.name)
		}
		if err := f.decode(d, raw); err != nil {
			return nil, malformed(f.name + ": " + err.Error())
		}
	}
	if len(fields) != len(payloadFields) {
		return nil, malformed("payload: unexpected field")
	}
	if err := d.validate(); err != nil {
		return nil, malformed(err.Error())
	}
	return d, nil
}

func decodeTimestamp(d *Document, raw []byte) error {
	var ms uint64
	if err := decodeAs(raw, majorUint, &ms); err != nil {
		return err
	}
	if ms > math.MaxInt64 {
		return errors.New("out of range")
	}
	d.Timestamp = time.UnixMilli(int64(ms)).UTC()
	return nil
}

func decodePCRs(d *Document, raw []byte) error {
	var m map[uint64]cbor.RawMessage
	if err := decodeAs(raw, majorMap, &m); err != nil {
		return err
	}
	d.PCRs = make(map[int][]byte, len(m))
	for i, v := range m {
		if i >= maxPCRs {
			return errors.New("index out of range")
		}
		var pcr []byte
		if err := decodeAs(v, majorBytes, &pcr); err != nil {
			return err
		}
		d.PCRs[int(i)] = pcr
	}
	return nil
}

func decodeCertificate(d *Document, raw []byte) error {
	var der []byte
	if err := decodeAs(raw, majorBytes, &der); err != nil {
		return err
	}
	if len(der) == 0 || len(der) > maxCertSize {
		return fmt.Errorf("not 1..%d bytes", maxCertSize)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return errors.New("not an X.509 certificate")
	}
	d.Certificate = cert
	return nil
}

func decodeCABundle(d *Document, raw []byte) error {
	var entries []cbor.RawMessage
	if err := decodeAs(raw, majorArray, &entries); err != nil {
		return err
	}
	d.CABundle = make([][]byte, len(entries))
	for i, e := range entries {
		if err := decodeAs(e, majorBytes, &d.CABundle[i]); err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
	}
	return nil
}

// decodeOptional decodes a byte string, or CBOR null as nil.
func decodeOptional(raw []byte, dst *[]byte) error {
	if isNull(raw) {
		*dst = nil
		return nil
	}
	return decodeAs(raw, majorBytes, dst)
}

// validate checks the limits of the AWS specification on d's fields. It is
// shared by parsing and signing, so that Sign never emits a document Verify
// refuses.
func (d *Document) validate() error {
	checks := []func() error{
		d.validateHeader,
		d.validatePCRs,
		d.validateCerts,
		d.validateOptional,
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func (d *Document) validateHeader() error {
	switch {
	case d.ModuleID == "":
		return errors.New("module_id: empty")
	case d.Digest != digestSHA384:
		return errors.New("digest: not " + digestSHA384)
	case d.Timestamp.UnixMilli() <= 0:
		return errors.New("timestamp: not after the Unix epoch")
	}
	return nil
}

func (d *Document) validatePCRs() error {
	if len(d.PCRs) == 0 || len(d.PCRs) > maxPCRs {
		return fmt.Errorf("pcrs: not 1..%d entries", maxPCRs)
	}
	for i, v := range d.PCRs {
		if i < 0 || i >= maxPCRs {
			return errors.New("pcrs: index out of range")
		}
		if !validPCRSize(len(v)) {
			return fmt.Errorf("pcrs: PCR%d is not 32, 48 or 64 bytes", i)
		}
	}
	return nil
}

func validPCRSize(n int) bool {
	return n == 32 || n == 48 || n == 64
}

func (d *Document) validateCerts() error {
	if d.Certificate == nil || len(d.Certificate.Raw) == 0 || len(d.Certificate.Raw) > maxCertSize {
		return fmt.Errorf("certificate: not 1..%d bytes", maxCertSize)
	}
	if len(d.CABundle) == 0 || len(d.CABundle) > maxCABundle {
		return fmt.Errorf("cabundle: not 1..%d entries", maxCABundle)
	}
	for i, c := range d.CABundle {
		if len(c) == 0 || len(c) > maxCertSize {
			return fmt.Errorf("cabundle: entry %d is not 1..%d bytes", i, maxCertSize)
		}
	}
	return nil
}

func (d *Document) validateOptional() error {
	switch {
	case d.PublicKey != nil && (len(d.PublicKey) == 0 || len(d.PublicKey) > MaxPublicKeySize):
		return fmt.Errorf("public_key: not 1..%d bytes", MaxPublicKeySize)
	case len(d.UserData) > MaxUserDataSize:
		return fmt.Errorf("user_data: longer than %d bytes", MaxUserDataSize)
	case len(d.Nonce) > MaxNonceSize:
		return fmt.Errorf("nonce: longer than %d bytes", MaxNonceSize)
	}
	return nil
}

// payloadWire is the payload map as AWS emits it: keys in this order, absent
// optional fields as null (nil slices encode as null).
type payloadWire struct {
	ModuleID    string          `cbor:"module_id"`
	Digest      string          `cbor:"digest"`
	Timestamp   uint64          `cbor:"timestamp"`
	PCRs        cbor.RawMessage `cbor:"pcrs"`
	Certificate []byte          `cbor:"certificate"`
	CABundle    [][]byte        `cbor:"cabundle"`
	PublicKey   []byte          `cbor:"public_key"`
	UserData    []byte          `cbor:"user_data"`
	Nonce       []byte          `cbor:"nonce"`
}

// marshalPayload validates d and encodes it as a definite-length payload map.
func (d *Document) marshalPayload() ([]byte, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	pcrs, err := sortedMode.Marshal(d.PCRs)
	if err != nil {
		return nil, fmt.Errorf("pcrs: %w", err)
	}
	out, err := encMode.Marshal(payloadWire{
		ModuleID:    d.ModuleID,
		Digest:      d.Digest,
		Timestamp:   uint64(d.Timestamp.UnixMilli()),
		PCRs:        pcrs,
		Certificate: d.Certificate.Raw,
		CABundle:    d.CABundle,
		PublicKey:   d.PublicKey,
		UserData:    d.UserData,
		Nonce:       d.Nonce,
	})
	if err != nil {
		return nil, err
	}
	if len(out) > maxPayloadSize {
		return nil, fmt.Errorf("payload: larger than %d bytes", maxPayloadSize)
	}
	return out, nil
}
