package app

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/parent/broker"
	"github.com/nitro-cosigner/nitro-cosigner/parent/egress"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

// Broker kinds (Config.Broker).
const (
	BrokerNATS  = "nats"
	BrokerKafka = "kafka"
	BrokerSQS   = "sqs"
)

// DefaultShutdownTimeout is Config.ShutdownTimeout when zero.
const DefaultShutdownTimeout = 15 * time.Second

// ErrConfig is wrapped by every configuration error: by Validate, and by
// Run for what only shows at start (an SQS region that resolves to
// nothing). cosigner-parent exits 2 for it.
var ErrConfig = errors.New("configuration error")

// Config is the parent's configuration. Each field is one command-line
// flag (named in the field's comment), and errors name the flags. Every
// address is a transport address (vsock://CID:PORT, tcp://HOST:PORT or
// unix:///PATH, see package transport). An empty listen address leaves
// its component off.
type Config struct {
	// CosignerID (--cosigner-id) is this cosigner's ID: its broker inbox.
	// Required with Broker.
	CosignerID string
	// EnclaveLink (--enclave-link) is where the relay listens for the
	// enclave's link. Required with Broker, refused without it.
	EnclaveLink string
	// Broker (--broker) is "nats", "kafka" or "sqs"; empty runs no relay.
	Broker string
	// NATSURL (--nats-url) is the NATS server list (nats:// or tls://
	// URLs, comma-separated). It may hold credentials, so it is never
	// logged or repeated in an error.
	NATSURL string
	// KafkaBrokers (--kafka-brokers) are the Kafka seed brokers, HOST:PORT.
	KafkaBrokers []string
	// SQSEndpoint (--sqs-endpoint) overrides the SQS endpoint URL (goaws,
	// localstack); empty uses AWS's.
	SQSEndpoint string
	// SQSRegion (--sqs-region) is the SQS region; empty takes it from the
	// AWS configuration (AWS_REGION, the shared config file).
	SQSRegion string
	// BrokerPrefix (--broker-prefix) names the inboxes: the NATS subject
	// prefix (dot-separated tokens), the Kafka topic prefix or the SQS
	// queue prefix. Empty keeps the adapter's default.
	BrokerPrefix string
	// BrokerProvision (--broker-provision) creates this cosigner's inbox
	// at start if it does not exist (broker.Provisioner).
	BrokerProvision bool
	// EgressListen (--egress-listen) is where the egress CONNECT proxy
	// listens for the enclave.
	EgressListen string
	// EgressAllow (--egress-allow) is the proxy's allowlist of exact
	// HOST:PORT targets; empty denies everything.
	EgressAllow []string
	// CredsListen (--creds-listen) is where the AWS credentials server
	// listens for the enclave.
	CredsListen string
	// IngressListen (--ingress-listen, tcp:// only) is the public API
	// port, forwarded to IngressEnclave (--ingress-enclave). Both or
	// neither.
	IngressListen, IngressEnclave string
	// HealthListen (--health-listen, tcp:// only) serves /healthz and
	// /readyz.
	HealthListen string
	// ShutdownTimeout (--shutdown-timeout) bounds the stop once the
	// context ends (zero: DefaultShutdownTimeout).
	ShutdownTimeout time.Duration

	// Enclave supervision (parent/supervise); see config_supervise.go.

	// EnclaveEIF (--enclave-eif) is the enclave image file. Set, the
	// parent starts and watches the enclave through nitro-cli; empty,
	// something else runs the enclave (the devnet) and every other
	// --enclave-* flag below, --expect-pcr and --nitro-cli are refused.
	EnclaveEIF string
	// EnclaveCPUs (--enclave-cpus) and EnclaveMemoryMiB
	// (--enclave-memory) are the enclave's vCPUs and MiB of memory;
	// required with EnclaveEIF.
	EnclaveCPUs, EnclaveMemoryMiB int
	// EnclaveCID (--enclave-cid) is the enclave's vsock CID; 0 lets
	// nitro-cli choose. Required, and equal to theirs, when
	// --ingress-enclave or --enclave-metrics is a vsock address.
	EnclaveCID uint32
	// EnclaveName (--enclave-name) names the enclave (default
	// supervise.DefaultName); an enclave of that name left running is
	// terminated at start.
	EnclaveName string
	// EnclaveDebugMode (--enclave-debug-mode) starts the enclave in debug
	// mode and forwards its console to the log. Development only.
	EnclaveDebugMode bool
	// ExpectPCRs (--expect-pcr N=HEX, repeatable; N in 0, 1, 2, 8) are
	// the image's expected measurements: the parent refuses to start an
	// image whose PCRs differ.
	ExpectPCRs map[int][]byte
	// NitroCLI (--nitro-cli) is the nitro-cli executable (default
	// supervise.DefaultNitroCLI, from PATH).
	NitroCLI string
	// EnclaveRestartMaxBackoff (--enclave-restart-max-backoff) caps the
	// wait before restarting the enclave (default
	// supervise.DefaultMaxBackoff).
	EnclaveRestartMaxBackoff time.Duration
	// EnclaveBootTimeout (--enclave-boot-timeout) is how long a started
	// enclave has to become healthy (default supervise.DefaultBootTimeout).
	EnclaveBootTimeout time.Duration

	// MetricsListen (--metrics-listen, tcp:// only) serves GET /metrics:
	// the parent's series and, with EnclaveMetrics, the enclave's.
	MetricsListen string
	// EnclaveMetrics (--enclave-metrics) is the enclave's metrics address
	// (its --metrics-listen), fetched on every scrape. Requires
	// MetricsListen.
	EnclaveMetrics string
	// EnclaveLogsListen (--enclave-logs-listen) is where the enclave's log
	// lines arrive (its --log-forward); they are logged again with
	// source=enclave.
	EnclaveLogsListen string
}

