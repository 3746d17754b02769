package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaRecordBytes is the batch size a MaxFrameSize frame needs, with
// room for the record batch and record headers.
const kafkaRecordBytes = MaxFrameSize + 16<<10

// KafkaConfig configures the Kafka / Amazon MSK adapter. Only Brokers is
// required.
type KafkaConfig struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// Options are applied after the adapter's own: TLS, SASL (for MSK,
	// IAM through the aws_msk_iam mechanism), a client ID.
	Options []kgo.Opt
	// TopicPrefix names the inbox topics: a cosigner's inbox is the topic
	// TopicPrefix<id>, read by the consumer group of the same name
	// (default "cosigner-inbox-").
	TopicPrefix string
	// ReplicationFactor is used when EnsureInbox creates a topic (default
	// -1: the cluster's default.replication.factor).
	ReplicationFactor int16
	// RetryDelay is how long after a handler error the frame is handed
	// over again (default 1s).
	RetryDelay time.Duration
	// Logger receives retried failures (default: discard).
	Logger *slog.Logger
}

// Kafka is the Kafka / Amazon MSK adapter.
//
// Layout: one topic per inbox, TopicPrefix<id>, with a single partition,
// consumed by a consumer group of the same name. A topic per cosigner
// rather than one shared topic keyed by cosigner: a consumer reads only
// its own frames instead of filtering everyone's, and topic ACLs can let
// a host read its own inbox only.
//
// Durability: Publish returns nil once the partition leader and all
// in-sync replicas have the frame (acks=all, idempotent producer; set
// min.insync.replicas on the topic for real redundancy). Delivery: the
// subscriber commits a frame's offset after handle returns nil, before
// the next frame; after a handler error it hands the same frame over
// again after RetryDelay, holding back the frames behind it. A subscriber
// that stops or dies before committing restarts from the last committed
// offset, so the frames after it come again.
//
// Order: frames reach handle in publish order for one publisher, also
// across redeliveries (the inbox is one partition), though a restart may
// repeat frames already handled.
//
// Production requirements: each inbox topic must accept records of
// MaxFrameSize plus 16 KiB of overhead (max.message.bytes; MSK's default
// of 1048588 is too small for the largest frame). EnsureInbox sets that.
type Kafka struct {
	cfg      KafkaConfig
	log      *slog.Logger
	producer *kgo.Client
	life     *life
}

var _ Broker = (*Kafka)(nil)
var _ Provisioner = (*Kafka)(nil)

// NewKafka creates the producer client. It does not contact the cluster
// until the first call.
func NewKafka(cfg KafkaConfig) (*Kafka, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	producer, err := kgo.NewClient(cfg.clientOpts(
		kgo.ProducerBatchMaxBytes(kafkaRecordBytes),
		kgo.ProducerLinger(0),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: producer: %w", err)
	}
	return &Kafka{cfg: cfg, log: orDiscard(cfg.Logger).With("broker", "kafka"), producer: producer, life: newLife()}, nil
}

func (c KafkaConfig) withDefaults() (KafkaConfig, error) {
	c.TopicPrefix = orDefault(c.TopicPrefix, "cosigner-inbox-")
	c.ReplicationFactor = orDefault(c.ReplicationFactor, -1)
	c.RetryDelay = orDefault(c.RetryDelay, time.Second)
	switch {
	case len(c.Brokers) == 0:
		return c, errors.New("kafka: no brokers")
	case !validName(c.TopicPrefix, 64, true):
		return c, errors.New("kafka: topic prefix: want 1 to 64 of [A-Za-z0-9._-]")
	}
	return c, nil
}

// clientOpts returns the options every client of this adapter uses,
// then extra, then the caller's.
func (c KafkaConfig) clientOpts(extra ...kgo.Opt) []kgo.Opt {
	opts := append([]kgo.Opt{kgo.SeedBrokers(c.Brokers...)}, extra...)
	return append(opts, c.Options...)
}

// MaxFrameSize implements Broker.
func (k *Kafka) MaxFrameSize() int { return MaxFrameSize }

// Publish implements Broker.
func (k *Kafka) Publish(ctx context.Context, to string, frame []byte) error {
	if err := checkPublish(to, frame, MaxFrameSize); err != nil {
		return err
	}
	caller := ctx
	ctx, leave, err := k.life.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	rec := &kgo.Record{Topic: k.topic(to), Value: frame}
	if err := k.producer.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return k.life.publishErr(caller, kafkaErr("publishing", err))
	}
	return nil
}

