package health

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

// Paths of the endpoints.
const (
	PathLive  = "/healthz"
	PathReady = "/readyz"
)

// Timeouts of the health server.
const (
	readHeaderTimeout = 5 * time.Second
	idleTimeout       = time.Minute
	shutdownTimeout   = 5 * time.Second
	maxHeaderBytes    = 8 << 10
)

// ServeHTTP answers GET and HEAD on /healthz and /readyz.
func (c *Checker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case r.URL.Path != PathLive && r.URL.Path != PathReady:
		http.NotFound(w, r)
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	case r.URL.Path == PathLive:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	default:
		c.serveReady(w, r)
	}
}

func (c *Checker) serveReady(w http.ResponseWriter, r *http.Request) {
	rep := c.Run(r.Context())
	status := http.StatusOK
	if !rep.Ready() {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, rep)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// Serve serves the endpoints on l until ctx ends or l fails, then shuts
// down, letting requests in flight finish for a few seconds. When it
// returns, l is closed and none of its goroutines is left (except checks
// that ignore their context): nil if ctx ended, the Accept error
// otherwise.
func (c *Checker) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           c,
		ReadHeaderTimeout: readHeaderTimeout,
		WriteTimeout:      c.timeout + 5*time.Second,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelDebug),
	}
	if err := transport.ServeHTTP(ctx, l, srv, shutdownTimeout); err != nil {
		return fmt.Errorf("health: serving: %w", err)
	}
	return nil
}
