//go:build !release

package reliability_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cosignerv1 "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// cmpEnabled says whether the devnet suites also use CMP keys: in the
// long versions without the race detector (CMP keygen and refresh take
// minutes under it), or when NITRO_RELIABILITY_CMP=1.
func cmpEnabled() bool {
	return long && !raceEnabled || os.Getenv("NITRO_RELIABILITY_CMP") == "1"
}

// TestRollback serves a restarting cosigner an older copy of its S3 state
// (every object under its prefix, as the host could), taken before a key
// was created (FROST) and, with CMP, before a key was refreshed. It shows
// what is and is not detectable without a trusted monotonic counter:
//
//   - the cosigner boots the older state (a rollback of the whole prefix is
//     consistent, so the replica cannot tell);
//   - keys created before the copy still sign through it, and no signature
//     is ever made with a stale share;
//   - a key created after the copy (here a 2-of-2 key with a peer) is
//     missing there; a peer that proposes it is refused (unknown_key), the
//     client is told which cosigner refused, and the rolled-back
//     cosigner's log says at WARN that its state may be older than its
//     peers' and where to read what to do;
//   - with CMP, a key refreshed after the copy: the rolled-back cosigner
//     holds the old epoch; a sign it proposes is refused by its peer,
//     which logs that the proposer is behind, and a sign its peer proposes
//     is refused by it, which logs that it is behind; signing goes on with
//     the parties at the newest epoch; no presignature is consumed twice.
func TestRollback(t *testing.T) {
	parallelInShort(t)
	began := time.Now()
	c := startCluster(t, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	const victim = "cosigner-3"
	store := c.s3()
	prefix := victim + "/"

	before := mustKey(t)(c.createKey(ctx, "cosigner-1", cosignerv1.KeyScheme_KEY_SCHEME_FROST_TAPROOT))
	keys := 1
	var cmpKey key
	if cmpEnabled() {
		cmpKey = mustKey(t)(c.createKey(ctx, "cosigner-1", cosignerv1.KeyScheme_KEY_SCHEME_CMP_ECDSA_SECP256K1))
		keys++
		c.waitKeyEverywhere(t, ctx, cmpKey)
		c.signUntilPresigned(t, ctx, "cosigner-1", cmpKey)
	}
	c.waitKeyEverywhere(t, ctx, before)
	old := store.snapshot(t, ctx, prefix)
	t.Logf("copied %d objects of %s's state", len(old), victim)

	// A 2-of-2 key of cosigner-1 and the victim: cosigner-1 proposes its
	// signs to the victim.
	after := mustKey(t)(c.createKeyAmong(ctx, "cosigner-1", cosignerv1.KeyScheme_KEY_SCHEME_FROST_TAPROOT,
		[]string{"cosigner-1", victim}))
	c.waitKeyEverywhere(t, ctx, after)
	keys++
	c.mustSign(t, ctx, "cosigner-1", after)
	if cmpEnabled() {
		cmpKey = mustKey(t)(c.refreshKey(ctx, "cosigner-1", cmpKey))
		c.waitKeyEverywhere(t, ctx, cmpKey)
		c.mustSign(t, ctx, "cosigner-1", cmpKey)
	}

	if err := c.d.KillEnclave(victim); err != nil {
		t.Fatal(err)
	}
	c.forget(victim)
	store.restore(t, ctx, prefix, old)
	if err := c.d.RestartEnclave(ctx, victim); err != nil {
		t.Fatalf("%s did not boot its older state: %v", victim, err)
	}
	t.Logf("%s booted the older copy of its state: a rollback of the whole prefix is not detectable", victim)

	c.mustSign(t, ctx, victim, before) // signers cosigner-3 and cosigner-1
	if _, err := c.getKey(ctx, victim, after.name); status.Code(err) != codes.NotFound {
		t.Fatalf("%s after the rollback: GetKey of a key made after the copy = %v, want NotFound", victim, err)
	}
	// cosigner-1 proposes a sign of the key made after the copy to the
	// victim, which must refuse and say why. That key is lost: its other
	// share alone cannot sign.
	c.wantRefusedBy(t, ctx, "cosigner-1", after, victim)
	c.wantLogged(t, victim, "a peer proposed a key this cosigner does not hold")
	if cmpEnabled() {
		// cosigner-2 down: cosigner-1 proposes to cosigner-2, gets no
		// answer, then to the victim, which holds the older epoch.
		c.withDown(t, ctx, "cosigner-2", func() {
			c.wantRefusedBy(t, ctx, "cosigner-1", cmpKey, victim)
			c.wantLogged(t, victim, "this cosigner holds an older epoch of the key than the proposer")
		})
		// cosigner-3 proposes its stale epoch to cosigner-1, which refuses.
		c.wantRefusedBy(t, ctx, victim, cmpKey, "cosigner-1")
		c.wantLogged(t, "cosigner-1", "the proposer names an older epoch of the key")
		c.mustSign(t, ctx, "cosigner-1", cmpKey) // the parties at the newest epoch go on
	}
	c.mustSign(t, ctx, "cosigner-2", before)
	reuses, _ := c.presignaturesReused(t, cmpEnabled())
	summary.add("rollback", func(r *row) {
		r.crashed++ // the rolled-back cosigner's enclave was killed
		r.sessions += int(c.calls.Load())
		r.keys += keys
		r.reuses += reuses
		r.duration += time.Since(began)
		r.note = fmt.Sprintf("older state booted (undetectable); stale key refused and explained; cmp %v", cmpEnabled())
	})
}

func mustKey(t *testing.T) func(key, error) key {
	return func(k key, err error) key {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
}

// waitKeyEverywhere waits until every party holds k at its epoch.
func (c *cluster) waitKeyEverywhere(t *testing.T, ctx context.Context, k key) {
	t.Helper()
	for _, id := range k.parties {
		deadline := time.Now().Add(30 * time.Second)
		for {
			got, err := c.getKey(ctx, id, k.name)
			if err == nil && got.GetEpoch() == k.epoch {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s does not hold %s at epoch %d: %v %v", id, k.short(), k.epoch, got, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// mustSign signs with k from cosigner from and checks the signature. It
// tries three times (processes were just killed and restarted; a party
// that misses the initiator's accept timeout makes it ask the next one,
// which may be the rolled-back cosigner), logging each failure.
func (c *cluster) mustSign(t *testing.T, ctx context.Context, from string, k key) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		s, err := c.sign(cctx, from, k, "rollback")
		cancel()
		if err == nil && s.succeeded() {
			if err := s.verify(k); err != nil {
				t.Fatalf("INVALID SIGNATURE from %s: %v", from, err)
			}
			return
		}
		if err == nil {
			err = fmt.Errorf("%v (%v, refused by %q, signers %v)", s.op.GetState(), s.op.GetFailureReason(), s.op.GetRefusedBy(), s.op.GetSigners())
		}
		if attempt == 3 {
			t.Fatalf("sign %s from %s: %v", k.short(), from, err)
		}
		t.Logf("sign %s from %s, attempt %d: %v", k.short(), from, attempt, err)
	}
}

// signUntilPresigned signs with k from cosigner from until one of the
// signs used a presignature (its pools fill in the background after the
// keygen), so that the copy is taken while presignatures are in use.
func (c *cluster) signUntilPresigned(t *testing.T, ctx context.Context, from string, k key) {
	t.Helper()
	for end := time.Now().Add(5 * time.Minute); ; {
		c.mustSign(t, ctx, from, k)
		if strings.Contains(c.enclaveLogs(from), `msg="presignature consumed"`) {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("no sign from %s used a presignature within 5 minutes", from)
		}
		time.Sleep(5 * time.Second)
	}
}

// wantRefusedBy requires a sign of k from cosigner from to fail, refused
// by cosigner by as not holding the key (or its epoch).
func (c *cluster) wantRefusedBy(t *testing.T, ctx context.Context, from string, k key, by string) {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	s, err := c.sign(cctx, from, k, "rollback")
	if err != nil {
		t.Fatalf("sign %s from %s: %v", k.short(), from, err)
	}
	if s.succeeded() || s.op.GetRefusedBy() != by ||
		s.op.GetFailureReason() != cosignerv1.SignFailureReason_SIGN_FAILURE_REASON_UNKNOWN_KEY {
		t.Fatalf("sign %s from %s: %v (%v, refused by %q), want refused by %s as unknown key",
			k.short(), from, s.op.GetState(), s.op.GetFailureReason(), s.op.GetRefusedBy(), by)
	}
	t.Logf("sign of %s from %s: %v, %v, refused by %s", k.short(), from, s.op.GetState(), s.op.GetFailureReason(), by)
}

// wantLogged requires a WARN line with msg, pointing to the documentation,
// in cosigner id's enclave log.
func (c *cluster) wantLogged(t *testing.T, id, msg string) {
	t.Helper()
	for line := range strings.Lines(c.enclaveLogs(id)) {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, msg) && strings.Contains(line, "docs/reliability.md") {
			t.Logf("%s logged: %s", id, strings.TrimSpace(line))
			return
		}
	}
	t.Errorf("%s's log has no WARN line %q", id, msg)
}

// withDown runs fn with cosigner id's enclave down, then restarts it.
func (c *cluster) withDown(t *testing.T, ctx context.Context, id string, fn func()) {
	t.Helper()
	if err := c.d.KillEnclave(id); err != nil {
		t.Fatal(err)
	}
	c.forget(id)
	fn()
	if err := c.d.RestartEnclave(ctx, id); err != nil {
		t.Fatal(err)
	}
}

// s3Store reaches the devnet's S3 as the host can.
type s3Store struct {
	client *s3.Client
	bucket string
}

func (c *cluster) s3() *s3Store {
	return &s3Store{bucket: c.info.S3.Bucket, client: s3.New(s3.Options{
		Region: c.info.S3.Region, BaseEndpoint: aws.String(c.info.S3.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("host", "host-secret", ""),
	})}
}

func (s *s3Store) list(t *testing.T, ctx context.Context, prefix string) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

// snapshot copies every object under prefix.
func (s *s3Store) snapshot(t *testing.T, ctx context.Context, prefix string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, k := range s.list(t, ctx, prefix) {
		obj, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(k)})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(obj.Body)
		obj.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[k] = b
	}
	return out
}

// restore makes prefix hold exactly the snapshot.
func (s *s3Store) restore(t *testing.T, ctx context.Context, prefix string, snap map[string][]byte) {
	t.Helper()
	for _, k := range s.list(t, ctx, prefix) {
		if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(k)}); err != nil {
			t.Fatal(err)
		}
	}
	for k, b := range snap {
		if _, err := s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(k),
			Body: bytes.NewReader(b)}); err != nil {
			t.Fatal(err)
		}
	}
}
