package keystore

import (
	"context"
	"errors"
	"testing"
)

// Workspace versions append one at a time: any first (a paired cosigner
// starts at its token's version), then exactly the next; a repeated or
// skipped version is refused, and the stored ones read back in order.
func TestWorkspaceVersionsAppendInOrder(t *testing.T) {
	ctx := context.Background()
	s := mustCreate(t, t.TempDir(), newKey(t), Options{})
	defer s.Close()
	if _, err := s.LatestWorkspace(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty store: %v", err)
	}
	for v, doc := range []string{"v2", "v3"} {
		if err := s.PutWorkspace(ctx, uint64(v+2), []byte(doc)); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []uint64{1, 2, 3, 5} {
		if err := s.PutWorkspace(ctx, v, []byte("again")); !errors.Is(err, ErrStaleVersion) {
			t.Fatalf("version %d after 3: %v", v, err)
		}
	}
	if err := s.PutWorkspace(ctx, 4, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty document: %v", err)
	}
	latest, err := s.LatestWorkspace(ctx)
	if err != nil || latest.Version != 3 || string(latest.Document) != "v3" {
		t.Fatalf("latest %d %q %v", latest.Version, latest.Document, err)
	}
	vs, err := s.WorkspaceVersionsFrom(ctx, 2, 10)
	if err != nil || len(vs) != 2 || string(vs[0].Document) != "v2" || string(vs[1].Document) != "v3" {
		t.Fatalf("from 2: %+v %v", vs, err)
	}
}
