//go:build !release

package e2e_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/nitro-cosigner/nitro-cosigner/cmd/cosignerctl/devnet"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/apiclient"
	ws "github.com/nitro-cosigner/nitro-cosigner/pkg/workspace"
	cosignerv1 "github.com/nitro-cosigner/nitro-cosigner/proto/cosigner/v1"
)

// TestWorkspacePairing pairs a fourth cosigner into a running 3-cosigner
// workspace through the real path (cosignerctl workspace invite, the new
// enclave's --pair request through the broker, two admins' approvals),
// makes a 3-of-4 key with it and signs, restarts everything and signs
// again; then checks the refusals: one admin alone changes nothing, a
// stale version replayed by the broker, a reused, forged, wrongly
// measured or expired token; a policy that reaches every member; a user
// the key's owner does not let sign, then does; and a revoked API user.
func TestWorkspacePairing(t *testing.T) {
	dir := t.TempDir()
	d, _ := startDevnet(t, dir, 3)
	info := d.Info()
	admins := info.PolicyAdmins.PrivateKeys
	ctl := func(args ...string) string {
		t.Helper()
		code, out, errOut := cosignerctl(t, append(args, "--devnet", dir)...)
		if code != 0 {
			t.Fatalf("cosignerctl %v: exit %d\n%s%s", args, code, out, errOut)
		}
		return out
	}
	conns := map[string]*apiclient.Conn{} // one auditor connection per cosigner and devnet run
	auditor := func(id string) *apiclient.Conn {
		if conns[id] == nil {
			conns[id] = dial(t, d.Info(), id, devnet.RoleAuditor)
		}
		return conns[id]
	}
	version := func(id string) uint64 {
		t.Helper()
		resp, err := cosignerv1.NewWorkspaceServiceClient(auditor(id)).GetWorkspace(t.Context(), &cosignerv1.GetWorkspaceRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetVersion()
	}

	token := strings.TrimSpace(ctl("workspace", "invite", "--admin-key", admins[0], "--ttl", "10m"))
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	id, err := d.Pair(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the pairing request to reach cosigner-1", func() bool {
		return strings.Contains(ctl("workspace", "requests"), id)
	})
	if out := ctl("workspace", "approve", id, "--admin-key", admins[0]); !strings.Contains(out, "1 of 2 approvals") {
		t.Fatalf("first approval: %s", out)
	}
	for _, c := range []string{"cosigner-1", "cosigner-2", "cosigner-3"} {
		if v := version(c); v != 1 {
			t.Fatalf("one admin of a quorum of two changed %s's workspace to version %d", c, v)
		}
	}
	if out := ctl("workspace", "approve", id, "--admin-key", admins[1]); !strings.Contains(out, "applied") {
		t.Fatalf("second approval: %s", out)
	}
	if err := d.WaitJoined(ctx, id); err != nil {
		t.Fatalf("%v%s", err, childLogs(dir))
	}
	for _, c := range []string{"cosigner-1", "cosigner-2", "cosigner-3", id} {
		waitFor(t, c+" to hold version 2", func() bool { return version(c) == 2 })
	}
	info = d.Info()
	key := createTaprootKeyOf(t, info, 3)
	checkSigned(t, key, signSpend(t, info, id, key, "signed with the paired cosigner"))

	stopDevnet(t, d, dir)
	d, _ = startDevnet(t, dir, 0)
	info = d.Info()
	clear(conns)
	if len(info.Cosigners) != 4 {
		t.Fatalf("the restarted devnet has %d cosigners", len(info.Cosigners))
	}
	checkSigned(t, key, signSpend(t, info, id, key, "signed after the restart"))

	// A stale version replayed by the broker: version 1, published
	// straight into cosigner-2's inbox.
	v1, err := os.ReadFile(info.Workspace)
	if err != nil {
		t.Fatal(err)
	}
	var first ws.Signed
	if err := json.Unmarshal(v1, &first); err != nil {
		t.Fatal(err)
	}
	publish(t, info, "cosigner-2", ws.KindVersions, ws.Update{From: "cosigner-1", Versions: []ws.Signed{first}})
	waitFor(t, "cosigner-2 to audit the stale version", func() bool {
		return strings.Contains(auditExport(t, auditor("cosigner-2")), "workspace_refused")
	})
	if v := version("cosigner-2"); v != 2 {
		t.Fatalf("cosigner-2 holds version %d after the replay", v)
	}

	// Refused tokens: each new cosigner's requests are refused by the
	// members with an audit entry naming why.
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	forged := issueToken(t, info, other, time.Hour)
	wrongPCRs := strings.TrimSpace(ctl("workspace", "invite", "--admin-key", admins[0], "--pcr", "0="+strings.Repeat("ab", 48)))
	for _, c := range []struct{ name, token, reason string }{
		{"reused", token, "pairing token already used"},
		{"forged", forged, "not signed by an admin"},
		{"wrong PCRs", wrongPCRs, "PCRs differ from the token"},
	} {
		if _, err := d.Pair(ctx, c.token); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "cosigner-1 to refuse the "+c.name+" token", func() bool {
			return strings.Contains(auditExport(t, auditor("cosigner-1")), c.reason)
		})
	}
	expired := issueToken(t, info, adminKey(t, admins[0]), -time.Minute)
	expiredID, err := d.Pair(ctx, expired)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the enclave with an expired token to say so", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "logs", expiredID+"-enclave.log"))
		return bytes.Contains(b, []byte("pairing token expired"))
	})

	// The workspace's policy reaches every member: version 2 of the
	// devnet's default policy, approved by two admins as a workspace
	// change, is installed on all four.
	base, err := os.ReadFile(info.DefaultPolicy)
	if err != nil {
		t.Fatal(err)
	}
	v2 := bytes.Replace(base, []byte(`"version": 1,`), []byte(`"version": 2,`), 1)
	policyFile := filepath.Join(dir, "policy-v2.json")
	if bytes.Equal(v2, base) || os.WriteFile(policyFile, v2, 0o600) != nil {
		t.Fatal("could not make version 2 of the default policy")
	}
	ctl("workspace", "set-policy", policyFile, "--admin-key", admins[0])
	ctl("workspace", "set-policy", policyFile, "--admin-key", admins[1])
	for _, c := range info.Cosigners[:4] {
		waitFor(t, c.ID+" to run the workspace's policy", func() bool { return policyVersion(t, info, c.ID) == 2 })
	}

	// Keys belong to their creator (the admin user): a new signer user
	// may sign with them only once the admin lets it.
	trader, traderPEM := issueClientCert(t, info, dir, "trader")
	ctl("workspace", "add-user", "trader:signer:"+traderPEM, "--admin-key", admins[0])
	ctl("workspace", "add-user", "trader:signer:"+traderPEM, "--admin-key", admins[1])
	traderSign := func() error {
		cfg, err := info.ClientConfig(id, devnet.RoleSigner)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ClientCertificate = trader
		conn, err := apiclient.Dial(t.Context(), cfg)
		if err != nil {
			return err
		}
		defer conn.Close()
		_, raw := key.spend(t)
		_, err = cosignerv1.NewSigningServiceClient(conn).Sign(t.Context(), &cosignerv1.SignRequest{
			IdempotencyKey: apiclient.NewIdempotencyKey(), Key: key.name, MaxWait: durationpb.New(time.Minute),
			Payload: &cosignerv1.SignRequest_BitcoinTaprootPsbt{BitcoinTaprootPsbt: &cosignerv1.BitcoinTaprootPsbt{
				Psbt: raw, Network: cosignerv1.BitcoinNetwork_BITCOIN_NETWORK_REGTEST}}})
		return err
	}
	waitFor(t, "the trader to be a user whom the key's owner refuses", func() bool {
		err := traderSign()
		return status.Code(err) == codes.PermissionDenied && strings.Contains(err.Error(), "owner")
	})
	adminPEM := info.Clients[devnet.RoleAdmin].Cert
	ctl("workspace", "add-user", "admin:admin:"+adminPEM, "--signer", "signer", "--signer", "trader", "--admin-key", admins[0])
	ctl("workspace", "add-user", "admin:admin:"+adminPEM, "--signer", "signer", "--signer", "trader", "--admin-key", admins[1])
	waitFor(t, "the owner to let the trader sign", func() bool { return traderSign() == nil })

	// A revoked API user cannot sign, on any member.
	ctl("workspace", "revoke-user", "signer", "--admin-key", admins[0])
	ctl("workspace", "revoke-user", "signer", "--admin-key", admins[1])
	for _, c := range info.Cosigners[:4] {
		cfg, err := info.ClientConfig(c.ID, devnet.RoleSigner)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, c.ID+" to refuse the revoked signer", func() bool {
			conn, err := apiclient.Dial(t.Context(), cfg) // the attested dial's first call is refused
			if err == nil {
				_, err = cosignerv1.NewKeyServiceClient(conn).ListKeys(t.Context(), &cosignerv1.ListKeysRequest{})
				conn.Close()
			}
			return err != nil && strings.Contains(err.Error(), "not an API user of the workspace")
		})
	}
	if _, err := cosignerv1.NewKeyServiceClient(auditor("cosigner-1")).ListKeys(t.Context(), &cosignerv1.ListKeysRequest{}); status.Code(err) != codes.OK {
		t.Fatalf("the auditor, still a user, is refused too: %v", err)
	}
}

