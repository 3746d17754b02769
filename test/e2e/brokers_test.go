//go:build !release

package e2e_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/cmd/cosignerctl/devnet"
	"github.com/nitro-cosigner/nitro-cosigner/test/goaws"
)

// TestDevnetBrokers runs a two-cosigner devnet over Kafka (kfake) and SQS
// (goaws): a key generation and a signature cross the broker.
func TestDevnetBrokers(t *testing.T) {
	for _, broker := range []string{devnet.BrokerKafka, devnet.BrokerSQS} {
		t.Run(broker, func(t *testing.T) {
			cfg := devnet.Config{Dir: t.TempDir(), Parties: 2, Broker: broker}
			if broker == devnet.BrokerSQS {
				cfg.GoAWS = goawsBinary(t)
			}
			d, _ := startDevnetConfig(t, cfg)
			info := d.Info()
			if info.Broker.Kind != broker {
				t.Fatalf("devnet.json names broker %q", info.Broker.Kind)
			}
			key := createTaprootKey(t, info)
			checkSigned(t, key, signSpend(t, info, "cosigner-2", key, "over "+broker))
			stopDevnet(t, d, cfg.Dir)
		})
	}
}

var (
	goawsOnce sync.Once
	goawsPath string
	goawsErr  error
)

// goawsBinary builds goaws with test/goaws/build.sh (once; it caches the
// binary) and returns its path. Like test/goaws, it skips t if the build
// fails, unless goaws.RequiredEnv is 1.
func goawsBinary(t *testing.T) string {
	t.Helper()
	goawsOnce.Do(func() {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command("bash", filepath.Join("..", "goaws", "build.sh"))
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if goawsErr = cmd.Run(); goawsErr != nil {
			goawsErr = &buildError{err: goawsErr, out: stderr.String()}
		}
		goawsPath = strings.TrimSpace(stdout.String())
	})
	if goawsErr == nil {
		return goawsPath
	}
	if os.Getenv(goaws.RequiredEnv) == "1" {
		t.Fatalf("building goaws: %v", goawsErr)
	}
	t.Skipf("skipping: goaws could not be built (set %s=1 to fail instead): %v", goaws.RequiredEnv, goawsErr)
	return ""
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }
