//go:build !release

package failpoint

import (
	"errors"
	"testing"
)

func TestEnableInjectDisable(t *testing.T) {
	if err := Inject(ReplicaAfterSegmentPut); err != nil {
		t.Fatalf("disabled point: %v", err)
	}
	boom := errors.New("boom")
	hits := 0
	disable, err := Enable(ReplicaAfterSegmentPut, func() error { hits++; return boom })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Enable(ReplicaAfterSegmentPut, nil); err == nil {
		t.Error("enabling an enabled point twice succeeded")
	}
	if err := Inject(ReplicaAfterSegmentPut); !errors.Is(err, boom) {
		t.Fatalf("enabled point: %v", err)
	}
	if err := Inject(ReplicaBeforeSegmentPut); err != nil {
		t.Fatalf("another point: %v", err)
	}
	disable()
	disable()
	if err := Inject(ReplicaAfterSegmentPut); err != nil || hits != 1 {
		t.Fatalf("after disable: %v, %d hits", err, hits)
	}
	if enabled.Load() != 0 {
		t.Fatalf("enabled count %d after disabling", enabled.Load())
	}
}

func TestUnknownName(t *testing.T) {
	if _, err := Enable("keystore/nowhere", func() error { return nil }); err == nil {
		t.Fatal("enabled an unknown point")
	}
}

func TestNamesDistinct(t *testing.T) {
	seen := map[Name]bool{}
	for _, n := range All() {
		if seen[n] {
			t.Errorf("duplicate name %s", n)
		}
		seen[n] = true
	}
	if len(seen) != 8 {
		t.Errorf("%d points, want 8", len(seen))
	}
}
