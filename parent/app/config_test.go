package app_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/parent/app"
)

func TestConfigValidate(t *testing.T) {
	nats := func(mod func(*app.Config)) app.Config {
		c := app.Config{CosignerID: "alice", Broker: app.BrokerNATS, NATSURL: "nats://127.0.0.1:4222",
			EnclaveLink: "vsock://4294967295:5000"}
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
		{"nats relay", nats(nil), ""},
		{"nats list", nats(func(c *app.Config) { c.NATSURL = "nats://a:4222, tls://u:p@b:4222" }), ""},
		{"kafka relay", app.Config{CosignerID: "c-1", Broker: app.BrokerKafka, KafkaBrokers: []string{"k1:9092", "[::1]:9092"},
			EnclaveLink: "tcp://127.0.0.1:5000", BrokerPrefix: "team.a-"}, ""},
		{"sqs relay", app.Config{CosignerID: "c_1", Broker: app.BrokerSQS, SQSEndpoint: "http://127.0.0.1:4100",
			SQSRegion: "eu-west-1", EnclaveLink: "unix:///run/link.sock", BrokerProvision: true}, ""},
		{"everything", app.Config{
			CosignerID: "alice", Broker: app.BrokerNATS, NATSURL: "nats://n:4222", EnclaveLink: "vsock://4294967295:5000",
			EgressListen: "vsock://4294967295:8000", EgressAllow: []string{"kms.us-east-1.amazonaws.com:443", "10.0.0.1:443"},
			CredsListen: "vsock://4294967295:8001", IngressListen: "tcp://0.0.0.0:8443", IngressEnclave: "vsock://16:8443",
			HealthListen: "tcp://127.0.0.1:9090", ShutdownTimeout: time.Second,
		}, ""},
		{"health only", app.Config{HealthListen: "tcp://127.0.0.1:0"}, ""},
		{"egress denying all", app.Config{EgressListen: "unix:///run/e.sock"}, ""},

		{"nothing", app.Config{}, "nothing to run"},
		{"unknown broker", nats(func(c *app.Config) { c.Broker = "rabbitmq" }), `unknown broker "rabbitmq"`},
		{"no id", nats(func(c *app.Config) { c.CosignerID = "" }), "--cosigner-id"},
		{"bad id", nats(func(c *app.Config) { c.CosignerID = "a.b" }), "--cosigner-id"},
		{"no link", nats(func(c *app.Config) { c.EnclaveLink = "" }), "--enclave-link: required"},
		{"bad link", nats(func(c *app.Config) { c.EnclaveLink = "vsock://x:1" }), "--enclave-link: transport: invalid address"},
		{"link without broker", app.Config{EnclaveLink: "tcp://127.0.0.1:1"}, "--enclave-link is set but --broker is not"},
		{"provision without broker", app.Config{HealthListen: "tcp://127.0.0.1:0", BrokerProvision: true}, "--broker-provision is set"},
		{"no nats url", nats(func(c *app.Config) { c.NATSURL = "" }), "--nats-url: required"},
		{"nats url scheme", nats(func(c *app.Config) { c.NATSURL = "http://n:4222" }), "--nats-url: entry 1"},
		{"nats url secret not echoed", nats(func(c *app.Config) { c.NATSURL = "nats://n:1,ftp://user:hunter2@n" }), "--nats-url: entry 2"},
		{"kafka flag on nats", nats(func(c *app.Config) { c.KafkaBrokers = []string{"k:9092"} }), "--kafka-brokers is set but --broker is nats"},
		{"sqs flag on nats", nats(func(c *app.Config) { c.SQSRegion = "us-east-1" }), "--sqs-endpoint and --sqs-region"},
		{"kafka no seeds", app.Config{CosignerID: "a", Broker: app.BrokerKafka, EnclaveLink: "tcp://127.0.0.1:1"}, "--kafka-brokers: required"},
		{"kafka bad seed", app.Config{CosignerID: "a", Broker: app.BrokerKafka, KafkaBrokers: []string{"k:9092", ""},
			EnclaveLink: "tcp://127.0.0.1:1"}, `--kafka-brokers: "": want HOST:PORT`},
		{"kafka port 0", app.Config{CosignerID: "a", Broker: app.BrokerKafka, KafkaBrokers: []string{"k:0"},
			EnclaveLink: "tcp://127.0.0.1:1"}, "want HOST:PORT"},
		{"sqs endpoint", app.Config{CosignerID: "a", Broker: app.BrokerSQS, SQSEndpoint: "localhost:4100",
			EnclaveLink: "tcp://127.0.0.1:1"}, "--sqs-endpoint"},
		{"sqs region", app.Config{CosignerID: "a", Broker: app.BrokerSQS, SQSRegion: "us east",
			EnclaveLink: "tcp://127.0.0.1:1"}, "--sqs-region"},
		{"nats prefix", nats(func(c *app.Config) { c.BrokerPrefix = "a..b" }), "--broker-prefix"},
		{"nats prefix wildcard", nats(func(c *app.Config) { c.BrokerPrefix = "a.*" }), "--broker-prefix"},
		{"nats prefix long", nats(func(c *app.Config) { c.BrokerPrefix = strings.Repeat("a.", 64) + "a" }), "--broker-prefix"},
		{"nats prefix ok", nats(func(c *app.Config) { c.BrokerPrefix = "team_a.cosigner-inbox" }), ""},
		{"sqs prefix dot", app.Config{CosignerID: "a", Broker: app.BrokerSQS, BrokerPrefix: "a.b",
			EnclaveLink: "tcp://127.0.0.1:1"}, "--broker-prefix"},
		{"sqs prefix long", app.Config{CosignerID: "a", Broker: app.BrokerSQS, BrokerPrefix: strings.Repeat("p", 33),
			EnclaveLink: "tcp://127.0.0.1:1"}, "--broker-prefix"},
		{"allow without proxy", app.Config{HealthListen: "tcp://127.0.0.1:0", EgressAllow: []string{"a.example:443"}}, "--egress-allow is set"},
		{"allow wildcard", app.Config{EgressListen: "unix:///e.sock", EgressAllow: []string{"*.amazonaws.com:443"}}, `--egress-allow "*.amazonaws.com:443"`},
		{"allow no port", app.Config{EgressListen: "unix:///e.sock", EgressAllow: []string{"kms.amazonaws.com"}}, "--egress-allow"},
		{"allow numeric host", app.Config{EgressListen: "unix:///e.sock", EgressAllow: []string{"127.1:443"}}, "--egress-allow"},
		{"bad egress listen", app.Config{EgressListen: "127.0.0.1:8000"}, "--egress-listen: transport: invalid address"},
		{"bad creds listen", app.Config{CredsListen: "unix://relative"}, "--creds-listen"},
		{"ingress half", app.Config{IngressListen: "tcp://0.0.0.0:443"}, "go together"},
		{"ingress not tcp", app.Config{IngressListen: "unix:///a.sock", IngressEnclave: "vsock://16:1"}, "--ingress-listen: want a tcp://"},
		{"ingress enclave port 0", app.Config{IngressListen: "tcp://0.0.0.0:443", IngressEnclave: "tcp://127.0.0.1:0"}, "port 0"},
		{"health not tcp", app.Config{HealthListen: "vsock://4294967295:9"}, "--health-listen: want a tcp://"},
		{"same address", app.Config{EgressListen: "vsock://4294967295:8000", CredsListen: "vsock://4294967295:8000"},
			"--egress-listen and --creds-listen name the same address"},
		{"negative shutdown", app.Config{HealthListen: "tcp://127.0.0.1:0", ShutdownTimeout: -time.Second}, "--shutdown-timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate = %v, want nil", err)
			case tt.want == "":
			case err == nil:
				t.Fatalf("Validate = nil, want an error with %q", tt.want)
			case !errors.Is(err, app.ErrConfig) || !strings.Contains(err.Error(), tt.want):
				t.Fatalf("Validate = %v, want ErrConfig with %q", err, tt.want)
			case strings.Contains(err.Error(), "hunter2"):
				t.Fatalf("the error repeats a NATS password: %v", err)
			}
		})
	}
}
