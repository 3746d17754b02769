//go:build !release

package sealed

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/kms"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/replica"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
)

// mutateAll writes one of every kind of change.
func mutateAll(t testing.TB, s *keystore.Store) {
	t.Helper()
	ctx := context.Background()
	putKeys(t, s, 0, 5)
	if err := s.PutKey(ctx, testRecord(2, 1)); err != nil {
		t.Fatal(err)
	}
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutIdentity(ctx, keystore.Identity{PrivateKey: secret.New(priv), PublicKey: priv.Public().(ed25519.PublicKey)}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPolicy(ctx, 1, []byte(`{"chains":[1]}`)); err != nil {
		t.Fatal(err)
	}
	h := bytes.Repeat([]byte{1}, 32)
	if err := s.AppendAudit(ctx, keystore.AuditEntry{Seq: 1, Entry: []byte("key created"), Hash: h}); err != nil {
		t.Fatal(err)
	}
}

// TestRestartRestoresIdenticalState: init, mutate, then the enclave
// restarts (the process and its tmpfs are gone; a new process with the same
// PCRs boots in a new directory) and opens the same state.
func TestRestartRestoresIdenticalState(t *testing.T) {
	e := newEnv(t)
	first := e.newProc(pcrGood)
	st := first.init()
	mutateAll(t, st.Store)
	want := state(t, st.Store)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	second := e.newProc(pcrGood)
	reopened := second.open()
	if got := state(t, reopened.Store); got != want {
		t.Fatalf("state after restart:\n%s\nwant\n%s", got, want)
	}
	if reopened.Store.Dir() == st.Store.Dir() {
		t.Fatal("the restart reused the directory")
	}
	putKeys(t, reopened.Store, 10, 12)
	want = state(t, reopened.Store)
	third := e.newProc(pcrGood).open()
	if got := state(t, third.Store); got != want {
		t.Fatalf("state after second restart:\n%s\nwant\n%s", got, want)
	}
}

func TestInitRefusesExistingState(t *testing.T) {
	e := newEnv(t)
	e.newProc(pcrGood).init()
	_, err := Init(context.Background(), e.newProc(pcrGood).cfg)
	if !errors.Is(err, ErrExists) {
		t.Fatalf("second Init: %v, want ErrExists", err)
	}
	for _, want := range []string{"s3://" + testBucket + "/" + testPrefix, "never started over"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestConcurrentInitsOneWins: two initialisers at once; exactly one gets a
// state, and the state opens.
func TestConcurrentInitsOneWins(t *testing.T) {
	e := newEnv(t)
	procs := []*proc{e.newProc(pcrGood), e.newProc(pcrGood)}
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() {
			st, err := Init(context.Background(), p.cfg)
			if err == nil {
				st.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrExists):
			t.Errorf("losing Init: %v, want ErrExists", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d initialisers won: %v", won, errs)
	}
	e.newProc(pcrGood).open()
}

func TestOpenWithoutState(t *testing.T) {
	e := newEnv(t)
	_, err := Open(context.Background(), e.newProc(pcrGood).cfg)
	if !errors.Is(err, ErrNoState) {
		t.Fatalf("Open: %v, want ErrNoState", err)
	}
	want := `no sealed state for cosigner "alice" in s3://cosigner-state/cosigners/alice/; start with --init for a new cosigner`
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q\ndoes not say %q", err, want)
	}
}

// TestIncompleteInit: init stores the wrapped key, then S3 refuses the
// replicated state. Open then says the init did not finish, and Init
// refuses to go over it; neither starts empty.
func TestIncompleteInit(t *testing.T) {
	e := newEnv(t)
	e.s3.setRule(func(req *http.Request) fault {
		if req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/state/") {
			return serverError
		}
		return pass
	})
	_, err := Init(context.Background(), e.newProc(pcrGood).cfg)
	if err == nil || !strings.Contains(err.Error(), "init did not finish") {
		t.Fatalf("Init with state uploads failing: %v", err)
	}
	e.s3.setRule(nil)
	_, err = Open(context.Background(), e.newProc(pcrGood).cfg)
	if !errors.Is(err, ErrNoState) || !strings.Contains(err.Error(), "did not finish") {
		t.Fatalf("Open after incomplete init: %v", err)
	}
	if _, err := Init(context.Background(), e.newProc(pcrGood).cfg); !errors.Is(err, ErrExists) {
		t.Fatalf("Init after incomplete init: %v, want ErrExists", err)
	}
}

// TestMissingWrappedKey: the replicated state is there but its wrapped
// key is gone. That is not "no state": Open refuses with ErrCorrupt and
// Init refuses too.
func TestMissingWrappedKey(t *testing.T) {
	e := newEnv(t)
	e.newProc(pcrGood).init()
	e.deleteObject(testPrefix + wrappedKeyName)
	_, err := Open(context.Background(), e.newProc(pcrGood).cfg)
	if !errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNoState) || !strings.Contains(err.Error(), "no wrapped data key") {
		t.Fatalf("Open without the wrapped key: %v", err)
	}
	if _, err := Init(context.Background(), e.newProc(pcrGood).cfg); !errors.Is(err, ErrExists) {
		t.Fatalf("Init over state without a wrapped key: %v, want ErrExists", err)
	}
}

// TestOtherMeasurementsNotAllowed: an enclave whose PCR0 the key policy
// does not name can neither open the state nor init, says why, and is not
// retried.
func TestOtherMeasurementsNotAllowed(t *testing.T) {
	e := newEnv(t)
	e.newProc(pcrGood).init()
	before := e.kmsCalls.Load()
	_, err := Open(context.Background(), e.newProc(pcrOther).cfg)
	if !errors.Is(err, ErrNotAllowed) || !errors.Is(err, kms.ErrNotAllowed) {
		t.Fatalf("Open with other PCRs: %v, want ErrNotAllowed", err)
	}
	for _, want := range []string{"PCR0 " + fmt.Sprintf("%x", pcrOther), "key policy", "does not allow this enclave's measurements"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if n := e.kmsCalls.Load() - before; n != 1 {
		t.Errorf("%d KMS calls, want 1 (ErrNotAllowed is not retried)", n)
	}

	fresh := newEnv(t)
	if _, err := Init(context.Background(), fresh.newProc(pcrOther).cfg); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("Init with other PCRs: %v, want ErrNotAllowed", err)
	}
	if objs := fresh.objects(); len(objs) != 0 {
		t.Fatalf("a refused Init left %d objects", len(objs))
	}
}

func TestWrappedKeyChecked(t *testing.T) {
	e := newEnv(t)
	e.newProc(pcrGood).init()
	stored := e.getObject(testPrefix + wrappedKeyName)
	t.Run("another KMS key configured", func(t *testing.T) {
		p := e.newProc(pcrGood)
		p.cfg.KMSKeyID = e.createKey(attestationPolicy(pcrGood, testCosigner))
		if _, err := Open(context.Background(), p.cfg); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), p.cfg.KMSKeyID) {
			t.Fatalf("Open: %v, want ErrConfig naming the configured key", err)
		}
	})
	t.Run("header names another cosigner", func(t *testing.T) {
		w, _ := decodeWrapped(stored)
		w.CosignerID = "mallory"
		b, _ := w.encode()
		e.putObject(testPrefix+wrappedKeyName, b)
		defer e.putObject(testPrefix+wrappedKeyName, stored)
		_, err := Open(context.Background(), e.newProc(pcrGood).cfg)
		if !errors.Is(err, ErrConfig) || strings.Contains(err.Error(), "mallory") {
			t.Fatalf("Open: %v, want ErrConfig not echoing the stored ID", err)
		}
	})
	t.Run("blob altered", func(t *testing.T) {
		w, _ := decodeWrapped(stored)
		w.Blob[len(w.Blob)-1] ^= 1
		b, _ := w.encode()
		e.putObject(testPrefix+wrappedKeyName, b)
		defer e.putObject(testPrefix+wrappedKeyName, stored)
		if _, err := Open(context.Background(), e.newProc(pcrGood).cfg); !errors.Is(err, kms.ErrInvalidWrappedKey) {
			t.Fatalf("Open: %v, want kms.ErrInvalidWrappedKey", err)
		}
	})
	t.Run("not a wrapped key object", func(t *testing.T) {
		e.putObject(testPrefix+wrappedKeyName, []byte("hello"))
		defer e.putObject(testPrefix+wrappedKeyName, stored)
		if _, err := Open(context.Background(), e.newProc(pcrGood).cfg); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open: %v, want ErrCorrupt", err)
		}
	})
	e.newProc(pcrGood).open()
}

