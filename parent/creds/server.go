package creds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

// Timeouts of the control server.
const (
	retrieveTimeout   = 15 * time.Second
	readHeaderTimeout = 5 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	shutdownTimeout   = 5 * time.Second
	maxHeaderBytes    = 8 << 10
)

// Server serves a credential provider to the enclave. It implements
// http.Handler.
type Server struct {
	provider aws.CredentialsProvider
	log      *slog.Logger
}

// NewServer returns a Server for provider (usually from LoadDefault); a
// nil log discards.
func NewServer(provider aws.CredentialsProvider, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{provider: provider, log: log}
}

// Serve serves HTTP on l until ctx ends or l fails, then shuts down,
// letting requests in flight finish for a few seconds. When it returns,
// l is closed and none of its goroutines is left: nil if ctx ended, the
// Accept error otherwise.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	return serveHTTP(ctx, l, s)
}

// ServeHTTP answers GET /v1/credentials.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case r.URL.Path != Path:
		http.NotFound(w, r)
	case r.Method != http.MethodGet:
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	default:
		s.serveCredentials(w, r)
	}
}

func (s *Server) serveCredentials(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), retrieveTimeout)
	defer cancel()
	c, err := s.provider.Retrieve(ctx)
	if err == nil && !c.HasKeys() {
		err = errors.New("the provider returned no keys")
	}
	if err != nil {
		s.log.Warn("creds: cannot serve credentials to the enclave", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "credentials unavailable"})
		return
	}
	resp := newResponse(c)
	s.log.Debug("creds: served credentials", "source", c.Source, "credentials", resp)
	writeJSON(w, http.StatusOK, resp)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// serveHTTP runs an http.Server for h on l until ctx ends, then shuts it
// down gracefully for at most shutdownTimeout and closes what is left.
func serveHTTP(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelDebug),
	}
	if err := transport.ServeHTTP(ctx, l, srv, shutdownTimeout); err != nil {
		return fmt.Errorf("creds: serving: %w", err)
	}
	return nil
}
