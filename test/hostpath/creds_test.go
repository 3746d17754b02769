package hostpath_test

// This test runs both ends of the credentials channel: the parent's server
// and the enclave's provider. It imports an enclave/ package from a test
// only (no parent/ binary links it, which is what test/depcheck guards);
// it belongs in test/ beside the other end-to-end tests.

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	enclavecreds "github.com/nitro-cosigner/nitro-cosigner/enclave/creds"
	"github.com/nitro-cosigner/nitro-cosigner/parent/creds"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

type fixed aws.Credentials

func (f fixed) Retrieve(context.Context) (aws.Credentials, error) { return aws.Credentials(f), nil }

func TestRoundTrip(t *testing.T) {
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	want := aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "SECRET", SessionToken: "TOKEN",
		CanExpire: true, Expires: exp, Source: "test"}
	l, err := transport.Listen(t.Context(), "unix://"+t.TempDir()+"/creds.sock")
	if err != nil {
		t.Fatal(err)
	}
	parent, err := transport.ParseAddr("unix://" + l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- creds.NewServer(fixed(want), nil).Serve(ctx, l) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve = %v", err)
		}
	}()

	got, err := enclavecreds.New(parent).Retrieve(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessKeyID != want.AccessKeyID || got.SecretAccessKey != want.SecretAccessKey ||
		got.SessionToken != want.SessionToken || !got.CanExpire || got.Source != enclavecreds.Source {
		t.Fatalf("enclave got key %q from %q", got.AccessKeyID, got.Source)
	}
	// The cache reports the refresh time: ExpiryWindow before expiry.
	if d := exp.Sub(got.Expires); d != enclavecreds.ExpiryWindow {
		t.Fatalf("refresh %v before expiry, want %v", d, enclavecreds.ExpiryWindow)
	}
}
