package s3server

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/replica"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
)

const shareMarker = "E2E-SHARE-PLAINTEXT"

func e2eRecord(i int) keystore.KeyRecord {
	var id keystore.KeyID
	copy(id[:], fmt.Sprintf("e2e-key-%06d", i))
	return keystore.KeyRecord{
		ID: id, Scheme: 1, Threshold: 2, Parties: []string{"a", "b", "c"}, Self: "a",
		PublicKey: bytes.Repeat([]byte{2}, 33), ChainCode: bytes.Repeat([]byte{3}, 32),
		Share: secret.New([]byte(fmt.Sprintf("%s-%d", shareMarker, i))),
	}
}

// TestReplicaAgainstRealS3 runs the replica's whole life against versitygw:
// init, mutations with compaction, a takeover that fences the old writer,
// a restore equal to the live state, and no plaintext in what the server
// stored.
func TestReplicaAgainstRealS3(t *testing.T) {
	srv := Start(t)
	ctx := context.Background()
	key := make([]byte, keystore.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	cfg := replica.Config{
		Client: srv.Client(), Bucket: srv.Bucket, Prefix: "cosigners/e2e/", CosignerID: "e2e",
		DataKey: secret.New(key), SnapshotSegments: 4,
	}
	a, _, err := replica.Init(ctx, cfg, t.TempDir(), keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	put(t, a, 0, 6)
	if _, _, err := replica.Init(ctx, cfg, t.TempDir(), keystore.Options{}); !errors.Is(err, replica.ErrExists) {
		t.Fatalf("second Init: %v, want ErrExists", err)
	}
	b, _, err := replica.Restore(ctx, cfg, t.TempDir(), keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.PutKey(ctx, e2eRecord(99)); !errors.Is(err, replica.ErrFenced) {
		t.Fatalf("stale writer: %v, want ErrFenced", err)
	}
	put(t, b, 6, 11)
	c, _, err := replica.Restore(ctx, cfg, t.TempDir(), keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 11 {
		got, err := c.GetKey(ctx, e2eRecord(i).ID)
		if err != nil || !got.Share.Equal(e2eRecord(i).Share) {
			t.Fatalf("key %d after restore: %v", i, err)
		}
	}
	checkCompacted(t, srv, cfg.Prefix)
	scanFiles(t, filepath.Dir(srv.DataDir), [][]byte{[]byte(shareMarker), key})
}

// checkCompacted: eleven mutations with a snapshot every four leave one
// snapshot and only the segments after it (plus seals).
func checkCompacted(t *testing.T, srv *Server, prefix string) {
	t.Helper()
	count := func(dir string) int {
		out, err := srv.Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{
			Bucket: aws.String(srv.Bucket), Prefix: aws.String(prefix + dir),
		})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Contents)
	}
	if n := count("snapshots/"); n != 1 {
		t.Errorf("%d snapshots stored, want 1", n)
	}
	if n := count("segments/"); n == 0 || n > 6 {
		t.Errorf("%d segments stored after compaction", n)
	}
}

func put(t *testing.T, s *keystore.Store, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := s.PutKey(context.Background(), e2eRecord(i)); err != nil {
			t.Fatalf("PutKey %d: %v", i, err)
		}
	}
}

// scanFiles reads every file the server stored and fails on any needle.
func scanFiles(t *testing.T, dir string, needles [][]byte) {
	t.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, n := range needles {
			if bytes.Contains(b, n) {
				t.Errorf("%s holds plaintext", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 3 {
		t.Fatalf("only %d files stored by the server", files)
	}
}