// Subscribe implements Broker.
func (k *Kafka) Subscribe(ctx context.Context, self string, handle Handler) error {
	if err := checkSubscribe(self, handle); err != nil {
		return err
	}
	caller := ctx
	ctx, leave, err := k.life.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	cl, err := k.consumer(ctx, self)
	if err != nil {
		if ctx.Err() != nil {
			return k.life.subscribeEnd(caller)
		}
		return err
	}
	defer closeConsumer(cl)
	k.consume(ctx, self, cl, handle)
	return k.life.subscribeEnd(caller)
}

// consumer creates self's group consumer and checks that the cluster
// answers.
func (k *Kafka) consumer(ctx context.Context, self string) (*kgo.Client, error) {
	topic := k.topic(self)
	cl, err := kgo.NewClient(k.cfg.clientOpts(
		kgo.ConsumerGroup(topic),
		kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxPartitionBytes(kafkaRecordBytes),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: consumer: %w", err)
	}
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		return nil, kafkaErr("reaching the cluster", err)
	}
	return cl, nil
}

// closeConsumer leaves the group, without waiting long for a cluster
// that does not answer, and closes the client.
func closeConsumer(cl *kgo.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = cl.LeaveGroupContext(ctx)
	cl.Close()
}

// consume polls and hands frames over until ctx ends.
func (k *Kafka) consume(ctx context.Context, self string, cl *kgo.Client, handle Handler) {
	b := newBackoff()
	for ctx.Err() == nil {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return
		}
		if err := fetches.Err(); err != nil {
			k.log.Warn("fetching the inbox failed; retrying", "cosigner_id", self, "err", err)
			b.wait(ctx)
			continue
		}
		b.reset()
		k.deliverAll(ctx, cl, fetches.Records(), handle)
	}
}

// deliverAll hands records over in order, committing each, until ctx
// ends. What it does not commit comes again to the next subscriber.
func (k *Kafka) deliverAll(ctx context.Context, cl *kgo.Client, recs []*kgo.Record, handle Handler) {
	for _, rec := range recs {
		if !k.handOver(ctx, rec.Value, handle) {
			return
		}
		k.commit(ctx, cl, rec)
	}
}

// commit commits rec's offset, even if ctx has just ended: the frame was
// handed over.
func (k *Kafka) commit(ctx context.Context, cl *kgo.Client, rec *kgo.Record) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := cl.CommitRecords(ctx, rec); err != nil {
		k.log.Warn("commit failed; the frame will be delivered again", "err", err)
	}
}

// handOver calls handle until it returns nil, waiting RetryDelay between
// attempts. It reports false if ctx ended first.
func (k *Kafka) handOver(ctx context.Context, frame []byte, handle Handler) bool {
	for {
		if err := handle(ctx, frame); err == nil {
			return true
		}
		if !sleep(ctx, k.cfg.RetryDelay) {
			return false
		}
	}
}

// EnsureInbox implements Provisioner: it creates id's topic (one
// partition, max.message.bytes for the largest frame) if it does not
// exist. An existing topic is left as it is.
func (k *Kafka) EnsureInbox(ctx context.Context, id string) error {
	if err := CheckID(id); err != nil {
		return err
	}
	ctx, leave, err := k.life.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	maxBytes := strconv.Itoa(kafkaRecordBytes)
	configs := map[string]*string{"max.message.bytes": &maxBytes}
	_, err = kadm.NewClient(k.producer).CreateTopic(ctx, 1, k.cfg.ReplicationFactor, configs, k.topic(id))
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return kafkaErr("creating the inbox topic", err)
	}
	return nil
}

// Close implements Broker.
func (k *Kafka) Close() error {
	if !k.life.close() {
		return ErrClosed
	}
	k.producer.Close()
	return nil
}

func (k *Kafka) topic(id string) string { return k.cfg.TopicPrefix + id }

// kafkaErr wraps a Kafka error, translating the ones callers branch on.
func kafkaErr(op string, err error) error {
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		return fmt.Errorf("kafka: %s: %w (unknown topic)", op, ErrNoInbox)
	case errors.Is(err, kgo.ErrClientClosed):
		return fmt.Errorf("kafka: %s: %w", op, ErrClosed)
	}
	return fmt.Errorf("kafka: %s: %w", op, err)
}
