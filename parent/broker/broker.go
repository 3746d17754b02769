// Package broker carries opaque, already signed MPC frames between
// cosigners through a message broker: it is the relay's contract with the
// broker. It makes no security decision and never looks inside a frame.
// Receivers (inside the enclaves) verify every frame and drop duplicates
// and replays, so delivery is at least once, never exactly once.
//
// # Addressing
//
// Every cosigner has one inbox, named by its cosigner ID (see CheckID).
// Publish(to, frame) appends frame to to's inbox; Subscribe(self, handle)
// consumes self's inbox. A broadcast is one Publish per recipient: the
// signed envelope already says whether it is addressed to one party or to
// all, one inbox per cosigner works the same on all three brokers (SQS has
// no fan-out of its own), and operators can let each host write to every
// inbox but read only its own.
//
// # Semantics common to every adapter
//
//   - Publish returns nil only once the broker has stored the frame, as
//     durably as the broker is configured to store it (see each adapter).
//     An error means the frame may or may not have been stored: the caller
//     retries, and a duplicate is harmless.
//   - Subscribe hands frames to handle one at a time, never concurrently.
//     handle returning nil means the frame was handed over (to the
//     enclave): the adapter acknowledges it and the broker forgets it.
//     handle returning an error means it was not: the adapter has it
//     delivered again after a delay (the adapter's RetryDelay). A relay
//     returns nil for a frame the enclave received even if the enclave
//     refused it; an error is for "could not hand over", never for content.
//   - A frame is also delivered again if the subscriber dies or loses its
//     connection before acknowledging it, so handle may see a frame twice.
//   - Subscribe returns nil when ctx ends, ErrClosed when the Broker is
//     closed, and another error only if it cannot set the inbox up at the
//     start (the caller may retry). Broker and network failures after that
//     are retried inside Subscribe with capped backoff and logged.
//   - Frames are 1 to MaxFrameSize() bytes; MaxFrameSize() is at most
//     MaxFrameSize, and Publish refuses anything else before it reaches
//     the network (ErrFrameTooLarge, ErrEmptyFrame).
//   - Order: see each adapter. Receivers must not depend on order: no
//     adapter keeps it across redeliveries of every kind.
//
// # Adapters
//
// NATS JetStream (NewNATS), Kafka / Amazon MSK (NewKafka) and Amazon SQS
// (NewSQS). Each says what is durable when, how it redelivers and what
// order it keeps. Each also implements Provisioner, which creates inboxes
// for the devnet and tests; production inboxes are usually made by the
// operator's infrastructure code, to the requirements each adapter lists.
// The embedded NATS server for the devnet and tests is in package natsdev;
// the conformance suite every adapter passes is in package brokertest.
package broker

import (
	"context"
	"errors"
	"fmt"
)

// MaxFrameSize bounds every frame: no adapter accepts a larger one. Some
// accept less (Broker.MaxFrameSize says how much).
const MaxFrameSize = 1 << 20

// MaxIDLen bounds a cosigner ID, so that every adapter's inbox name (a
// prefix plus the ID) stays inside its broker's limits.
const MaxIDLen = 48

// Handler receives one frame. nil means "handed over, acknowledge it"; an
// error means "not handed over, deliver it again later". frame belongs to
// the handler. A handler must return soon after ctx ends: Subscribe and
// Close wait for it.
type Handler func(ctx context.Context, frame []byte) error

// Broker moves frames between cosigners' inboxes. It is safe for
// concurrent use.
type Broker interface {
	// Publish stores frame in the inbox of cosigner to.
	Publish(ctx context.Context, to string, frame []byte) error
	// Subscribe consumes the inbox of cosigner self, calling handle for
	// each frame, until ctx ends or the Broker is closed.
	Subscribe(ctx context.Context, self string, handle Handler) error
	// MaxFrameSize is the largest frame this adapter accepts.
	MaxFrameSize() int
	// Close stops running Subscribe calls, waits for them and for running
	// Publish calls to return, and releases the connection. Later calls
	// return ErrClosed.
	Close() error
}

// Provisioner creates inboxes. The devnet and tests use it; in production
// the operator's infrastructure code usually does the same ahead of time.
type Provisioner interface {
	// EnsureInbox creates the inbox of cosigner id if it does not exist.
	// It is idempotent.
	EnsureInbox(ctx context.Context, id string) error
}

var (
	// ErrInvalidID is returned for a cosigner ID that CheckID refuses.
	ErrInvalidID = errors.New("broker: invalid cosigner ID")
	// ErrFrameTooLarge is returned by Publish for a frame larger than the
	// adapter's MaxFrameSize.
	ErrFrameTooLarge = errors.New("broker: frame too large")
	// ErrEmptyFrame is returned by Publish for an empty frame.
	ErrEmptyFrame = errors.New("broker: empty frame")
	// ErrNoInbox is returned by Publish and Subscribe when the broker says
	// the cosigner's inbox does not exist (not provisioned, or a roster
	// and infrastructure that disagree).
	ErrNoInbox = errors.New("broker: inbox does not exist")
	// ErrClosed is returned by calls on a closed Broker, and by Subscribe
	// when the Broker is closed under it.
	ErrClosed = errors.New("broker: closed")
)

// CheckID reports whether id can name a cosigner's inbox on every broker:
// 1 to MaxIDLen ASCII letters, digits, '-' or '_', starting with a letter
// or digit. That keeps it a single NATS subject token, a legal Kafka topic
// and SQS queue name suffix, and free of anything a broker treats as a
// wildcard or separator.
func CheckID(id string) error {
	if !validID(id) {
		return errIDForm
	}
	return nil
}

var errIDForm = fmt.Errorf("%w: want 1 to %d of [A-Za-z0-9_-], starting with a letter or digit", ErrInvalidID, MaxIDLen)

func validID(id string) bool {
	if len(id) == 0 || len(id) > MaxIDLen || !isAlnum(id[0]) {
		return false
	}
	for i := 1; i < len(id); i++ {
		if !isAlnum(id[i]) && id[i] != '-' && id[i] != '_' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// checkFrame validates a frame against an adapter's limit.
func checkFrame(frame []byte, limit int) error {
	switch {
	case len(frame) == 0:
		return ErrEmptyFrame
	case len(frame) > limit:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(frame), limit)
	}
	return nil
}

// checkSubscribe validates Subscribe's arguments.
func checkSubscribe(self string, handle Handler) error {
	if handle == nil {
		return errors.New("broker: nil handler")
	}
	return CheckID(self)
}

// checkPublish validates Publish's arguments.
func checkPublish(to string, frame []byte, limit int) error {
	if err := CheckID(to); err != nil {
		return err
	}
	return checkFrame(frame, limit)
}
