package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/cmd/cosignerctl/app"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/policy"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/apiclient"
)

// run runs cosignerctl in process and returns its exit code and output.
func run(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = app.Run(context.Background(), args, app.IO{In: strings.NewReader(""), Out: &out, Err: &errOut})
	return code, out.String(), errOut.String()
}

// conn returns the flags that reach server as role, attesting it as the
// honest server's image, followed by extra.
func (e *apiEnv) conn(server, role string, extra ...string) []string {
	fl := []string{"--addr", e.servers[server].addr, "--cert", e.path(role + ".pem"), "--cert-key", e.path(role + ".key"),
		"--root", e.path("sim-root.pem")}
	return append(append(fl, e.pcrFlags()...), extra...)
}

// TestAPIExitCodes checks the exit codes testscript cannot tell apart: 0
// success, 1 refused or failed, 2 usage.
func TestAPIExitCodes(t *testing.T) {
	e := newAPIEnv(t)
	digest := strings.Repeat("11", 32)
	tests := []struct {
		args []string
		want int
		out  string
	}{
		{append([]string{"keys", "get", keyECDSA}, e.conn("good", "auditor")...), app.ExitOK, "scheme:       cmp_ecdsa_secp256k1"},
		{append([]string{"keys", "get", "keys/" + strings.Repeat("0", 64)}, e.conn("good", "auditor")...), app.ExitFail, "NOT_FOUND: key not found"},
		{append([]string{"keys", "create", "--scheme", "frost_taproot", "--threshold", "2", "--party", "co-1", "--party", "co-2"}, e.conn("good", "signer")...), app.ExitFail, "PERMISSION_DENIED"},
		{append([]string{"sign", "digest", keyECDSA, digest}, e.conn("good", "signer")...), app.ExitOK, ": succeeded"},
		{append([]string{"sign", "digest", "--note", "deny", keyECDSA, digest}, e.conn("good", "signer")...), app.ExitFail, "rejected: policy_denied"},
		{append([]string{"sign", "digest", "--note", "fail", keyECDSA, digest}, e.conn("good", "signer")...), app.ExitFail, "failed: session_aborted"},
		{append([]string{"keys", "list"}, e.conn("mitm", "admin")...), app.ExitFail, "attestation check failed: TLS certificate"},
		{append([]string{"keys", "list"}, e.conn("good", "stranger")...), app.ExitFail, "attestation check failed: attestation request"},
		{[]string{"keys", "list", "--addr", e.servers["good"].addr, "--cert", e.path("admin.pem"), "--cert-key", e.path("admin.key"), "--insecure-skip-attestation"}, app.ExitOK, "WARNING: --insecure-skip-attestation"},
		{[]string{"keys", "lisst"}, app.ExitUsage, "unknown command"},
		{[]string{"keys", "list", "--bogus"}, app.ExitUsage, "flag provided but not defined"},
		{[]string{"keys", "list", "--addr", "x"}, app.ExitUsage, "are required"},
		{append([]string{"keys", "list", "--root", e.path("missing.pem")}, e.conn("good", "admin")[:6]...), app.ExitUsage, "no such file"},
		{[]string{"keys", "get", "keys/zz"}, app.ExitUsage, "is not a key name"},
		{[]string{"sign", "digest", keyECDSA, "abcd"}, app.ExitUsage, "64 hex digits"},
		{[]string{"sign", "eth-tx", keyECDSA, e.path("missing.hex")}, app.ExitUsage, "no such file"},
		{[]string{"policy", "approve", "--admin-key", e.path("missing.key"), "--out", e.path("a.json"), e.path("missing.json")}, app.ExitUsage, "no such file"},
		{[]string{"audit", "export"}, app.ExitUsage, "--out is required"},
	}
	for _, tt := range tests {
		code, out, errOut := run(tt.args...)
		if code != tt.want || !strings.Contains(out+errOut, tt.out) {
			t.Errorf("%v: exit %d, want %d; output %q %q", tt.args[:2], code, tt.want, out, errOut)
		}
	}
}