// retries counts the "retrying" log lines of step.
func retries(logs, step string) int {
	n := 0
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "attempt failed; retrying") && strings.Contains(line, step) {
			n++
		}
	}
	return n
}

// TestOpenRetriesS3: S3 unreachable for a while at boot: Open retries with
// backoff, logging each attempt, and succeeds once S3 is back; S3 down for
// longer than the budget gives ErrUnavailable.
func TestOpenRetriesS3(t *testing.T) {
	e := newEnv(t)
	st := e.newProc(pcrGood).init()
	putKeys(t, st.Store, 0, 3)
	want := state(t, st.Store)

	var mu sync.Mutex
	failures := 6 // the SDK tries each call 3 times: 2 attempts of Open's first step fail
	e.s3.setRule(func(*http.Request) fault {
		mu.Lock()
		defer mu.Unlock()
		if failures > 0 {
			failures--
			return failBefore
		}
		return pass
	})
	p := e.newProc(pcrGood)
	p.cfg.Retry = Retry{Initial: 5 * time.Millisecond, Budget: 5 * time.Second}
	if got := state(t, p.open().Store); got != want {
		t.Fatalf("state:\n%s\nwant\n%s", got, want)
	}
	if n := retries(e.logs.String(), "fetching the wrapped key"); n != 2 {
		t.Errorf("%d retries logged, want 2", n)
	}

	e.s3.setRule(allRequests(failBefore))
	start := time.Now()
	_, err := Open(context.Background(), e.newProc(pcrGood).cfg)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, errS3) || !strings.Contains(err.Error(), "fetching the wrapped key") {
		t.Fatalf("Open with S3 down: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("gave up after %v, budget 300ms", d)
	}
}

