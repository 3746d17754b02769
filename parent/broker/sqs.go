package broker

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
)

// SQSAPI is the part of the SQS client the adapter uses; *sqs.Client
// implements it.
type SQSAPI interface {
	SendMessage(context.Context, *sqs.SendMessageInput, ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	ReceiveMessage(context.Context, *sqs.ReceiveMessageInput, ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(context.Context, *sqs.DeleteMessageInput, ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	ChangeMessageVisibility(context.Context, *sqs.ChangeMessageVisibilityInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
	GetQueueUrl(context.Context, *sqs.GetQueueUrlInput, ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
	CreateQueue(context.Context, *sqs.CreateQueueInput, ...func(*sqs.Options)) (*sqs.CreateQueueOutput, error)
}

// SQSConfig configures the Amazon SQS adapter. Only Client is required.
type SQSConfig struct {
	// Client talks to SQS, typically sqs.NewFromConfig with the host's
	// credentials.
	Client SQSAPI
	// QueuePrefix names the inbox queues: a cosigner's inbox is the
	// standard queue QueuePrefix<id> (default "cosigner-inbox-"; at most
	// 80-MaxIDLen characters of [A-Za-z0-9_-]).
	QueuePrefix string
	// MaxMessageSize is the queues' MaximumMessageSize in bytes (default
	// and maximum 1 MiB). Frames travel base64-encoded, so the largest
	// frame is three quarters of it.
	MaxMessageSize int
	// VisibilityTimeout is how long a received frame stays hidden from
	// other receivers before SQS delivers it again unless it was deleted
	// (default 30s; whole seconds).
	VisibilityTimeout time.Duration
	// WaitTime is the long-poll duration of each receive (default 20s,
	// the SQS maximum; whole seconds, at least 1).
	WaitTime time.Duration
	// RetryDelay is how long after a handler error the frame comes back
	// (default 1s; whole seconds).
	RetryDelay time.Duration
	// Logger receives retried failures (default: discard).
	Logger *slog.Logger
}

// sqsMaxMessageSize is the largest message Amazon SQS accepts.
const sqsMaxMessageSize = 1 << 20

// SQS is the Amazon SQS adapter.
//
// Layout: one standard queue per inbox, QueuePrefix<id>. Frames travel
// as base64 message bodies (SQS bodies must be XML-safe text).
//
// Durability: Publish returns nil once SQS has stored the message (SQS
// keeps copies across availability zones). Delivery: the subscriber long
// polls, hands each frame over, then deletes the message. After a handler
// error it sets the message's visibility timeout to RetryDelay, so SQS
// delivers it again then; a subscriber that stops lets the frames it
// received but did not hand over reappear at once, and one that dies
// lets them reappear after VisibilityTimeout. SQS standard queues may
// also deliver a message twice on their own.
//
// Order: none. Standard queues deliver roughly, not strictly, in order.
// (FIFO queues would keep order but need message groups and cap the
// throughput; the receivers do not need order.)
//
// Production requirements: queues made by the operator must have
// MaximumMessageSize equal to MaxMessageSize; a host needs
// sqs:SendMessage on every inbox queue, sqs:GetQueueUrl, and
// sqs:ReceiveMessage, sqs:DeleteMessage and sqs:ChangeMessageVisibility
// on its own.
type SQS struct {
	cfg  SQSConfig
	log  *slog.Logger
	life *life

	mu   sync.Mutex
	urls map[string]string // cosigner ID → queue URL
}

var _ Broker = (*SQS)(nil)
var _ Provisioner = (*SQS)(nil)

// NewSQS returns the adapter. It does not contact SQS until the first
// call.
func NewSQS(cfg SQSConfig) (*SQS, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &SQS{cfg: cfg, log: orDiscard(cfg.Logger).With("broker", "sqs"), life: newLife(), urls: map[string]string{}}, nil
}

func (c SQSConfig) withDefaults() (SQSConfig, error) {
	c.QueuePrefix = orDefault(c.QueuePrefix, "cosigner-inbox-")
	c.MaxMessageSize = orDefault(c.MaxMessageSize, sqsMaxMessageSize)
	c.VisibilityTimeout = orDefault(c.VisibilityTimeout, 30*time.Second)
	c.WaitTime = orDefault(c.WaitTime, 20*time.Second)
	c.RetryDelay = orDefault(c.RetryDelay, time.Second)
	switch {
	case c.Client == nil:
		return c, errors.New("sqs: no client")
	case !validName(c.QueuePrefix, 80-MaxIDLen, false):
		return c, fmt.Errorf("sqs: queue prefix: want 1 to %d of [A-Za-z0-9_-]", 80-MaxIDLen)
	case c.MaxMessageSize < 1024 || c.MaxMessageSize > sqsMaxMessageSize:
		return c, fmt.Errorf("sqs: max message size: want 1024 to %d bytes", sqsMaxMessageSize)
	case c.WaitTime < time.Second || c.WaitTime > 20*time.Second:
		return c, errors.New("sqs: wait time: want 1s to 20s")
	case c.VisibilityTimeout < time.Second || c.RetryDelay < time.Second:
		return c, errors.New("sqs: visibility timeout and retry delay: want at least 1s")
	}
	return c, nil
}

// MaxFrameSize implements Broker: the largest frame whose base64 form
// fits in MaxMessageSize.
func (s *SQS) MaxFrameSize() int {
	return min(base64.StdEncoding.DecodedLen(s.cfg.MaxMessageSize), MaxFrameSize)
}

// Publish implements Broker.
func (s *SQS) Publish(ctx context.Context, to string, frame []byte) error {
	if err := checkPublish(to, frame, s.MaxFrameSize()); err != nil {
		return err
	}
	caller := ctx
	ctx, leave, err := s.life.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	url, err := s.queueURL(ctx, to)
	if err != nil {
		return s.life.publishErr(caller, err)
	}
	body := base64.StdEncoding.EncodeToString(frame)
	if _, err := s.cfg.Client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: &body}); err != nil {
		return s.life.publishErr(caller, sqsErr("sending", err))
	}
	return nil
}

// Subscribe implements Broker.
func (s *SQS) Subscribe(ctx context.Context, self string, handle Handler) error {
	if err := checkSubscribe(self, handle); err != nil {
		return err
	}
	caller := ctx
	ctx, leave, err := s.life.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	url, err := s.queueURL(ctx, self)
	if err != nil {
		if ctx.Err() != nil {
			return s.life.subscribeEnd(caller)
		}
		return err
	}
	s.receiveLoop(ctx, self, url, handle)
	return s.life.subscribeEnd(caller)
}

// receiveLoop long polls and hands frames over until ctx ends.
func (s *SQS) receiveLoop(ctx context.Context, self, url string, handle Handler) {
	b := newBackoff()
	for ctx.Err() == nil {
		out, err := s.cfg.Client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:            &url,
			MaxNumberOfMessages: 10,
			WaitTimeSeconds:     seconds(s.cfg.WaitTime),
			VisibilityTimeout:   seconds(s.cfg.VisibilityTimeout),
		})
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("receiving failed; retrying", "cosigner_id", self, "err", err)
				b.wait(ctx)
			}
			continue
		}
		b.reset()
		s.deliverAll(ctx, url, out.Messages, handle)
	}
}

