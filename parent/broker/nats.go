package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSConfig configures the NATS JetStream adapter. Only URL is required.
type NATSConfig struct {
	// URL is the server list, as nats.Connect takes it.
	URL string
	// Options are applied after the adapter's own (reconnect forever,
	// every 250ms): credentials, TLS, a client name.
	Options []nats.Option
	// Stream is the JetStream stream that holds every inbox (default
	// "COSIGNER_INBOX").
	Stream string
	// SubjectPrefix is the subject prefix of the inboxes: cosigner ID
	// appears as the last token (default "cosigner.inbox", so inbox
	// subjects are "cosigner.inbox.<id>").
	SubjectPrefix string
	// Replicas is the stream's replica count when EnsureInbox creates it
	// (default 1; use 3 on a production cluster).
	Replicas int
	// MaxAge drops frames nobody consumed after this long (default 24h).
	MaxAge time.Duration
	// AckWait is how long the server waits for an acknowledgement before
	// it delivers a frame again (default 30s).
	AckWait time.Duration
	// RetryDelay is how long after a handler error the frame comes back
	// (default 1s).
	RetryDelay time.Duration
	// Logger receives retried failures (default: discard).
	Logger *slog.Logger
}

// NATS is the NATS JetStream adapter.
//
// Layout: one stream (NATSConfig.Stream) with work-queue retention holds
// every inbox; a cosigner's inbox is the subject SubjectPrefix.<id>, read
// by one durable pull consumer named inbox-<id> (explicit acks, unlimited
// deliveries). Work-queue retention removes a frame once it is
// acknowledged, so the stream holds only frames still in flight, and
// frames published before a cosigner's first Subscribe wait for it.
//
// Durability: Publish returns nil once the stream has stored the frame
// (on a quorum of its replicas). Delivery: a frame is delivered again
// RetryDelay after a handler error (a NAK with delay), and AckWait after a
// delivery whose acknowledgement never reached the server (the
// subscriber died, or lost its connection). A successful handler's
// acknowledgement is confirmed by the server before the next frame.
//
// Order: frames reach handle in stream order, which is publish order for
// one publisher, except that a frame delivered again comes after frames
// published later.
//
// Reconnects: the client reconnects forever; a running Subscribe resumes
// on the new connection, and sets its consumer up again if the server
// lost it. A server restart that keeps its store loses nothing that was
// acknowledged to a publisher.
//
// Production requirements: the server's max_payload must be at least
// MaxFrameSize (the default 1 MiB is); a host needs publish rights on
// SubjectPrefix.* and rights to the JetStream API for its own consumer.
type NATS struct {
	cfg  NATSConfig
	log  *slog.Logger
	nc   *nats.Conn
	js   jetstream.JetStream
	life *life

	mu          sync.Mutex
	streamReady bool
}

var _ Broker = (*NATS)(nil)
var _ Provisioner = (*NATS)(nil)

// NewNATS connects to the server. It fails if the server is unreachable
// or cannot carry MaxFrameSize frames.
func NewNATS(cfg NATSConfig) (*NATS, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	opts := append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond)}, cfg.Options...)
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("nats: connecting: %w", err)
	}
	n, err := newNATS(cfg, nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return n, nil
}

func newNATS(cfg NATSConfig, nc *nats.Conn) (*NATS, error) {
	if nc.MaxPayload() < MaxFrameSize {
		return nil, fmt.Errorf("nats: server max_payload %d is below the %d-byte frame limit", nc.MaxPayload(), MaxFrameSize)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("nats: jetstream: %w", err)
	}
	return &NATS{cfg: cfg, log: orDiscard(cfg.Logger).With("broker", "nats"), nc: nc, js: js, life: newLife()}, nil
}

func (c NATSConfig) withDefaults() (NATSConfig, error) {
	c.Stream = orDefault(c.Stream, "COSIGNER_INBOX")
	c.SubjectPrefix = orDefault(c.SubjectPrefix, "cosigner.inbox")
	c.Replicas = orDefault(c.Replicas, 1)
	c.MaxAge = orDefault(c.MaxAge, 24*time.Hour)
	c.AckWait = orDefault(c.AckWait, 30*time.Second)
	c.RetryDelay = orDefault(c.RetryDelay, time.Second)
	switch {
	case c.URL == "":
		return c, errors.New("nats: no URL")
	case !validName(c.Stream, 32, false):
		return c, errors.New("nats: stream name: want 1 to 32 of [A-Za-z0-9_-]")
	case !validSubjectPrefix(c.SubjectPrefix):
		return c, errors.New("nats: subject prefix: want dot-separated tokens of [A-Za-z0-9_-]")
	}
	return c, nil
}

// MaxFrameSize implements Broker.
func (n *NATS) MaxFrameSize() int { return MaxFrameSize }

// Publish implements Broker.
func (n *NATS) Publish(ctx context.Context, to string, frame []byte) error {
	if err := checkPublish(to, frame, MaxFrameSize); err != nil {
		return err
	}
	caller := ctx
	ctx, leave, err := n.life.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	if _, err := n.js.Publish(ctx, n.subject(to), frame); err != nil {
		return n.life.publishErr(caller, natsErr("publishing", err))
	}
	return nil
}

