//go:build !release

package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/nitro-cosigner/nitro-cosigner/cmd/cosignerctl/devnet"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/cliflag"
)

const devnetUpHelp = `Runs a whole cluster on this machine until interrupted (Ctrl-C or SIGTERM):
--parties cosigners, each a cosigner-parent process beside a cosigner-enclave
process (NSM simulator; unix sockets in place of vsock), the broker, S3, the
KMS emulator and a sample approval server, all persisted under --dir.

When every cosigner serves, prints one line containing "ready" and writes
DIR/devnet.json: the cosigners' API addresses, the client certificates per
role, the attestation root and PCRs to expect, the admin keys and endpoints.
Running it again on the same --dir restores every cosigner from S3 through
KMS. Development builds only. Exit status: 0 stopped by a signal, 1 failure,
2 usage error.`

func runDevnetUp(ctx context.Context, args []string, io IO) int {
	var cfg devnet.Config
	var logLevel string
	fs := newFlagSet("devnet up", "", io)
	fs.Usage = func() {
		fmt.Fprintf(io.Err, "Usage: cosignerctl devnet up --dir DIR [flags]\n\n%s\n\nFlags:\n", devnetUpHelp)
		cliflag.PrintDefaults(fs)
	}
	fs.StringVar(&cfg.Dir, "dir", "", "`directory` of the devnet's state, keys and logs (required; keep it short: unix sockets live under it)")
	fs.IntVar(&cfg.Parties, "parties", devnet.DefaultParties, fmt.Sprintf("number of cosigners, 2 to %d (unset: the number DIR already holds, if any)", devnet.MaxParties))
	fs.StringVar(&cfg.Broker, "broker", devnet.BrokerNATS, "message broker: nats (embedded nats-server), kafka (kfake) or sqs (goaws)")
	fs.StringVar(&cfg.S3, "s3", devnet.S3Embedded, "S3: 'embedded' (persisted in DIR/s3) or an endpoint `URL` such as a local MinIO (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
	fs.StringVar(&cfg.S3Bucket, "s3-bucket", devnet.DefaultBucket, "S3 `bucket` of the sealed state (created if missing)")
	fs.StringVar(&cfg.BinDir, "bin", "", "`directory` of cosigner-parent and cosigner-enclave (default: beside cosignerctl, then PATH)")
	fs.StringVar(&cfg.GoAWS, "goaws", "", "goaws `binary` for --broker sqs (bash test/goaws/build.sh builds it and prints its path)")
	fs.DurationVar(&cfg.ReadyTimeout, "ready-timeout", devnet.DefaultReadyTimeout, "how long the start may take")
	fs.StringVar(&logLevel, "log-level", "info", "the devnet's own log level on stderr: debug, info, warn or error")
	if code, done := parse(fs, args, 0); done {
		return code
	}
	if !flagSet(fs, "parties") {
		cfg.Parties = 0 // the devnet's default, or what DIR holds
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return usageError(io, "devnet up", fmt.Errorf("--log-level: %w", err))
	}
	if cfg.Dir == "" {
		return usageError(io, "devnet up", errors.New("--dir is required"))
	}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Err, &slog.HandlerOptions{Level: level}))
	err := devnet.Up(ctx, cfg, func(info *devnet.Info) {
		fmt.Fprintf(io.Out, "devnet ready: %d cosigners, %s broker; see %s\n", len(info.Cosigners), info.Broker.Kind, filepath.Join(info.Dir, devnet.InfoFile))
	})
	switch {
	case errors.Is(err, devnet.ErrConfig):
		return usageError(io, "devnet up", err)
	case err != nil:
		fmt.Fprintf(io.Err, "cosignerctl devnet up: %v\n", err)
		return ExitFail
	}
	return ExitOK
}
