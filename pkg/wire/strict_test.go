package wire

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"
)

// TestStrictBody: a body signed by a roster member is still refused unless
// it is exactly the canonical encoding of valid fields.
func TestStrictBody(t *testing.T) {
	c := newCluster(t, "alice", "bob")
	alice := c.p("alice")
	raw := c.seal(t, "alice", broadcast(c.session, 1, "bob", "x"))
	f, err := parseFrame(raw)
	if err != nil {
		t.Fatal(err)
	}
	valid := f.msg.Payload
	if valid[1] != 0x01 || valid[2] != Version {
		t.Fatalf("the body does not start with version %d", Version)
	}
	fields := func(edit func(map[int]any)) []byte { return editFields(t, raw, edit) }
	n := len(f.body.fieldsPresent())
	for name, body := range map[string][]byte{
		"null payload":     fields(func(m map[int]any) { m[12] = nil }),
		"missing payload":  fields(func(m map[int]any) { delete(m, 12) }),
		"unknown key":      fields(func(m map[int]any) { m[14] = 1 }),
		"text key":         append(append([]byte{0xa0 + byte(n+1)}, valid[1:]...), 0x61, 'x', 0x01),
		"empty recipient":  fields(func(m map[int]any) { m[6] = "" }),
		"no recipient":     fields(func(m map[int]any) { delete(m, 6) }),
		"spaced recipient": fields(func(m map[int]any) { m[6] = "b ob" }),
		"broadcast enc":    fields(func(m map[int]any) { m[11] = make([]byte, encSize) }),
		"direct, no enc":   fields(func(m map[int]any) { m[7] = false }),
		"short session":    fields(func(m map[int]any) { m[2] = []byte{1} }),
		"zero seq":         fields(func(m map[int]any) { m[8] = 0 }),
		"round too large":  fields(func(m map[int]any) { m[4] = 70000 }),
		"negative time":    fields(func(m map[int]any) { m[9] = -1 }),
		"protocol bytes":   fields(func(m map[int]any) { m[3] = []byte("p") }),
		"tagged session":   fields(func(m map[int]any) { m[2] = cbor.Tag{Number: 24, Content: m[2]} }),
		"duplicate key":    append(append([]byte{0xa0 + byte(n+1)}, valid[1:]...), 0x01, 0x01),
		"indefinite map":   append(append([]byte{0xbf}, valid[1:]...), 0xff),
		"trailing byte":    append(bytes.Clone(valid), 0x00),
		"non-minimal int":  append([]byte{valid[0], 0x01, 0x18, Version}, valid[3:]...), // the version in two bytes
	} {
		t.Run(name, func(t *testing.T) {
			if bytes.Equal(body, valid) {
				t.Fatal("the edit changed nothing")
			}
			wantDrop(t, c.p("bob").recv, signRaw(t, alice.signer, body), DropMalformed)
		})
	}
	// The unedited body, signed the same way, is accepted.
	c.mustAccept(t, "bob", signRaw(t, alice.signer, fields(func(map[int]any) {})))
}

// editFields decodes a frame's body as a map of fields, lets edit change
// it and returns its canonical encoding, unsigned.
func editFields(t *testing.T, raw []byte, edit func(map[int]any)) []byte {
	t.Helper()
	f, err := parseFrame(raw)
	if err != nil {
		t.Fatal(err)
	}
	var m map[int]any
	if err := cbor.Unmarshal(f.msg.Payload, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, err := encMode.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// signRaw signs body bytes as a frame payload, as a roster member could.
func signRaw(t *testing.T, s *Signer, body []byte) []byte {
	t.Helper()
	msg := cose.NewSign1Message()
	msg.Headers.Protected.SetAlgorithm(cose.AlgorithmEdDSA)
	msg.Payload = body
	if err := msg.Sign(rand.Reader, nil, s.signer); err != nil {
		t.Fatal(err)
	}
	out, err := msg.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fieldsPresent returns the keys a canonical encoding of b holds.
func (b *body) fieldsPresent() []int {
	enc, _ := b.encode()
	var m map[int]any
	_ = cbor.Unmarshal(enc, &m)
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// TestStrictEnvelope: the COSE layer around a valid body must be exactly
// the one this package writes.
func TestStrictEnvelope(t *testing.T) {
	c := newCluster(t, "alice", "bob")
	raw := c.seal(t, "alice", broadcast(c.session, 1, "bob", "x"))
	for name, edit := range map[string]func([]byte) []byte{
		"untagged":      func(b []byte) []byte { return b[1:] },
		"trailing byte": func(b []byte) []byte { return append(b, 0) },
		"ES256 header": func(b []byte) []byte {
			return bytes.Replace(b, []byte{0x43, 0xa1, 0x01, 0x27}, []byte{0x43, 0xa1, 0x01, 0x26}, 1)
		},
		"unprotected header": func(b []byte) []byte { return bytes.Replace(b, []byte{0x27, 0xa0}, []byte{0x27, 0xa1, 0x04, 0x40}, 1) },
		"short signature": func(b []byte) []byte {
			i := len(b) - 66
			return append(append(bytes.Clone(b[:i]), 0x58, 0x3f), b[i+2:len(b)-1]...)
		},
		"oversized": func(b []byte) []byte { return make([]byte, MaxFrameSize+1) },
	} {
		t.Run(name, func(t *testing.T) {
			wantDrop(t, c.p("bob").recv, edit(bytes.Clone(raw)), DropMalformed)
		})
	}
}
