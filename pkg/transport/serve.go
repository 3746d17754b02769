package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"
)

// Handler serves one connection. It owns c (Serve closes it too, when the
// context ends) and should return when ctx ends.
type Handler func(ctx context.Context, c net.Conn)

// maxAcceptBackoff caps the wait after a temporary Accept error (such as
// running out of file descriptors).
const maxAcceptBackoff = time.Second

// Serve accepts connections on l and runs handle for each in its own
// goroutine, until ctx ends or Accept fails for good. Either way it closes
// l and every connection still open, waits for every handler to return,
// and then returns: nil if ctx ended, the Accept error otherwise.
func Serve(ctx context.Context, l net.Listener, handle Handler) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &server{conns: make(map[net.Conn]struct{})}
	stop := context.AfterFunc(ctx, func() {
		l.Close()
		s.closeAll()
	})
	defer stop()
	err := s.acceptLoop(ctx, l, handle)
	cancel()
	l.Close()
	s.closeAll()
	s.wg.Wait()
	return err
}

type server struct {
	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func (s *server) acceptLoop(ctx context.Context, l net.Listener, handle Handler) error {
	backoff := 5 * time.Millisecond
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !temporary(err) {
				return fmt.Errorf("transport: accepting: %w", err)
			}
			if !sleep(ctx, backoff) {
				return nil
			}
			backoff = min(2*backoff, maxAcceptBackoff)
			continue
		}
		backoff = 5 * time.Millisecond
		s.start(ctx, c, handle)
	}
}

// start runs handle on c unless the server is closing.
func (s *server) start(ctx context.Context, c net.Conn, handle Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.forget(c)
		handle(ctx, c)
	}()
}

func (s *server) forget(c net.Conn) {
	c.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

func (s *server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
}

// temporary reports whether an Accept error may go away by itself: a
// timeout, a connection aborted before it was accepted, or running out of
// file descriptors.
func temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EMFILE) ||
		errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.EINTR)
}

// sleep waits for d or for ctx to end; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
