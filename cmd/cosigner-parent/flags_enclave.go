package main

import (
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/parent/app"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/cliflag"
)

// enclaveFlags declares the flags of enclave supervision, metrics and the
// enclave's log lines.
func enclaveFlags(fs *flag.FlagSet, cfg *app.Config) {
	pcrs := cliflag.PCRs{}
	cfg.ExpectPCRs = pcrs
	fs.StringVar(&cfg.EnclaveEIF, "enclave-eif", "", "enclave image `file`: start and watch the enclave with nitro-cli (empty: off; the devnet runs its enclaves itself)")
	intFlag(fs, &cfg.EnclaveCPUs, "enclave-cpus", "the enclave's `vCPUs` (required with --enclave-eif)")
	intFlag(fs, &cfg.EnclaveMemoryMiB, "enclave-memory", "the enclave's memory in `MiB` (required with --enclave-eif)")
	fs.Func("enclave-cid", "the enclave's vsock `CID` (empty: nitro-cli chooses; required when --ingress-enclave or --enclave-metrics is vsock://)", func(s string) error {
		v, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return fmt.Errorf("want a number from 4 to 4294967294")
		}
		cfg.EnclaveCID = uint32(v)
		return nil
	})
	fs.StringVar(&cfg.EnclaveName, "enclave-name", "", "the enclave's `name`; one of that name left running is terminated at start (empty: nitro-cosigner)")
	fs.BoolVar(&cfg.EnclaveDebugMode, "enclave-debug-mode", false, "start the enclave in debug mode and forward its console (development only: zero PCRs in its attestation)")
	fs.Var(pcrs, "expect-pcr", "the image's expected `N=HEX` measurement, N in 0, 1, 2, 8 (repeatable); an image that differs is not started")
	fs.StringVar(&cfg.NitroCLI, "nitro-cli", "", "the nitro-cli `executable` (empty: nitro-cli from PATH)")
	durationFlag(fs, &cfg.EnclaveRestartMaxBackoff, "enclave-restart-max-backoff", "the longest `duration` to wait before restarting the enclave; waits double from 1s (empty: 1m)")
	durationFlag(fs, &cfg.EnclaveBootTimeout, "enclave-boot-timeout", "the `duration` a started enclave has to become healthy before it is restarted (empty: 5m)")
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", "", "tcp:// `addr` of GET /metrics (empty: off)")
	fs.StringVar(&cfg.EnclaveLogsListen, "enclave-logs-listen", "", "`addr` where the enclave's log lines arrive (its --log-forward; vsock://4294967295:PORT on EC2), logged again with source=enclave (empty: off)")
	fs.StringVar(&cfg.EnclaveMetrics, "enclave-metrics", "", "the enclave's metrics `addr` (its --metrics-listen; vsock://CID:PORT on EC2), relayed on /metrics")
}

// intFlag declares an int flag without a default to print (zero: unset).
func intFlag(fs *flag.FlagSet, p *int, name, usage string) {
	fs.Func(name, usage, func(s string) error {
		v, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("want a number")
		}
		*p = v
		return nil
	})
}

// durationFlag declares a duration flag without a default to print
// (zero: the default the usage names).
func durationFlag(fs *flag.FlagSet, p *time.Duration, name, usage string) {
	fs.Func(name, usage, func(s string) error {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("want a duration such as 30s or 2m")
		}
		*p = v
		return nil
	})
}
