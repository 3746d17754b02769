package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/nats-io/nats.go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nitro-cosigner/nitro-cosigner/parent/broker"
	"github.com/nitro-cosigner/nitro-cosigner/parent/health"
)

// defaultSQSPrefix is broker.SQSConfig's default QueuePrefix; the SQS
// health check names the queue with it.
const defaultSQSPrefix = "cosigner-inbox-"

// brokerConn is the broker adapter with its health check and whatever
// the check holds besides the adapter.
type brokerConn struct {
	broker.Broker
	check   health.Check
	release func() // may be nil
}

// close closes the adapter and the check's resources. It may be called
// more than once.
func (b *brokerConn) close() {
	b.Broker.Close()
	if b.release != nil {
		b.release()
	}
}

// openBroker builds the adapter cfg.Broker names. Only NATS connects
// here (and fails if the server is unreachable); Kafka and SQS connect on
// first use.
func openBroker(ctx context.Context, cfg Config, log *slog.Logger) (*brokerConn, error) {
	switch cfg.Broker {
	case BrokerNATS:
		return openNATS(cfg, log)
	case BrokerKafka:
		return openKafka(cfg, log)
	case BrokerSQS:
		return openSQS(ctx, cfg, log)
	}
	return nil, fmt.Errorf("%w: --broker: unknown broker", ErrConfig)
}

// openNATS connects and tracks the connection for the health check.
func openNATS(cfg Config, log *slog.Logger) (*brokerConn, error) {
	var conn atomic.Pointer[nats.Conn]
	remember := func(nc *nats.Conn) { conn.Store(nc) }
	b, err := broker.NewNATS(broker.NATSConfig{
		URL: cfg.NATSURL, SubjectPrefix: cfg.BrokerPrefix, Logger: log,
		Options: []nats.Option{
			nats.Name("cosigner-parent " + cfg.CosignerID),
			nats.ConnectHandler(remember), nats.ReconnectHandler(remember),
		},
	})
	if err != nil {
		return nil, err
	}
	check := func(context.Context) error {
		if nc := conn.Load(); nc == nil || !nc.IsConnected() {
			return health.Reason("disconnected", nil)
		}
		return nil
	}
	return &brokerConn{Broker: b, check: check}, nil
}

// openKafka builds the adapter and a separate client that pings the
// cluster for the health check.
func openKafka(cfg Config, log *slog.Logger) (*brokerConn, error) {
	b, err := broker.NewKafka(broker.KafkaConfig{Brokers: cfg.KafkaBrokers, TopicPrefix: cfg.BrokerPrefix, Logger: log})
	if err != nil {
		return nil, err
	}
	probe, err := kgo.NewClient(kgo.SeedBrokers(cfg.KafkaBrokers...))
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("kafka: health client: %w", err)
	}
	check := func(ctx context.Context) error {
		if err := probe.Ping(ctx); err != nil {
			return health.Reason("unreachable", err)
		}
		return nil
	}
	return &brokerConn{Broker: b, check: check, release: probe.Close}, nil
}

// openSQS builds an SQS client from the host's default AWS configuration
// (credentials chain, region) and the adapter on it.
func openSQS(ctx context.Context, cfg Config, log *slog.Logger) (*brokerConn, error) {
	client, err := sqsClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	b, err := broker.NewSQS(broker.SQSConfig{Client: client, QueuePrefix: cfg.BrokerPrefix, Logger: log})
	if err != nil {
		return nil, err
	}
	prefix := cfg.BrokerPrefix
	if prefix == "" {
		prefix = defaultSQSPrefix
	}
	queue := prefix + cfg.CosignerID
	check := func(ctx context.Context) error {
		if _, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(queue)}); err != nil {
			return health.Reason("inbox unreachable", err)
		}
		return nil
	}
	return &brokerConn{Broker: b, check: check}, nil
}

func sqsClient(ctx context.Context, cfg Config) (*sqs.Client, error) {
	var opts []func(*config.LoadOptions) error
	if cfg.SQSRegion != "" {
		opts = append(opts, config.WithRegion(cfg.SQSRegion))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("sqs: loading the default AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, fmt.Errorf("%w: %w", ErrConfig, errNoRegion)
	}
	return sqs.NewFromConfig(awsCfg, func(o *sqs.Options) {
		if cfg.SQSEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.SQSEndpoint)
		}
	}), nil
}

var errNoRegion = errors.New("--sqs-region: not set, and the AWS configuration names no region")
