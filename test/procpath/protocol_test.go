package procpath_test

import (
	"bytes"
	"time"
)

// Environment of an enclave helper process.
const (
	helperEnv        = "NITRO_PROCPATH_HELPER" // "enclave" runs the helper
	helperIDEnv      = "NITRO_PROCPATH_ID"     // cosigner ID
	helperLinkEnv    = "NITRO_PROCPATH_LINK"   // the parent's --enclave-link
	helperCAEnv      = "NITRO_PROCPATH_CA"     // file holding the attestsim CA (MarshalPEM)
	helperFixtureEnv = "NITRO_PROCPATH_CMP"    // optional: CMP test-vector file to load
)

// Operations a helper performs, one request each.
const (
	opRoster      = "roster"       // Members: build and start the stack
	opOpen        = "open"         // Session, Parties: accept the session's frames
	opFROSTKeygen = "frost_keygen" // Session, Parties, Deadline, Threshold
	opSign        = "sign"         // Session, Parties, Deadline, Key, Digest
	opFixtureKey  = "fixture_key"  // the loaded CMP test-vector key
	opStats       = "stats"        // peer and wire counters
)

// memberInfo is a helper's public roster entry.
type memberInfo struct {
	ID         string `json:"id"`
	Identity   []byte `json:"identity"`   // Ed25519 public key
	Encryption []byte `json:"encryption"` // X25519 public key
}

// request is one line the orchestrator sends a helper.
type request struct {
	Op        string       `json:"op"`
	Members   []memberInfo `json:"members,omitempty"`
	Session   []byte       `json:"session,omitempty"`
	Parties   []string     `json:"parties,omitempty"`
	Deadline  time.Time    `json:"deadline,omitzero"`
	Threshold int          `json:"threshold,omitempty"`
	Key       []byte       `json:"key,omitempty"`
	Digest    []byte       `json:"digest,omitempty"`
}

// response is one line a helper answers. The first line a helper prints,
// unasked, carries its Member.
type response struct {
	Error     string            `json:"error,omitempty"`
	Member    *memberInfo       `json:"member,omitempty"`
	Key       []byte            `json:"key,omitempty"`
	PublicKey []byte            `json:"public_key,omitempty"`
	R         []byte            `json:"r,omitempty"`
	S         []byte            `json:"s,omitempty"`
	Accepted  uint64            `json:"accepted,omitempty"`
	Dropped   map[string]uint64 `json:"dropped,omitempty"`
}

// pcrs are the PCRs of every helper's documents and of every roster
// entry (not all zero: not a debug-mode enclave).
func pcrs() map[int][]byte {
	return map[int][]byte{0: bytes.Repeat([]byte{0xa0}, 48), 1: bytes.Repeat([]byte{0xa1}, 48), 2: bytes.Repeat([]byte{0xa2}, 48)}
}
