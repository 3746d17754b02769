package attestation_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation"
)

// basePayload is a valid payload for p, as a generic map to tamper with.
func basePayload(p *pki) map[string]any {
	d := p.document()
	return map[string]any{
		"module_id":   d.ModuleID,
		"digest":      d.Digest,
		"timestamp":   uint64(d.Timestamp.UnixMilli()),
		"pcrs":        d.PCRs,
		"certificate": d.Certificate.Raw,
		"cabundle":    d.CABundle,
		"public_key":  nil,
		"user_data":   nil,
		"nonce":       nil,
	}
}

func encode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func bytesOf(n int) []byte { return bytes.Repeat([]byte{0x5a}, n) }

// TestPayloadChecks signs tampered payloads with a trusted key, so that only
// the payload checks can refuse them.
func TestPayloadChecks(t *testing.T) {
	t.Parallel()
	p := newPKI(t, defaultPKIOptions())
	set := func(k string, v any) func(map[string]any) { return func(m map[string]any) { m[k] = v } }
	del := func(k string) func(map[string]any) { return func(m map[string]any) { delete(m, k) } }
	pcrs := func(mod func(map[any]any)) func(map[string]any) {
		return func(m map[string]any) {
			out := map[any]any{}
			for i, v := range m["pcrs"].(map[int][]byte) {
				out[i] = v
			}
			mod(out)
			m["pcrs"] = out
		}
	}
	var many [][]byte
	for range 17 {
		many = append(many, p.inter.Raw)
	}
	cases := []struct {
		name  string
		mod   func(map[string]any)
		field string // in the error message; "" for a valid payload
	}{
		{"valid", func(map[string]any) {}, ""},
		{"empty user_data", set("user_data", []byte{}), ""},
		{"max user_data", set("user_data", bytesOf(512)), ""},
		{"max nonce", set("nonce", bytesOf(512)), ""},
		{"max public_key", set("public_key", bytesOf(1024)), ""},
		{"32-byte and 64-byte PCRs", pcrs(func(m map[any]any) { m[3] = bytesOf(32); m[31] = bytesOf(64) }), ""},
		{"one PCR", set("pcrs", map[int][]byte{0: bytesOf(48)}), ""},
		{"missing module_id", del("module_id"), "module_id"},
		{"missing digest", del("digest"), "digest"},
		{"missing timestamp", del("timestamp"), "timestamp"},
		{"missing pcrs", del("pcrs"), "pcrs"},
		{"missing certificate", del("certificate"), "certificate"},
		{"missing cabundle", del("cabundle"), "cabundle"},
		{"missing public_key", del("public_key"), "public_key"},
		{"missing user_data", del("user_data"), "user_data"},
		{"missing nonce", del("nonce"), "nonce"},
		{"unknown field", set("extra", 1), "unexpected field"},
		{"empty module_id", set("module_id", ""), "module_id"},
		{"module_id not text", set("module_id", []byte("i-0")), "module_id"},
		{"module_id null", set("module_id", nil), "module_id"},
		{"digest SHA256", set("digest", "SHA256"), "digest"},
		{"digest as bytes", set("digest", []byte("SHA384")), "digest"},
		{"timestamp zero", set("timestamp", 0), "timestamp"},
		{"timestamp negative", set("timestamp", -1), "timestamp"},
		{"timestamp float", set("timestamp", 1.5e12), "timestamp"},
		{"timestamp text", set("timestamp", "1616018515685"), "timestamp"},
		{"timestamp over int64", set("timestamp", uint64(math.MaxInt64)+1), "timestamp"},
		{"timestamp tagged", set("timestamp", cbor.Tag{Number: 1, Content: 1616018515}), "unexpected CBOR tag"},
		{"pcrs empty", set("pcrs", map[int][]byte{}), "pcrs"},
		{"pcrs null", set("pcrs", nil), "pcrs"},
		{"pcrs array", set("pcrs", [][]byte{bytesOf(48)}), "pcrs"},
		{"PCR index 32", pcrs(func(m map[any]any) { m[32] = bytesOf(48) }), "pcrs"},
		{"PCR index negative", pcrs(func(m map[any]any) { m[-1] = bytesOf(48) }), "pcrs"},
		{"PCR index text", pcrs(func(m map[any]any) { m["0"] = bytesOf(48) }), "pcrs"},
		{"PCR 47 bytes", pcrs(func(m map[any]any) { m[0] = bytesOf(47) }), "pcrs"},
		{"PCR null", pcrs(func(m map[any]any) { m[0] = nil }), "pcrs"},
		{"PCR text", pcrs(func(m map[any]any) { m[0] = strings.Repeat("a", 48) }), "pcrs"},
		{"33 PCRs", pcrs(func(m map[any]any) {
			for i := range 33 {
				m[uint64(i)+100] = bytesOf(48)
			}
		}), "size limit"},
		{"certificate empty", set("certificate", []byte{}), "certificate"},
		{"certificate too long", set("certificate", bytesOf(1025)), "certificate"},
		{"certificate garbage", set("certificate", bytesOf(600)), "certificate"},
		{"certificate null", set("certificate", nil), "certificate"},
		{"cabundle empty", set("cabundle", [][]byte{}), "cabundle"},
		{"cabundle null", set("cabundle", nil), "cabundle"},
		{"cabundle entry empty", set("cabundle", [][]byte{p.root.Raw, {}}), "cabundle"},
		{"cabundle entry too long", set("cabundle", [][]byte{p.root.Raw, bytesOf(1025)}), "cabundle"},
		{"cabundle entry text", set("cabundle", []any{p.root.Raw, "x"}), "cabundle"},
		{"cabundle entry null", set("cabundle", []any{p.root.Raw, nil}), "cabundle"},
		{"cabundle 17 entries", set("cabundle", many), "size limit"},
		{"cabundle entry garbage", set("cabundle", [][]byte{p.root.Raw, bytesOf(100)}), "cabundle"},
		{"public_key empty", set("public_key", []byte{}), "public_key"},
		{"public_key too long", set("public_key", bytesOf(1025)), "public_key"},
		{"public_key text", set("public_key", "key"), "public_key"},
		{"public_key undefined", set("public_key", cbor.RawMessage{0xf7}), "public_key"},
		{"user_data too long", set("user_data", bytesOf(513)), "user_data"},
		{"user_data int", set("user_data", 7), "user_data"},
		{"nonce too long", set("nonce", bytesOf(513)), "nonce"},
		{"nonce array", set("nonce", []any{}), "nonce"},
		{"nonce false", set("nonce", false), "nonce"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m := basePayload(p)
			c.mod(m)
			doc, err := p.verify(p.signPayload(t, encode(t, m)))
			checkOutcome(t, doc, err, c.field)
		})
	}
}

