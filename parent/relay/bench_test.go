package relay

import (
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/link"
)

// BenchmarkOut: OUT frames per second from the link into the broker (an
// in-memory one), ACKs included, with 1 KiB frames and a window of 32.
func BenchmarkOut(b *testing.B) {
	_, e := benchRelay(b)
	frame := make([]byte, 1<<10)
	const window = 32
	sent, acked := 0, 0
	b.SetBytes(int64(len(frame)))
	b.ResetTimer()
	for acked < b.N {
		for sent < b.N && sent-acked < window {
			sent++
			if err := e.Write(link.Record{Kind: link.KindOut, Seq: uint64(sent), To: "peer", Frame: frame}); err != nil {
				b.Fatal(err)
			}
		}
		if r, err := e.Read(); err != nil {
			b.Fatal(err)
		} else if r.Kind == link.KindAck {
			acked++
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}

// BenchmarkIn: inbox frames per second from the broker (an in-memory one)
// to the enclave, each ACKed before the next: the round trip the broker
// adapters' one-at-a-time handler imposes.
func BenchmarkIn(b *testing.B) {
	h, e := benchRelay(b)
	frame := make([]byte, 1<<10)
	for range b.N {
		h.b.Publish(b.Context(), "self", frame)
	}
	b.SetBytes(int64(len(frame)))
	b.ResetTimer()
	for got := 0; got < b.N; {
		r, err := e.Read()
		if err != nil {
			b.Fatal(err)
		}
		got++
		if err := e.Write(link.Record{Kind: link.KindAck, Seq: r.Seq}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}

// benchRelay runs a relay on an in-memory broker and returns it with an
// enclave link to it.
func benchRelay(b *testing.B) (*harness, *link.Conn) {
	h := start(b, newMemBroker(), Config{})
	return h, dialEnclave(b, h.addr, fastLink).conn
}
