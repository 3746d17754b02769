//go:build !release

package harness

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"time"

	pb "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// ratios2of3 measures keygen, refresh and full sign through a 2-of-3
// devnet against the bare library, and the broker bytes of full signs.
// Its pools hold one presignature per signer set: the refills the harness
// waits for after each keygen and refresh (so that no presign session
// shares the cores with the next measurement) stay short.
func (r *run) ratios2of3(ctx context.Context) error {
	if r.plan.ratiosOnStack {
		return nil // stack-2of3 measures them on its own devnet
	}
	return r.withStack(ctx, "2of3_ratios", 3, r.plan.poolsRatios, func(ctx context.Context, s *stack) error {
		_, err := r.ratioOps(ctx, s)
		return err
	})
}

// ratioOps runs the keygens, refreshes and full signs against the
// library and returns the stack's first key.
func (r *run) ratioOps(ctx context.Context, s *stack) (*pb.Key, error) {
	key, lib, err := r.keygens(ctx, s)
	if err != nil {
		return nil, err
	}
	if lib, err = r.refreshes(ctx, s, key, lib); err != nil {
		return nil, err
	}
	return key, r.fullSigns(ctx, s, key, lib)
}

// stack2of3 measures the 2-of-3 devnet under sign loads: CMP from warm
// presignature pools, FROST, and broker bytes.
func (r *run) stack2of3(ctx context.Context) error {
	return r.withStack(ctx, "2of3", 3, r.plan.pools23, func(ctx context.Context, s *stack) error {
		var key *pb.Key
		var err error
		if r.plan.ratiosOnStack {
			key, err = r.ratioOps(ctx, s)
		} else {
			key, err = r.warmKey(ctx, s, 2, "")
		}
		if err != nil {
			return err
		}
		// FROST first: the CMP loads drain pools, whose refills the
		// next step would wait for.
		if err := r.frostLoads(ctx, s, 2, r.plan.frostLoads); err != nil {
			return err
		}
		return r.onlineLoads(ctx, s, key, 2, r.plan.cmpLoads)
	})
}

// warmKey creates a CMP key of threshold t (reporting the keygen's time
// as figure, unless empty) and waits until its pools are full (the devnet
// goes quiet), which it reports as pool_warmup and as the rate
// presignatures were made.
func (r *run) warmKey(ctx context.Context, s *stack, t int, figure string) (*pb.Key, error) {
	key, d, err := s.createKey(ctx, pb.KeyScheme_KEY_SCHEME_CMP_ECDSA_SECP256K1, t)
	if err != nil {
		return nil, err
	}
	if figure != "" {
		r.report.section(secRatios, methodRatios).add(figure, ms(d), "ms")
	}
	warm := r.settle(ctx, s)
	r.addWarmup(s, warm, len(s.ids), t)
	return key, nil
}

// stack3of5 measures online sign loads on a 3-of-5 devnet.
func (r *run) stack3of5(ctx context.Context) error {
	if len(r.plan.cmpLoads35) == 0 {
		return nil
	}
	return r.withStack(ctx, "3of5", 5, r.plan.pools35, func(ctx context.Context, s *stack) error {
		key, err := r.warmKey(ctx, s, 3, "keygen_ms_stack_3of5")
		if err != nil {
			return err
		}
		if err := r.frostLoads(ctx, s, 3, r.plan.frostLoads35); err != nil {
			return err
		}
		return r.onlineLoads(ctx, s, key, 3, r.plan.cmpLoads35)
	})
}

// withStack starts a devnet of n cosigners whose enclaves size their
// pools as pools says, runs measure on it and stops it; the devnet's
// directory (logs included) is kept if measure fails.
func (r *run) withStack(ctx context.Context, name string, n int, pools poolSizing, measure func(context.Context, *stack) error) error {
	r.log.Info("starting a devnet", "name", name, "cosigners", n, "pools", pools.withDefaults())
	s, took, err := startStack(ctx, r.cfg, name, n, pools.flags())
	if err != nil {
		return err
	}
	r.sizing[name] = pools.withDefaults()
	r.report.section(secDevnet, methodDevnet).add("devnet_start_s_"+name, took.Seconds(), "s")
	err = measure(ctx, s)
	keep := err != nil || r.cfg.KeepDevnets
	if cerr := s.close(keep); cerr != nil {
		r.log.Warn("stopping the devnet", "err", cerr)
	}
	if keep {
		r.log.Info("devnet kept for inspection", "dir", s.dir)
	}
	return err
}

