package app_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/parent/app"
)

func TestConfigSuperviseAndMetrics(t *testing.T) {
	pcr := make([]byte, 48)
	sup := func(mod func(*app.Config)) app.Config {
		c := app.Config{EnclaveEIF: "/opt/cosigner.eif", EnclaveCPUs: 2, EnclaveMemoryMiB: 2048}
		if mod != nil {
			mod(&c)
		}
		return c
	}
	tests := []struct {
		name string
		cfg  app.Config
		want string // substring of the error; empty: valid
	}{
		{"supervision alone", sup(nil), ""},
		{"supervision with everything", sup(func(c *app.Config) {
			c.EnclaveCID, c.EnclaveName, c.NitroCLI = 16, "alice.enclave", "/usr/bin/nitro-cli"
			c.ExpectPCRs = map[int][]byte{0: pcr, 1: pcr, 2: pcr, 8: pcr}
			c.EnclaveRestartMaxBackoff, c.EnclaveBootTimeout = time.Minute, 10*time.Minute
			c.IngressListen, c.IngressEnclave = "tcp://0.0.0.0:8443", "vsock://16:8443"
			c.MetricsListen, c.EnclaveMetrics = "tcp://127.0.0.1:9100", "vsock://16:9100"
		}), ""},
		{"metrics only", app.Config{MetricsListen: "tcp://127.0.0.1:0"}, ""},
		{"enclave logs only", app.Config{EnclaveLogsListen: "vsock://4294967295:5005"}, ""},
		{"enclave logs on the link's address", app.Config{CosignerID: "a", Broker: app.BrokerNATS, NATSURL: "nats://n:4222",
			EnclaveLink: "vsock://4294967295:5000", EnclaveLogsListen: "vsock://4294967295:5000"}, "name the same address"},
		{"bad enclave logs address", app.Config{EnclaveLogsListen: "vsock://any:1"}, "--enclave-logs-listen"},
		{"metrics with enclave over unix", app.Config{MetricsListen: "tcp://127.0.0.1:0", EnclaveMetrics: "unix:///run/m.sock"}, ""},

		{"no cpus", sup(func(c *app.Config) { c.EnclaveCPUs = 0 }), "--enclave-cpus: required"},
		{"no memory", sup(func(c *app.Config) { c.EnclaveMemoryMiB = 0 }), "--enclave-memory: required"},
		{"reserved cid", sup(func(c *app.Config) { c.EnclaveCID = 3 }), "--enclave-cid: 3 is reserved"},
		{"bad name", sup(func(c *app.Config) { c.EnclaveName = "a b" }), "--enclave-name"},
		{"PCR4", sup(func(c *app.Config) { c.ExpectPCRs = map[int][]byte{4: pcr} }), "--expect-pcr: PCR4"},
		{"negative backoff", sup(func(c *app.Config) { c.EnclaveRestartMaxBackoff = -1 }), "--enclave-restart-max-backoff"},
		{"vsock ingress without cid", sup(func(c *app.Config) {
			c.IngressListen, c.IngressEnclave = "tcp://0.0.0.0:8443", "vsock://16:8443"
		}), "--enclave-cid: required when --ingress-enclave"},
		{"vsock metrics other cid", sup(func(c *app.Config) {
			c.EnclaveCID, c.MetricsListen, c.EnclaveMetrics = 17, "tcp://127.0.0.1:0", "vsock://16:9100"
		}), "--enclave-metrics names CID 16 but --enclave-cid is 17"},
		{"cpus without eif", app.Config{HealthListen: "tcp://127.0.0.1:0", EnclaveCPUs: 2}, "--enclave-cpus is set but --enclave-eif is not"},
		{"pcr without eif", app.Config{HealthListen: "tcp://127.0.0.1:0", ExpectPCRs: map[int][]byte{0: pcr}}, "--expect-pcr is set but --enclave-eif"},
		{"debug without eif", app.Config{HealthListen: "tcp://127.0.0.1:0", EnclaveDebugMode: true}, "--enclave-debug-mode is set"},
		{"enclave metrics without listen", app.Config{HealthListen: "tcp://127.0.0.1:0", EnclaveMetrics: "unix:///m.sock"}, "--enclave-metrics is set but --metrics-listen is not"},
		{"metrics on vsock", app.Config{MetricsListen: "vsock://4294967295:9100"}, "--metrics-listen: want a tcp:// address"},
		{"metrics on health's address", app.Config{MetricsListen: "tcp://127.0.0.1:9090", HealthListen: "tcp://127.0.0.1:9090"}, "name the same address"},
		{"enclave metrics port 0", app.Config{MetricsListen: "tcp://127.0.0.1:0", EnclaveMetrics: "tcp://127.0.0.1:0"}, "port 0"},
	}
	for _, tc := range tests {
		err := tc.cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: Validate() = %v, want nil", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, app.ErrConfig)):
			t.Errorf("%s: Validate() = %v, want ErrConfig containing %q", tc.name, err, tc.want)
		}
	}
}
