package broker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nitro-cosigner/nitro-cosigner/parent/broker"
	"github.com/nitro-cosigner/nitro-cosigner/parent/broker/brokertest"
	"github.com/nitro-cosigner/nitro-cosigner/test/goaws"
)

func newSQS(t *testing.T, srv *goaws.Server) *broker.SQS {
	b, err := broker.NewSQS(broker.SQSConfig{
		Client:            srv.Client(),
		VisibilityTimeout: 2 * time.Second,
		WaitTime:          5 * time.Second,
		RetryDelay:        time.Second,
		Logger:            testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSQS(t *testing.T) {
	srv := goaws.Start(t)
	brokertest.Run(t, brokertest.Harness{
		New: func(t *testing.T) broker.Broker { return newSQS(t, srv) },
		// The visibility timeout, and goaws's once-a-second sweep.
		Unacked: 3 * time.Second,
		// The SDK's HTTP client keeps idle connections (and their
		// goroutines) for later calls.
		LeakOptions: []goleak.Option{
			goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
			goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		},
	})
	t.Run("MissingInbox", func(t *testing.T) {
		b := newSQS(t, srv)
		defer b.Close()
		ctx := context.Background()
		if err := b.Publish(ctx, "never-provisioned", []byte("x")); !errors.Is(err, broker.ErrNoInbox) {
			t.Errorf("Publish = %v, want ErrNoInbox", err)
		}
		handle := func(context.Context, []byte) error { return nil }
		if err := b.Subscribe(ctx, "never-provisioned", handle); !errors.Is(err, broker.ErrNoInbox) {
			t.Errorf("Subscribe = %v, want ErrNoInbox", err)
		}
	})
}