// TestAttestationFailureSendsNothing: when a check fails, the command's
// request never reaches the server.
func TestAttestationFailureSendsNothing(t *testing.T) {
	e := newAPIEnv(t)
	writeApproval(t, e)
	id := func(server string, extra ...string) []string {
		return append([]string{"--addr", e.servers[server].addr, "--cert", e.path("admin.pem"), "--cert-key", e.path("admin.key")}, extra...)
	}
	root := e.path("sim-root.pem")
	tests := []struct {
		name, server string
		flags        []string
		check        apiclient.Check
	}{
		{"wrong PCR", "good", id("good", "--root", root, "--pcr", e.pcrFlag(0), "--pcr", "1="+strings.Repeat("00", 48)), apiclient.CheckPCRs},
		{"wrong root", "good", id("good", "--root", e.path("other-root.pem"), "--pcr", e.pcrFlag(0)), apiclient.CheckChain},
		{"AWS root", "good", id("good", "--pcr", e.pcrFlag(0)), apiclient.CheckChain},
		{"other cosigner", "good", append(e.conn("good", "admin"), "--cosigner-id", "co-7"), apiclient.CheckCosignerID},
		{"debug", "debug", e.conn("debug", "admin"), apiclient.CheckDebug},
		{"debug without --pcr", "debug", id("debug", "--root", root), apiclient.CheckDebug},
		{"replayed nonce", "replay", e.conn("replay", "admin"), apiclient.CheckNonce},
		{"user_data", "badbind", e.conn("badbind", "admin"), apiclient.CheckUserData},
		{"relayed by a MITM", "mitm", e.conn("mitm", "admin"), apiclient.CheckTLSCertificate},
	}
	// The control: attested, the request is sent (and refused: one
	// approval is not a quorum).
	before := e.servers["good"].received()
	if code, _, errOut := run(append([]string{"policy", "set", e.path("policy.json"), "--approval", e.path("a.json")}, e.conn("good", "admin")...)...); code != app.ExitFail ||
		!strings.Contains(errOut, "PERMISSION_DENIED") || e.servers["good"].received() != before+1 {
		t.Fatalf("control: exit %d, %q; %d requests", code, errOut, e.servers["good"].received()-before)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := e.servers[tt.server]
			before := s.received()
			args := append([]string{"policy", "set", "--json", e.path("policy.json"), "--approval", e.path("a.json")}, tt.flags...)
			code, out, errOut := run(args...)
			var res struct{ Error struct{ Check string } }
			if code != app.ExitFail || json.Unmarshal([]byte(out), &res) != nil || res.Error.Check != string(tt.check) ||
				!strings.Contains(errOut, "attestation check failed: "+string(tt.check)+": ") {
				t.Fatalf("exit %d; stdout %q; stderr %q", code, out, errOut)
			}
			if got := s.received(); got != before {
				t.Errorf("the server received %d requests", got-before)
			}
		})
	}
}

// writeApproval writes policy.json and an approval of it, a.json.
func writeApproval(t *testing.T, e *apiEnv) {
	e.write(t, "policy.json", []byte(`{"version": 9}`))
	if code, _, errOut := run("policy", "approve", "--admin-key", e.path("approver1.key"), "--out", e.path("a.json"), e.path("policy.json")); code != 0 {
		t.Fatal(errOut)
	}
}

// TestPolicyApproveEnclaveVerifier: approvals written by policy approve
// verify with enclave/policy's own message and verifier, for both key
// types, and only for the document they approve.
func TestPolicyApproveEnclaveVerifier(t *testing.T) {
	e := newAPIEnv(t)
	doc := []byte(`{"version": 4, "default": {"kinds": ["eth-transaction"], "chain_ids": [1]}}` + "\n")
	e.write(t, "doc.json", doc)
	if !bytes.Equal(apiclient.ApprovalMessage(doc), policy.ApprovalMessage(doc)) {
		t.Fatal("apiclient.ApprovalMessage differs from enclave/policy's")
	}
	var approvals []policy.Approval
	for _, name := range []string{"approver1", "approver3"} {
		out := filepath.Join(e.dir, name+".approval")
		if code, _, errOut := run("policy", "approve", "--admin-key", e.path(name+".key"), "--out", out, e.path("doc.json")); code != 0 {
			t.Fatal(errOut)
		}
		approvals = append(approvals, readApprovalFile(t, out))
	}
	if err := policy.VerifyApprovals(doc, approvals, e.admins); err != nil {
		t.Fatalf("enclave/policy refuses the approvals: %v", err)
	}
	if err := policy.VerifyApprovals(append(doc, ' '), approvals, e.admins); err == nil {
		t.Fatal("the approvals verify for another document")
	}
	one := policy.AdminSet{Keys: e.admins.Keys, Threshold: 1}
	for i, ap := range approvals {
		if err := policy.VerifyApprovals(doc, []policy.Approval{ap}, one); err != nil {
			t.Errorf("approval %d alone: %v", i, err)
		}
	}
}

func readApprovalFile(t *testing.T, name string) policy.Approval {
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		AdminPublicKey string `json:"admin_public_key"`
		Signature      string `json:"signature"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	der, _ := hex.DecodeString(f.AdminPublicKey)
	sig, _ := hex.DecodeString(f.Signature)
	key, err := policy.ParseAdminKey(der)
	if err != nil {
		t.Fatal(err)
	}
	return policy.Approval{AdminKey: key, Signature: sig}
}

// TestSignStatus follows an operation that is still running, and one
// that was rejected.
func TestSignStatus(t *testing.T) {
	e := newAPIEnv(t)
	signer := e.conn("good", "signer")
	status := func(name string) (int, string) {
		code, out, errOut := run(append([]string{"sign", "status", "--json", name}, signer...)...)
		var op struct{ State string }
		if json.Unmarshal([]byte(out), &op) != nil {
			t.Fatalf("sign status: %q %q", out, errOut)
		}
		return code, op.State
	}
	for _, c := range []struct {
		note, state string
		exit        int
	}{{"stuck", "signing", app.ExitOK}, {"slow", "succeeded", app.ExitOK}, {"deny", "rejected", app.ExitFail}} {
		code, out, errOut := run(append([]string{"sign", "digest", "--json", "--no-wait", "--note", c.note, keyECDSA, strings.Repeat("ab", 32)}, signer...)...)
		var op struct{ Name string }
		if err := json.Unmarshal([]byte(out), &op); err != nil || !strings.HasPrefix(op.Name, "signOperations/") {
			t.Fatalf("sign --note %s: exit %d, %q %q", c.note, code, out, errOut)
		}
		if code, state := status(op.Name); code != c.exit || state != c.state {
			t.Errorf("status of a %q operation: exit %d, state %q; want %d, %q", c.note, code, state, c.exit, c.state)
		}
	}
}
