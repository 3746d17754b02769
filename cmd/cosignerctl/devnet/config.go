//go:build !release

package devnet

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"time"
)

// Brokers.
const (
	BrokerNATS  = "nats"
	BrokerKafka = "kafka"
	BrokerSQS   = "sqs"
)

// S3Embedded is Config.S3 for the devnet's own S3 (the default).
const S3Embedded = "embedded"

// Defaults of Config.
const (
	DefaultParties      = 3
	MaxParties          = 9
	DefaultBucket       = "nitro-devnet"
	DefaultRegion       = "us-east-1"
	DefaultReadyTimeout = 3 * time.Minute
	DefaultStopTimeout  = 20 * time.Second
)

// ErrConfig reports a Config that cannot run; cosignerctl exits 2 for it.
var ErrConfig = errors.New("devnet: bad configuration")

// Config configures a devnet.
type Config struct {
	// Dir holds everything the devnet keeps (see the package
	// documentation). Required. Unix socket paths under it must fit in
	// 107 bytes, so keep it short.
	Dir string
	// Parties is the number of cosigners, 2 to MaxParties; 0 means
	// DefaultParties. A later run on the same Dir must use the same.
	Parties int
	// Broker is BrokerNATS (default), BrokerKafka or BrokerSQS.
	Broker string
	// S3 is S3Embedded (default) or the URL of an S3 endpoint (for
	// instance a local MinIO), used with path-style addressing.
	S3 string
	// S3Bucket is the bucket of the sealed state; created if missing.
	// Empty means DefaultBucket.
	S3Bucket string
	// BinDir is where cosigner-parent and cosigner-enclave are; empty
	// looks beside the running executable, then on PATH.
	BinDir string
	// GoAWS is the goaws binary for BrokerSQS (test/goaws/build.sh
	// builds it and prints its path); empty looks for goaws on PATH.
	GoAWS string
	// ReadyTimeout bounds Start; 0 means DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// StopTimeout is how long a child process may take to exit after
	// SIGTERM before it is killed; 0 means DefaultStopTimeout.
	StopTimeout time.Duration
	// EnclaveFlags are added to every cosigner-enclave's command line
	// (the benchmarks size presignature pools with them).
	EnclaveFlags []string
	// Logger receives the devnet's own log; nil discards it. The child
	// processes log to DIR/logs.
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.Dir == "" {
		return c, fmt.Errorf("%w: no directory", ErrConfig)
	}
	dir, err := filepath.Abs(c.Dir)
	if err != nil {
		return c, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	c.Dir = dir
	c.Parties = or(c.Parties, DefaultParties)
	c.Broker = or(c.Broker, BrokerNATS)
	c.S3 = or(c.S3, S3Embedded)
	c.S3Bucket = or(c.S3Bucket, DefaultBucket)
	c.ReadyTimeout = or(c.ReadyTimeout, DefaultReadyTimeout)
	c.StopTimeout = or(c.StopTimeout, DefaultStopTimeout)
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c, c.check()
}

func (c Config) check() error {
	switch {
	case c.Parties < 2 || c.Parties > MaxParties:
		return fmt.Errorf("%w: parties must be 2 to %d", ErrConfig, MaxParties)
	case c.Broker != BrokerNATS && c.Broker != BrokerKafka && c.Broker != BrokerSQS:
		return fmt.Errorf("%w: unknown broker %q (want nats, kafka or sqs)", ErrConfig, c.Broker)
	case len(socketPath(c.Dir, cosignerID(MaxParties), "egress")) > maxSocketPath:
		return fmt.Errorf("%w: the path of %s is too long for the unix sockets under it (%d bytes at most); choose a shorter one",
			ErrConfig, c.Dir, maxSocketPath)
	}
	if c.S3 != S3Embedded {
		u, err := url.Parse(c.S3)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%w: --s3 must be %q or an http(s):// endpoint URL", ErrConfig, S3Embedded)
		}
	}
	return nil
}

// embeddedS3 reports whether the devnet serves S3 itself.
func (c Config) embeddedS3() bool { return c.S3 == S3Embedded }

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// cosignerID is the ID of the i-th cosigner (from 1).
func cosignerID(i int) string { return fmt.Sprintf("cosigner-%d", i) }

// cosignerIDs are the IDs of n cosigners.
func cosignerIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = cosignerID(i + 1)
	}
	return ids
}

// maxSocketPath is the longest unix socket path (sun_path, NUL excluded).
const maxSocketPath = 107

// socketPath is a unix socket of a cosigner's: DIR/run/ID.what.
func socketPath(dir, id, what string) string {
	return filepath.Join(dir, "run", id+"."+what)
}
