//go:build !release

package harness

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	pb "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// stack2of3 measures the 2-of-3 devnet: keygen, full sign and refresh
// against the library, online sign loads, broker bytes.
func (r *run) stack2of3(ctx context.Context) error {
	return r.withStack(ctx, "2of3", 3, func(ctx context.Context, s *stack) error {
		key, lib, err := r.keygens(ctx, s)
		if err != nil {
			return err
		}
		if lib, err = r.refreshes(ctx, s, key, lib); err != nil {
			return err
		}
		if err := r.fullSigns(ctx, s, key, lib); err != nil {
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

// stack3of5 measures online sign loads on a 3-of-5 devnet.
func (r *run) stack3of5(ctx context.Context) error {
	if len(r.plan.cmpLoads35) == 0 {
		return nil
	}
	return r.withStack(ctx, "3of5", 5, func(ctx context.Context, s *stack) error {
		key, d, err := s.createKey(ctx, pb.KeyScheme_KEY_SCHEME_CMP_ECDSA_SECP256K1, 3)
		if err != nil {
			return err
		}
		r.report.section(secRatios, methodRatios).add("keygen_ms_stack_3of5", ms(d), "ms")
		r.addWarmup(s, r.settle(ctx, s))
		if err := r.frostLoads(ctx, s, 3, r.plan.frostLoads35); err != nil {
			return err
		}
		return r.onlineLoads(ctx, s, key, 3, r.plan.cmpLoads35)
	})
}

// withStack starts a devnet of n cosigners, runs measure on it and stops
// it; the devnet's directory (logs included) is kept if measure fails.
func (r *run) withStack(ctx context.Context, name string, n int, measure func(context.Context, *stack) error) error {
	r.log.Info("starting a devnet", "cosigners", n)
	s, took, err := startStack(ctx, r.cfg, name, n)
	if err != nil {
		return err
	}
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
			warm := r.settle(ctx, s)
			if key == nil {
				key = k
				r.addWarmup(s, warm)
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
	r.addBroker("broker_bytes_per_full_sign_per_party", "broker_frames_per_full_sign_per_party",
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
		before := s.tap.count()
		res, err := r.load(ctx, s, l, eip191(key.GetName(), nil, key.GetPublicKey()))
		if err != nil {
			return err
		}
		if l.clients == 1 {
			r.notePools(s.name, res)
		}
		if l.clients == 1 && s.name == "2of3" {
			r.addBroker("broker_bytes_per_sign_per_party", "broker_frames_per_sign_per_party",
				s.tap.count().minus(before), len(res.lat), t, !r.pools[s.name])
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
		before := s.tap.count()
		res, err := r.load(ctx, s, l, shifted(req, offset))
		if err != nil {
			return err
		}
		offset += l.clients * l.perClient
		if l.clients == 1 && s.name == "2of3" {
			r.addBroker("broker_bytes_per_frost_sign_per_party", "broker_frames_per_frost_sign_per_party",
				s.tap.count().minus(before), len(res.lat), t, false)
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

// presigUnavailable is how an enclave logs mpc.ErrPresignatureUnavailable.
const presigUnavailable = "presignature unavailable"

// load runs one sign load. A sign that fails under concurrent load is a
// result (reported with the figures); with one client, a failure means
// the harness or the stack is broken, and fails the run.
func (r *run) load(ctx context.Context, s *stack, l load, req request) (loadResult, error) {
	clients, err := s.clients(ctx, l.clients)
	if err != nil {
		return loadResult{}, err
	}
	before := s.logLines(presigUnavailable)
	res := runLoad(ctx, clients, l.perClient, req)
	res.collisions = s.logLines(presigUnavailable) - before
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if err := res.err(); err != nil && l.clients == 1 {
		return res, err
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

// notePools tells whether presignature pools served the one-client CMP
// signs: far faster than full signs (the full signs measured before, or
// fullSignFloor when none were).
func (r *run) notePools(devnet string, res loadResult) {
	p50 := percentile(res.lat, 50)
	full := fullSignFloor
	if len(r.fullSignStack) > 0 {
		full = median(r.fullSignStack) / 3
	}
	r.pools[devnet] = p50 < full
	if r.pools[devnet] {
		r.report.note("Presignature pools served the %s devnet's one-client CMP signs (p50 %.1f ms). The stack "+
			"keeps one pool per signer set an initiator would choose (enclave/node.PoolSets) with mpc's default "+
			"PoolConfig: %d presignatures, refilled when fewer than %d remain, one presign session at a time per "+
			"pool. Loads of more signs than the pools hold run the rest as full signs.", devnet, ms(p50), poolTarget, poolLowWater)
		return
	}
	r.report.note("No presignature pool served the %s devnet's one-client CMP signs (p50 %.0f ms, a full sign's "+
		"latency): the cosigners under test do not run pools, so every ECDSA sign through the API is a full CMP "+
		"sign (presign included), and the online_sign_*, burst and sustained figures are full-sign figures, not "+
		"warm-pool ones. FROST signs (frost_sign_*) need no presignature.", devnet, ms(p50))
}

// fullSignFloor is below any full CMP sign through the stack, and far
// above a sign from a presignature.
const fullSignFloor = 500 * time.Millisecond

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

func (r *run) addWarmup(s *stack, d time.Duration) {
	if !r.cfg.Smoke {
		r.report.section(secDevnet, methodDevnet).add("pool_warmup_s_"+s.name, d.Seconds(), "s")
	}
}
