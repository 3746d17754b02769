package metrics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/approval"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/link"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc/mpctest"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/peer"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// gather returns the registry's families by name.
func gather(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range fams {
		out[mf.GetName()] = mf
	}
	return out
}

// series returns the series of name whose labels include want.
func series(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	t.Helper()
	for _, m := range fams[name].GetMetric() {
		ok := true
		for k, v := range want {
			found := false
			for _, l := range m.GetLabel() {
				found = found || l.GetName() == k && l.GetValue() == v
			}
			ok = ok && found
		}
		if ok {
			return m
		}
	}
	t.Fatalf("no %s%v", name, want)
	return nil
}

func val(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetHistogram() != nil:
		return float64(m.GetHistogram().GetSampleCount())
	case m.GetSummary() != nil:
		return float64(m.GetSummary().GetSampleCount())
	}
	return m.GetUntyped().GetValue()
}

// TestSessionsAndRoundsOfRealEngines runs a FROST keygen among three
// engines wired as the enclave wires them, and reads each one's session
// outcome and round latencies.
func TestSessionsAndRoundsOfRealEngines(t *testing.T) {
	parties := []mpc.PartyID{"alice", "bob", "carol"}
	net := mpctest.NewNetwork(parties...)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		net.Close()
	})
	ms := map[mpc.PartyID]*Metrics{}
	engines := map[mpc.PartyID]*mpc.Engine{}
	for _, p := range parties {
		m := New(nil)
		e, err := mpc.New(mpc.Config{Self: p, Transport: m.Transport(net.Transport(p)), Store: mpctest.NewMemStore(),
			OnSessionEnd: m.SessionEnded})
		if err != nil {
			t.Fatal(err)
		}
		ms[p], engines[p] = m, e
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.Run(ctx)
		}()
	}
	id, err := mpc.NewSessionID()
	if err != nil {
		t.Fatal(err)
	}
	spec := mpc.SessionSpec{ID: id, Parties: parties, Deadline: time.Now().Add(time.Minute)}
	errs := make(chan error, len(parties))
	for _, p := range parties {
		go func() {
			_, err := engines[p].FROSTKeygen(ctx, spec, 2)
			errs <- err
		}()
	}
	for range parties {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range parties {
		fams := gather(t, ms[p])
		if n := val(series(t, fams, ns+"mpc_session_duration_seconds", map[string]string{"op": "frost-keygen", "outcome": "ok"})); n != 1 {
			t.Errorf("%s: %v frost-keygen sessions", p, n)
		}
		rounds := fams[ns+"mpc_round_duration_seconds"].GetMetric()
		if len(rounds) == 0 {
			t.Errorf("%s: no round latencies", p)
		}
		for _, r := range rounds {
			if val(r) != 1 {
				t.Errorf("%s: round %v observed %v times", p, r.GetLabel(), val(r))
			}
		}
		if n := ms[p].tracker.len(); n != 0 {
			t.Errorf("%s: %d sessions still tracked", p, n)
		}
	}
}

func TestRoundTracker(t *testing.T) {
	tr := newRoundTracker()
	var s1, s2 mpc.SessionID
	s1[0], s2[0] = 1, 2
	t0 := time.Unix(1000, 0)
	tr.sent(s1, 1, t0)
	tr.sent(s1, 1, t0.Add(time.Millisecond)) // another recipient of round 1
	tr.sent(s1, 2, t0.Add(100*time.Millisecond))
	tr.sent(s1, 2, t0.Add(101*time.Millisecond))
	tr.sent(s1, 1, t0.Add(150*time.Millisecond)) // an older round is ignored
	tr.sent(s1, 3, t0.Add(400*time.Millisecond))
	tr.sent(s2, 1, t0)
	got := tr.finish(s1)
	want := []roundTime{{2, 100 * time.Millisecond}, {3, 300 * time.Millisecond}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rounds %v, want %v", got, want)
	}
	if tr.finish(s1) != nil || tr.len() != 1 {
		t.Fatal("a finished session is still tracked")
	}
	for i := range maxTracked + 10 {
		var s mpc.SessionID
		s[1], s[2] = byte(i), byte(i>>8)
		tr.sent(s, 1, t0)
	}
	if n := tr.len(); n != maxTracked {
		t.Fatalf("%d sessions tracked, want the cap %d", n, maxTracked)
	}
}