// keygens times CMP 2-of-3 keygens through the stack and in the library,
// alternately, and returns the first key of each.
func (r *run) keygens(ctx context.Context, s *stack) (*pb.Key, libKeys, error) {
	var (
		p   paired
		key *pb.Key
		lib libKeys
	)
	for i := range r.plan.keygenReps {
		r.log.Info("keygen", "rep", i+1)
		err := p.run(i, func() (time.Duration, error) {
			k, d, err := s.createKey(ctx, pb.KeyScheme_KEY_SCHEME_CMP_ECDSA_SECP256K1, 2)
			if err != nil {
				return d, err
			}
			r.settle(ctx, s)
			if key == nil {
				key = k
			}
			return d, nil
		}, func() (time.Duration, error) {
			k, d, err := libKeygen(3, 2)
			if lib == nil {
				lib = k
			}
			return d, err
		})
		if err != nil {
			return nil, nil, err
		}
	}
	if err := r.noteShareSize(lib); err != nil {
		return nil, nil, err
	}
	r.addPair("keygen", p)
	return key, lib, nil
}

// noteShareSize records the size of a real CMP 2-of-3 share, for the
// synthetic keys of the sealed state.
func (r *run) noteShareSize(lib libKeys) error {
	b, err := lib[libParties(3)[0]].MarshalBinary()
	if err != nil {
		return err
	}
	r.shareSize = len(b)
	r.report.section(secStorage, methodStorage).add("cmp_share_bytes_2of3", float64(len(b)), "bytes")
	return nil
}

// fullSigns times full CMP signs through the stack and in the library,
// and counts the broker bytes of the stack's. The stack signs along a
// derivation path: the node claims a presignature only for an underived
// single-digest sign, so these are full signs whether pools run or not.
func (r *run) fullSigns(ctx context.Context, s *stack, key *pb.Key, lib libKeys) error {
	cl, err := s.clients(ctx, 1)
	if err != nil {
		return err
	}
	path := []uint32{0}
	pub, err := s.derive(ctx, key.GetName(), path)
	if err != nil {
		return err
	}
	req := eip191(key.GetName(), path, pub)
	r.settle(ctx, s)
	digest := make([]byte, 32)
	var p paired
	var tapped tapCount
	for i := range r.plan.fullSignReps {
		rand.Read(digest)
		err := p.run(i, func() (time.Duration, error) {
			before := s.tap.count()
			d, err := signOnce(ctx, cl[0], req, i)
			tapped = tapped.plus(s.tap.count().minus(before))
			return d, err
		}, func() (time.Duration, error) { return libSign(lib, 2, digest) })
		if err != nil {
			return err
		}
	}
	r.fullSignStack, r.fullSignLib = p.a, p.b
	r.addPair("full_sign", p)
	r.addBroker(s, "broker_bytes_per_full_sign_per_party", "broker_frames_per_full_sign_per_party",
		tapped, r.plan.fullSignReps, 2, true)
	return nil
}

func signOnce(ctx context.Context, c *client, req request, i int) (time.Duration, error) {
	op, d, err := c.sign(ctx, req.make(i))
	if err == nil {
		err = req.check(i, op)
	}
	return d, err
}

