package peer

import (
	"context"
	"time"
)

// Refresh timing of KeepAttested. Nitro leaf certificates live about three
// hours: a document is replaced every hour, so every document in use has
// two hours left, and a failed refresh is retried every minute.
const (
	DefaultRefreshEvery = time.Hour
	refreshRetry        = time.Minute
)

// AttestFunc returns a fresh attestation document bound to this party's
// identity (pkg/wire's Member.Binding as user_data).
type AttestFunc func(ctx context.Context) ([]byte, error)

// KeepAttested replaces the Signer's attestation document every interval
// (DefaultRefreshEvery if zero) until ctx ends, retrying a failed refresh
// every minute (or every interval, if shorter). Failures are logged; the
// old document stays in use until it expires, after which peers drop our
// frames as attestation_expired, so the logs say so.
func (p *Peer) KeepAttested(ctx context.Context, attest AttestFunc, interval time.Duration) error {
	if interval <= 0 {
		interval = DefaultRefreshEvery
	}
	retry := min(refreshRetry, interval)
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := p.refresh(ctx, attest); err != nil {
			p.log.Warn("attestation refresh failed; the current document stays in use until it expires", "err", err)
			t.Reset(retry)
			continue
		}
		p.refreshed.Add(1)
		t.Reset(interval)
	}
}

func (p *Peer) refresh(ctx context.Context, attest AttestFunc) error {
	doc, err := attest(ctx)
	if err != nil {
		return err
	}
	return p.signer.SetAttestation(doc)
}
