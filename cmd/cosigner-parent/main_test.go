package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"cosigner-parent": func() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the command from testdata/script/*.txtar.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{Dir: "testdata/script"})
}

// TestExitStatus checks the exit status scripts cannot tell apart: 2 for
// usage errors, 1 for a failure at start, 0 for help and version.
func TestExitStatus(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		status int
		stderr string
	}{
		{"help", []string{"--help"}, 0, "--egress-allow HOST:PORT"},
		{"version", []string{"--version"}, 0, ""},
		{"no flags", nil, 2, "nothing to run"},
		{"unknown flag", []string{"--frobnicate"}, 2, "flag provided but not defined"},
		{"stray argument", []string{"--health-listen", "tcp://127.0.0.1:0", "extra"}, 2, `unexpected argument "extra"`},
		{"bad log level", []string{"--log-level", "loud", "--health-listen", "tcp://127.0.0.1:0"}, 2, "loud"},
		{"unknown broker", []string{"--broker", "mqtt"}, 2, `unknown broker "mqtt"`},
		{"bad address", []string{"--health-listen", "127.0.0.1:9090"}, 2, "--health-listen: transport: invalid address"},
		{"bad allow", []string{"--egress-listen", "tcp://127.0.0.1:0", "--egress-allow", "*.example.com:443"}, 2, "--egress-allow"},
		{"empty allow", []string{"--egress-listen", "tcp://127.0.0.1:0", "--egress-allow="}, 2, "empty value"},
		{"bad duration", []string{"--shutdown-timeout", "soon"}, 2, "--shutdown-timeout"},
		{"empty seed", []string{"--broker", "kafka", "--cosigner-id", "a", "--enclave-link", "tcp://127.0.0.1:0",
			"--kafka-brokers", "k:9092,"}, 2, `--kafka-brokers: "": want HOST:PORT`},
		{"unbindable", []string{"--health-listen", "tcp://192.0.2.1:1"}, 1, "cosigner-parent failed"},
		{"cpus without image", []string{"--health-listen", "tcp://127.0.0.1:0", "--enclave-cpus", "2"}, 2, "--enclave-cpus is set but --enclave-eif is not"},
		{"image without memory", []string{"--enclave-eif", "x.eif", "--enclave-cpus", "2"}, 2, "--enclave-memory: required"},
		{"bad cpus", []string{"--enclave-cpus", "two"}, 2, "--enclave-cpus"},
		{"bad cid", []string{"--enclave-cid", "4294967296"}, 2, "--enclave-cid"},
		{"bad pcr", []string{"--expect-pcr", "0=abcd"}, 2, "PCR0 is 2 bytes"},
		{"pcr 4", []string{"--enclave-eif", "x.eif", "--enclave-cpus", "2", "--enclave-memory", "512",
			"--expect-pcr", "4=" + strings.Repeat("ab", 48)}, 2, "--expect-pcr: PCR4"},
		{"bad backoff", []string{"--enclave-restart-max-backoff", "forever"}, 2, "--enclave-restart-max-backoff"},
		{"vsock ingress, no cid", []string{"--enclave-eif", "x.eif", "--enclave-cpus", "2", "--enclave-memory", "512",
			"--ingress-listen", "tcp://127.0.0.1:0", "--ingress-enclave", "vsock://16:8443"}, 2, "--enclave-cid: required"},
		{"enclave metrics alone", []string{"--enclave-metrics", "vsock://16:9100", "--health-listen", "tcp://127.0.0.1:0"}, 2, "--metrics-listen is not"},
		{"no nitro-cli", []string{"--enclave-eif", "x.eif", "--enclave-cpus", "2", "--enclave-memory", "512",
			"--nitro-cli", "/nonexistent/nitro-cli"}, 1, "supervise"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if got := run(tt.args, &stdout, &stderr); got != tt.status {
				t.Fatalf("exit status %d, want %d; stderr:\n%s", got, tt.status, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Fatalf("stderr lacks %q:\n%s", tt.stderr, stderr.String())
			}
		})
	}
}
