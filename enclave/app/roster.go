package app

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/mpc"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/wire"
)

// maxRosterFile bounds the roster file.
const maxRosterFile = 1 << 20

// rosterFile is the JSON roster: every cosigner of the deployment with the
// keys its enclave reported (see MemberFile) and the PCRs its documents
// must carry. It stands in for the workspace roster until cosigners pair.
type rosterFile struct {
	Members []memberJSON `json:"members"`
}

type memberJSON struct {
	ID         string            `json:"id"`
	Identity   string            `json:"identity"`   // hex Ed25519 public key
	Encryption string            `json:"encryption"` // hex X25519 public key
	PCRs       map[string]string `json:"pcrs"`       // index -> hex
	// ApprovalKey is the cosigner's approval-callback signing key (PKIX DER
	// hex), for the handler to pin; informational here.
	ApprovalKey string `json:"approval_key,omitempty"`
}

// loadRoster reads and checks a roster file.
func loadRoster(path string) (*wire.Roster, []mpc.PartyID, error) {
	b, err := readLimited(path, maxRosterFile)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: roster: %v", ErrConfig, err)
	}
	var f rosterFile
	dec := json.NewDecoder(bytesReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, nil, fmt.Errorf("%w: roster: does not parse", ErrConfig)
	}
	members := make([]wire.Member, 0, len(f.Members))
	ids := make([]mpc.PartyID, 0, len(f.Members))
	for i, m := range f.Members {
		wm, err := m.member()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: roster member %d: %v", ErrConfig, i, err)
		}
		members = append(members, wm)
		ids = append(ids, mpc.PartyID(m.ID))
	}
	roster, err := wire.NewRoster(members...)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: roster: %v", ErrConfig, err)
	}
	return roster, ids, nil
}

func (m memberJSON) member() (wire.Member, error) {
	id, err := hex.DecodeString(m.Identity)
	if err != nil || len(id) != ed25519.PublicKeySize {
		return wire.Member{}, errors.New("identity is not a hex Ed25519 key")
	}
	encRaw, err := hex.DecodeString(m.Encryption)
	if err != nil {
		return wire.Member{}, errors.New("encryption is not hex")
	}
	enc, err := ecdh.X25519().NewPublicKey(encRaw)
	if err != nil {
		return wire.Member{}, errors.New("encryption is not an X25519 key")
	}
	pcrs := map[int][]byte{}
	for k, v := range m.PCRs {
		i, err := strconv.Atoi(k)
		if err != nil {
			return wire.Member{}, errors.New("a PCR index is not a number")
		}
		if pcrs[i], err = hex.DecodeString(v); err != nil {
			return wire.Member{}, errors.New("a PCR value is not hex")
		}
	}
	return wire.Member{ID: m.ID, Identity: id, Encryption: enc, PCRs: pcrs}, nil
}

// rosterPCRs are the measurements a roster entry pins: the image (PCR0,
// PCR1, PCR2) and its signing certificate (PCR8). PCR3 and PCR4 name the
// IAM role and the instance, which would tie a peer to one host.
var rosterPCRs = []int{0, 1, 2, 8}

// memberOf is a cosigner's own roster entry, with the image PCRs of its
// own attestation document.
func memberOf(m wire.Member, approvalKey []byte) memberJSON {
	pcrs := map[string]string{}
	for _, i := range rosterPCRs {
		if v, ok := m.PCRs[i]; ok && !allZero(v) {
			pcrs[strconv.Itoa(i)] = hex.EncodeToString(v)
		}
	}
	return memberJSON{ID: m.ID, Identity: hex.EncodeToString(m.Identity), Encryption: hex.EncodeToString(m.Encryption.Bytes()),
		PCRs: pcrs, ApprovalKey: hex.EncodeToString(approvalKey)}
}

// writeMember writes this cosigner's roster entry (public keys only).
func writeMember(path string, m memberJSON) error {
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
