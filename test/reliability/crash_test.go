//go:build !release

package reliability_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/failpoint"
	cosignerv1 "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// crashPlan sizes a crash run.
type crashPlan struct {
	points  int     // crash points
	workers int     // client loops
	keys    int     // at most this many keys are created
	cmp     bool    // CMP keys too (presignatures, refresh)
	arm     float64 // chance that a restarted enclave is armed with a failpoint
}

func planCrash() crashPlan {
	p := crashPlan{points: 1, workers: 1, keys: 2, arm: 0.5}
	if long {
		p = crashPlan{points: 60, workers: 3, keys: 30, cmp: cmpEnabled(), arm: 0.5}
	}
	if n, err := strconv.Atoi(os.Getenv("NITRO_CRASH_POINTS")); err == nil && n > 0 {
		p.points = n
	}
	return p
}

// seed returns the run's seed: NITRO_RELIABILITY_SEED, or the time.
func seed(t *testing.T) uint64 {
	s, err := strconv.ParseUint(os.Getenv("NITRO_RELIABILITY_SEED"), 10, 64)
	if err != nil {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (NITRO_RELIABILITY_SEED=%d replays the choices, not the timing)", s, s)
	return s
}

// TestCrashAnywhere kills cosigner processes of a devnet at random
// moments while clients create keys and sign (and, with CMP, presignature
// pools refill and keys are refreshed): kill -9 of an enclave or of a
// parent, or an enclave killing itself at a named failpoint of the
// sealed state (an enclave restarted after a crash is often armed with
// one, NITRO_FAILPOINT_CRASH=NAME=N). After every point it restarts what
// died and checks that every key a client was told exists (CreateKey or
// RefreshKey returned it) is present on all its parties at that epoch,
// and that the newest and a random one sign. Throughout, every signature
// a client got must verify (btcd for Taproot, go-ethereum for EIP-191).
// At the end every acknowledged key signs, and the enclave logs show no
// presignature reused (see presignaturesReused).
func TestCrashAnywhere(t *testing.T) {
	parallelInShort(t)
	began := time.Now()
	plan := planCrash()
	c := startCluster(t, 3)
	r := &crashRun{t: t, c: c, plan: plan, rng: rand.New(rand.NewPCG(seed(t), 8)),
		armed: map[string]string{}, down: map[string]bool{}}
	r.createFirstKey(t.Context())
	r.keygenStoreCrash(t.Context())
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for i := range plan.workers {
		wg.Go(func() { r.work(ctx, i) })
	}
	for p := range plan.points {
		r.point(t.Context(), p)
		r.check(t.Context(), false)
		if t.Failed() {
			break
		}
	}
	cancel()
	wg.Wait()
	r.disarm(t.Context())
	r.check(t.Context(), true)
	reuses, presigs := c.presignaturesReused(t, plan.cmp)
	// The run is over: a graceful stop would wait up to the API's shutdown
	// deadline (10 s) for signs a crash left waiting for their deadline.
	if err := c.d.Kill(); err != nil {
		t.Errorf("killing the devnet: %v", err)
	}
	t.Logf("crash points %d (%s); client calls %d (signed %d, failed or refused %d, errors %d); keys %d",
		r.crashed, r.kindList(), r.calls.Load(), r.signed.Load(), r.refused.Load(), r.errors.Load(), len(r.keys))
	summary.add("crash anywhere", func(s *row) {
		s.crashed += r.crashed
		s.sessions += int(r.calls.Load())
		s.keys += len(r.keys)
		s.reuses += reuses
		s.duration += time.Since(began)
		s.note = fmt.Sprintf("%s; %d signatures verified; %d presignatures consumed; cmp %v", r.kindList(), r.signed.Load(), presigs, plan.cmp)
	})
}

// crashRun is one run's state.
type crashRun struct {
	t    *testing.T
	c    *cluster
	plan crashPlan
	rng  *rand.Rand // the fault loop's; workers have their own

	mu    sync.Mutex
	keys  []key
	down  map[string]bool   // processes being restarted, by cosigner
	armed map[string]string // failpoint spec of armed enclaves

	crashed int
	kinds   map[string]int

	calls, signed, refused, errors atomic.Int64
}

func (r *crashRun) acked() []key {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.keys)
}

func (r *crashRun) ack(k key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.keys {
		if r.keys[i].name == k.name {
			r.keys[i].epoch = max(r.keys[i].epoch, k.epoch)
			return
		}
	}
	r.keys = append(r.keys, k)
}

func (r *crashRun) setDown(id string, down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down[id] = down
}

