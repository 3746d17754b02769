package broker_test

import (
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/parent/broker"
	"github.com/nitro-cosigner/nitro-cosigner/parent/broker/brokertest"
	"github.com/nitro-cosigner/nitro-cosigner/parent/broker/natsdev"
)

func TestNATS(t *testing.T) {
	srv, err := natsdev.NewEmbeddedNATS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	brokertest.Run(t, brokertest.Harness{
		New: func(t *testing.T) broker.Broker {
			b, err := broker.NewNATS(broker.NATSConfig{
				URL:        srv.URL(),
				AckWait:    time.Second,
				RetryDelay: 200 * time.Millisecond,
				Logger:     testLogger(t),
			})
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		Ordered: true,
		Unacked: time.Second,
		Restart: func(t *testing.T) {
			if err := srv.Restart(); err != nil {
				t.Fatal(err)
			}
		},
	})
}
