package main

import (
	"strings"
	"testing"

	"github.com/nitro-cosigner/nitro-cosigner/cmd/cosignerctl/app"
)

// TestDevnetContractExitCodes checks the exit codes of the client
// contract (issue 7) that testscript cannot tell apart: 0 on success, 1
// when refused or failed (the reason on stderr), 2 on usage errors.
func TestDevnetContractExitCodes(t *testing.T) {
	e := newAPIEnv(t)
	dn := []string{"--devnet", e.path("devnet")}
	tx := e.path("tx.json")
	e.write(t, "tx.json", []byte(`{"type":"0x2","chainId":"0x7a69","nonce":"0x0","to":"0x000000000000000000000000000000000000bEEF",`+
		`"value":"0x1","gas":"0x5208","maxFeePerGas":"0x77359400","maxPriorityFeePerGas":"0x3b9aca00","input":"0x"}`))
	e.write(t, "psbt.b64", []byte("cHNidP8BAAoCAAAAAAAAAAAAAAAA\n"))
	tests := []struct {
		args []string
		want int
		out  string
	}{
		{[]string{"keys", "create", "--threshold", "2", "--parties", "3", "--scheme", "cmp", "--json"}, app.ExitOK, `"eth_address": "0x`},
		{[]string{"keys", "create", "--threshold", "2", "--parties", "3", "--scheme", "frost", "--json"}, app.ExitOK, `"key_id": "`},
		{[]string{"keys", "create", "--threshold", "4", "--parties", "3", "--json"}, app.ExitUsage, "--threshold must be 2 to the number of parties (3)"},
		{[]string{"keys", "create", "--threshold", "2", "--parties", "3", "--scheme", "rsa"}, app.ExitUsage, "--scheme"},
		{[]string{"keys", "derive", "--key", keyECDSA, "--path", "m/44/60/0/0/7", "--json"}, app.ExitOK, `"eth_address": "0xf6366f48FD3FC55bae97423748DCB8E122926501"`},
		{[]string{"keys", "derive", "--key", keyECDSA, "--path", "m/44'/60'/0'/0/7", "--json"}, app.ExitUsage, "hardened"},
		{[]string{"keys", "derive", "--key", "keys/" + strings.Repeat("0", 64), "--path", "m/1", "--json"}, app.ExitFail, "NOT_FOUND"},
		{[]string{"sign", "--key", keyECDSA, "--path", "m/44/60/0/0/7", "--eth-tx", tx, "--json"}, app.ExitOK, `"from": "0xf6366f48FD3FC55bae97423748DCB8E122926501"`},
		{[]string{"sign", "--key", keyECDSA, "--eth-tx", tx, "--note", "deny", "--json"}, app.ExitFail, "rejected: policy_denied"},
		{[]string{"sign", "--key", keyECDSA, "--eth-tx", tx, "--note", "wrong key", "--json"}, app.ExitFail, "is not the key's address"},
		{[]string{"sign", "--key", keyECDSA, "--eth-tx", e.path("missing.json")}, app.ExitUsage, "no such file"},
		{[]string{"sign", "--key", keyTaproot, "--psbt", e.path("psbt.b64"), "--json"}, app.ExitOK, `"psbt": "cHNidP9zaWduZWQ="`},
		{[]string{"sign", "--key", keyTaproot, "--psbt", e.path("psbt.b64"), "--network", "dogecoin"}, app.ExitUsage, "--network"},
		{[]string{"--role", "auditor", "sign", "--key", keyTaproot, "--psbt", e.path("psbt.b64")}, app.ExitFail, "PERMISSION_DENIED"},
		{[]string{"--cosigner", "2", "keys", "list"}, app.ExitFail, "attestation check failed: cosigner ID"},
		{[]string{"--cosigner", "4", "keys", "list"}, app.ExitUsage, "the devnet has cosigners 1 to 3"},
	}
	for _, tt := range tests {
		code, out, errOut := run(append(dn, tt.args...)...)
		if code != tt.want || !strings.Contains(out+errOut, tt.out) {
			t.Errorf("%v: exit %d, want %d; output %q %q", tt.args, code, tt.want, out, errOut)
		}
	}
	// Without --devnet, --parties N has nothing to count.
	if code, _, errOut := run("keys", "create", "--threshold", "2", "--parties", "2"); code != app.ExitUsage {
		t.Errorf("keys create --parties without --devnet: exit %d, %q", code, errOut)
	}
}