// Validate checks every field and how they combine, without touching the
// network.
func (c Config) Validate() error {
	for _, check := range []func() error{
		c.checkBroker, c.checkEgress, c.checkCreds, c.checkIngress, c.checkHealth,
		c.checkMetrics, c.checkSupervise, c.checkDistinct, c.checkSomething,
	} {
		if err := check(); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	if c.ShutdownTimeout < 0 {
		return fmt.Errorf("%w: --shutdown-timeout: negative", ErrConfig)
	}
	return nil
}

func (c Config) checkBroker() error {
	switch c.Broker {
	case "":
		return c.checkNoBroker()
	case BrokerNATS, BrokerKafka, BrokerSQS:
	default:
		return fmt.Errorf("--broker: unknown broker %q (want nats, kafka or sqs)", c.Broker)
	}
	if err := broker.CheckID(c.CosignerID); err != nil {
		return fmt.Errorf("--cosigner-id: %w", err)
	}
	if err := checkListen("--enclave-link", c.EnclaveLink, false); err != nil {
		return err
	}
	if err := c.checkBrokerFlags(); err != nil {
		return err
	}
	return checkPrefix(c.Broker, c.BrokerPrefix)
}

// checkNoBroker refuses broker settings without a broker.
func (c Config) checkNoBroker() error {
	set := map[string]bool{
		"--enclave-link": c.EnclaveLink != "", "--nats-url": c.NATSURL != "",
		"--kafka-brokers": len(c.KafkaBrokers) > 0, "--sqs-endpoint": c.SQSEndpoint != "",
		"--sqs-region": c.SQSRegion != "", "--broker-prefix": c.BrokerPrefix != "",
		"--broker-provision": c.BrokerProvision,
	}
	for _, name := range slices.Sorted(maps.Keys(set)) {
		if set[name] {
			return fmt.Errorf("%s is set but --broker is not", name)
		}
	}
	return nil
}

// checkBrokerFlags checks the chosen broker's settings and refuses the
// other brokers'.
func (c Config) checkBrokerFlags() error {
	nats, kafka, sqs := c.Broker == BrokerNATS, c.Broker == BrokerKafka, c.Broker == BrokerSQS
	switch {
	case !nats && c.NATSURL != "":
		return fmt.Errorf("--nats-url is set but --broker is %s", c.Broker)
	case !kafka && len(c.KafkaBrokers) > 0:
		return fmt.Errorf("--kafka-brokers is set but --broker is %s", c.Broker)
	case !sqs && (c.SQSEndpoint != "" || c.SQSRegion != ""):
		return fmt.Errorf("--sqs-endpoint and --sqs-region are for --broker sqs, not %s", c.Broker)
	case nats:
		return checkNATSURL(c.NATSURL)
	case kafka:
		return checkKafkaBrokers(c.KafkaBrokers)
	}
	return checkSQS(c.SQSEndpoint, c.SQSRegion)
}

// checkNATSURL accepts a comma-separated list of nats:// or tls:// URLs
// with a host. Errors never repeat the URL: it may hold credentials.
func checkNATSURL(list string) error {
	if list == "" {
		return errors.New("--nats-url: required with --broker nats")
	}
	for i, s := range strings.Split(list, ",") {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Hostname() == "" {
			return fmt.Errorf("--nats-url: entry %d: want nats://HOST:PORT or tls://HOST:PORT", i+1)
		}
	}
	return nil
}

func checkKafkaBrokers(seeds []string) error {
	if len(seeds) == 0 {
		return errors.New("--kafka-brokers: required with --broker kafka")
	}
	for _, s := range seeds {
		if !validHostPort(s) {
			return fmt.Errorf("--kafka-brokers: %q: want HOST:PORT", s)
		}
	}
	return nil
}

// validHostPort accepts HOST:PORT with a non-empty host and a port from 1
// to 65535.
func validHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return false
	}
	p, err := strconv.ParseUint(port, 10, 16)
	return err == nil && p > 0
}

