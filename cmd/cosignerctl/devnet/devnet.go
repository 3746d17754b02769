//go:build !release

package devnet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"
)

// Devnet is a running devnet. Stop it with Stop.
type Devnet struct {
	cfg   Config
	log   *slog.Logger
	paths pkiPaths
	bins  binaries
	pki   *pki
	pcrs  map[int][]byte
	creds awsCreds

	mu          sync.Mutex // guards cosigners, info.Cosigners and roster once running (Pair)
	info        *Info
	roster      *rosterFile
	policy      []byte
	s3          *s3.Client
	broker      *brokerServer
	approval    *approvalServer
	egressAllow []string
	parentEnv   []string
	enclaveEnv  []string
	cosigners   []*cosigner

	// servers run in this process until stopServers is called; closers
	// then run in reverse order.
	stopServers context.CancelFunc
	servers     errgroup.Group
	closers     []func() error
	unlock      func()

	failOnce sync.Once
	failed   chan struct{}
	failErr  error

	stopOnce sync.Once
	stopErr  error
}

// awsCreds are the AWS credentials the parents hand their enclaves.
type awsCreds struct{ accessKey, secretKey, sessionToken string }

// Start starts a devnet in cfg.Dir and returns once every cosigner serves
// (see the package documentation), or stops what it started and returns
// an error. ctx bounds the start only; the devnet runs until Stop.
func Start(ctx context.Context, cfg Config) (*Devnet, error) {
	d, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	if err := d.startWithin(ctx); err != nil {
		return nil, errors.Join(err, d.Stop())
	}
	return d, nil
}

// Up starts a devnet, calls ready once it serves, and runs it until ctx
// ends or a part of it fails; then it stops everything. It returns nil
// once stopped cleanly because ctx ended, even before the devnet was
// ready.
func Up(ctx context.Context, cfg Config, ready func(*Info)) error {
	d, err := prepare(cfg)
	if err != nil {
		return err
	}
	if err := d.startWithin(ctx); err != nil {
		stopErr := d.Stop()
		if ctx.Err() != nil && stopErr == nil {
			d.log.Info("interrupted before the devnet was ready; stopped", "err", err)
			return nil
		}
		return errors.Join(err, stopErr)
	}
	ready(d.Info())
	select {
	case <-ctx.Done():
		d.log.Info("stopping the devnet")
	case <-d.failed:
		d.log.Error("a part of the devnet failed; stopping it", "err", d.failErr)
	}
	return errors.Join(d.Err(), d.Stop())
}

// startWithin starts the devnet within cfg.ReadyTimeout, giving up as
// soon as a part of it fails.
func (d *Devnet) startWithin(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.ReadyTimeout)
	defer cancel()
	go func() {
		select {
		case <-d.failed:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := d.start(ctx); err != nil {
		return errors.Join(d.Err(), err)
	}
	return nil
}

// Info returns the devnet's description (DIR/devnet.json).
func (d *Devnet) Info() *Info { return d.info }

// Failed is closed when a child process exits or a server fails while
// the devnet runs; Err then says what failed.
func (d *Devnet) Failed() <-chan struct{} { return d.failed }

// Err returns the first failure of the running devnet, or nil.
func (d *Devnet) Err() error {
	select {
	case <-d.failed:
		return d.failErr
	default:
		return nil
	}
}

// fail records the first failure.
func (d *Devnet) fail(err error) {
	d.failOnce.Do(func() {
		d.failErr = err
		close(d.failed)
	})
}

// watch reports p's exit as a failure unless the devnet stopped it.
func (d *Devnet) watch(p *proc) {
	go func() {
		<-p.exited
		if !p.stopping.Load() {
			d.fail(fmt.Errorf("%w (see %s)", p.exitError(), p.logPath))
		}
	}()
}

// prepare checks cfg against what DIR holds, locks DIR and reads or
// creates the key material.
func prepare(cfg Config) (_ *Devnet, err error) {
	if _, err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	roster, hasRoster, err := readRoster(cfg.Dir)
	if err != nil {
		return nil, err
	}
	if cfg.Parties == 0 && hasRoster {
		cfg.Parties = len(roster.Members)
	}
	if cfg, err = cfg.withDefaults(); err != nil {
		return nil, err
	}
	d := &Devnet{cfg: cfg, log: cfg.Logger, paths: pkiPaths{cfg.Dir}, pcrs: simPCRs(), failed: make(chan struct{}), stopServers: func() {}}
	if hasRoster {
		d.roster = roster
	}
	if d.unlock, err = lockDir(cfg.Dir); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			d.unlock()
		}
	}()
	if err := d.checkPrevious(hasRoster); err != nil {
		return nil, err
	}
	if d.bins, err = findBinaries(cfg.BinDir); err != nil {
		return nil, err
	}
	if d.creds, err = credsFor(cfg); err != nil {
		return nil, err
	}
	if d.pki, err = loadPKI(cfg.Dir); err != nil {
		return nil, err
	}
	d.policy, err = loadDefaultPolicy(cfg.Dir)
	return d, err
}

