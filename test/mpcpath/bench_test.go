package mpcpath_test

import (
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/test/internal/mpcharness"
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
			c := mpcharness.NewCluster(b, mpcharness.NATS, mpcharness.Options{Lean: bc.lean})
			key := mpcharness.MustAll(b, "keygen", mpcharness.Second(mpcharness.Run(c, mpcharness.ABC, mpcharness.Generous, mpcharness.FROSTKeygen)))
			digest := mpcharness.RandomDigest()
			signers := []mpc.PartyID{"alice", "carol"}
			before := c.HostileStats()
			signs := 0
			for b.Loop() {
				mpcharness.MustAll(b, "sign", mpcharness.Second(mpcharness.Run(c, signers, mpcharness.Generous, mpcharness.Signer(key.Key, digest))))
				signs++
			}
			after := c.HostileStats()
			b.ReportMetric(float64(after.Bytes-before.Bytes)/float64(signs), "broker-bytes/sign")
			b.ReportMetric(float64(after.Frames-before.Frames)/float64(signs), "frames/sign")
		})
	}
}