func (r *crashRun) isDown(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.down[id]
}

func (r *crashRun) createFirstKey(ctx context.Context) {
	r.t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	k, err := r.c.createKey(cctx, r.c.ids[0], cosignerv1.KeyScheme_KEY_SCHEME_FROST_TAPROOT)
	if err != nil {
		r.t.Fatalf("first key: %v", err)
	}
	r.ack(k)
	if r.plan.cmp {
		// A CMP key from the start, so that its presignature pools fill
		// while the run goes on and signs consume from them.
		k, err := r.c.createKey(cctx, r.c.ids[0], cosignerv1.KeyScheme_KEY_SCHEME_CMP_ECDSA_SECP256K1)
		if err != nil {
			r.t.Fatalf("first CMP key: %v", err)
		}
		r.ack(k)
	}
}

// keygenStoreCrash is the point that matters most for keygen, made
// deterministic: a party other than the initiator crashes at the very
// moment it makes its new share durable (its second mutation after a
// restart is the keygen's PutKey, after the audit entry of its acceptance;
// the failpoint kills it before the segment is sent). The key must then not be reported created, since one
// of its shares does not exist; if CreateKey returned it, every party must
// hold it once the crashed one is back.
func (r *crashRun) keygenStoreCrash(ctx context.Context) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	victim := r.c.ids[len(r.c.ids)-1]
	if err := r.c.d.KillEnclave(victim); err != nil {
		r.t.Fatal(err)
	}
	r.c.forget(victim)
	// The joiner's mutations in a keygen: the admin_action audit entry
	// written before it accepts, then the PutKey of its share.
	spec := string(failpoint.KeystoreBeforeReplicate) + "=2"
	if err := r.c.d.RestartEnclaveEnv(ctx, victim, "NITRO_FAILPOINT_CRASH="+spec); err != nil {
		r.t.Fatalf("restarting %s armed: %v%s", victim, err, childLogs(r.c.dir))
	}
	r.mu.Lock()
	r.armed[victim] = spec
	r.mu.Unlock()
	exited, err := r.c.d.EnclaveExited(victim)
	if err != nil {
		r.t.Fatal(err)
	}
	k, createErr := r.c.createKey(ctx, r.c.ids[0], cosignerv1.KeyScheme_KEY_SCHEME_FROST_TAPROOT)
	select {
	case <-exited:
	case <-time.After(time.Minute):
		r.t.Fatalf("%s never reached its failpoint (CreateKey: %v)", victim, createErr)
	}
	r.failpointCrashed(ctx, victim, 0)
	r.calls.Add(1)
	if createErr != nil {
		// ABORTED is the initiator's "not every party confirmed its share
		// is stored"; anything else means the crash came at another
		// moment (the joiner's mutations changed) and this point no
		// longer tests what it says.
		if status.Code(createErr) != codes.Aborted {
			r.t.Errorf("CreateKey failed with %v, not ABORTED: %s did not crash while storing its share", createErr, victim)
		}
		r.t.Logf("CreateKey failed, as it must, when %s crashed storing its share: %v", victim, createErr)
		return
	}
	r.t.Errorf("CreateKey acknowledged key %s although %s crashed before its share was durable", k.short(), victim)
	r.ack(k) // the checks then show where it is missing
}

// work is one client loop: create keys, refresh CMP keys, and sign, each
// call against a cosigner that is up, until ctx ends.
func (r *crashRun) work(ctx context.Context, i int) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(i)))
	for ctx.Err() == nil {
		keys := r.acked()
		from := r.c.ids[rng.IntN(len(r.c.ids))]
		if len(keys) == 0 || r.isDown(from) {
			sleepCtx(ctx, 100*time.Millisecond)
			continue
		}
		switch x := rng.Float64(); {
		case x < 0.12 && len(keys) < r.plan.keys:
			scheme := cosignerv1.KeyScheme_KEY_SCHEME_FROST_TAPROOT
			if r.plan.cmp && rng.IntN(3) == 0 {
				scheme = cosignerv1.KeyScheme_KEY_SCHEME_CMP_ECDSA_SECP256K1
			}
			r.call(ctx, 5*time.Minute, func(ctx context.Context) error {
				k, err := r.c.createKey(ctx, from, scheme)
				if err == nil {
					r.ack(k)
				}
				return err
			})
		case x < 0.16 && r.plan.cmp:
			k := keys[rng.IntN(len(keys))]
			if k.scheme != cosignerv1.KeyScheme_KEY_SCHEME_CMP_ECDSA_SECP256K1 {
				continue
			}
			r.call(ctx, 5*time.Minute, func(ctx context.Context) error {
				k, err := r.c.refreshKey(ctx, from, k)
				if err == nil {
					r.ack(k)
				}
				return err
			})
		default:
			k := keys[rng.IntN(len(keys))]
			r.call(ctx, 3*time.Minute, func(ctx context.Context) error { return r.signOnce(ctx, from, k, "workload") })
		}
	}
}

