// Package natsdev runs a real NATS server with JetStream inside the
// current process, on a random 127.0.0.1 port, for the devnet and tests.
// It is a development stand-in: production parents connect to a NATS
// cluster. Only the devnet and tests import it, so that the server's code
// stays out of the cosigner-parent binary.
package natsdev

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedNATS is a NATS server with JetStream running in this process.
type EmbeddedNATS struct {
	dir string

	mu   sync.Mutex
	port int
	srv  *server.Server
}

// readyTimeout bounds a start, JetStream recovery included.
const readyTimeout = 10 * time.Second

// NewEmbeddedNATS starts a server that keeps its JetStream store in dir,
// listening on a random 127.0.0.1 port. Call Shutdown when done.
func NewEmbeddedNATS(dir string) (*EmbeddedNATS, error) {
	if dir == "" {
		return nil, errors.New("natsdev: no store directory")
	}
	e := &EmbeddedNATS{dir: dir, port: server.RANDOM_PORT}
	if err := e.start(); err != nil {
		return nil, err
	}
	return e, nil
}

// URL is the client URL, nats://127.0.0.1:<port>. It stays the same
// across Restart.
func (e *EmbeddedNATS) URL() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return fmt.Sprintf("nats://127.0.0.1:%d", e.port)
}

// Shutdown stops the server and waits for it. Its store stays in dir.
func (e *EmbeddedNATS) Shutdown() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.shutdown()
}

// Restart stops the server and starts a new one on the same port and
// store, as an operator's restart would: clients reconnect, and streams,
// consumers and stored messages come back.
func (e *EmbeddedNATS) Restart() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.shutdown()
	return e.startLocked()
}

func (e *EmbeddedNATS) start() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.startLocked()
}

func (e *EmbeddedNATS) startLocked() error {
	srv, err := server.NewServer(&server.Options{
		ServerName:         "natsdev",
		Host:               "127.0.0.1",
		Port:               e.port,
		JetStream:          true,
		StoreDir:           e.dir,
		JetStreamMaxMemory: 64 << 20,
		JetStreamMaxStore:  1 << 30,
		NoLog:              true,
		NoSigs:             true,
	})
	if err != nil {
		return fmt.Errorf("natsdev: configuring the server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(readyTimeout) || !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("natsdev: the server was not ready within %v", readyTimeout)
	}
	e.srv = srv
	e.port = srv.Addr().(*net.TCPAddr).Port
	return nil
}

func (e *EmbeddedNATS) shutdown() {
	if e.srv == nil {
		return
	}
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	e.srv = nil
}
