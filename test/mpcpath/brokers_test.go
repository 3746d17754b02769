package mpcpath_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/nitro-cosigner/nitro-cosigner/parent/broker"
	"github.com/nitro-cosigner/nitro-cosigner/parent/broker/natsdev"
	"github.com/nitro-cosigner/nitro-cosigner/test/goaws"
)

// clientFactory returns a new broker client with id's inbox provisioned;
// the caller closes it.
type clientFactory func(tb testing.TB, id string) broker.Broker

// backend is one of the three brokers.
type backend struct {
	name string
	// serve starts a server for tb (stopped when tb ends) and returns a
	// factory of clients for it. SQS skips tb if goaws cannot be built,
	// unless goaws.RequiredEnv is 1.
	serve func(tb testing.TB) clientFactory
}

var (
	natsBackend  = backend{"NATS", serveNATS}
	kafkaBackend = backend{"Kafka", serveKafka}
	sqsBackend   = backend{"SQS", serveSQS}
)

func serveNATS(tb testing.TB) clientFactory {
	srv := must(natsdev.NewEmbeddedNATS(tb.TempDir()))
	tb.Cleanup(srv.Shutdown)
	return func(tb testing.TB, id string) broker.Broker {
		return provisioned(tb, id, must(broker.NewNATS(broker.NATSConfig{URL: srv.URL(), AckWait: 2 * time.Second,
			RetryDelay: 100 * time.Millisecond, Logger: logger(tb, "nats "+id)})))
	}
}

func serveKafka(tb testing.TB) clientFactory {
	c := must(kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0)))
	tb.Cleanup(c.Close)
	return func(tb testing.TB, id string) broker.Broker {
		return provisioned(tb, id, must(broker.NewKafka(broker.KafkaConfig{Brokers: c.ListenAddrs(),
			RetryDelay: 100 * time.Millisecond, Logger: logger(tb, "kafka "+id)})))
	}
}

func serveSQS(tb testing.TB) clientFactory {
	srv := goaws.Start(tb)
	return func(tb testing.TB, id string) broker.Broker {
		return provisioned(tb, id, must(broker.NewSQS(broker.SQSConfig{Client: srv.Client(),
			VisibilityTimeout: 5 * time.Second, WaitTime: time.Second, RetryDelay: time.Second,
			Logger: logger(tb, "sqs "+id)})))
	}
}

// provisioned creates id's inbox with b, closing b if that fails.
func provisioned[B interface {
	broker.Broker
	broker.Provisioner
}](tb testing.TB, id string, b B) broker.Broker {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := b.EnsureInbox(ctx, id); err != nil {
		b.Close()
		tb.Fatalf("EnsureInbox(%s): %v", id, err)
	}
	return b
}