// call runs one client call and counts its outcome. Errors are expected:
// processes die under it.
func (r *crashRun) call(ctx context.Context, limit time.Duration, fn func(context.Context) error) {
	cctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	err := fn(cctx)
	if ctx.Err() != nil {
		return
	}
	r.calls.Add(1)
	if err != nil {
		r.errors.Add(1)
	}
}

// signOnce signs with k from cosigner from; a signature that comes back
// must verify. It returns an error unless the sign succeeded.
func (r *crashRun) signOnce(ctx context.Context, from string, k key, note string) error {
	s, err := r.c.sign(ctx, from, k, note)
	if err != nil {
		if status.Code(err) == codes.Unavailable {
			r.c.forget(from)
		}
		return err
	}
	if !s.succeeded() {
		r.refused.Add(1)
		return fmt.Errorf("sign %s: %v (%v, refused by %q)", s.op.GetName(), s.op.GetState(), s.op.GetFailureReason(), s.op.GetRefusedBy())
	}
	if err := s.verify(k); err != nil {
		r.t.Errorf("INVALID SIGNATURE returned to a client: key %s, signed via %s by %v: %v", k.short(), from, s.op.GetSigners(), err)
		return err
	}
	r.signed.Add(1)
	return nil
}

// point waits a random moment, then crashes something: an armed enclave
// that reached its failpoint meanwhile, or a process it kills.
func (r *crashRun) point(ctx context.Context, n int) {
	wait := time.Duration(200+r.rng.IntN(2800)) * time.Millisecond
	if id, ok := r.waitArmedExit(ctx, wait); ok {
		r.failpointCrashed(ctx, id, n)
		return
	}
	victim := r.c.ids[r.rng.IntN(len(r.c.ids))]
	// Not the parent of an armed enclave: it could crash at its failpoint
	// while its parent's restart waits for the cosigner to serve.
	if r.rng.Float64() < 0.3 && r.armedSpec(victim) == "" {
		r.killParent(ctx, victim, n)
		return
	}
	r.killEnclave(ctx, victim, n)
}

