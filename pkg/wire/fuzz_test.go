package wire

import (
	"bytes"
	"testing"
)

// seedFrames returns valid frames of every shape, and some broken ones.
func seedFrames(tb testing.TB, c *cluster) [][]byte {
	tb.Helper()
	return [][]byte{
		c.seal(tb, "alice", broadcast(c.session, 1, "bob", "with document")),
		c.seal(tb, "alice", broadcast(c.session, 2, "bob", "without document")),
		c.seal(tb, "alice", direct(c.session, 1, "bob", "sealed share")),
		c.seal(tb, "alice", direct(c.session, 2, "bob", "")),
		c.seal(tb, "carol", direct(c.session, 1, "bob", "x")),
		c.seal(tb, "alice", direct(c.session, 1, "carol", "not for bob")),
		c.seal(tb, "alice", broadcast(c.session, 1, "carol", "broadcast not for bob")),
		{0xd2, 0x84, 0x43, 0xa1, 0x01, 0x27, 0xa0, 0x40, 0x40},
		{},
	}
}

// FuzzParseFrame: the parser never panics, and whatever it accepts is the
// canonical encoding of what it decoded (one byte form per frame).
func FuzzParseFrame(f *testing.F) {
	c := newCluster(f, "alice", "bob", "carol")
	for _, raw := range seedFrames(f, c) {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		fr, err := parseFrame(raw)
		if err != nil {
			if fr != nil {
				t.Fatal("parseFrame returned a frame and an error")
			}
			return
		}
		payload, err := fr.body.encode()
		if err != nil || !bytes.Equal(payload, fr.msg.Payload) {
			t.Fatal("accepted body does not re-encode to itself")
		}
		again, err := fr.msg.MarshalCBOR()
		if err != nil || !bytes.Equal(again, raw) {
			t.Fatal("accepted frame does not re-encode to itself")
		}
		if !fr.body.valid() {
			t.Fatal("accepted an invalid body")
		}
	})
}

// FuzzReceive runs the whole receive path at bob, with a fresh Receiver per
// input: it never panics, returns a message or an error (never both), and
// an accepted frame carries the fields it was parsed with and is refused
// the second time.
func FuzzReceive(f *testing.F) {
	c := newCluster(f, "alice", "bob", "carol")
	for _, raw := range seedFrames(f, c) {
		f.Add(raw)
	}
	bob := c.p("bob")
	f.Fuzz(func(t *testing.T, raw []byte) {
		r := c.newReceiver(t, bob, nil)
		m, err := r.Receive(raw)
		if (m == nil) == (err == nil) {
			t.Fatalf("Receive returned message %v and error %v", m != nil, err)
		}
		if err != nil {
			if reasonOf(err) == 0 || r.Stats().Accepted != 0 {
				t.Fatalf("bad refusal: %v", err)
			}
			return
		}
		checkRoundTrip(t, raw, m)
		if _, err := r.Receive(raw); reasonOf(err) != DropReplay {
			t.Fatalf("second Receive: %v, want replay", err)
		}
	})
}

func checkRoundTrip(t *testing.T, raw []byte, m *Message) {
	t.Helper()
	fr, err := parseFrame(raw)
	if err != nil {
		t.Fatal("accepted a frame that does not parse")
	}
	b := fr.body
	if m.Session != b.session() || m.Protocol != b.Protocol || m.Round != b.Round ||
		m.From != b.From || m.To != b.To || m.Broadcast != b.Broadcast || m.Seq != b.Seq ||
		uint64(m.Time.UnixMilli()) != b.TimeMS || !bytes.Equal(m.AttestationDigest[:], b.AttDigest) {
		t.Fatalf("message %+v does not match its frame", m)
	}
	if m.To != "bob" {
		t.Fatalf("bob accepted a frame for %q", m.To)
	}
	if b.Broadcast && !bytes.Equal(m.Payload, b.Payload) {
		t.Fatal("broadcast payload changed")
	}
	if !b.Broadcast && len(m.Payload)+aeadOverhead != len(b.Payload) {
		t.Fatal("direct payload does not match its ciphertext")
	}
}

// FuzzSealReceive: any frame Seal accepts names a recipient and is
// received with the same fields and payload by that recipient, and by
// nobody else, broadcast or direct.
func FuzzSealReceive(f *testing.F) {
	c := newCluster(f, "alice", "bob", "carol")
	f.Add("cmp/sign", uint16(2), "bob", true, []byte("x"))
	f.Add("cmp/sign", uint16(2), "", true, []byte("no recipient"))
	f.Add("frost/keygen", uint16(3), "bob", false, []byte("share"))
	f.Add("p", uint16(0), "carol", false, []byte{})
	f.Fuzz(func(t *testing.T, protocol string, round uint16, to string, bcast bool, payload []byte) {
		fr := Frame{Session: c.session, Protocol: protocol, Round: round, To: to, Broadcast: bcast, Payload: payload, Attach: true}
		raw, err := c.p("alice").signer.Seal(fr)
		if err != nil {
			return
		}
		for _, id := range []string{"bob", "carol"} {
			r := c.newReceiver(t, c.p(id), nil)
			m, err := r.Receive(raw)
			if to != id {
				if reasonOf(err) != DropWrongRecipient {
					t.Fatalf("%s: got %v, want wrong recipient", id, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s refused a sealed frame: %v", id, err)
			}
			if m.Protocol != protocol || m.Round != round || m.To != to || m.Broadcast != bcast ||
				m.From != "alice" || !bytes.Equal(m.Payload, payload) {
				t.Fatalf("%s got %+v", id, m)
			}
		}
	})
}
