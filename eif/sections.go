package eif

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"

	"github.com/fxamacker/cbor/v2"
)

// maxSmall returns the size limit of the sections held in memory, or 0
// for the sections that are streamed.
func maxSmall(t SectionType) uint64 {
	switch t {
	case SectionCmdline:
		return MaxCmdlineSize
	case SectionMetadata:
		return MaxMetadataSize
	case SectionSignature:
		return MaxSignatureSize
	}
	return 0
}

// checkSmall checks the content of a cmdline, metadata or signature
// section and, for a signature, records the signing certificate.
func (m *measurer) checkSmall(t SectionType, data []byte) error {
	switch t {
	case SectionCmdline:
		if bytes.IndexByte(data, 0) >= 0 {
			return malformed("the cmdline holds a NUL byte")
		}
	case SectionMetadata:
		if !json.Valid(data) {
			return malformed("the metadata section is not JSON")
		}
	case SectionSignature:
		der, err := signingCertificate(data)
		if err != nil {
			return err
		}
		m.certDER = der
	}
	return nil
}

// pcrSignature is one entry of the signature section. serde writes each
// byte vector as an array of integers; a byte string is accepted too.
type pcrSignature struct {
	SigningCertificate []byte `cbor:"signing_certificate"`
	Signature          []byte `cbor:"signature"`
}

var sigDecoder = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		MaxNestedLevels:   4,
		MaxArrayElements:  MaxSignatureSize,
		MaxMapPairs:       16,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

// signingCertificate returns the DER of the first entry's certificate, as
// nitro-cli measures it into PCR8.
func signingCertificate(section []byte) ([]byte, error) {
	var sigs []pcrSignature
	if err := sigDecoder.Unmarshal(section, &sigs); err != nil {
		return nil, malformed("the signature section is not a CBOR array of PCR signatures")
	}
	if len(sigs) == 0 {
		return nil, malformed("the signature section holds no signature")
	}
	for _, s := range sigs {
		if len(s.SigningCertificate) == 0 || len(s.Signature) == 0 {
			return nil, malformed("a PCR signature lacks its certificate or its signature")
		}
	}
	block, rest := pem.Decode(sigs[0].SigningCertificate)
	if block == nil || block.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, malformed("the signing certificate is not one PEM CERTIFICATE block")
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return nil, malformed("the signing certificate does not parse")
	}
	return block.Bytes, nil
}

// MarshalSignature returns a signature section holding one PCR signature,
// encoded as nitro-cli's serde_cbor writes it: the PEM signing certificate
// and the COSE_Sign1 signature of PCR0, each an array of integers. The
// certificate must parse; the signature is not checked.
func MarshalSignature(certPEM, coseSign1 []byte) ([]byte, error) {
	ints := func(b []byte) []uint64 {
		out := make([]uint64, len(b))
		for i, c := range b {
			out[i] = uint64(c)
		}
		return out
	}
	type entry struct {
		SigningCertificate []uint64 `cbor:"signing_certificate"`
		Signature          []uint64 `cbor:"signature"`
	}
	b, err := cbor.Marshal([]entry{{ints(certPEM), ints(coseSign1)}})
	if err != nil {
		return nil, err
	}
	if _, err := signingCertificate(b); err != nil {
		return nil, err
	}
	return b, nil
}