func TestOpenRetriesKMS(t *testing.T) {
	e := newEnv(t)
	e.newProc(pcrGood).init()
	e.kmsFailures.Store(2)
	p := e.newProc(pcrGood)
	p.cfg.Retry = Retry{Initial: 5 * time.Millisecond, Budget: 10 * time.Second} // an attempt makes an RSA key
	p.open()
	if n := retries(e.logs.String(), "unwrapping the data key"); n != 2 {
		t.Errorf("%d retries logged, want 2", n)
	}
	e.kmsFailures.Store(-1)
	_, err := Open(context.Background(), e.newProc(pcrGood).cfg)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, kms.ErrUnavailable) {
		t.Fatalf("Open with KMS down: %v, want ErrUnavailable", err)
	}
}

// TestUploadFaultsNotAcknowledged: while S3 fails or hangs, a mutation
// fails and changes nothing; the caller retries it once S3 is back; a
// restart finds exactly the acknowledged mutations.
func TestUploadFaultsNotAcknowledged(t *testing.T) {
	for name, f := range map[string]fault{"connection refused": failBefore, "503": serverError, "timeout": hang} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			st := e.newProc(pcrGood).init()
			putKeys(t, st.Store, 0, 3)
			e.s3.setRule(segmentPuts(f))
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			if err := st.Store.PutKey(ctx, testRecord(1, 1)); !errors.Is(err, replica.ErrUnavailable) {
				t.Fatalf("PutKey with S3 failing: %v, want replica.ErrUnavailable", err)
			}
			if got, err := st.Store.GetKey(context.Background(), keyID(1)); err != nil || got.Epoch != 0 {
				t.Fatalf("after the failed mutation: epoch %d, %v", got.Epoch, err)
			}
			e.s3.setRule(nil)
			if err := st.Store.PutKey(context.Background(), testRecord(1, 1)); err != nil {
				t.Fatalf("retried PutKey: %v", err)
			}
			putKeys(t, st.Store, 3, 4)
			want := state(t, st.Store)
			if got := state(t, e.newProc(pcrGood).open().Store); got != want {
				t.Fatalf("after restart:\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestLostAnswer: S3 stores a segment but the answer is lost and the SDK
// does not retry. The mutation is reported failed although it is durable;
// the next one finds the slot taken and the store is fenced. After a
// restart the state holds every acknowledged mutation and the ambiguous
// one, and the caller's retry of that one finds it done.
func TestLostAnswer(t *testing.T) {
	e := newEnv(t)
	p := e.newProc(pcrGood)
	p.cfg.S3 = e.s3Client(&procTransport{base: e.s3, dead: &p.dead}, 1)
	st := p.init()
	putKeys(t, st.Store, 0, 2)
	e.s3.setRule(segmentPuts(failAfter))
	if err := st.Store.PutKey(context.Background(), testRecord(2, 0)); !errors.Is(err, replica.ErrUnavailable) {
		t.Fatalf("PutKey with the answer lost: %v", err)
	}
	e.s3.setRule(nil)
	if err := st.Store.PutKey(context.Background(), testRecord(3, 0)); !errors.Is(err, ErrFenced) {
		t.Fatalf("next PutKey: %v, want ErrFenced", err)
	}
	restarted := e.newProc(pcrGood).open()
	if err := restarted.Store.PutKey(context.Background(), testRecord(2, 0)); !errors.Is(err, keystore.ErrStaleEpoch) {
		t.Fatalf("retried PutKey of the ambiguous mutation: %v, want ErrStaleEpoch (already there)", err)
	}
	if _, err := restarted.Store.GetKey(context.Background(), keyID(3)); !errors.Is(err, keystore.ErrKeyNotFound) {
		t.Fatalf("the refused mutation is there: %v", err)
	}
	putKeys(t, restarted.Store, 3, 4)
}

// segmentKey is the S3 key of segment seq of generation gen.
func segmentKey(gen, seq uint64) string {
	return fmt.Sprintf("%s%ssegments/%020d/%020d", testPrefix, stateDir, gen, seq)
}

// TestTamperedStateRefused: the host alters the replicated segments; Open
// refuses, names the position, does not retry, and starts nothing.
func TestTamperedStateRefused(t *testing.T) {
	cases := map[string]struct {
		tamper  func(e *env)
		wantSeq uint64
	}{
		"flipped bit": {func(e *env) {
			b := e.getObject(segmentKey(1, 2))
			b[len(b)-1] ^= 1
			e.putObject(segmentKey(1, 2), b)
		}, 2},
		"reordered": {func(e *env) {
			b2, b3 := e.getObject(segmentKey(1, 2)), e.getObject(segmentKey(1, 3))
			e.putObject(segmentKey(1, 2), b3)
			e.putObject(segmentKey(1, 3), b2)
		}, 2},
		"missing": {func(e *env) { e.deleteObject(segmentKey(1, 3)) }, 3},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			st := e.newProc(pcrGood).init()
			putKeys(t, st.Store, 0, 5)
			tc.tamper(e)
			logsBefore := len(e.logs.String())
			_, err := Open(context.Background(), e.newProc(pcrGood).cfg)
			var ce *replica.CorruptError
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) {
				t.Fatalf("Open: %v, want ErrCorrupt with a *replica.CorruptError", err)
			}
			if ce.Gen != 1 || ce.Seq != tc.wantSeq {
				t.Fatalf("error names generation %d seq %d, want 1/%d", ce.Gen, ce.Seq, tc.wantSeq)
			}
			if want := fmt.Sprintf("seq %d", tc.wantSeq); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %q", err, want)
			}
			if strings.Contains(e.logs.String()[logsBefore:], "retrying") {
				t.Error("a corrupt state was retried")
			}
		})
	}
}

