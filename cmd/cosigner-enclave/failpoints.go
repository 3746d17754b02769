//go:build !release

package main

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/failpoint"
)

// failpointEnv names the environment variable that arms crash failpoints
// in development builds: a comma-separated list of NAME=N, each making the
// process kill itself (SIGKILL, as a crash would: no deferred call runs,
// nothing is flushed) the N-th time it reaches failpoint NAME (package
// failpoint lists the names). The reliability suites (test/reliability)
// set it through the devnet. Release builds ignore it: they have no
// failpoints.
const failpointEnv = "NITRO_FAILPOINT_CRASH"

// armFailpoints arms the failpoints failpointEnv names, if any.
func armFailpoints(log *slog.Logger) error {
	spec := os.Getenv(failpointEnv)
	if spec == "" {
		return nil
	}
	for item := range strings.SplitSeq(spec, ",") {
		name, n, ok := strings.Cut(strings.TrimSpace(item), "=")
		hit, err := strconv.Atoi(n)
		if !ok || err != nil || hit < 1 {
			return fmt.Errorf("%s: %q is not NAME=N with N >= 1", failpointEnv, item)
		}
		if err := armCrash(failpoint.Name(name), hit, log); err != nil {
			return fmt.Errorf("%s: %w", failpointEnv, err)
		}
		log.Warn("failpoint armed: this process will kill itself there", "failpoint", name, "hit", hit)
	}
	return nil
}

// armCrash makes the hit-th time the process reaches name kill it.
func armCrash(name failpoint.Name, hit int, log *slog.Logger) error {
	var hits atomic.Int64
	_, err := failpoint.Enable(name, func() error {
		if hits.Add(1) == int64(hit) {
			log.Error("failpoint reached: crashing", "failpoint", string(name), "hit", hit)
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
		return nil
	})
	return err
}
