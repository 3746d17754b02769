//go:build !release

package e2e_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/cmd/cosignerctl/devnet"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/apiclient"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/testutil"
	cosignerv1 "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// startDevnet starts a devnet of parties cosigners in dir.
func startDevnet(t *testing.T, dir string, parties int) (*devnet.Devnet, *testutil.Buffer) {
	t.Helper()
	return startDevnetConfig(t, devnet.Config{Dir: dir, Parties: parties})
}

// startDevnetConfig starts a devnet with the binaries TestMain built and
// stops it when the test ends (unless the test stops it first).
func startDevnetConfig(t *testing.T, cfg devnet.Config) (*devnet.Devnet, *testutil.Buffer) {
	t.Helper()
	var logs testutil.Buffer
	cfg.BinDir, cfg.Logger = needBinaries(t), slog.New(slog.NewTextHandler(&logs, nil))
	start := time.Now()
	d, err := devnet.Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("devnet.Start: %v\ndevnet log:\n%s%s", err, logs.String(), childLogs(cfg.Dir))
	}
	t.Logf("devnet ready in %v", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return d, &logs
}

// stopDevnet stops d and checks that it stopped cleanly and left no
// enclave state on disk.
func stopDevnet(t *testing.T, d *devnet.Devnet, dir string) {
	t.Helper()
	start := time.Now()
	if err := d.Stop(); err != nil {
		t.Fatalf("Stop: %v%s", err, childLogs(dir))
	}
	t.Logf("devnet stopped in %v", time.Since(start).Round(time.Millisecond))
	if _, err := os.Stat(filepath.Join(dir, "tmp")); !os.IsNotExist(err) {
		t.Errorf("enclave state directories survived the stop: %v", err)
	}
}

// childLogs returns the tails of the child processes' logs, for a
// failing test.
func childLogs(dir string) string {
	files, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
	var b bytes.Buffer
	for _, f := range files {
		data, _ := os.ReadFile(f)
		if len(data) > 6<<10 {
			data = data[len(data)-6<<10:]
		}
		b.WriteString("\n==== " + filepath.Base(f) + "\n")
		b.Write(data)
	}
	return b.String()
}