// checkPrevious refuses a configuration that cannot find the state of
// the devnet already in DIR.
func (d *Devnet) checkPrevious(hasRoster bool) error {
	cfg := d.cfg
	if hasRoster && !slices.Equal(d.roster.ids(), cosignerIDs(cfg.Parties)) {
		return fmt.Errorf("%w: %s holds a devnet of cosigners %v, not %d", ErrConfig, cfg.Dir, d.roster.ids(), cfg.Parties)
	}
	prev, err := d.previous()
	if err != nil || prev == nil || !hasRoster {
		return err
	}
	switch {
	case prev.S3.Embedded != cfg.embeddedS3() || prev.S3.Bucket != cfg.S3Bucket ||
		(!cfg.embeddedS3() && prev.S3.Endpoint != cfg.S3):
		return fmt.Errorf("%w: %s keeps its state in S3 at %s (bucket %s); run with the same --s3 and --s3-bucket",
			ErrConfig, cfg.Dir, s3Name(prev.S3), prev.S3.Bucket)
	}
	return nil
}

func s3Name(s S3Info) string {
	if s.Embedded {
		return S3Embedded
	}
	return s.Endpoint
}

// previous returns the devnet.json of the previous run, or nil.
func (d *Devnet) previous() (*Info, error) {
	if _, err := os.Stat(filepath.Join(d.cfg.Dir, InfoFile)); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return Load(d.cfg.Dir)
}