// deliverAll hands messages over in turn. Once ctx ends, it makes the
// rest visible again at once.
func (s *SQS) deliverAll(ctx context.Context, url string, msgs []types.Message, handle Handler) {
	for i, m := range msgs {
		if ctx.Err() != nil {
			s.release(ctx, url, msgs[i:])
			return
		}
		s.deliver(ctx, url, m, handle)
	}
}

// deliver hands one frame over and deletes its message, or has it
// delivered again after RetryDelay.
func (s *SQS) deliver(ctx context.Context, url string, m types.Message, handle Handler) {
	frame, err := base64.StdEncoding.DecodeString(aws.ToString(m.Body))
	if err != nil || len(frame) == 0 {
		// Not something Publish wrote; it would come back forever.
		s.log.Warn("deleting a message that is not a frame", "message_id", aws.ToString(m.MessageId))
		s.delete(ctx, url, m)
		return
	}
	if err := handle(ctx, frame); err != nil {
		s.setVisibility(ctx, url, m, s.cfg.RetryDelay)
		return
	}
	s.delete(ctx, url, m)
}

// delete removes a handled message, even if ctx has just ended.
func (s *SQS) delete(ctx context.Context, url string, m types.Message) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, err := s.cfg.Client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: m.ReceiptHandle})
	if err != nil {
		s.log.Warn("delete failed; the frame will be delivered again", "err", err)
	}
}

