package app

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/nitro-cosigner/nitro-cosigner/parent/supervise"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

// checkMetrics checks --metrics-listen, --enclave-metrics and
// --enclave-logs-listen.
func (c Config) checkMetrics() error {
	if c.EnclaveLogsListen != "" {
		if err := checkListen("--enclave-logs-listen", c.EnclaveLogsListen, false); err != nil {
			return err
		}
	}
	if c.MetricsListen == "" {
		if c.EnclaveMetrics != "" {
			return errors.New("--enclave-metrics is set but --metrics-listen is not")
		}
		return nil
	}
	if err := checkListen("--metrics-listen", c.MetricsListen, true); err != nil {
		return err
	}
	if c.EnclaveMetrics == "" {
		return nil
	}
	return checkDialAddr("--enclave-metrics", c.EnclaveMetrics)
}

// checkDialAddr checks an address the parent dials.
func checkDialAddr(flag, addr string) error {
	a, err := transport.ParseAddr(addr)
	if err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	if a.Scheme == transport.SchemeTCP && a.Port == 0 {
		return fmt.Errorf("%s: port 0 cannot be dialled", flag)
	}
	return nil
}

// checkSupervise checks the enclave supervision flags and that the
// enclave's vsock addresses name the CID it will have.
func (c Config) checkSupervise() error {
	if c.EnclaveEIF == "" {
		return c.checkNoSupervise()
	}
	switch {
	case c.EnclaveCPUs < 1:
		return errors.New("--enclave-cpus: required with --enclave-eif (at least 1)")
	case c.EnclaveMemoryMiB < 1:
		return errors.New("--enclave-memory: required with --enclave-eif (MiB, at least 1)")
	case c.EnclaveCID != 0 && (c.EnclaveCID < 4 || c.EnclaveCID == 1<<32-1):
		return fmt.Errorf("--enclave-cid: %d is reserved (want 4 to 4294967294, or 0 to let nitro-cli choose)", c.EnclaveCID)
	case c.EnclaveName != "" && !validToken(c.EnclaveName, 64, "._-"):
		return errors.New("--enclave-name: want 1 to 64 of [A-Za-z0-9._-]")
	case c.EnclaveRestartMaxBackoff < 0:
		return errors.New("--enclave-restart-max-backoff: negative")
	case c.EnclaveBootTimeout < 0:
		return errors.New("--enclave-boot-timeout: negative")
	}
	for _, i := range slices.Sorted(maps.Keys(c.ExpectPCRs)) {
		if !slices.Contains(supervise.MeasuredPCRs, i) || len(c.ExpectPCRs[i]) != supervise.PCRSize {
			return fmt.Errorf("--expect-pcr: PCR%d is not measured from the image (want PCR 0, 1, 2 or 8, %d bytes)", i, supervise.PCRSize)
		}
	}
	for _, f := range []listenFlag{{"--ingress-enclave", c.IngressEnclave}, {"--enclave-metrics", c.EnclaveMetrics}} {
		if err := c.checkEnclaveCID(f); err != nil {
			return err
		}
	}
	return nil
}

// checkEnclaveCID refuses a vsock address of the enclave that the
// supervised enclave will not have.
func (c Config) checkEnclaveCID(f listenFlag) error {
	a, err := transport.ParseAddr(f.addr)
	if f.addr == "" || err != nil || a.Scheme != transport.SchemeVsock {
		return nil
	}
	switch {
	case c.EnclaveCID == 0:
		return fmt.Errorf("--enclave-cid: required when %s is a vsock address (the supervised enclave must have the CID the parent dials)", f.flag)
	case a.CID != c.EnclaveCID:
		return fmt.Errorf("%s names CID %d but --enclave-cid is %d", f.flag, a.CID, c.EnclaveCID)
	}
	return nil
}

// checkNoSupervise refuses supervision settings without an image.
func (c Config) checkNoSupervise() error {
	set := map[string]bool{
		"--enclave-cpus": c.EnclaveCPUs != 0, "--enclave-memory": c.EnclaveMemoryMiB != 0,
		"--enclave-cid": c.EnclaveCID != 0, "--enclave-name": c.EnclaveName != "",
		"--enclave-debug-mode": c.EnclaveDebugMode, "--expect-pcr": len(c.ExpectPCRs) > 0,
		"--nitro-cli": c.NitroCLI != "", "--enclave-restart-max-backoff": c.EnclaveRestartMaxBackoff != 0,
		"--enclave-boot-timeout": c.EnclaveBootTimeout != 0,
	}
	for _, name := range slices.Sorted(maps.Keys(set)) {
		if set[name] {
			return fmt.Errorf("%s is set but --enclave-eif is not", name)
		}
	}
	return nil
}