// refreshes times CMP refreshes through the stack and in the library,
// and returns the library's refreshed key.
func (r *run) refreshes(ctx context.Context, s *stack, key *pb.Key, lib libKeys) (libKeys, error) {
	var p paired
	for i := range r.plan.refreshReps {
		r.log.Info("refresh", "rep", i+1)
		err := p.run(i, func() (time.Duration, error) {
			d, err := s.refreshKey(ctx, key.GetName())
			r.settle(ctx, s) // a refresh empties the key's pools
			return d, err
		}, func() (time.Duration, error) {
			var d time.Duration
			var err error
			lib, d, err = libRefresh(lib)
			return d, err
		})
		if err != nil {
			return nil, err
		}
	}
	if len(p.a) > 0 {
		r.addPair("refresh", p)
	}
	return lib, nil
}

// onlineLoads runs the CMP sign loads: every sign the API runs for an
// EIP-191 message with key, at each concurrency.
func (r *run) onlineLoads(ctx context.Context, s *stack, key *pb.Key, t int, loads []load) error {
	for _, l := range loads {
		r.settle(ctx, s)
		r.log.Info("CMP sign load", "devnet", s.name, "clients", l.clients, "signs", l.clients*l.perClient)
		res, err := r.load(ctx, s, l, t, eip191(key.GetName(), nil, key.GetPublicKey()))
		if err != nil {
			return err
		}
		if l.clients == 1 {
			r.notePools(s.name, res)
		}
		if l.clients == 1 && s.name == "2of3" {
			r.addBroker(s, "broker_bytes_per_sign_per_party", "broker_frames_per_sign_per_party",
				res.tapped, len(res.lat), t, res.presigned < len(res.lat))
		}
		r.addOnline("online_sign", s.name, l, res)
	}
	return nil
}

// frostLoads creates a FROST Taproot key and runs the FROST sign loads
// (Taproot PSBT spends), counting broker bytes in the one-client load.
func (r *run) frostLoads(ctx context.Context, s *stack, t int, loads []load) error {
	key, d, err := s.createKey(ctx, pb.KeyScheme_KEY_SCHEME_FROST_TAPROOT, t)
	if err != nil {
		return err
	}
	r.report.section(secRatios, methodRatios).add("frost_keygen_ms_stack_"+s.name, ms(d), "ms")
	req, err := taprootSpend(key)
	if err != nil {
		return err
	}
	offset := 0
	for _, l := range loads {
		r.settle(ctx, s)
		r.log.Info("FROST sign load", "devnet", s.name, "clients", l.clients, "signs", l.clients*l.perClient)
		res, err := r.load(ctx, s, l, t, shifted(req, offset))
		if err != nil {
			return err
		}
		offset += l.clients * l.perClient
		if l.clients == 1 && s.name == "2of3" {
			r.addBroker(s, "broker_bytes_per_frost_sign_per_party", "broker_frames_per_frost_sign_per_party",
				res.tapped, len(res.lat), t, false)
		}
		r.addOnline("frost_sign", s.name, l, res)
	}
	return nil
}

// shifted numbers a request's signs from offset (distinct spends).
func shifted(req request, offset int) request {
	return request{
		make:  func(i int) *pb.SignRequest { return req.make(offset + i) },
		check: func(i int, op *pb.SignOperation) error { return req.check(offset+i, op) },
	}
}

// Log lines of the enclaves the harness counts: mpc's one line per
// presignature a signer consumes, and enclave/node's line when another
// initiator of the same signer set took the presignature a sign claimed
// and the sign is proposed again.
const (
	logConsumed = "presignature consumed"
	logRetried  = "the presignature claimed for a sign was taken"
)

