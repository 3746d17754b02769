package app

import (
	"encoding/json"
	"os"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
	ws "github.com/nitro-cosigner/nitro-cosigner/pkg/workspace"
)

// rosterPCRs are the measurements a roster entry pins: the image (PCR0,
// PCR1, PCR2) and its signing certificate (PCR8). PCR3 and PCR4 name the
// IAM role and the instance, which would tie a peer to one host.
var rosterPCRs = []int{0, 1, 2, 8}

// memberOf is a cosigner's own roster entry (pkg/workspace.Member), with
// the image PCRs of its own attestation document: what
// `cosignerctl workspace bootstrap` takes for each first member.
func memberOf(m wire.Member, approvalKey []byte) ws.Member {
	pcrs := map[int][]byte{}
	for _, i := range rosterPCRs {
		if v, ok := m.PCRs[i]; ok && !allZero(v) {
			pcrs[i] = v
		}
	}
	m.PCRs = pcrs
	return ws.MemberOf(m, approvalKey)
}

// writeMember writes this cosigner's roster entry (public keys only).
func writeMember(path string, m ws.Member) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
