package wire

import (
	"errors"
	"testing"
)

// TestEchoFinalRound plays the echo round of a final broadcast round that
// multi-party-sig does not check: three parties agree; when carol
// equivocates, the echo exposes it.
func TestEchoFinalRound(t *testing.T) {
	parties := []string{"carol", "alice", "bob"}
	const round = 5
	t.Run("agree", func(t *testing.T) {
		ts := transcripts(t, parties)
		for _, p := range parties {
			recordAll(t, ts, p, round, "sigma share of "+p)
		}
		checkAllEchoes(t, ts, round, nil)
	})
	t.Run("equivocation", func(t *testing.T) {
		ts := transcripts(t, parties)
		recordAll(t, ts, "alice", round, "a")
		recordAll(t, ts, "bob", round, "b")
		// carol sends one value to alice, another to bob (and keeps a third).
		for p, v := range map[string]string{"alice": "c1", "bob": "c2", "carol": "c1"} {
			if err := ts[p].Record("carol", "cmp/sign", round, []byte(v)); err != nil {
				t.Fatal(err)
			}
		}
		err := ts["bob"].CheckEcho("alice", round, digest(t, ts["alice"], round))
		var e *EchoError
		if !errors.As(err, &e) || e.Party != "alice" || e.Equivocation {
			t.Fatalf("bob checking alice's echo: %v", err)
		}
		if err := ts["alice"].CheckEcho("carol", round, digest(t, ts["carol"], round)); err != nil {
			t.Fatalf("alice and carol saw the same: %v", err)
		}
	})
	t.Run("two broadcasts reach one party", func(t *testing.T) {
		ts := transcripts(t, parties)
		if err := ts["alice"].Record("carol", "p", round, []byte("c1")); err != nil {
			t.Fatal(err)
		}
		if err := ts["alice"].Record("carol", "p", round, []byte("c1")); err != nil {
			t.Fatalf("recording the same broadcast twice: %v", err)
		}
		err := ts["alice"].Record("carol", "p", round, []byte("c2"))
		var e *EchoError
		if !errors.As(err, &e) || !e.Equivocation || e.Party != "carol" {
			t.Fatalf("got %v", err)
		}
	})
}

func TestEchoIncompleteAndStrangers(t *testing.T) {
	ts := transcripts(t, []string{"alice", "bob"})
	if err := ts["alice"].Record("alice", "p", 1, []byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := ts["alice"].Digest(1); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Digest of an incomplete round: %v", err)
	}
	if err := ts["alice"].CheckEcho("bob", 1, make([]byte, 32)); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("CheckEcho of an incomplete round: %v", err)
	}
	if err := ts["alice"].Record("mallory", "p", 1, nil); err == nil {
		t.Fatal("recorded a stranger's broadcast")
	}
	if err := ts["alice"].CheckEcho("mallory", 1, nil); err == nil {
		t.Fatal("checked a stranger's echo")
	}
	if _, err := NewTranscript(testSession, []string{"a", "a"}); err == nil {
		t.Fatal("NewTranscript accepted a repeated party")
	}
	if _, err := NewTranscript(testSession, nil); err == nil {
		t.Fatal("NewTranscript accepted no parties")
	}
}

// TestEchoDigestBindsSessionAndRound: the same broadcasts in another session
// or round give another digest.
func TestEchoDigestBindsSessionAndRound(t *testing.T) {
	mk := func(s SessionID, round uint16) []byte {
		tr, err := NewTranscript(s, []string{"a", "b"})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"a", "b"} {
			if err := tr.Record(p, "p", round, []byte(p)); err != nil {
				t.Fatal(err)
			}
		}
		return digest(t, tr, round)
	}
	base := string(mk(testSession, 1))
	if base == string(mk(SessionID{9}, 1)) || base == string(mk(testSession, 2)) {
		t.Fatal("the digest does not bind the session and round")
	}
}

func transcripts(t *testing.T, parties []string) map[string]*Transcript {
	t.Helper()
	ts := map[string]*Transcript{}
	for _, p := range parties {
		tr, err := NewTranscript(testSession, parties)
		if err != nil {
			t.Fatal(err)
		}
		ts[p] = tr
	}
	return ts
}

func recordAll(t *testing.T, ts map[string]*Transcript, from string, round uint16, payload string) {
	t.Helper()
	for _, tr := range ts {
		if err := tr.Record(from, "cmp/sign", round, []byte(payload)); err != nil {
			t.Fatal(err)
		}
	}
}

func digest(t *testing.T, tr *Transcript, round uint16) []byte {
	t.Helper()
	d, err := tr.Digest(round)
	if err != nil {
		t.Fatal(err)
	}
	return d[:]
}

func checkAllEchoes(t *testing.T, ts map[string]*Transcript, round uint16, want error) {
	t.Helper()
	for p, tr := range ts {
		for q, other := range ts {
			if err := tr.CheckEcho(q, round, digest(t, other, round)); !errors.Is(err, want) {
				t.Errorf("%s checking %s: %v", p, q, err)
			}
		}
	}
}

// TestEchoOverFrames runs the echo round through real frames: each party
// records the final round's broadcasts it accepted, then checks the echo
// frames of the others.
func TestEchoOverFrames(t *testing.T) {
	ids := []string{"alice", "bob", "carol"}
	c := newCluster(t, ids...)
	const final = 5
	ts := transcripts(t, ids)
	for _, from := range ids {
		payload := "z share of " + from
		for _, to := range ids {
			if to == from {
				if err := ts[to].Record(from, "cmp/sign", final, []byte(payload)); err != nil {
					t.Fatal(err)
				}
				continue
			}
			m := c.mustAccept(t, to, c.seal(t, from, broadcast(c.session, final, to, payload)))
			if err := ts[to].Record(m.From, m.Protocol, m.Round, m.Payload); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, from := range ids {
		d := digest(t, ts[from], final)
		for _, to := range ids {
			if to == from {
				continue
			}
			raw := c.seal(t, from, Frame{Session: c.session, Protocol: EchoProtocol, Round: final, To: to, Broadcast: true, Payload: d})
			m := c.mustAccept(t, to, raw)
			if err := ts[to].CheckEcho(m.From, m.Round, m.Payload); err != nil {
				t.Fatalf("%s checking %s's echo: %v", to, from, err)
			}
		}
	}
}