func checkSQS(endpoint, region string) error {
	if endpoint != "" {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return errors.New("--sqs-endpoint: want http(s)://HOST[:PORT] without user info")
		}
	}
	if region != "" && !validToken(region, 64, "-") {
		return fmt.Errorf("--sqs-region: %q: want letters, digits and '-'", region)
	}
	return nil
}

// checkPrefix applies the adapter's documented rules for its inbox
// prefix, so that a bad one is a usage error and not a failure at start
// (the adapters check again).
func checkPrefix(kind, p string) error {
	if p == "" {
		return nil
	}
	ok := false
	switch kind {
	case BrokerNATS:
		ok = validNATSPrefix(p)
	case BrokerKafka:
		ok = validToken(p, 64, "._-")
	case BrokerSQS:
		ok = validToken(p, 80-broker.MaxIDLen, "_-")
	}
	if !ok {
		return fmt.Errorf("--broker-prefix: not a valid %s inbox prefix (see --help)", kind)
	}
	return nil
}

func validNATSPrefix(p string) bool {
	if len(p) > 128 {
		return false
	}
	for _, tok := range strings.Split(p, ".") {
		if !validToken(tok, 128, "_-") {
			return false
		}
	}
	return true
}

// validToken reports whether s is 1 to maxLen ASCII letters, digits or
// bytes of extra.
func validToken(s string, maxLen int, extra string) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && !strings.ContainsRune(extra, rune(c)) {
			return false
		}
	}
	return true
}

func (c Config) checkEgress() error {
	if c.EgressListen == "" {
		if len(c.EgressAllow) > 0 {
			return errors.New("--egress-allow is set but --egress-listen is not")
		}
		return nil
	}
	if err := checkListen("--egress-listen", c.EgressListen, false); err != nil {
		return err
	}
	for _, entry := range c.EgressAllow {
		if _, err := egress.New(egress.Config{Allow: []string{entry}}); err != nil {
			return fmt.Errorf("--egress-allow %q: want an exact HOST:PORT (DNS name or IP literal, port 1-65535, no wildcard)", entry)
		}
	}
	return nil
}

func (c Config) checkCreds() error {
	if c.CredsListen == "" {
		return nil
	}
	return checkListen("--creds-listen", c.CredsListen, false)
}

func (c Config) checkIngress() error {
	switch {
	case c.IngressListen == "" && c.IngressEnclave == "":
		return nil
	case c.IngressListen == "" || c.IngressEnclave == "":
		return errors.New("--ingress-listen and --ingress-enclave go together")
	}
	if err := checkListen("--ingress-listen", c.IngressListen, true); err != nil {
		return err
	}
	a, err := transport.ParseAddr(c.IngressEnclave)
	if err != nil {
		return fmt.Errorf("--ingress-enclave: %w", err)
	}
	if a.Scheme == transport.SchemeTCP && a.Port == 0 {
		return errors.New("--ingress-enclave: port 0 cannot be dialled")
	}
	return nil
}

func (c Config) checkHealth() error {
	if c.HealthListen == "" {
		return nil
	}
	return checkListen("--health-listen", c.HealthListen, true)
}

// checkListen checks a listen address; tcpOnly refuses vsock and unix.
func checkListen(flag, addr string, tcpOnly bool) error {
	if addr == "" {
		return fmt.Errorf("%s: required", flag)
	}
	a, err := transport.ParseAddr(addr)
	if err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	if tcpOnly && a.Scheme != transport.SchemeTCP {
		return fmt.Errorf("%s: want a tcp:// address", flag)
	}
	return nil
}

// checkDistinct refuses two components on one address (TCP port 0, a
// fresh port each time, excepted).
func (c Config) checkDistinct() error {
	seen := map[string]string{}
	for _, l := range c.listens() {
		a, _ := transport.ParseAddr(l.addr) // checked before
		if a.Scheme == transport.SchemeTCP && a.Port == 0 {
			continue
		}
		if other, dup := seen[a.String()]; dup {
			return fmt.Errorf("%s and %s name the same address", other, l.flag)
		}
		seen[a.String()] = l.flag
	}
	return nil
}

type listenFlag struct{ flag, addr string }

// listens lists the listen addresses that are set.
func (c Config) listens() []listenFlag {
	var out []listenFlag
	for _, l := range []listenFlag{
		{"--enclave-link", c.EnclaveLink}, {"--egress-listen", c.EgressListen},
		{"--creds-listen", c.CredsListen}, {"--ingress-listen", c.IngressListen},
		{"--health-listen", c.HealthListen}, {"--metrics-listen", c.MetricsListen},
		{"--enclave-logs-listen", c.EnclaveLogsListen},
	} {
		if l.addr != "" {
			out = append(out, l)
		}
	}
	return out
}

func (c Config) checkSomething() error {
	if len(c.listens()) == 0 && c.EnclaveEIF == "" {
		return errors.New("nothing to run: set --broker (with --enclave-link and --cosigner-id), " +
			"--egress-listen, --creds-listen, --ingress-listen, --health-listen, --metrics-listen, --enclave-logs-listen or --enclave-eif")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	return c
}