// waitFor polls cond every half second for up to two minutes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// issueToken issues a pairing token for the devnet's workspace signed by
// key, valid for ttl (negative: already expired).
func issueToken(t *testing.T, info *devnet.Info, key interface {
	Public() crypto.PublicKey
	Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error)
}, ttl time.Duration) string {
	t.Helper()
	b, err := os.ReadFile(info.Workspace)
	if err != nil {
		t.Fatal(err)
	}
	v, err := ws.FromStore(b)
	if err != nil {
		t.Fatal(err)
	}
	pcrs, err := ws.ParsePCRs(info.Attestation.PCRs)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ws.NewToken(v, pcrs, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tok.Expires = time.Now().Add(ttl).Unix()
	text, err := tok.Issue(key)
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// publish puts a workspace message straight into a cosigner's broker
// inbox, as a hostile or replaying broker could.
func publish(t *testing.T, info *devnet.Info, to string, kind byte, msg any) {
	t.Helper()
	frame, err := ws.EncodeMessage(kind, msg)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(info.Broker.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), "cosigner.inbox."+to, frame); err != nil {
		t.Fatal(err)
	}
}

// auditExport is a cosigner's audit log as exported through the API.
func auditExport(t *testing.T, conn *apiclient.Conn) string {
	t.Helper()
	stream, err := cosignerv1.NewAuditServiceClient(conn).ExportAudit(t.Context(), &cosignerv1.ExportAuditRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			return b.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		b.Write(resp.GetChunk())
	}
}

// issueClientCert issues a client certificate with the devnet's client
// CA (the enclaves also require it) and writes it to DIR/name.pem.
func issueClientCert(t *testing.T, info *devnet.Info, dir, name string) (tls.Certificate, string) {
	t.Helper()
	ca, err := tls.LoadX509KeyPair(info.ClientCA.Cert, info.ClientCA.Key)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(ca.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, ca.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, path
}
