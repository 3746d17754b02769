// Command goaws-loopback runs goaws (the SQS emulator, pinned in go.mod) on
// a loopback address chosen by the kernel, for the end-to-end tests of
// parent/broker.
//
// goaws's own main listens on 0.0.0.0 at a port named in its config file,
// which exposes the emulator on every interface and makes the tests pick a
// port before the server binds it. This wrapper runs the same router and
// housekeeping loop, but binds -listen (default 127.0.0.1:0), prints
//
//	goaws listening on http://127.0.0.1:PORT
//
// as its first line on stdout, and exits when its stdin reaches EOF (so the
// emulator dies with the test process that started it) or on SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/Admiral-Piett/goaws/app/conf"
	"github.com/Admiral-Piett/goaws/app/gosqs"
	"github.com/Admiral-Piett/goaws/app/models"
	"github.com/Admiral-Piett/goaws/app/router"
	log "github.com/sirupsen/logrus"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "goaws-loopback:", err)
		os.Exit(1)
	}
}

func run() error {
	config := flag.String("config", "", "goaws YAML config file (required)")
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	env := flag.String("env", "Local", "environment section of the config file")
	flag.Parse()
	if *config == "" {
		return errors.New("-config is required")
	}
	log.SetLevel(log.WarnLevel)
	conf.LoadYamlConfig(*config, *env)

	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	// Queue URLs that goaws hands out carry the port it serves on.
	models.CurrentEnvironment.Port = strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	fmt.Printf("goaws listening on http://%s\n", l.Addr())
	return serve(l)
}

// serve runs the emulator until stdin closes or a signal arrives.
func serve(l net.Listener) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	quit := make(chan bool)
	go gosqs.PeriodicTasks(time.Second, quit)

	srv := &http.Server{Handler: router.New(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}
