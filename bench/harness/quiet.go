//go:build !release

package harness

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The devnet is quiet when, over the last quietFor, no frame crossed its
// broker and its processes used less than quietCPU of one core: no
// background session (a presignature refill) is running. CPU time is what
// tells, since a session's rounds can go seconds without a frame on a
// loaded machine; it is counted for the devnet's own processes only, so
// other work on the machine does not matter. settle waits at most
// quietLimit for it.
const (
	quietFor   = 3 * time.Second
	quietCPU   = 0.10
	quietLimit = 4 * time.Minute
	quietTick  = 500 * time.Millisecond
	clockTicks = 100 // USER_HZ, the unit of /proc/PID/stat's CPU times on Linux
)

// quiet waits until the devnet is quiet or limit has passed; it returns
// how long it waited and whether it saw quiet.
func (s *stack) quiet(ctx context.Context, limit time.Duration) (time.Duration, bool) {
	began := time.Now()
	window := int(quietFor / quietTick)
	var samples []int64 // CPU ticks, one per tick
	tick := time.NewTicker(quietTick)
	defer tick.Stop()
	for {
		samples = append(samples, cpuTicks(s.processes()))
		if len(samples) > window && s.idle(samples[len(samples)-1-window:]) {
			return time.Since(began), true
		}
		if time.Since(began) >= limit {
			return time.Since(began), false
		}
		select {
		case <-ctx.Done():
			return time.Since(began), false
		case <-tick.C:
		}
	}
}

// idle tells whether a window of CPU samples, ending now, was quiet.
func (s *stack) idle(window []int64) bool {
	used := float64(window[len(window)-1]-window[0]) / clockTicks
	lastFrame := time.Unix(0, s.tap.last.Load())
	return used < quietCPU*quietFor.Seconds() && time.Since(lastFrame) >= quietFor
}

// processes lists the devnet's child processes: those whose command line
// names its directory.
func (s *stack) processes() []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if strings.Contains(readFile(filepath.Join("/proc", e.Name(), "cmdline")), s.dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// cpuTicks sums the user and system CPU time of pids, in clock ticks.
func cpuTicks(pids []int) int64 {
	var total int64
	for _, pid := range pids {
		stat := readFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		// Fields after the command name, which may hold spaces: state is
		// the first; utime and stime the 12th and 13th.
		_, rest, ok := strings.Cut(stat, ") ")
		f := strings.Fields(rest)
		if !ok || len(f) < 13 {
			continue
		}
		for _, v := range f[11:13] {
			n, _ := strconv.ParseInt(v, 10, 64)
			total += n
		}
	}
	return total
}
