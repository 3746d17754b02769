//go:build !release

package sealed

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/test/s3server"
)

// TestEndToEndRealS3 boots a cosigner against a real S3 server (versitygw,
// built by test/s3server): no state, init, mutations with compactions, a
// restart into the identical state, a second writer fenced; then it scans
// what the server stored — through the API and on its disk — for
// plaintext.
func TestEndToEndRealS3(t *testing.T) {
	srv := s3server.Start(t)
	e := newEnvWithS3(t, srv.Bucket, srv.Client().Options())
	if _, err := Open(context.Background(), e.newProc(pcrGood).cfg); !errors.Is(err, ErrNoState) {
		t.Fatalf("Open before init: %v, want ErrNoState", err)
	}
	first := e.newProc(pcrGood)
	first.cfg.SnapshotSegments = 3
	st := first.init()
	mutateAll(t, st.Store)
	putKeys(t, st.Store, 5, 9)
	want := state(t, st.Store)
	id, err := st.Store.GetIdentity(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	second := e.newProc(pcrGood)
	reopened := second.open()
	if got := state(t, reopened.Store); got != want {
		t.Fatalf("state after restart:\n%s\nwant\n%s", got, want)
	}
	if err := st.Store.PutKey(context.Background(), testRecord(50, 0)); !errors.Is(err, ErrFenced) {
		t.Fatalf("the first instance after the restart: %v, want ErrFenced", err)
	}
	if _, err := Init(context.Background(), e.newProc(pcrGood).cfg); !errors.Is(err, ErrExists) {
		t.Fatalf("Init over state: %v, want ErrExists", err)
	}
	checkNoPlaintext(t, e, id.PrivateKey.Reveal())
	scanDir(t, filepath.Dir(srv.DataDir), e, id.PrivateKey.Reveal()) // objects and metadata
}

// scanDir scans every file the server wrote.
func scanDir(t *testing.T, dir string, e *env, more ...[]byte) {
	t.Helper()
	secrets := append([][]byte{e.dataKey().Reveal()}, more...)
	for i := range 9 {
		secrets = append(secrets, share(i, 0))
	}
	ns := append(needles(secrets...), []byte(shareMarker), []byte("SQLite format 3"))
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
		scan(t, path, b, ns)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 4 {
		t.Fatalf("only %d files under %s", files, dir)
	}
}
