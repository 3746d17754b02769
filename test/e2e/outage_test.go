//go:build !release

package e2e_test

import (
	"context"
	"testing"
	"time"

	cosignerv1 "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// A cosigner's enclave crashes mid-run: the 2-of-3 key still signs with
// the two left (the initiator leaves out the one that does not answer),
// and the crashed one, restarted, restores its state from S3 through KMS
// and signs again.
func TestCosignerCrashAndRestore(t *testing.T) {
	dir := t.TempDir()
	d, _ := startDevnet(t, dir, 3)
	info := d.Info()
	key := createTaprootKey(t, info)
	checkSigned(t, key, signSpend(t, info, "cosigner-1", key, "before the crash"))

	if err := d.KillEnclave("cosigner-2"); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	op := signSpend(t, info, "cosigner-1", key, "cosigner-2 is down")
	checkSigned(t, key, op)
	if got := op.GetSigners(); len(got) != 2 || got[0] != "cosigner-1" || got[1] != "cosigner-3" {
		t.Errorf("signers %v, want cosigner-1 and cosigner-3", got)
	}
	t.Logf("signed without cosigner-2 in %v", time.Since(began).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := d.RestartEnclave(ctx, "cosigner-2"); err != nil {
		t.Fatalf("restarting cosigner-2: %v%s", err, childLogs(dir))
	}
	resp, err := cosignerv1.NewKeyServiceClient(dial(t, info, "cosigner-2", "auditor")).GetKey(ctx, &cosignerv1.GetKeyRequest{Name: key.name})
	if err != nil {
		t.Fatalf("cosigner-2 lost the key across the crash: %v", err)
	}
	if resp.GetKey().GetName() != key.name {
		t.Fatalf("GetKey = %v", resp.GetKey())
	}
	checkSigned(t, key, signSpend(t, info, "cosigner-2", key, "after the restore"))
}
