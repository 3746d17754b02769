//go:build !release

package devnet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/nitro-cosigner/nitro-cosigner/parent/broker/natsdev"
)

// brokerServer is the running broker: its description, the parents'
// flags, and how to stop it.
type brokerServer struct {
	info  BrokerInfo
	flags []string
	port  int // to reuse on the next run (0: chosen afresh)
	stop  func() error
}

// startBroker starts cfg.Broker; port is the port of the previous run.
func startBroker(ctx context.Context, cfg Config, port int) (*brokerServer, error) {
	switch cfg.Broker {
	case BrokerKafka:
		return startKafka(cfg.Dir, port)
	case BrokerSQS:
		return startGoAWS(ctx, cfg, port)
	default:
		return startNATS(cfg.Dir)
	}
}

// startNATS runs nats-server with JetStream in this process, its store in
// DIR/nats; natsdev picks a new port on every start.
func startNATS(dir string) (*brokerServer, error) {
	srv, err := natsdev.NewEmbeddedNATS(filepath.Join(dir, "nats"))
	if err != nil {
		return nil, err
	}
	url := srv.URL()
	return &brokerServer{
		info:  BrokerInfo{Kind: BrokerNATS, URL: url, Persistent: true},
		flags: []string{"--broker", BrokerNATS, "--nats-url", url},
		stop:  func() error { srv.Shutdown(); return nil },
	}, nil
}

// startKafka runs a one-broker kfake cluster in this process, persisted
// in DIR/kafka.
func startKafka(dir string, port int) (*brokerServer, error) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(filepath.Join(dir, "kafka")))
	if err != nil {
		return nil, fmt.Errorf("starting kfake: %w", err)
	}
	addr := c.ListenAddrs()[0]
	return &brokerServer{
		info:  BrokerInfo{Kind: BrokerKafka, URL: addr, Persistent: true},
		flags: []string{"--broker", BrokerKafka, "--kafka-brokers", addr},
		port:  portOf(addr),
		stop:  func() error { c.Close(); return nil },
	}, nil
}

// goawsHint says how to get the goaws binary.
const goawsHint = "build it with `bash test/goaws/build.sh` in the nitro-cosigner source tree " +
	"(it prints the binary's path) and pass --goaws PATH"

// findGoAWS returns cfg.GoAWS, or the newest binary test/goaws/build.sh
// left in its cache.
func findGoAWS(cfg Config) (string, error) {
	if cfg.GoAWS != "" {
		if _, err := os.Stat(cfg.GoAWS); err != nil {
			return "", fmt.Errorf("%w: --goaws: %v", ErrConfig, err)
		}
		return cfg.GoAWS, nil
	}
	cache := os.Getenv("NITRO_GOAWS_CACHE")
	if cache == "" {
		if base, err := os.UserCacheDir(); err == nil {
			cache = filepath.Join(base, "nitro-cosigner", "goaws")
		}
	}
	found, _ := filepath.Glob(filepath.Join(cache, "goaws-v*"))
	if len(found) == 0 {
		return "", fmt.Errorf("%w: --broker sqs needs the goaws SQS emulator: %s", ErrConfig, goawsHint)
	}
	slices.SortFunc(found, func(a, b string) int { return modTime(b).Compare(modTime(a)) })
	return found[0], nil
}

func modTime(path string) time.Time {
	st, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return st.ModTime()
}

// goawsReady is the first line goaws (test/goaws's wrapper) prints.
const goawsReady = "goaws listening on "

// startGoAWS runs goaws as a child process. Its queues live in its
// memory only; the parents create their inboxes again at start.
func startGoAWS(ctx context.Context, cfg Config, port int) (*brokerServer, error) {
	bin, err := findGoAWS(cfg)
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(cfg.Dir, "goaws.yaml")
	yaml := "Local:\n  Host: 127.0.0.1\n  Region: " + DefaultRegion + "\n  AccountId: \"000000000000\"\n" +
		"  QueueAttributeDefaults:\n    VisibilityTimeout: 30\n    MaximumMessageSize: 1048576\n"
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-config", conf, "-listen", "127.0.0.1:"+strconv.Itoa(port))
	cmd.SysProcAttr = childAttr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(cfg.Dir, "logs", "goaws.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting goaws (%s): %w", bin, err)
	}
	stopGoAWS := func() error {
		stdin.Close() // goaws exits when its stdin closes
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		defer logf.Close()
		select {
		case err := <-done:
			return err
		case <-time.After(cfg.StopTimeout):
			_ = cmd.Process.Kill()
			return <-done
		}
	}
	endpoint, err := readGoAWSLine(ctx, stdout)
	if err != nil {
		_ = stopGoAWS()
		return nil, fmt.Errorf("goaws (%s): %w; %s", bin, err, goawsHint)
	}
	return &brokerServer{
		info:  BrokerInfo{Kind: BrokerSQS, URL: endpoint},
		flags: []string{"--broker", BrokerSQS, "--sqs-endpoint", endpoint, "--sqs-region", DefaultRegion},
		port:  portOf(strings.TrimPrefix(endpoint, "http://")),
		stop:  stopGoAWS,
	}, nil
}

// readGoAWSLine reads goaws's first line, its endpoint, then drains the
// rest of its stdout.
func readGoAWSLine(ctx context.Context, stdout io.Reader) (string, error) {
	line := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		s, _ := r.ReadString('\n')
		line <- s
		_, _ = io.Copy(io.Discard, r)
	}()
	select {
	case s := <-line:
		if !strings.HasPrefix(s, goawsReady) {
			return "", errors.New("it did not report its address")
		}
		return strings.TrimSpace(strings.TrimPrefix(s, goawsReady)), nil
	case <-time.After(30 * time.Second):
		return "", errors.New("it did not start within 30s")
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// portOf returns the port of HOST:PORT, or 0.
func portOf(hostport string) int {
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}
