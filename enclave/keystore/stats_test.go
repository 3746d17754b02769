package keystore

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestReplicationStats(t *testing.T) {
	ctx := context.Background()
	r := &recorder{t: t}
	s := mustCreate(t, t.TempDir(), newKey(t), Options{Replicator: r})
	if st := s.ReplicationStats(); st.Replicated != 0 || st.Failed != 0 || !st.LastOK.IsZero() || st.Halted {
		t.Fatalf("fresh store: %+v", st)
	}
	before := time.Now()
	if err := s.PutKey(ctx, testRecord(1, 0)); err != nil {
		t.Fatal(err)
	}
	r.setFail(errInjected)
	if err := s.PutKey(ctx, testRecord(2, 0)); err == nil {
		t.Fatal("mutation with a failing replicator succeeded")
	}
	st := s.ReplicationStats()
	if st.Replicated != 1 || st.Failed != 1 || st.Halted {
		t.Fatalf("after one success and one failure: %+v", st)
	}
	if st.LastOK.Before(before) || st.Duration <= 0 {
		t.Fatalf("LastOK %v (before %v), Duration %v", st.LastOK, before, st.Duration)
	}
	r.setFail(fmt.Errorf("taken: %w", ErrFenced))
	if err := s.PutKey(ctx, testRecord(3, 0)); err == nil {
		t.Fatal("fenced mutation succeeded")
	}
	if st := s.ReplicationStats(); st.Failed != 2 || !st.Halted {
		t.Fatalf("after fencing: %+v", st)
	}
}

func TestReplicationStatsLocalOnly(t *testing.T) {
	s := mustCreate(t, t.TempDir(), newKey(t), Options{})
	if err := s.PutKey(context.Background(), testRecord(1, 0)); err != nil {
		t.Fatal(err)
	}
	if st := s.ReplicationStats(); st.Replicated != 0 || st.Failed != 0 {
		t.Fatalf("a store without a Replicator counted replication: %+v", st)
	}
}
