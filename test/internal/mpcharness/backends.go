package mpcharness

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/nitro-cosigner/nitro-cosigner/parent/broker"
	"github.com/nitro-cosigner/nitro-cosigner/parent/broker/natsdev"
	"github.com/nitro-cosigner/nitro-cosigner/test/goaws"
)

// ClientFactory returns a new broker client with id's inbox provisioned;
// the caller closes it.
type ClientFactory func(tb testing.TB, id string) broker.Broker

// Backend is one of the three brokers.
type Backend struct {
	Name string
	// Serve starts a server for tb (stopped when tb ends) and returns a
	// factory of clients for it. SQS skips tb if goaws cannot be built,
	// unless goaws.RequiredEnv is 1.
	Serve func(tb testing.TB) ClientFactory
}

// The brokers: NATS JetStream embedded, Kafka on kfake, SQS on goaws.
var (
	NATS  = Backend{"NATS", serveNATS}
	Kafka = Backend{"Kafka", serveKafka}
	SQS   = Backend{"SQS", serveSQS}
)

func serveNATS(tb testing.TB) ClientFactory {
	srv := Must(natsdev.NewEmbeddedNATS(tb.TempDir()))
	tb.Cleanup(srv.Shutdown)
	return func(tb testing.TB, id string) broker.Broker {
		return provisioned(tb, id, Must(broker.NewNATS(broker.NATSConfig{URL: srv.URL(), AckWait: 2 * time.Second,
			RetryDelay: 100 * time.Millisecond, Logger: Logger(tb, "nats "+id)})))
	}
}

func serveKafka(tb testing.TB) ClientFactory {
	c := Must(kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0)))
	tb.Cleanup(c.Close)
	return func(tb testing.TB, id string) broker.Broker {
		return provisioned(tb, id, Must(broker.NewKafka(broker.KafkaConfig{Brokers: c.ListenAddrs(),
			RetryDelay: 100 * time.Millisecond, Logger: Logger(tb, "kafka "+id)})))
	}
}

func serveSQS(tb testing.TB) ClientFactory {
	srv := goaws.Start(tb)
	return func(tb testing.TB, id string) broker.Broker {
		return provisioned(tb, id, Must(broker.NewSQS(broker.SQSConfig{Client: srv.Client(),
			VisibilityTimeout: 5 * time.Second, WaitTime: time.Second, RetryDelay: time.Second,
			Logger: Logger(tb, "sqs "+id)})))
	}
}

// provisioned creates id's inbox with b, closing b if that fails.
func provisioned[B interface {
	broker.Broker
	broker.Provisioner
}](tb testing.TB, id string, b B) broker.Broker {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	if err := b.EnsureInbox(ctx, id); err != nil {
		b.Close()
		tb.Fatalf("EnsureInbox(%s): %v", id, err)
	}
	return b
}