// release makes messages that were received but not handed over visible
// again at once.
func (s *SQS) release(ctx context.Context, url string, msgs []types.Message) {
	for _, m := range msgs {
		s.setVisibility(ctx, url, m, 0)
	}
}

// setVisibility hides m for d from now, even if ctx has just ended. If it
// fails, the message reappears after VisibilityTimeout instead.
func (s *SQS) setVisibility(ctx context.Context, url string, m types.Message, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, err := s.cfg.Client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: &url, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: seconds(d),
	})
	if err != nil {
		s.log.Warn("changing visibility failed; the frame comes back after the visibility timeout", "err", err)
	}
}

// queueURL returns the URL of id's queue, asking SQS once.
func (s *SQS) queueURL(ctx context.Context, id string) (string, error) {
	s.mu.Lock()
	url, ok := s.urls[id]
	s.mu.Unlock()
	if ok {
		return url, nil
	}
	out, err := s.cfg.Client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(s.queueName(id))})
	if err != nil {
		return "", sqsErr("looking up the inbox queue", err)
	}
	return s.remember(id, aws.ToString(out.QueueUrl)), nil
}

func (s *SQS) remember(id, url string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.urls[id] = url
	return url
}

// EnsureInbox implements Provisioner: it creates id's queue with
// MaxMessageSize and VisibilityTimeout. SQS leaves an existing queue with
// the same attributes as it is, and refuses one with others.
func (s *SQS) EnsureInbox(ctx context.Context, id string) error {
	if err := CheckID(id); err != nil {
		return err
	}
	ctx, leave, err := s.life.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	out, err := s.cfg.Client.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName: aws.String(s.queueName(id)),
		Attributes: map[string]string{
			string(types.QueueAttributeNameMaximumMessageSize): strconv.Itoa(s.cfg.MaxMessageSize),
			string(types.QueueAttributeNameVisibilityTimeout):  strconv.Itoa(int(seconds(s.cfg.VisibilityTimeout))),
		},
	})
	if err != nil {
		return sqsErr("creating the inbox queue", err)
	}
	s.remember(id, aws.ToString(out.QueueUrl))
	return nil
}

// Close implements Broker. The client belongs to the caller.
func (s *SQS) Close() error {
	if !s.life.close() {
		return ErrClosed
	}
	return nil
}

func (s *SQS) queueName(id string) string { return s.cfg.QueuePrefix + id }

// seconds rounds d up to whole seconds, as SQS takes them.
func seconds(d time.Duration) int32 {
	return int32((d + time.Second - 1) / time.Second)
}

// sqsErr wraps an SQS error, translating the ones callers branch on.
func sqsErr(op string, err error) error {
	if queueMissing(err) {
		return fmt.Errorf("sqs: %s: %w", op, ErrNoInbox)
	}
	return fmt.Errorf("sqs: %s: %w", op, err)
}

// queueMissing reports whether err says the queue does not exist: the
// SDK's typed error, or the query-protocol code that SQS sends for
// compatibility (and that emulators send alone).
func queueMissing(err error) bool {
	var missing *types.QueueDoesNotExist
	var api smithy.APIError
	return errors.As(err, &missing) ||
		errors.As(err, &api) && api.ErrorCode() == "AWS.SimpleQueueService.NonExistentQueue"
}