// dial connects to cosigner id with the client certificate of role,
// attesting it as devnet.json says.
func dial(t *testing.T, info *devnet.Info, id, role string) *apiclient.Conn {
	t.Helper()
	cfg, err := info.ClientConfig(id, role)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, err := apiclient.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("dialling %s as %s: %v", id, role, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

type roster struct {
	Members []struct {
		ID       string            `json:"id"`
		Identity string            `json:"identity"`
		PCRs     map[string]string `json:"pcrs"`
	} `json:"members"`
}

func readRoster(t *testing.T, path string) roster {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r roster
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// checkInfo checks devnet.json against the running devnet: it loads, its
// files exist, the certificates chain to the client CA with their role,
// and every cosigner answers an attested call with the identity of the
// roster.
func checkInfo(t *testing.T, dir string, parties int) *devnet.Info {
	t.Helper()
	info, err := devnet.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Cosigners) != parties || info.Broker.Kind != devnet.BrokerNATS || !info.S3.Embedded {
		t.Fatalf("devnet.json: %d cosigners, broker %q, embedded S3 %v", len(info.Cosigners), info.Broker.Kind, info.S3.Embedded)
	}
	checkFiles(t, info)
	checkClientCerts(t, info)
	pcrs, err := info.ExpectedPCRs()
	if err != nil || len(pcrs) != 3 || bytes.Equal(pcrs[0], make([]byte, 48)) {
		t.Fatalf("devnet.json PCRs %v: %v", info.Attestation.PCRs, err)
	}
	r := readRoster(t, info.Roster)
	if len(r.Members) != parties {
		t.Fatalf("roster.json has %d members", len(r.Members))
	}
	for i, c := range info.Cosigners {
		m := r.Members[i]
		if m.ID != c.ID {
			t.Fatalf("roster member %d is %s, devnet.json names %s", i, m.ID, c.ID)
		}
		got := dial(t, info, c.ID, devnet.RoleAuditor).Attested()
		if hex.EncodeToString(got.IdentityKey) != m.Identity || got.CosignerID != c.ID {
			t.Errorf("%s attests identity %x as %q; roster.json holds %s", c.ID, []byte(got.IdentityKey), got.CosignerID, m.Identity)
		}
	}
	return info
}

func checkFiles(t *testing.T, info *devnet.Info) {
	t.Helper()
	files := []string{info.ClientCA.Cert, info.ClientCA.Key, info.PolicyAdmins.PublicKeys, info.Attestation.Root,
		info.Approval.CA, info.Approval.HandlerPublicKey, info.Roster, info.DefaultPolicy}
	files = append(files, info.PolicyAdmins.PrivateKeys...)
	for _, f := range files {
		if !filepath.IsAbs(f) {
			t.Errorf("devnet.json path %q is not absolute", f)
		}
		if _, err := os.Stat(f); err != nil {
			t.Errorf("devnet.json names a missing file: %v", err)
		}
	}
	if len(info.PolicyAdmins.PrivateKeys) < info.PolicyAdmins.Quorum || info.PolicyAdmins.Quorum != 2 {
		t.Errorf("policy admins: %d keys, quorum %d", len(info.PolicyAdmins.PrivateKeys), info.PolicyAdmins.Quorum)
	}
}

// checkClientCerts checks that each role's certificate chains to the
// client CA for client authentication and names its role.
func checkClientCerts(t *testing.T, info *devnet.Info) {
	t.Helper()
	caPEM, err := os.ReadFile(info.ClientCA.Cert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	for _, role := range devnet.Roles {
		files := info.Clients[role]
		pair, err := tls.LoadX509KeyPair(files.Cert, files.Key)
		if err != nil {
			t.Fatalf("%s: %v", role, err)
		}
		cert, _ := x509.ParseCertificate(pair.Certificate[0])
		_, err = cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		if err != nil || len(cert.URIs) != 1 || cert.URIs[0].String() != "urn:nitro-cosigner:role:"+role {
			t.Errorf("%s certificate: %v, URIs %v", role, err, cert.URIs)
		}
	}
}

// policyVersion returns the version of cosigner id's policy.
func policyVersion(t *testing.T, info *devnet.Info, id string) uint64 {
	t.Helper()
	resp, err := cosignerv1.NewPolicyServiceClient(dial(t, info, id, devnet.RoleAuditor)).GetPolicy(t.Context(), &cosignerv1.GetPolicyRequest{})
	if err != nil {
		t.Fatalf("%s: GetPolicy: %v", id, err)
	}
	return resp.GetPolicy().GetVersion()
}

// TestDevnetRestoresFromS3 starts a devnet, checks what devnet.json
// describes, makes a FROST Taproot key and signs with it (the approval
// server approves, and rejects a note asking for it), stops the devnet and
// starts it again on the same directory: every cosigner comes back from
// S3 through KMS with the identity of roster.json, the policy the first
// run gave it and its share of the key, which signs again.
func TestDevnetRestoresFromS3(t *testing.T) {
	const parties = 3
	dir := t.TempDir()

	d, _ := startDevnet(t, dir, parties)
	info := checkInfo(t, dir, parties)
	for _, c := range info.Cosigners {
		if v := policyVersion(t, info, c.ID); v != 1 {
			t.Errorf("%s: policy version %d after the first run, want the default (1)", c.ID, v)
		}
	}
	key := createTaprootKey(t, info)
	checkSigned(t, key, signSpend(t, info, "cosigner-1", key, "devnet e2e"))
	checkRejected(t, signSpend(t, info, "cosigner-2", key, "please REJECT this one"))
	rosterBefore, _ := os.ReadFile(info.Roster)
	stopDevnet(t, d, dir)

	d, _ = startDevnet(t, dir, 0) // the number of parties comes from the roster
	again := checkInfo(t, dir, parties)
	if rosterAfter, _ := os.ReadFile(again.Roster); !bytes.Equal(rosterBefore, rosterAfter) {
		t.Error("the restart rewrote roster.json")
	}
	for i, c := range again.Cosigners {
		if c.API != info.Cosigners[i].API || c.KMSKeyID != info.Cosigners[i].KMSKeyID {
			t.Errorf("%s: API %s and KMS key %s after the restart, were %s and %s", c.ID, c.API, c.KMSKeyID,
				info.Cosigners[i].API, info.Cosigners[i].KMSKeyID)
		}
		if v := policyVersion(t, again, c.ID); v != 1 {
			t.Errorf("%s: policy version %d after the restart, want 1 (restored from S3)", c.ID, v)
		}
	}
	checkSigned(t, key, signSpend(t, again, "cosigner-3", key, "after the restart"))
	stopDevnet(t, d, dir)
}