// Subscribe implements Broker.
func (n *NATS) Subscribe(ctx context.Context, self string, handle Handler) error {
	if err := checkSubscribe(self, handle); err != nil {
		return err
	}
	caller := ctx
	ctx, leave, err := n.life.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	cons, err := n.consumer(ctx, self)
	if err != nil {
		if ctx.Err() != nil {
			return n.life.subscribeEnd(caller)
		}
		return natsErr("setting up the inbox consumer", err)
	}
	n.consumeLoop(ctx, self, cons, handle)
	return n.life.subscribeEnd(caller)
}

// consumeLoop consumes until ctx ends, setting the consumer up again
// after a failure.
func (n *NATS) consumeLoop(ctx context.Context, self string, cons jetstream.Consumer, handle Handler) {
	b := newBackoff()
	for {
		err := n.consume(ctx, cons, handle, b)
		if ctx.Err() != nil {
			return
		}
		n.log.Warn("inbox consumer failed; retrying", "cosigner_id", self, "err", err)
		if cons = n.reconsumer(ctx, self, b); cons == nil {
			return
		}
	}
}

// reconsumer sets the consumer up again, retrying until ctx ends.
func (n *NATS) reconsumer(ctx context.Context, self string, b *backoff) jetstream.Consumer {
	for b.wait(ctx) {
		cons, err := n.consumer(ctx, self)
		if err == nil {
			return cons
		}
		n.log.Warn("setting up the inbox consumer failed; retrying", "cosigner_id", self, "err", err)
	}
	return nil
}

// consume hands frames to handle until the iterator fails or ctx ends.
func (n *NATS) consume(ctx context.Context, cons jetstream.Consumer, handle Handler, b *backoff) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(8))
	if err != nil {
		return err
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return err
		}
		b.reset()
		n.deliver(ctx, msg, handle)
	}
}

// deliver hands one frame over and acknowledges it, or has it delivered
// again after RetryDelay.
func (n *NATS) deliver(ctx context.Context, msg jetstream.Msg, handle Handler) {
	if err := handle(ctx, msg.Data()); err != nil {
		if err := msg.NakWithDelay(n.cfg.RetryDelay); err != nil {
			n.log.Warn("nak failed; the server redelivers after AckWait", "err", err)
		}
		return
	}
	ackCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := msg.DoubleAck(ackCtx); err != nil {
		n.log.Warn("ack failed; the server will deliver the frame again", "err", err)
	}
}

// consumer creates or updates the durable consumer of self's inbox.
func (n *NATS) consumer(ctx context.Context, self string) (jetstream.Consumer, error) {
	return n.js.CreateOrUpdateConsumer(ctx, n.cfg.Stream, jetstream.ConsumerConfig{
		Durable:       "inbox-" + self,
		FilterSubject: n.subject(self),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       n.cfg.AckWait,
		MaxDeliver:    -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: 64,
	})
}

// EnsureInbox implements Provisioner: it creates the stream that holds
// every inbox if it does not exist. An existing stream is left as it is.
func (n *NATS) EnsureInbox(ctx context.Context, id string) error {
	if err := CheckID(id); err != nil {
		return err
	}
	ctx, leave, err := n.life.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	return n.ensureStream(ctx)
}

func (n *NATS) ensureStream(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.streamReady {
		return nil
	}
	_, err := n.js.CreateStream(ctx, n.streamConfig())
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return natsErr("creating the inbox stream", err)
	}
	n.streamReady = true
	return nil
}

func (n *NATS) streamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:       n.cfg.Stream,
		Subjects:   []string{n.cfg.SubjectPrefix + ".*"},
		Retention:  jetstream.WorkQueuePolicy,
		Storage:    jetstream.FileStorage,
		Replicas:   n.cfg.Replicas,
		MaxAge:     n.cfg.MaxAge,
		MaxMsgSize: MaxFrameSize,
		Discard:    jetstream.DiscardOld,
	}
}

// Close implements Broker.
func (n *NATS) Close() error {
	if !n.life.close() {
		return ErrClosed
	}
	n.nc.Close()
	return nil
}

func (n *NATS) subject(id string) string { return n.cfg.SubjectPrefix + "." + id }

// natsErr wraps a NATS error, translating the ones callers branch on.
// A publish that no stream answers is not ErrNoInbox: it is also what a
// stream between leaders or a server still starting looks like.
func natsErr(op string, err error) error {
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("nats: %s: %w (stream not found)", op, ErrNoInbox)
	case errors.Is(err, nats.ErrConnectionClosed):
		return fmt.Errorf("nats: %s: %w", op, ErrClosed)
	}
	return fmt.Errorf("nats: %s: %w", op, err)
}

// validName reports whether s is 1 to maxLen of [A-Za-z0-9_-] (and '.'
// if dots is set).
func validName(s string, maxLen int, dots bool) bool {
	if len(s) == 0 || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '-' && s[i] != '_' && (!dots || s[i] != '.') {
			return false
		}
	}
	return true
}

// validSubjectPrefix reports whether s is dot-separated non-empty tokens
// of [A-Za-z0-9_-].
func validSubjectPrefix(s string) bool {
	if len(s) > 128 {
		return false
	}
	for _, tok := range strings.Split(s, ".") {
		if !validName(tok, 128, false) {
			return false
		}
	}
	return true
}
