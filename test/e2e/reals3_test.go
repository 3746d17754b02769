//go:build !release

package e2e_test

import (
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/cmd/cosignerctl/devnet"
	"github.com/nitro-cosigner/nitro-cosigner/test/s3server"
)

// The devnet on a real S3 server (versitygw, built pinned by
// test/s3server) instead of the embedded one: every cosigner keeps its
// sealed state there, signs, and comes back from it after a restart.
func TestDevnetOnRealS3(t *testing.T) {
	srv := s3server.Start(t)
	t.Setenv("AWS_ACCESS_KEY_ID", s3server.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s3server.SecretKey)
	dir := t.TempDir()
	cfg := devnet.Config{Dir: dir, Parties: 2, S3: srv.Endpoint, S3Bucket: srv.Bucket}
	d, _ := startDevnetConfig(t, cfg)
	info := d.Info()
	if info.S3.Embedded || info.S3.Endpoint != srv.Endpoint {
		t.Fatalf("devnet.json S3: %+v", info.S3)
	}
	key := createTaprootKey(t, info)
	checkSigned(t, key, signSpend(t, info, "cosigner-1", key, "real S3"))
	stopDevnet(t, d, dir)

	d, _ = startDevnetConfig(t, cfg)
	checkSigned(t, key, signSpend(t, d.Info(), "cosigner-2", key, "real S3, restored"))
}