func TestSessionOutcome(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{fmt.Errorf("x: %w", &mpc.AbortError{Culprits: []mpc.PartyID{"bob"}}), "aborted"},
		{&mpc.PeerAbortError{Reporter: "bob"}, "peer_aborted"},
		{fmt.Errorf("mpc: sign session: %w", mpc.ErrDeadline), "deadline"},
		{context.Canceled, "canceled"},
		{fmt.Errorf("%w: disk", mpc.ErrStore), "store_failed"},
		{errors.New("something"), "error"},
	} {
		if got := sessionOutcome(tc.err); got != tc.want {
			t.Errorf("sessionOutcome(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

type fakeApprover struct {
	d   approval.Decision
	err error
}

func (f fakeApprover) Ask(context.Context, approval.Request) (approval.Decision, error) {
	return f.d, f.err
}

func TestApprover(t *testing.T) {
	m := New(nil)
	for _, tc := range []struct {
		a    fakeApprover
		want string
	}{
		{fakeApprover{d: approval.Decision{Verdict: approval.Approve}}, "approve"},
		{fakeApprover{d: approval.Decision{Verdict: approval.Reject, Reason: "limit"}}, "reject"},
		{fakeApprover{d: approval.Decision{Verdict: approval.Retry}}, "retry"},
		{fakeApprover{err: fmt.Errorf("%w: %w", approval.ErrTimeout, context.DeadlineExceeded)}, "timeout"},
		{fakeApprover{err: fmt.Errorf("%w: refused", approval.ErrTransport)}, "transport"},
		{fakeApprover{err: approval.ErrBadSignature}, "bad_signature"},
		{fakeApprover{err: approval.ErrExpired}, "expired"},
		{fakeApprover{err: fmt.Errorf("%w: aud", approval.ErrMismatch)}, "mismatch"},
		{fakeApprover{err: fmt.Errorf("%w: body", approval.ErrUnexpected)}, "unexpected"},
		{fakeApprover{err: errors.New("other")}, "error"},
	} {
		d, err := m.Approver(tc.a).Ask(context.Background(), approval.Request{})
		if d != tc.a.d || err != tc.a.err {
			t.Fatalf("the wrapper changed the answer: %v %v", d, err)
		}
		fams := gather(t, m)
		if n := val(series(t, fams, ns+"approval_duration_seconds", map[string]string{"outcome": tc.want})); n != 1 {
			t.Errorf("%s: %v observations", tc.want, n)
		}
	}
}

func TestAttest(t *testing.T) {
	m := New(nil)
	fail := true
	attest := m.Attest(func(context.Context) ([]byte, error) {
		if fail {
			return nil, errors.New("nsm busy")
		}
		return []byte("doc"), nil
	})
	if _, err := attest(context.Background()); err == nil {
		t.Fatal("the failure was lost")
	}
	fams := gather(t, m)
	if v := val(fams[ns+"attestation_last_success_timestamp_seconds"].GetMetric()[0]); v != 0 {
		t.Fatalf("timestamp %v before any success", v)
	}
	fail = false
	before := float64(time.Now().Unix())
	if doc, err := attest(context.Background()); err != nil || string(doc) != "doc" {
		t.Fatalf("attest = %q, %v", doc, err)
	}
	fams = gather(t, m)
	if val(series(t, fams, ns+"attestations_total", map[string]string{"result": "failed"})) != 1 ||
		val(series(t, fams, ns+"attestations_total", map[string]string{"result": "ok"})) != 1 {
		t.Fatal("attestations not counted by result")
	}
	if v := val(fams[ns+"attestation_last_success_timestamp_seconds"].GetMetric()[0]); v < before {
		t.Fatalf("timestamp %v, want at least %v", v, before)
	}
}

func TestFrameAccepted(t *testing.T) {
	m := New(nil)
	m.FrameAccepted("bob", time.Now().Add(time.Hour)) // the sender's clock runs ahead
	m.FrameAccepted("bob", time.Now().Add(-2*time.Second))
	h := series(t, gather(t, m), ns+"frame_transit_seconds", map[string]string{"from": "bob"}).GetHistogram()
	if h.GetSampleCount() != 2 || h.GetSampleSum() < 2 || h.GetSampleSum() > 3 || h.GetBucket()[0].GetCumulativeCount() != 1 {
		t.Fatalf("transit histogram: %v", h)
	}
}

func pool(i int) mpc.PoolStats {
	var k mpc.KeyID
	k[0], k[1] = byte(i>>8), byte(i)
	return mpc.PoolStats{Key: k, Signers: []mpc.PartyID{"carol", "alice"}, Depth: 2, Target: 4, LowWater: 1,
		Made: 10, Consumed: 8, RefillPerMinute: 0.5}
}

// TestWatch reads every snapshot source and checks that every series is
// under the namespace the parent relays.
func TestWatch(t *testing.T) {
	m := New(map[string]string{"nsm": "simulator"})
	pools := []mpc.PoolStats{pool(1)}
	dropped := map[wire.DropReason]uint64{}
	for i, r := range wire.DropReasons() {
		dropped[r] = uint64(i)
	}
	err := m.Watch(Sources{
		Pools: func() []mpc.PoolStats { return pools },
		Peer: func() peer.Stats {
			return peer.Stats{Sent: 5, QueueFull: 2, Refreshed: 3, Wire: wire.Stats{Accepted: 9, Dropped: dropped}}
		},
		Link: func() link.Stats { return link.Stats{Connected: true, Connects: 1, Unacked: 4} },
		Replication: func() keystore.ReplicationStats {
			return keystore.ReplicationStats{Replicated: 3, Failed: 1, Duration: 2 * time.Second,
				LastOK: time.Unix(1700000000, 0), Halted: true}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	m.SessionEnded(mpc.SessionEnd{Op: mpc.OpSign, Took: time.Second})
	m.FrameAccepted("bob", time.Now())
	fams := gather(t, m)
	for name := range fams {
		if !strings.HasPrefix(name, ns) {
			t.Errorf("%s is outside %s", name, ns)
		}
	}
	if n := len(fams[ns+"frames_dropped_total"].GetMetric()); n != len(wire.DropReasons())+1 {
		t.Errorf("frames_dropped_total has %d reasons", n)
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"frames_dropped_total", map[string]string{"reason": "queue_full"}, 2},
		{"frames_dropped_total", map[string]string{"reason": wire.DropReplay.String()}, float64(dropped[wire.DropReplay])},
		{"frames_accepted_total", nil, 9},
		{"attestation_refreshes_total", nil, 3},
		{"link_up", nil, 1},
		{"link_unacked_frames", nil, 4},
		{"presign_pools", nil, 1},
		{"presign_pool_depth", map[string]string{"key": pools[0].Key.String(), "signers": "alice,carol"}, 2},
		{"presign_pool_refill_per_minute", nil, 0.5},
		{"presign_pool_consumed_total", nil, 8},
		{"replication_records_total", nil, 3},
		{"replication_failures_total", nil, 1},
		{"replication_duration_seconds", nil, 4},
		{"replication_last_success_timestamp_seconds", nil, 1700000000},
		{"keystore_halted", nil, 1},
		{"build_info", map[string]string{"nsm": "simulator"}, 1},
	}
	for _, c := range checks {
		if got := val(series(t, fams, ns+c.name, c.labels)); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if sum := series(t, fams, ns+"replication_duration_seconds", nil).GetSummary().GetSampleSum(); sum != 2 {
		t.Errorf("replication duration sum %v, want 2", sum)
	}
}

// TestManyPools: past maxPoolSeries, pools are summed into one row.
func TestManyPools(t *testing.T) {
	m := New(nil)
	var pools []mpc.PoolStats
	for i := range maxPoolSeries + 6 {
		pools = append(pools, pool(i))
	}
	if err := m.Watch(Sources{Pools: func() []mpc.PoolStats { return pools }}); err != nil {
		t.Fatal(err)
	}
	fams := gather(t, m)
	if n := len(fams[ns+"presign_pool_depth"].GetMetric()); n != maxPoolSeries+1 {
		t.Fatalf("%d depth series, want %d", n, maxPoolSeries+1)
	}
	if v := val(series(t, fams, ns+"presign_pool_depth", map[string]string{"key": other})); v != 12 {
		t.Fatalf("depth of the other pools %v, want 12", v)
	}
	if v := val(fams[ns+"presign_pools"].GetMetric()[0]); v != float64(len(pools)) {
		t.Fatalf("presign_pools = %v", v)
	}
}
