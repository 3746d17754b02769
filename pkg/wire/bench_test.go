package wire

import (
	"testing"
)

// payload256 is the size of a typical online-signing share message.
var payload256 = make([]byte, 256)

func BenchmarkSeal(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			c := newCluster(b, "alice", "bob")
			f := bc.frame(c.session)
			c.prime(b, c.p("bob").recv)
			var n int
			for b.Loop() {
				raw, err := c.p("alice").signer.Seal(f)
				if err != nil {
					b.Fatal(err)
				}
				n = len(raw)
			}
			b.ReportMetric(float64(n), "bytes/frame")
		})
	}
}

func BenchmarkReceive(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			c := newCluster(b, "alice", "bob")
			bob := c.p("bob")
			f := bc.frame(c.session)
			r := c.newReceiver(b, bob, func(cfg *ReceiverConfig) { cfg.MaxFramesPerSession = 1 << 30 })
			c.prime(b, r)
			frames := make([][]byte, b.N)
			for i := range frames {
				frames[i] = c.seal(b, "alice", f)
			}
			b.ResetTimer()
			for i := range b.N {
				if _, err := r.Receive(frames[i]); err != nil {
					b.Fatal(err)
				}
				if f.Attach {
					b.StopTimer()
					r = c.newReceiver(b, bob, func(cfg *ReceiverConfig) { cfg.MaxFramesPerSession = 1 << 30 })
					b.StartTimer()
				}
			}
			b.ReportMetric(float64(len(frames[0])), "bytes/frame")
		})
	}
}

var benchCases = []struct {
	name  string
	frame func(SessionID) Frame
}{
	{"broadcast", func(s SessionID) Frame {
		return Frame{Session: s, Protocol: "cmp/presign-online", Round: 8, To: "bob", Broadcast: true, Payload: payload256}
	}},
	{"direct", func(s SessionID) Frame {
		return Frame{Session: s, Protocol: "frost/keygen", Round: 3, To: "bob", Payload: payload256}
	}},
	// With the document attached and verified on every frame (a cold
	// cache): the first frame from a peer.
	{"broadcast+attestation", func(s SessionID) Frame {
		return Frame{Session: s, Protocol: "cmp/presign-online", Round: 8, To: "bob", Broadcast: true, Payload: payload256, Attach: true}
	}},
}

// prime sends alice's document to r in round 0 of the session, as the
// first round of a session does, so that later rounds go without it.
func (c *cluster) prime(tb testing.TB, r *Receiver) {
	tb.Helper()
	for _, f := range []Frame{
		{Session: c.session, Protocol: "p", To: "bob", Broadcast: true},
		{Session: c.session, Protocol: "p", To: "bob"},
	} {
		if _, err := r.Receive(c.seal(tb, "alice", f)); err != nil {
			tb.Fatal(err)
		}
	}
}
