package mpcpath_test

import (
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
)

// BenchmarkSignBrokerBytes measures what one FROST 2-of-3 online signature
// by two cosigners puts on the broker (NATS; the frame bytes are the same
// on every broker, SQS stores them base64-encoded), with our attestation
// document attached to every frame (the default) and only to the first
// round each recipient gets in a session (peer.Config.LeanAttach). Keygen
// is not measured.
func BenchmarkSignBrokerBytes(b *testing.B) {
	for _, bc := range []struct {
		name string
		lean bool
	}{{"attach=every", false}, {"attach=lean", true}} {
		b.Run(bc.name, func(b *testing.B) {
			c := newCluster(b, natsBackend, options{lean: bc.lean})
			key := mustAll(b, "keygen", second(run(c, abc, generous, frostKeygen)))
			digest := randomDigest()
			signers := []mpc.PartyID{"alice", "carol"}
			before := c.hostileStats()
			signs := 0
			for b.Loop() {
				mustAll(b, "sign", second(run(c, signers, generous, signer(key.Key, digest))))
				signs++
			}
			after := c.hostileStats()
			b.ReportMetric(float64(after.Bytes-before.Bytes)/float64(signs), "broker-bytes/sign")
			b.ReportMetric(float64(after.Frames-before.Frames)/float64(signs), "frames/sign")
		})
	}
}
