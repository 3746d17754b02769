package transport

import (
	"context"
	"net"
	"net/http"
	"time"
)

// ServeHTTP serves srv on l until ctx ends or l fails. When ctx ends it
// shuts srv down, letting requests in flight finish for at most grace, then
// closes what is left, and returns nil. When Serve fails by itself it
// returns that error. Either way l is closed and srv's goroutines are gone
// (except handlers that ignore their request's context) when it returns.
func ServeHTTP(ctx context.Context, l net.Listener, srv *http.Server, grace time.Duration) error {
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(done)
		sctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		srv.Shutdown(sctx)
		srv.Close()
	})
	err := srv.Serve(l)
	if stop() {
		srv.Close() // Serve failed by itself; ctx has not ended
		return err
	}
	<-done
	return nil
}