// waitArmedExit waits up to d for an armed enclave to kill itself.
func (r *crashRun) waitArmedExit(ctx context.Context, d time.Duration) (string, bool) {
	deadline := time.After(d)
	for {
		for _, id := range r.c.ids {
			if r.armedSpec(id) == "" {
				continue
			}
			if ch, err := r.c.d.EnclaveExited(id); err == nil && closed(ch) {
				return id, true
			}
		}
		select {
		case <-deadline:
			return "", false
		case <-ctx.Done():
			return "", false
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (r *crashRun) armedSpec(id string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.armed[id]
}

func (r *crashRun) count(kind string) {
	r.crashed++
	if r.kinds == nil {
		r.kinds = map[string]int{}
	}
	r.kinds[kind]++
}

// kindList renders the crash points by kind, most frequent first.
func (r *crashRun) kindList() string {
	kinds := slices.Collect(maps.Keys(r.kinds))
	slices.SortFunc(kinds, func(a, b string) int { return cmp.Or(r.kinds[b]-r.kinds[a], strings.Compare(a, b)) })
	var parts []string
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s %d", k, r.kinds[k]))
	}
	return strings.Join(parts, ", ")
}

func (r *crashRun) killEnclave(ctx context.Context, id string, n int) {
	r.t.Helper()
	r.setDown(id, true)
	if err := r.c.d.KillEnclave(id); err != nil {
		if ch, _ := r.c.d.EnclaveExited(id); ch != nil && closed(ch) && r.armedSpec(id) != "" {
			r.failpointCrashed(ctx, id, n) // it beat us to it
			return
		}
		r.t.Fatalf("point %d: %v", n, err)
	}
	r.c.forget(id)
	r.count("kill -9 enclave")
	r.t.Logf("point %d: kill -9 %s's enclave", n, id)
	r.restartEnclave(ctx, id)
}

func (r *crashRun) killParent(ctx context.Context, id string, n int) {
	r.t.Helper()
	r.setDown(id, true)
	if err := r.c.d.KillParent(id); err != nil {
		r.t.Fatalf("point %d: %v", n, err)
	}
	r.c.forget(id)
	r.count("kill -9 parent")
	r.t.Logf("point %d: kill -9 %s's parent", n, id)
	rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := r.c.d.RestartParent(rctx, id); err != nil {
		r.t.Fatalf("restarting %s's parent: %v%s", id, err, childLogs(r.c.dir))
	}
	r.setDown(id, false)
}

// failpointCrashed handles an armed enclave that killed itself.
func (r *crashRun) failpointCrashed(ctx context.Context, id string, n int) {
	r.t.Helper()
	r.setDown(id, true)
	r.c.forget(id)
	spec := r.armedSpec(id)
	r.count("failpoint " + failpointName(spec))
	r.t.Logf("point %d: %s's enclave crashed at failpoint %s", n, id, spec) // n < 0: between points
	if err := r.c.d.ReapEnclave(id); err != nil {
		r.t.Fatal(err)
	}
	r.restartEnclave(ctx, id)
}

func failpointName(spec string) string {
	for i := range spec {
		if spec[i] == '=' {
			return spec[:i]
		}
	}
	return spec
}

// crashPoints are the failpoints an armed enclave may crash at, with the
// most hits to draw from: every mutation passes the first five; the
// compaction points only every SnapshotSegments mutations, so they are
// armed at their first hit.
var crashPoints = []struct {
	name failpoint.Name
	hits int
}{
	{failpoint.KeystoreBeforeReplicate, 8},
	{failpoint.ReplicaBeforeSegmentPut, 8},
	{failpoint.ReplicaAfterSegmentPut, 8},
	{failpoint.KeystoreAfterReplicateBeforeCommit, 8},
	{failpoint.KeystoreAfterCommitBeforeAck, 8},
	{failpoint.ReplicaBeforeManifestSwap, 1},
	{failpoint.ReplicaAfterManifestSwap, 1},
	{failpoint.ReplicaBeforeOldSegmentDelete, 1},
}

// restartEnclave starts id's enclave again, often armed with a failpoint.
// An enclave that crashes at its failpoint while it boots is a failpoint
// point too, and is started again unarmed.
func (r *crashRun) restartEnclave(ctx context.Context, id string) {
	r.t.Helper()
	rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	spec := ""
	if r.rng.Float64() < r.plan.arm {
		fp := crashPoints[r.rng.IntN(len(crashPoints))]
		spec = fmt.Sprintf("%s=%d", fp.name, 1+r.rng.IntN(fp.hits))
	}
	err := r.c.d.RestartEnclaveEnv(rctx, id, "NITRO_FAILPOINT_CRASH="+spec)
	if err != nil && spec != "" {
		if ch, _ := r.c.d.EnclaveExited(id); ch != nil && closed(ch) {
			r.count("failpoint " + failpointName(spec) + " (boot)")
			r.t.Logf("%s's enclave crashed at failpoint %s while booting", id, spec)
			if err := r.c.d.ReapEnclave(id); err != nil {
				r.t.Fatal(err)
			}
			spec = ""
			err = r.c.d.RestartEnclaveEnv(rctx, id)
		}
	}
	if err != nil {
		r.t.Fatalf("restarting %s's enclave: %v%s", id, err, childLogs(r.c.dir))
	}
	r.mu.Lock()
	r.armed[id] = spec
	r.mu.Unlock()
	if spec != "" {
		r.t.Logf("%s's enclave restarted, armed: %s", id, spec)
	}
	r.setDown(id, false)
}

// heal restarts enclaves that crashed at their failpoint outside a point
// (while another point was handled, or during a check); each counts.
func (r *crashRun) heal(ctx context.Context) {
	for _, id := range r.c.ids {
		if r.armedSpec(id) == "" {
			continue
		}
		if ch, err := r.c.d.EnclaveExited(id); err == nil && closed(ch) {
			r.failpointCrashed(ctx, id, -1)
		}
	}
}

// disarm restarts every armed enclave unarmed (not a crash point: the
// run is over), so that the final check runs undisturbed. An enclave that
// reaches its failpoint before it is killed is a crash point like any
// other.
func (r *crashRun) disarm(ctx context.Context) {
	r.heal(ctx)
	for _, id := range r.c.ids {
		spec := r.armedSpec(id)
		if spec == "" {
			continue
		}
		if err := r.c.d.KillEnclave(id); err != nil {
			ch, _ := r.c.d.EnclaveExited(id)
			if ch == nil || !closed(ch) {
				r.t.Fatal(err)
			}
			r.count("failpoint " + failpointName(spec))
			r.t.Logf("%s's enclave crashed at failpoint %s while being disarmed", id, spec)
			if err := r.c.d.ReapEnclave(id); err != nil {
				r.t.Fatal(err)
			}
		}
		r.c.forget(id)
		rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		err := r.c.d.RestartEnclaveEnv(rctx, id)
		cancel()
		if err != nil {
			r.t.Fatalf("restarting %s's enclave: %v", id, err)
		}
		r.mu.Lock()
		r.armed[id] = ""
		r.mu.Unlock()
	}
}

// check verifies the invariants after a point: every acknowledged key is
// on every party at its acknowledged epoch (or a later one), and keys
// sign: the newest and one at random, or every key when final.
func (r *crashRun) check(ctx context.Context, final bool) {
	r.t.Helper()
	keys := r.acked()
	for _, k := range keys {
		for _, id := range k.parties {
			r.checkPresent(ctx, id, k)
		}
	}
	if len(keys) == 0 {
		return
	}
	toSign := []key{keys[len(keys)-1], keys[r.rng.IntN(len(keys))]}
	if final {
		toSign = keys
	}
	for i, k := range toSign {
		r.checkSigns(ctx, r.c.ids[i%len(r.c.ids)], k)
	}
}

// checkPresent waits up to a minute for party id to hold k at k's epoch:
// parties other than the initiator store a new key a moment after it
// returns, and processes may be restarting.
func (r *crashRun) checkPresent(ctx context.Context, id string, k key) {
	r.t.Helper()
	deadline := time.Now().Add(time.Minute)
	var last error
	for time.Now().Before(deadline) {
		r.heal(ctx)
		got, err := r.c.getKey(ctx, id, k.name)
		switch {
		case err == nil && got.GetEpoch() >= k.epoch && string(got.GetPublicKey()) == string(k.pub):
			return
		case err == nil:
			last = fmt.Errorf("epoch %d, public key %x", got.GetEpoch(), got.GetPublicKey())
		default:
			last = err
			if status.Code(err) == codes.Unavailable {
				r.c.forget(id)
			}
		}
		sleepCtx(ctx, 250*time.Millisecond)
	}
	r.t.Errorf("acknowledged key %s (epoch %d) is not on %s: %v", k.short(), k.epoch, id, last)
}

// checkSigns requires k to sign, from cosigner from (or the next ones), in
// at most three attempts: a process may crash at its failpoint meanwhile.
func (r *crashRun) checkSigns(ctx context.Context, from string, k key) {
	r.t.Helper()
	var errs []error
	for attempt := range 3 {
		r.heal(ctx)
		id := r.c.ids[(slices.Index(r.c.ids, from)+attempt)%len(r.c.ids)]
		cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		err := r.signOnce(cctx, id, k, "check")
		cancel()
		if err == nil {
			return
		}
		errs = append(errs, fmt.Errorf("from %s: %w", id, err))
	}
	r.t.Errorf("acknowledged key %s does not sign: %v", k.short(), errors.Join(errs...))
}

var consumedRE = regexp.MustCompile(`msg="presignature consumed".* presignature=([0-9a-f]{64}) session=([0-9a-f]{64})`)

// presignaturesReused reads every presignature every cosigner's enclave
// consumed over the whole run (the engine logs each consumption at INFO,
// with the presignature's ID and the sign session) and counts the reuses:
// a presignature consumed twice by one cosigner, or in two sign sessions
// (by whichever cosigners). There must be none. It also returns how many
// consumptions it read; with CMP keys, none means the check proved
// nothing, and fails the test.
func (c *cluster) presignaturesReused(t *testing.T, cmp bool) (reuses, total int) {
	t.Helper()
	session := map[string]string{} // presignature ID: the sign session it was first consumed in
	type use struct{ by, presig string }
	seen := map[use]bool{}
	for _, id := range c.ids {
		for _, m := range consumedRE.FindAllStringSubmatch(c.enclaveLogs(id), -1) {
			total++
			p, s := m[1], m[2]
			switch first, ok := session[p]; {
			case seen[use{id, p}]:
				reuses++
				t.Errorf("PRESIGNATURE REUSED: %s consumed presignature %s twice", id, p)
			case ok && first != s:
				reuses++
				t.Errorf("PRESIGNATURE REUSED: presignature %s consumed in sign sessions %s and %s (by %s)", p, first, s, id)
			case !ok:
				session[p] = s
			}
			seen[use{id, p}] = true
		}
	}
	t.Logf("presignatures consumed: %d (%d distinct), reused: %d", total, len(session), reuses)
	if cmp && total == 0 {
		t.Errorf("no presignature was consumed: the check for reuse proved nothing")
	}
	return reuses, total
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
