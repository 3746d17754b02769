//go:build !release

package harness

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// inboxSubjects are the subjects of every cosigner's inbox on NATS (the
// default subject prefix of parent/broker's NATS adapter, which the devnet
// uses).
const inboxSubjects = "cosigner.inbox.>"

// brokerTap counts the frames the parents publish to the devnet's NATS
// broker: a plain subscriber to every inbox subject sees each published
// frame once (deliveries to the consumers go to other subjects).
type brokerTap struct {
	nc     *nats.Conn
	bytes  atomic.Int64
	frames atomic.Int64
	last   atomic.Int64 // when the last frame was seen, Unix nanoseconds
}

func tapBroker(url string) (*brokerTap, error) {
	nc, err := nats.Connect(url, nats.Name("bench-tap"))
	if err != nil {
		return nil, fmt.Errorf("broker tap: %w", err)
	}
	t := &brokerTap{nc: nc}
	sub, err := nc.Subscribe(inboxSubjects, func(m *nats.Msg) {
		t.bytes.Add(int64(len(m.Data)))
		t.frames.Add(1)
		t.last.Store(time.Now().UnixNano())
	})
	if err == nil {
		err = sub.SetPendingLimits(-1, -1)
	}
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("broker tap: %w", err)
	}
	return t, nil
}

// tapCount is what the tap saw.
type tapCount struct{ bytes, frames int64 }

// count returns the totals so far, once the frames of operations that
// already returned have had time to arrive.
func (t *brokerTap) count() tapCount {
	time.Sleep(300 * time.Millisecond) // the last round's frames may trail the result
	_ = t.nc.Flush()
	return tapCount{t.bytes.Load(), t.frames.Load()}
}

func (c tapCount) minus(o tapCount) tapCount { return tapCount{c.bytes - o.bytes, c.frames - o.frames} }

func (t *brokerTap) close() { t.nc.Close() }