// credsFor returns the credentials for the parents: the devnet's own with
// the embedded S3, the environment's for another endpoint.
func credsFor(cfg Config) (awsCreds, error) {
	if cfg.embeddedS3() {
		return awsCreds{accessKey: devAccessKey, secretKey: devSecretKey}, nil
	}
	c := awsCreds{os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN")}
	if c.accessKey == "" || c.secretKey == "" {
		return c, fmt.Errorf("%w: --s3 %s needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", ErrConfig, cfg.S3)
	}
	return c, nil
}

// start runs everything and waits until every cosigner serves.
func (d *Devnet) start(ctx context.Context) error {
	prev, err := d.previous()
	if err != nil {
		return err
	}
	if err := d.prepareDirs(); err != nil {
		return err
	}
	if err := d.startServers(ctx, prev); err != nil {
		return err
	}
	if err := d.makeCosigners(ctx, prev); err != nil {
		return err
	}
	d.setEnv()
	if err := d.info.write(); err != nil {
		return err
	}
	return d.startCosigners(ctx)
}

func (d *Devnet) prepareDirs() error {
	for _, sub := range []string{"logs", "members", "tmp"} {
		if err := os.MkdirAll(filepath.Join(d.cfg.Dir, sub), 0o700); err != nil {
			return err
		}
	}
	return wipe(filepath.Join(d.cfg.Dir, "run"))
}

// startServers starts S3, KMS, the approval server and the broker in this
// process, and fills in the description.
func (d *Devnet) startServers(ctx context.Context, prev *Info) error {
	sctx, cancel := context.WithCancel(context.Background())
	d.stopServers = cancel
	d.info = &Info{Version: InfoVersion, Dir: d.cfg.Dir, Roster: rosterPath(d.cfg.Dir), Workspace: workspacePath(d.cfg.Dir), DefaultPolicy: policyPath(d.cfg.Dir)}
	for _, start := range []func(context.Context, context.Context, *Info) error{
		d.startS3, d.startKMS, d.startApproval, d.startBroker,
	} {
		if err := start(ctx, sctx, prev); err != nil {
			return err
		}
	}
	d.describe()
	return nil
}

// serve runs a server of this process; its failure fails the devnet.
func (d *Devnet) serve(name string, run func() error) {
	d.servers.Go(func() error {
		err := run()
		if err != nil {
			d.fail(fmt.Errorf("%s: %w", name, err))
		}
		return err
	})
}

// listen binds 127.0.0.1 at the port of the previous run (from its URL or
// HOST:PORT), or at a new one.
func listen(prevAddr string) (net.Listener, error) {
	port := 0
	if prevAddr != "" {
		if u, err := url.Parse(prevAddr); err == nil && u.Host != "" {
			prevAddr = u.Host
		}
		port = portOf(prevAddr)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil && port != 0 {
		return nil, fmt.Errorf("port %d, used by the previous run (%s), is taken: %w", port, InfoFile, err)
	}
	return l, err
}

// prevField returns f(prev), or "" without a previous run.
func prevField(prev *Info, f func(*Info) string) string {
	if prev == nil {
		return ""
	}
	return f(prev)
}

func (d *Devnet) startS3(ctx, sctx context.Context, prev *Info) error {
	d.info.S3 = S3Info{Endpoint: d.cfg.S3, Bucket: d.cfg.S3Bucket, Region: DefaultRegion}
	if d.cfg.embeddedS3() {
		l, err := listen(prevField(prev, func(i *Info) string { return s3Endpoint(i) }))
		if err != nil {
			return fmt.Errorf("S3: %w", err)
		}
		store, h, err := openEmbeddedS3(d.cfg.Dir, d.cfg.S3Bucket)
		if err != nil {
			l.Close()
			return err
		}
		d.closers = append(d.closers, store.close)
		d.serve("S3", func() error { return serveHTTP(sctx, l, h) })
		d.info.S3.Endpoint, d.info.S3.Embedded = "http://"+l.Addr().String(), true
	}
	d.s3 = s3Client(d.info.S3.Endpoint, DefaultRegion, d.creds)
	if !d.cfg.embeddedS3() {
		return ensureBucket(ctx, d.s3, d.cfg.S3Bucket)
	}
	return nil
}

func s3Endpoint(i *Info) string {
	if !i.S3.Embedded {
		return ""
	}
	return i.S3.Endpoint
}

func (d *Devnet) startKMS(_, sctx context.Context, prev *Info) error {
	l, err := listen(prevField(prev, func(i *Info) string { return i.KMS.Endpoint }))
	if err != nil {
		return fmt.Errorf("KMS: %w", err)
	}
	var kmsLog *slog.Logger // one line per request: only at debug level
	if d.log.Enabled(context.Background(), slog.LevelDebug) {
		kmsLog = d.log.With("component", "kms")
	}
	emu, err := openKMS(d.cfg.Dir, d.pki.simCA, kmsLog)
	if err != nil {
		l.Close()
		return err
	}
	d.serve("KMS", func() error { return emu.Serve(sctx, l) })
	d.info.KMS = KMSInfo{Endpoint: "http://" + l.Addr().String(), Region: DefaultRegion}
	return nil
}

func (d *Devnet) startApproval(_, sctx context.Context, prev *Info) error {
	l, err := listen(prevField(prev, func(i *Info) string { return i.Approval.URL }))
	if err != nil {
		return fmt.Errorf("approval server: %w", err)
	}
	tc, err := d.pki.approvalTLS.config()
	if err != nil {
		l.Close()
		return fmt.Errorf("approval server certificate: %w", err)
	}
	d.approval = newApprovalServer(d.pki.handlerKey, d.log.With("component", "approval"))
	tl := tls.NewListener(l, tc)
	d.serve("approval server", func() error { return serveHTTP(sctx, tl, d.approval) })
	d.info.Approval = ApprovalInfo{URL: "https://" + l.Addr().String() + approvalPath, CA: d.paths.approvalCA(),
		HandlerPublicKey: d.paths.handlerPub(), Rule: ApprovalRule}
	return nil
}

func (d *Devnet) startBroker(ctx, _ context.Context, prev *Info) error {
	port := 0
	if prev != nil && prev.Broker.Kind == d.cfg.Broker && d.cfg.Broker != BrokerNATS {
		port = portOf(hostOf(prev.Broker.URL))
	}
	b, err := startBroker(ctx, d.cfg, port)
	if err != nil {
		return fmt.Errorf("broker %s: %w", d.cfg.Broker, err)
	}
	d.broker = b
	d.closers = append(d.closers, b.stop)
	d.info.Broker = b.info
	return nil
}

// hostOf returns the HOST:PORT of a URL, or s itself.
func hostOf(s string) string {
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		return u.Host
	}
	return s
}

// describe fills in the key material's part of the description.
func (d *Devnet) describe() {
	p := d.paths
	d.info.ClientCA = p.clientCA()
	d.info.Clients = map[string]CertFiles{}
	for _, r := range Roles {
		d.info.Clients[r] = p.client(r)
	}
	d.info.PolicyAdmins = AdminsInfo{PublicKeys: p.admins(), PrivateKeys: p.adminKeys(), Quorum: adminQuorum}
	d.info.Attestation = AttestationInfo{Root: p.simRoot(), PCRs: hexPCRs(d.pcrs)}
	d.egressAllow = []string{hostOf(d.info.KMS.Endpoint), withPort(d.info.S3.Endpoint), hostOf(d.info.Approval.URL)}
}

// withPort returns HOST:PORT of an endpoint URL, with the scheme's
// default port if it names none.
func withPort(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return endpoint
	}
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// makeCosigners sets up each cosigner's ports and KMS key: the previous
// run's, or new ones.
func (d *Devnet) makeCosigners(ctx context.Context, prev *Info) error {
	for i := 1; i <= d.cfg.Parties; i++ {
		c, err := d.newCosigner(ctx, i, prev)
		if err != nil {
			return err
		}
		d.cosigners = append(d.cosigners, c)
		d.info.Cosigners = append(d.info.Cosigners, c.info(d))
	}
	return nil
}

// newCosigner sets up cosigner i's ports and KMS key: the previous run's,
// or new ones.
func (d *Devnet) newCosigner(ctx context.Context, i int, prev *Info) (*cosigner, error) {
	c := &cosigner{id: cosignerID(i)}
	var was CosignerInfo
	if prev != nil {
		was, _ = prev.Cosigner(c.id)
	}
	var err error
	if c.apiPort, err = freePort(was.API); err != nil {
		return nil, err
	}
	if c.healthPort, err = freePort(was.Health); err != nil {
		return nil, err
	}
	if c.metricsPort, err = freePort(was.Metrics); err != nil {
		return nil, err
	}
	if c.keyID = was.KMSKeyID; c.keyID == "" {
		if c.keyID, err = createKey(ctx, d.info.KMS.Endpoint, c.id, d.pcrs); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// freePort returns the port of the previous run's HOST:PORT, or a port
// that is free now (for a child process to bind).
func freePort(prevAddr string) (int, error) {
	if p := portOf(prevAddr); p != 0 {
		return p, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// setEnv prepares the child processes' environments. Parents get the AWS
// credentials to hand over and nothing from the host's AWS setup.
// Enclaves get no AWS settings at all: credentials come from their
// parent.
func (d *Devnet) setEnv() {
	d.parentEnv = append(filterEnv("AWS_"),
		"AWS_ACCESS_KEY_ID="+d.creds.accessKey, "AWS_SECRET_ACCESS_KEY="+d.creds.secretKey,
		"AWS_REGION="+DefaultRegion, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent")
	if d.creds.sessionToken != "" {
		d.parentEnv = append(d.parentEnv, "AWS_SESSION_TOKEN="+d.creds.sessionToken)
	}
	d.enclaveEnv = filterEnv("AWS_")
}

// startCosigners starts the parents; on the first run collects the
// roster; then starts the enclaves with it and waits until each serves.
func (d *Devnet) startCosigners(ctx context.Context) error {
	if err := d.each(ctx, d.startParent); err != nil {
		return err
	}
	if d.roster == nil {
		if err := d.bootstrap(ctx); err != nil {
			return err
		}
	}
	if err := d.ensureWorkspace(); err != nil {
		return err
	}
	if err := d.approval.setKeys(d.roster.Members); err != nil {
		return err
	}
	if err := d.each(ctx, func(_ context.Context, c *cosigner) error { return d.startEnclave(c, modeCosigner, false) }); err != nil {
		return err
	}
	if err := d.each(ctx, d.waitServing); err != nil {
		return err
	}
	d.log.Info("devnet ready", "cosigners", len(d.cosigners), "info", filepath.Join(d.cfg.Dir, InfoFile))
	return d.info.write()
}

// each runs f for every cosigner at once.
func (d *Devnet) each(ctx context.Context, f func(context.Context, *cosigner) error) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range d.cosigners {
		g.Go(func() error { return f(gctx, c) })
	}
	return g.Wait()
}

// bootstrap boots every enclave once without a roster to collect its
// entry, and writes DIR/roster.json.
func (d *Devnet) bootstrap(ctx context.Context) error {
	members := make([]memberEntry, len(d.cosigners))
	g, gctx := errgroup.WithContext(ctx)
	for i, c := range d.cosigners {
		g.Go(func() error {
			var err error
			members[i], err = d.collectMember(gctx, c)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("collecting the roster: %w", err)
	}
	d.roster = &rosterFile{Members: members}
	d.log.Info("roster written", "file", rosterPath(d.cfg.Dir), "members", memberIDs(members))
	return d.roster.write(d.cfg.Dir)
}

// Stop stops the enclaves, then the parents, then the servers of this
// process; it returns what failed to stop cleanly. It may be called more
// than once.
func (d *Devnet) Stop() error {
	d.stopOnce.Do(func() { d.stopErr = d.stop() })
	return d.stopErr
}

func (d *Devnet) stop() error {
	var errs []error
	errs = append(errs, d.stopAll(func(c *cosigner) error {
		err := d.stopEnclave(c)
		if c.pairToken != "" && !c.joined {
			return nil // a pairing that never joined may have ended on its own
		}
		return err
	}))
	errs = append(errs, d.stopAll(func(c *cosigner) error {
		if c.parent == nil {
			return nil
		}
		return c.parent.stop(d.cfg.StopTimeout)
	}))
	d.stopServers()
	if err := d.servers.Wait(); err != nil {
		errs = append(errs, err)
	}
	for i := len(d.closers) - 1; i >= 0; i-- {
		errs = append(errs, d.closers[i]())
	}
	errs = append(errs, os.RemoveAll(filepath.Join(d.cfg.Dir, "tmp")))
	d.unlock()
	d.log.Info("devnet stopped")
	return errors.Join(errs...)
}

func (d *Devnet) stopAll(f func(*cosigner) error) error {
	errs := make([]error, len(d.cosigners))
	var wg sync.WaitGroup
	for i, c := range d.cosigners {
		wg.Go(func() { errs[i] = f(c) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