// TestNoPlaintextInS3 scans every object in S3 and every request body sent
// to it (deleted segments and snapshots included), and the logs, for the
// shares, the identity key and the data key.
func TestNoPlaintextInS3(t *testing.T) {
	e := newEnv(t)
	p := e.newProc(pcrGood)
	p.cfg.SnapshotSegments = 3
	st := p.init()
	mutateAll(t, st.Store)
	putKeys(t, st.Store, 5, 9)
	id, err := st.Store.GetIdentity(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.newProc(pcrGood).open()
	checkNoPlaintext(t, e, id.PrivateKey.Reveal())
}

func checkNoPlaintext(t *testing.T, e *env, more ...[]byte) {
	t.Helper()
	key := e.dataKey()
	secrets := append([][]byte{key.Reveal(), share(2, 1)}, more...)
	for i := range 9 {
		secrets = append(secrets, share(i, 0))
	}
	ns := append(needles(secrets...), []byte(shareMarker), []byte("SQLite format 3"))
	objs := e.objects()
	if len(objs) < 4 {
		t.Fatalf("only %d objects", len(objs))
	}
	checkIsDataKey(t, key, objs)
	for name, b := range objs {
		scan(t, name, b, ns)
	}
	puts := e.s3.recorded()
	for _, p := range puts {
		scan(t, "request to "+p.path, p.body, ns)
	}
	scan(t, "logs", []byte(e.logs.String()), ns)
	t.Logf("scanned %d objects, %d request bodies and the logs for %d needles", len(objs), len(puts), len(ns))
}

func TestConfigChecked(t *testing.T) {
	e := newEnv(t)
	good := e.newProc(pcrGood).cfg
	for name, edit := range map[string]func(*Config){
		"no cosigner":    func(c *Config) { c.CosignerID = "" },
		"no KMS":         func(c *Config) { c.KMS = nil },
		"no key ID":      func(c *Config) { c.KMSKeyID = "" },
		"no S3":          func(c *Config) { c.S3 = nil },
		"no bucket":      func(c *Config) { c.Bucket = "" },
		"bad prefix":     func(c *Config) { c.Prefix = "cosigners/alice" },
		"no dir":         func(c *Config) { c.Dir = "" },
		"control in ID":  func(c *Config) { c.CosignerID = "a\nb" },
		"long key ID":    func(c *Config) { c.KMSKeyID = strings.Repeat("k", maxKeyIDSize+1) },
		"no attestation": func(c *Config) { c.Attester = nil },
	} {
		cfg := good
		edit(&cfg)
		if _, err := Open(context.Background(), cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: Open: %v, want ErrConfig", name, err)
		}
		if _, err := Init(context.Background(), cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: Init: %v, want ErrConfig", name, err)
		}
	}
}

// TestLeftoverDatabaseDiscarded: the process restarts inside the same
// enclave, so tmpfs still holds the old database; Open ignores it and
// restores from S3.
func TestLeftoverDatabaseDiscarded(t *testing.T) {
	e := newEnv(t)
	first := e.newProc(pcrGood)
	st := first.init()
	putKeys(t, st.Store, 0, 2)
	want := state(t, st.Store)
	st.Close()
	second := e.newProc(pcrGood)
	second.cfg.Dir = first.cfg.Dir
	if got := state(t, second.open().Store); got != want {
		t.Fatalf("state:\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(e.logs.String(), "discarded a local database file") {
		t.Error("discarding was not logged")
	}
}

// checkIsDataKey proves the scan looks for the right key: a stored
// snapshot opens under it.
func checkIsDataKey(t *testing.T, key secret.Bytes, objs map[string][]byte) {
	t.Helper()
	for name, b := range objs {
		if !strings.Contains(name, "/snapshots/") {
			continue
		}
		s, err := keystore.OpenSnapshot(context.Background(), t.TempDir(), key, bytes.NewReader(b), keystore.Options{})
		if err != nil {
			t.Fatalf("snapshot %s does not open under the data key the scan looks for: %v", name, err)
		}
		s.Close()
		return
	}
	t.Fatal("no snapshot in S3")
}
