// Package metrics holds what both daemons share for Prometheus: a private
// registry with a build_info gauge and the Go runtime and process
// collectors, a collector that reads a Stats snapshot once per scrape, and
// the /metrics server.
//
// Each daemon names its own series under one namespace, cosigner_parent_
// or cosigner_enclave_, runtime collectors included (so
// cosigner_enclave_go_goroutines, not go_goroutines). The parent relays the
// enclave's series beside its own, and the two sets can never collide.
//
// Nothing here is global: no series is registered with the default
// registry, and a registry serves only what was registered with it. Label
// values come from the daemon's own configuration and fixed sets (an
// operation name, a drop reason), never from a peer or a caller.
package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/version"
)

// Namespaces of the two daemons' series.
const (
	ParentNamespace  = "cosigner_parent"
	EnclaveNamespace = "cosigner_enclave"
)

// Path is where Serve answers.
const Path = "/metrics"

// NewRegistry returns a private registry holding
// <namespace>_build_info{version,revision,goversion} 1 (plus the extra
// constant labels, such as the attester in use) and the Go runtime and
// process collectors (the latter where /proc exists), renamed under
// namespace.
func NewRegistry(namespace string, extra prometheus.Labels) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	labels := BuildLabels()
	for k, v := range extra {
		labels[k] = v
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        namespace + "_build_info",
		Help:        "Always 1; the labels say which build is running.",
		ConstLabels: labels,
	}, func() float64 { return 1 }))
	wrapped := prometheus.WrapRegistererWithPrefix(namespace+"_", reg)
	wrapped.MustRegister(collectors.NewGoCollector())
	// The process collector reads /proc; without it (an enclave image
	// whose init did not mount it) it would fail every scrape.
	if _, err := os.Stat("/proc/self/stat"); err == nil {
		wrapped.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return reg
}

// BuildLabels returns the version (pkg/version, the module version, or
// "devel"), the VCS revision ("" when Go recorded none) and the Go
// version of this binary.
func BuildLabels() prometheus.Labels {
	l := prometheus.Labels{"version": version.Version, "revision": "", "goversion": runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		if l["version"] == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			l["version"] = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				l["revision"] = s.Value
			}
		}
	}
	if l["version"] == "" {
		l["version"] = "devel"
	}
	return l
}

// Timeouts of the metrics server.
const (
	readHeaderTimeout = 5 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = time.Minute
	shutdownGrace     = 5 * time.Second
	maxHeaderBytes    = 8 << 10
)

// Handler serves g in the Prometheus exposition formats. A collector that
// fails is logged and left out; the rest is still served.
func Handler(g prometheus.Gatherer, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:            errorLog{log},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             writeTimeout - time.Second,
	})
	mux := http.NewServeMux()
	mux.Handle("GET "+Path, h)
	return mux
}

// errorLog adapts slog to promhttp's Logger.
type errorLog struct{ log *slog.Logger }

func (l errorLog) Println(v ...any) { l.log.Warn("metrics: " + fmt.Sprint(v...)) }

// Serve serves GET /metrics from g on l until ctx ends or l fails, then
// shuts down within a few seconds. l is closed when it returns: nil once
// ctx ended, the Accept error otherwise.
func Serve(ctx context.Context, l net.Listener, g prometheus.Gatherer, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           Handler(g, log),
		ReadHeaderTimeout: readHeaderTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelDebug),
	}
	if err := transport.ServeHTTP(ctx, l, srv, shutdownGrace); err != nil {
		return fmt.Errorf("metrics: serving: %w", err)
	}
	return nil
}
