package replica

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
)

// manifest says where a restore starts: the snapshot of generation Gen
// covering SnapshotSeq; records continue in segments/<Gen>/ from
// SnapshotSeq+1 and follow seals into later generations. The end of the
// range is found by listing, so that a mutation costs one PUT, not two.
type manifest struct {
	Version        int    `json:"version"`
	Cosigner       string `json:"cosigner"`
	Gen            uint64 `json:"generation"`
	Snapshot       string `json:"snapshot"`
	SnapshotSeq    uint64 `json:"snapshot_seq"`
	SnapshotSHA256 string `json:"snapshot_sha256"`
	MAC            string `json:"mac"`
}

const manifestVersion = 1

// macInput is the canonical encoding the MAC covers (not the JSON text).
func (m manifest) macInput() []byte {
	var b []byte
	b = append(b, manifestLabel...)
	b = append(b, 0, byte(m.Version))
	for _, s := range []string{m.Cosigner, m.Snapshot, m.SnapshotSHA256} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	b = binary.BigEndian.AppendUint64(b, m.Gen)
	return binary.BigEndian.AppendUint64(b, m.SnapshotSeq)
}

func (k keys) computeMAC(m manifest) []byte {
	h := hmac.New(sha256.New, k.mac.Reveal())
	h.Write(m.macInput())
	return h.Sum(nil)
}

// encodeManifest fills in the version and MAC and returns the JSON.
func (k keys) encodeManifest(m manifest) ([]byte, error) {
	m.Version = manifestVersion
	m.MAC = hex.EncodeToString(k.computeMAC(m))
	return json.MarshalIndent(m, "", "  ")
}

// decodeManifest parses and verifies a manifest for cosigner. It returns
// nothing unverified: on error the manifest is zero.
func (k keys) decodeManifest(cosigner string, b []byte) (manifest, error) {
	var m manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return manifest{}, corrupt(manifestName, 0, 0, "malformed manifest")
	}
	mac, err := hex.DecodeString(m.MAC)
	if err != nil || !hmac.Equal(mac, k.computeMAC(m)) {
		return manifest{}, corrupt(manifestName, 0, 0, "manifest fails authentication (wrong data key or tampered)")
	}
	if err := m.check(cosigner); err != nil {
		return manifest{}, err
	}
	return m, nil
}

// check verifies an authenticated manifest's contents.
func (m manifest) check(cosigner string) error {
	switch {
	case m.Version != manifestVersion:
		return corrupt(manifestName, m.Gen, m.SnapshotSeq, "unknown manifest version")
	case m.Cosigner != cosigner:
		return corrupt(manifestName, m.Gen, m.SnapshotSeq, "manifest names another cosigner")
	case m.Gen == 0 || m.Snapshot != snapshotName(m.Gen, m.SnapshotSeq):
		return corrupt(manifestName, m.Gen, m.SnapshotSeq, "manifest snapshot does not match its position")
	case len(m.SnapshotSHA256) != 2*sha256.Size:
		return corrupt(manifestName, m.Gen, m.SnapshotSeq, "malformed snapshot hash")
	}
	return nil
}