// checkOutcome wants a document when want is "", else ErrMalformed with want
// in its message (the field or check that failed).
func checkOutcome(t *testing.T, doc *attestation.Document, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil || doc == nil {
			t.Fatalf("valid input refused: %v", err)
		}
		return
	}
	if doc != nil || !errors.Is(err, attestation.ErrMalformed) {
		t.Fatalf("Verify = %v, %v; want nil, ErrMalformed", doc != nil, err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not name %q", err, want)
	}
}

// TestPayloadEncodings covers encodings that a generic map cannot express.
func TestPayloadEncodings(t *testing.T) {
	t.Parallel()
	p := newPKI(t, defaultPKIOptions())
	base := encode(t, basePayload(p)) // definite-length map of 9: head a9
	if base[0] != 0xa9 {
		t.Fatalf("payload head %x", base[0])
	}
	indefinite := append(append([]byte{0xbf}, base[1:]...), 0xff)
	dupNonce := append(append([]byte{0xaa}, base[1:]...), append([]byte{0x65}, "nonce\xf6"...)...)
	cases := []struct {
		name, field string
		payload     []byte
	}{
		{"indefinite-length map", "", indefinite},
		{"duplicate key", "duplicate map key", dupNonce},
		{"trailing byte", "trailing bytes", append(bytes.Clone(base), 0x00)},
		{"truncated", "truncated", base[:len(base)-1]},
		{"array", "payload", encode(t, []any{1})},
		{"null", "payload", []byte{0xf6}},
		{"int keys", "payload", encode(t, map[int]int{1: 1})},
		{"tag", "payload", encode(t, cbor.Tag{Number: 24, Content: base})},
		{"oversized", "payload", bytesOf(16*1024 + 1)},
		{"indefinite map without break", "payload", indefinite[:len(indefinite)-1]},
		{"invalid UTF-8 key", "payload", []byte{0xa1, 0x61, 0xff, 0x01}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			doc, err := p.verify(p.signPayload(t, c.payload))
			checkOutcome(t, doc, err, c.field)
		})
	}
}