// load runs one sign load among signers of threshold t, its clients made
// (and registered as API users) before anything is counted. A sign that fails
// under concurrent load is a result (reported with the figures); with one
// client, a failure means the harness or the stack is broken, and fails
// the run. A one-client load's time is broken down from the enclaves'
// metrics (see breakdown).
func (r *run) load(ctx context.Context, s *stack, l load, t int, req request) (loadResult, error) {
	clients, err := s.clients(ctx, l.clients)
	if err != nil {
		return loadResult{}, err
	}
	consumed, retried := s.logLines(logConsumed), s.logLines(logRetried)
	var before tallies
	if l.clients == 1 {
		if before, err = s.scrape(ctx); err != nil {
			return loadResult{}, err
		}
	}
	everything := func() []int { return append(s.processes(), os.Getpid()) }
	cpu, tapped := cpuTicks(everything()), s.tap.count()
	res := runLoad(ctx, clients, l.perClient, req)
	res.cpu = time.Duration(cpuTicks(everything())-cpu) * time.Second / clockTicks
	res.tapped = s.tap.count().minus(tapped)
	res.presigned = (s.logLines(logConsumed) - consumed) / t
	res.retried = s.logLines(logRetried) - retried
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if err := res.err(); err != nil && l.clients == 1 {
		return res, err
	}
	if before != nil && len(res.lat) > 0 {
		time.Sleep(time.Second) // outcome audit entries are written as sessions end
		after, err := s.scrape(ctx)
		if err != nil {
			return res, err
		}
		b := newBreakdown(after.minus(before), len(res.lat), t)
		res.breakdown = &b
	}
	return res, nil
}

func (c tapCount) plus(o tapCount) tapCount { return tapCount{c.bytes + o.bytes, c.frames + o.frames} }

// keysLabel writes 1000 as 1k.
func keysLabel(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// notePools tells whether presignature pools served every one of the
// one-client CMP signs (the enclaves log each presignature consumed).
func (r *run) notePools(devnet string, res loadResult) {
	p50 := percentile(res.lat, 50)
	r.pools[devnet] = len(res.lat) > 0 && res.presigned == len(res.lat)
	if r.pools[devnet] {
		r.report.note("Presignature pools served every one-client CMP sign of the %s devnet (p50 %.1f ms). Its "+
			"enclaves keep one pool per signer set an initiator would choose (enclave/node.PoolSets), sized by "+
			"the harness (cosigner-enclave --presig-pool-target, --presig-pool-low-water, "+
			"--presig-pool-concurrency): %s. The enclave's defaults are 8, 4 and 1.", devnet, ms(p50), r.sizing[devnet])
		return
	}
	r.report.note("Of the %s devnet's %d one-client CMP signs, %d used a presignature (p50 %.0f ms): the others were "+
		"full CMP signs, presign's Paillier and zero-knowledge work included, and so are their figures.",
		devnet, len(res.lat), res.presigned, ms(p50))
}

// settle waits until the devnet is quiet (no background session, such as
// a presignature refill: see quiet), so that a measurement starts with
// warm pools and does not share the cores with refills.
// A smoke run does not wait (its figures mean little) and returns 0.
func (r *run) settle(ctx context.Context, s *stack) time.Duration {
	if r.cfg.Smoke {
		return 0
	}
	d, ok := s.quiet(ctx, quietLimit)
	if !ok && ctx.Err() == nil {
		r.log.Warn("the devnet did not go quiet", "waited", d)
		r.report.note("The %s devnet did not go quiet within %v once; the measurement after it "+
			"shared the machine with background sessions.", s.name, quietLimit)
	}
	r.log.Info("settled", "devnet", s.name, "waited", d.Round(100*time.Millisecond))
	return d
}

// addWarmup reports how long a new key's pools took to fill, and the rate
// presignatures were made meanwhile (every pool of n parties and
// threshold t at once): the most CMP signs per second the devnet can
// sustain once pools run dry, since each sign takes one presignature (or
// a full sign, which does presign's work too).
func (r *run) addWarmup(s *stack, d time.Duration, n, t int) {
	if r.cfg.Smoke {
		return
	}
	sec := r.report.section(secDevnet, methodDevnet)
	sec.add("pool_warmup_s_"+s.name, d.Seconds(), "s")
	made := r.sizing[s.name].target * poolSets(n, t)
	if busy := d - quietFor; busy > 0 {
		sec.add("pool_refill_per_s_"+s.name, float64(made)/busy.Seconds(), "presignatures/s")
	}
}

// poolSets is how many signer sets enclave/node.PoolSets gives a key of n
// parties and threshold t: party i's set is itself and the first t-1
// others, so the first t parties share one and each later party has its
// own.
func poolSets(n, t int) int { return n - t + 1 }
