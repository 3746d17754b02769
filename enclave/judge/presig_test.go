package judge_test

import (
	"context"
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/coord"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
)

// presigned is a sign proposal (1 wei, allowed) naming presignature id,
// as if proposed by from to alice.
func presigned(t *testing.T, id mpc.PresignatureID) *coord.Proposal {
	p := proposalFor(t, unsignedTx(1, 1))
	p.Presignature = id
	return p
}

func presigFixture(t *testing.T, ids ...mpc.PresignatureID) *fixture {
	k := keys{info: ecdsaKey(t), presigs: map[mpc.PresignatureID]bool{}}
	k.info.Parties = []mpc.PartyID{"alice", "bob", "carol"}
	for _, id := range ids {
		k.presigs[id] = true
	}
	return newFixtureKeys(t, false, nil, k)
}

// judgeAs asks alice's judge about p as proposed by from; it returns the
// task, or the refusal's code.
func judgeAs(t *testing.T, f *fixture, from mpc.PartyID, p *coord.Proposal) (coord.Task, coord.Code) {
	t.Helper()
	task, err := f.judge.Judge(context.Background(), from, p)
	if err != nil {
		return coord.Task{}, refusalCode(t, err)
	}
	return task, 0
}

// A presignature is promised to one proposal at a time; one alice does
// not hold is refused; a promise ends with its session.
func TestPresignaturePromisedOnce(t *testing.T) {
	x := mpc.PresignatureID{1}
	f := presigFixture(t, x)
	if _, code := judgeAs(t, f, "alice", presigned(t, mpc.PresignatureID{2})); code != coord.CodePresignature {
		t.Fatalf("a presignature alice does not hold: code %v, want presignature_unavailable", code)
	}
	first, code := judgeAs(t, f, "alice", presigned(t, x))
	if code != 0 {
		t.Fatalf("alice's own proposal refused: %v", code)
	}
	if _, code := judgeAs(t, f, "alice", presigned(t, x)); code != coord.CodePresignature {
		t.Fatalf("alice's second proposal naming it: code %v, want presignature_unavailable", code)
	}
	if _, code := judgeAs(t, f, "bob", presigned(t, x)); code != coord.CodePresignature {
		t.Fatalf("bob's proposal naming alice's presignature: code %v, want presignature_unavailable", code)
	}
	first.Done(coord.Result{}, coord.ErrCancelled) // the session never ran
	if _, code := judgeAs(t, f, "bob", presigned(t, x)); code != 0 {
		t.Fatalf("after alice's session ended, bob's proposal: code %v", code)
	}
	// A proposal without a presignature is not concerned.
	if _, code := judgeAs(t, f, "carol", presigned(t, mpc.PresignatureID{})); code != 0 {
		t.Fatalf("a full sign: code %v", code)
	}
}

// Two initiators that claimed the same presignature at once: the lower
// party ID wins on every party, so exactly one of the two proposals is
// accepted everywhere. Alice is the party judging here; bob and carol
// propose too.
func TestPresignatureLowerInitiatorWins(t *testing.T) {
	x := mpc.PresignatureID{1}
	t.Run("alice is the higher initiator", func(t *testing.T) {
		// Alice judged her own proposal first; aaron's (lower) takes the
		// promise over, since aaron refuses alice's.
		f := presigFixture(t, x)
		if _, code := judgeAs(t, f, "alice", presigned(t, x)); code != 0 {
			t.Fatalf("own: %v", code)
		}
		if _, code := judgeAs(t, f, "aaron", presigned(t, x)); code != 0 {
			t.Fatalf("aaron's proposal after alice's own: code %v, want accepted", code)
		}
	})
	t.Run("alice is the lower initiator", func(t *testing.T) {
		f := presigFixture(t, x)
		if _, code := judgeAs(t, f, "alice", presigned(t, x)); code != 0 {
			t.Fatalf("own: %v", code)
		}
		if _, code := judgeAs(t, f, "bob", presigned(t, x)); code != coord.CodePresignature {
			t.Fatalf("bob's proposal after alice's own: code %v, want presignature_unavailable", code)
		}
	})
	t.Run("alice is a third party", func(t *testing.T) {
		// Carol's proposal came first; bob's (lower) takes over, and
		// carol's never gets "go" (bob refuses it). Then carol's retry
		// naming it again is refused.
		f := presigFixture(t, x)
		carols, code := judgeAs(t, f, "carol", presigned(t, x))
		if code != 0 {
			t.Fatalf("carol's: %v", code)
		}
		bobs, code := judgeAs(t, f, "bob", presigned(t, x))
		if code != 0 {
			t.Fatalf("bob's after carol's: code %v, want accepted", code)
		}
		if _, code := judgeAs(t, f, "carol", presigned(t, x)); code != coord.CodePresignature {
			t.Fatalf("carol's again after bob's: code %v, want presignature_unavailable", code)
		}
		// Carol's session ends (cancelled): bob keeps the promise.
		carols.Done(coord.Result{}, coord.ErrCancelled)
		if _, code := judgeAs(t, f, "carol", presigned(t, x)); code != coord.CodePresignature {
			t.Fatalf("carol's cancel released bob's promise (code %v)", code)
		}
		bobs.Done(coord.Result{}, nil)
		if _, code := judgeAs(t, f, "carol", presigned(t, x)); code != 0 {
			t.Fatalf("after bob's session: code %v", code)
		}
	})
}