// TestEnvelopeChecks covers the COSE_Sign1 structure around the payload.
func TestEnvelopeChecks(t *testing.T) {
	t.Parallel()
	p := newPKI(t, defaultPKIOptions())
	payload := encode(t, basePayload(p))
	valid := p.signPayload(t, payload)
	withHeaders := func(protected, unprotected []byte) []byte {
		raw, err := attestation.SignWithHeaders(protected, unprotected, payload, p.ecdsaKey(t))
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	sig := valid[len(valid)-96:]
	envelope := func(items ...any) []byte { return encode(t, items) }
	cases := []struct {
		name, field string
		raw         []byte
	}{
		{"valid", "", valid},
		{"tagged", "", append([]byte{0xd2}, valid...)},
		{"indefinite empty unprotected", "", withHeaders([]byte{0xa1, 0x01, 0x38, 0x22}, []byte{0xbf, 0xff})},
		{"ES256", "protected header", withHeaders(encode(t, map[int]int{1: -7}), []byte{0xa0})},
		{"alg and kid", "protected header", withHeaders(encode(t, map[int]any{1: -35, 4: []byte{1}}), []byte{0xa0})},
		{"alg as text", "protected header", withHeaders(encode(t, map[int]any{1: "ES384"}), []byte{0xa0})},
		{"empty protected", "protected header", withHeaders([]byte{}, []byte{0xa0})},
		{"protected not a map", "protected header", withHeaders([]byte{0x80}, []byte{0xa0})},
		{"unprotected kid", "unprotected header", withHeaders([]byte{0xa1, 0x01, 0x38, 0x22}, encode(t, map[int][]byte{4: {1}}))},
		{"unprotected null", "unprotected header", withHeaders([]byte{0xa1, 0x01, 0x38, 0x22}, []byte{0xf6})},
		{"tag 98", "COSE_Sign1", append([]byte{0xd8, 0x62}, valid...)},
		{"tag 18 twice", "COSE_Sign1", append([]byte{0xd2, 0xd2}, valid...)},
		{"tag 18, two-byte head", "COSE_Sign1", append([]byte{0xd8, 0x12}, valid...)},
		{"trailing byte", "trailing bytes", append(bytes.Clone(valid), 0x00)},
		{"three items", "COSE_Sign1", envelope([]byte{0xa1, 0x01, 0x38, 0x22}, map[int]int{}, payload)},
		{"five items", "COSE_Sign1", envelope([]byte{0xa1, 0x01, 0x38, 0x22}, map[int]int{}, payload, sig, sig)},
		{"map, not array", "COSE_Sign1", encode(t, map[int]int{1: 1})},
		{"signature 95 bytes", "signature", envelope([]byte{0xa1, 0x01, 0x38, 0x22}, map[int]int{}, payload, sig[:95])},
		{"signature 97 bytes", "signature", envelope([]byte{0xa1, 0x01, 0x38, 0x22}, map[int]int{}, payload, append(bytes.Clone(sig), 0))},
		{"signature null", "signature", envelope([]byte{0xa1, 0x01, 0x38, 0x22}, map[int]int{}, payload, nil)},
		{"payload null", "payload", envelope([]byte{0xa1, 0x01, 0x38, 0x22}, map[int]int{}, nil, sig)},
		{"payload text", "COSE_Sign1", envelope([]byte{0xa1, 0x01, 0x38, 0x22}, map[int]int{}, string(payload), sig)},
		{"empty input", "COSE_Sign1", nil},
		{"too large", "larger than", bytesOf(attestation.MaxDocumentSize + 1)},
		{"deep nesting", "COSE_Sign1", bytes.Repeat([]byte{0x81}, 100)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			doc, err := p.verify(c.raw)
			checkOutcome(t, doc, err, c.field)
		})
	}
}

// TestErrorsDoNotEchoInput makes sure attacker-chosen strings stay out of
// error messages.
func TestErrorsDoNotEchoInput(t *testing.T) {
	t.Parallel()
	p := newPKI(t, defaultPKIOptions())
	const marker = "ATTACKER-CONTROLLED-MARKER"
	m := basePayload(p)
	m[marker] = marker
	base := encode(t, m)
	dup := append(append([]byte{0xab}, base[1:]...), encode(t, marker)...)
	dup = append(dup, 0x01)
	for _, payload := range [][]byte{base, dup} {
		_, err := p.verify(p.signPayload(t, payload))
		if err == nil || strings.Contains(err.Error(), marker) {
			t.Fatalf("error %v echoes the input", err)
		}
	}
}
