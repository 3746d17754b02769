package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"
)

// Defaults for Config's zero fields.
const (
	DefaultNitroCLI       = "nitro-cli"
	DefaultName           = "nitro-cosigner"
	DefaultProbeEvery     = 5 * time.Second
	DefaultProbeTimeout   = 3 * time.Second
	DefaultBootTimeout    = 5 * time.Minute
	DefaultUnhealthy      = 3
	DefaultMinBackoff     = time.Second
	DefaultMaxBackoff     = time.Minute
	DefaultCommandTimeout = 2 * time.Minute
)

// MeasuredPCRs are the PCRs nitro-cli reports for an image: PCR0 (the
// whole image), PCR1 (kernel and boot ramfs), PCR2 (the application) and
// PCR8 (the signing certificate, for signed images). PCR3 and PCR4 depend
// on the instance, not the image.
var MeasuredPCRs = []int{0, 1, 2, 8}

// PCRSize is the size of a Nitro PCR (SHA-384).
const PCRSize = 48

// Config configures a Supervisor. EIF, CPUs and MemoryMiB are required.
type Config struct {
	// NitroCLI is the nitro-cli executable (DefaultNitroCLI, looked up in
	// PATH, if empty).
	NitroCLI string
	// EIF is the enclave image file.
	EIF string
	// Name names the enclave (--enclave-name; DefaultName if empty). An
	// enclave of that name found at start is terminated.
	Name string
	// CPUs and MemoryMiB are the enclave's vCPUs and memory.
	CPUs, MemoryMiB int
	// CID is the enclave's vsock CID (4 or more); 0 lets nitro-cli choose.
	CID uint32
	// Debug starts the enclave in debug mode: its console can be read, and
	// its attestation documents have zero PCRs. Never implied.
	Debug bool
	// ExpectPCRs are the measurements the image must have, by PCR index
	// (one of MeasuredPCRs), PCRSize bytes each.
	ExpectPCRs map[int][]byte
	// Probe checks that the running enclave is healthy; nil counts a
	// running enclave as healthy. It must return when ctx ends.
	Probe func(ctx context.Context) error
	// ProbeEvery, ProbeTimeout, BootTimeout and Unhealthy tune the watch
	// (see the package documentation).
	ProbeEvery, ProbeTimeout, BootTimeout time.Duration
	Unhealthy                             int
	// MinBackoff and MaxBackoff bound the wait before a restart;
	// StableAfter (default MaxBackoff) resets it.
	MinBackoff, MaxBackoff, StableAfter time.Duration
	// CommandTimeout bounds each nitro-cli command (run-enclave included;
	// console excepted).
	CommandTimeout time.Duration
	// Logger receives the supervisor's events and the forwarded console
	// (default: discard).
	Logger *slog.Logger
}

// ErrConfig is returned by New for an unusable Config.
var ErrConfig = errors.New("supervise: bad configuration")

func (c Config) check() error {
	switch {
	case c.EIF == "":
		return fmt.Errorf("%w: no enclave image", ErrConfig)
	case c.CPUs < 1 || c.MemoryMiB < 1:
		return fmt.Errorf("%w: the enclave needs CPUs and memory", ErrConfig)
	case c.CID != 0 && (c.CID < 4 || c.CID == 1<<32-1):
		return fmt.Errorf("%w: CID %d is reserved", ErrConfig, c.CID)
	case c.ProbeEvery < 0 || c.ProbeTimeout < 0 || c.BootTimeout < 0 || c.Unhealthy < 0 ||
		c.MinBackoff < 0 || c.MaxBackoff < 0 || c.StableAfter < 0 || c.CommandTimeout < 0:
		return fmt.Errorf("%w: negative duration or count", ErrConfig)
	}
	return checkPCRs(c.ExpectPCRs)
}

// checkPCRs accepts the PCRs nitro-cli measures, PCRSize bytes each.
func checkPCRs(pcrs map[int][]byte) error {
	for _, i := range slices.Sorted(maps.Keys(pcrs)) {
		if !slices.Contains(MeasuredPCRs, i) {
			return fmt.Errorf("%w: PCR%d is not measured from the image (want one of %v)", ErrConfig, i, MeasuredPCRs)
		}
		if len(pcrs[i]) != PCRSize {
			return fmt.Errorf("%w: PCR%d: want %d bytes", ErrConfig, i, PCRSize)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	set := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.NitroCLI == "" {
		c.NitroCLI = DefaultNitroCLI
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Unhealthy == 0 {
		c.Unhealthy = DefaultUnhealthy
	}
	set(&c.ProbeEvery, DefaultProbeEvery)
	set(&c.ProbeTimeout, DefaultProbeTimeout)
	set(&c.BootTimeout, DefaultBootTimeout)
	set(&c.MinBackoff, DefaultMinBackoff)
	set(&c.MaxBackoff, DefaultMaxBackoff)
	c.MaxBackoff = max(c.MaxBackoff, c.MinBackoff)
	set(&c.StableAfter, c.MaxBackoff)
	set(&c.CommandTimeout, DefaultCommandTimeout)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
