package judge_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/coord"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/judge"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/policy"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/testutil"
)

// noPolicy fails every question: the refusals below come before policy.
type noPolicy struct{}

func (noPolicy) Authorize(context.Context, policy.Request) (policy.Decision, policy.Reservation, error) {
	return policy.Decision{}, policy.Reservation{}, errors.New("not reached")
}
func (noPolicy) Release(context.Context, policy.Reservation) error { return nil }

// Regression test (test/reliability's rollback suite found it): a
// proposal naming another epoch of a key than this party holds, or a key
// it does not hold, is refused as unknown_key (a stale share is never used
// with newer ones) and, since that is what a cosigner restored from an
// older copy of its S3 state sees, the log says at WARN (INFO for a pool
// refill, which may race with storing) which side is behind and where the
// operator reads what to do. Before, the refusal was an INFO line "names
// another epoch", silent on both.
func TestStaleKeyRefusedAndExplained(t *testing.T) {
	info := ecdsaKey(t)
	info.Epoch = 1
	for _, tc := range []struct {
		name  string
		key   mpc.KeyID
		epoch uint64
		want  string
	}{
		{"this party is behind", keyID, 2, "this cosigner holds an older epoch of the key than the proposer"},
		{"the proposer is behind", keyID, 0, "the proposer names an older epoch of the key"},
		{"this party lacks the key", mpc.KeyID{9}, 1, "a peer proposed a key this cosigner does not hold"},
	} {
		for _, op := range []coord.Op{coord.OpSign, coord.OpPresign, coord.OpRefresh} {
			t.Run(tc.name+"/"+op.String(), func(t *testing.T) {
				var logs testutil.Buffer
				j, err := judge.New(judge.Config{Self: "alice", Keys: keys{info: info}, Policy: noPolicy{}, Audit: failingAudit{},
					Logger: slog.New(slog.NewTextHandler(&logs, nil))})
				if err != nil {
					t.Fatal(err)
				}
				p := proposalFor(t, unsignedTx(1, 1))
				p.Op, p.Key, p.Epoch = op, tc.key, tc.epoch
				if op != coord.OpSign {
					p.Request, p.Signs = nil, 0
				}
				_, err = j.Judge(context.Background(), "bob", p)
				if code := refusalCode(t, err); code != coord.CodeUnknownKey {
					t.Fatalf("refused as %s, want unknown_key", code)
				}
				level := "level=WARN" // a pool refill may race with storing: INFO
				if op == coord.OpPresign {
					level = "level=INFO"
				}
				out := logs.String()
				if !strings.Contains(out, level) || !strings.Contains(out, tc.want) ||
					!strings.Contains(out, "docs/reliability.md") {
					t.Fatalf("log does not explain the mismatch:\n%s", out)
				}
			})
		}
	}
}
