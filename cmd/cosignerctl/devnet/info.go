//go:build !release

package devnet

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/apiclient"
)

// InfoFile is the name of the devnet description in DIR.
const InfoFile = "devnet.json"

// InfoVersion is the version of the devnet.json format.
const InfoVersion = 1

// Roles of the client certificates (the API's roles).
const (
	RoleAdmin   = "admin"
	RoleSigner  = "signer"
	RoleAuditor = "auditor"
)

// Roles lists every role a client certificate is made for.
var Roles = []string{RoleAdmin, RoleSigner, RoleAuditor}

// Info is DIR/devnet.json: everything a client of the devnet needs. Paths
// are absolute. Ports chosen on the first run are reused by later ones.
type Info struct {
	Version int    `json:"version"`
	Dir     string `json:"dir"`
	// Cosigners in roster order.
	Cosigners []CosignerInfo `json:"cosigners"`
	// ClientCA issues the client certificates; the enclaves trust it.
	ClientCA CertFiles `json:"client_ca"`
	// Clients holds a certificate per role (admin, signer, auditor).
	Clients map[string]CertFiles `json:"clients"`
	// PolicyAdmins are the devnet's policy admins; Quorum of them must
	// approve a policy (`cosignerctl policy approve --admin-key`).
	PolicyAdmins AdminsInfo `json:"policy_admins"`
	// Attestation is what an API client must expect of the enclaves.
	Attestation AttestationInfo `json:"attestation"`
	Broker      BrokerInfo      `json:"broker"`
	S3          S3Info          `json:"s3"`
	KMS         KMSInfo         `json:"kms"`
	Approval    ApprovalInfo    `json:"approval"`
	// Roster is the devnet's record of its cosigners' roster entries
	// (roster.json: which identity each must attest).
	Roster string `json:"roster"`
	// Workspace is version 1 of the devnet's workspace (the bootstrap
	// file the enclaves start with; `cosignerctl workspace show` reads
	// the version they hold).
	Workspace string `json:"workspace"`
	// DefaultPolicy is the policy document given to a cosigner that has
	// none.
	DefaultPolicy string `json:"default_policy"`
}

// CosignerInfo describes one cosigner.
type CosignerInfo struct {
	ID string `json:"id"`
	// API is the cosigner's gRPC API, HOST:PORT: the parent's layer-4
	// ingress, forwarded to the enclave, where TLS ends.
	API string `json:"api"`
	// Health is the parent's HOST:PORT serving /healthz and /readyz.
	Health string `json:"health"`
	// Metrics is the parent's HOST:PORT serving /metrics: its own series
	// and its enclave's (cosigner_enclave_*), relayed.
	Metrics string `json:"metrics"`
	// KMSKeyID is the KMS key that wraps the cosigner's data key.
	KMSKeyID string `json:"kms_key_id"`
	// S3Prefix is where its sealed state lives in the bucket.
	S3Prefix   string `json:"s3_prefix"`
	ParentLog  string `json:"parent_log"`
	EnclaveLog string `json:"enclave_log"`
}

// CertFiles is a PEM certificate and its PEM private key.
type CertFiles struct {
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// AdminsInfo locates the policy admin keys.
type AdminsInfo struct {
	PublicKeys  string   `json:"public_keys"`  // PEM, every admin of the workspace
	PrivateKeys []string `json:"private_keys"` // PKCS#8 PEM, one file per admin
	Quorum      int      `json:"quorum"`
}

// AttestationInfo is what the enclaves' attestation documents show.
type AttestationInfo struct {
	// Root is the simulator's root certificate (PEM): the root to verify
	// the enclaves' documents with (cosignerctl --root).
	Root string `json:"root"`
	// PCRs are the simulated measurements (index to hex), never all zero.
	PCRs map[string]string `json:"pcrs"`
}

// BrokerInfo is the MPC message broker.
type BrokerInfo struct {
	Kind string `json:"kind"` // nats, kafka or sqs
	// URL is the NATS URL, the Kafka seed broker or the SQS endpoint.
	URL string `json:"url"`
	// Persistent tells whether queued frames survive a restart.
	Persistent bool `json:"persistent"`
}

// S3Info is the S3 endpoint of the sealed state.
type S3Info struct {
	Endpoint string `json:"endpoint"`
	Bucket   string `json:"bucket"`
	Region   string `json:"region"`
	// Embedded is true when the devnet serves S3 itself (persisted in
	// DIR/s3).
	Embedded bool `json:"embedded"`
}

// KMSInfo is the KMS emulator.
type KMSInfo struct {
	Endpoint string `json:"endpoint"`
	Region   string `json:"region"`
}

// ApprovalInfo is the sample approval-callback server.
type ApprovalInfo struct {
	URL string `json:"url"`
	// CA is the root its TLS certificate chains to.
	CA string `json:"ca"`
	// HandlerPublicKey is the key its answers are signed with (PEM), the
	// enclaves' --approval-handler-key.
	HandlerPublicKey string `json:"handler_public_key"`
	// Rule says when it rejects.
	Rule string `json:"rule"`
}

// Load reads DIR/devnet.json.
func Load(dir string) (*Info, error) {
	b, err := os.ReadFile(filepath.Join(dir, InfoFile))
	if err != nil {
		return nil, fmt.Errorf("devnet: %w", err)
	}
	var info Info
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("devnet: %s: %w", InfoFile, err)
	}
	if info.Version != InfoVersion {
		return nil, fmt.Errorf("devnet: %s has version %d, want %d", InfoFile, info.Version, InfoVersion)
	}
	return &info, nil
}

// write writes the description to DIR/devnet.json atomically.
func (info *Info) write() error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(info.Dir, InfoFile), append(b, '\n'), 0o644)
}

// Cosigner returns the cosigner with the given ID.
func (info *Info) Cosigner(id string) (CosignerInfo, bool) {
	i := slices.IndexFunc(info.Cosigners, func(c CosignerInfo) bool { return c.ID == id })
	if i < 0 {
		return CosignerInfo{}, false
	}
	return info.Cosigners[i], true
}

// ExpectedPCRs returns the PCRs the enclaves' documents show.
func (info *Info) ExpectedPCRs() (map[int][]byte, error) {
	pcrs := make(map[int][]byte, len(info.Attestation.PCRs))
	for k, v := range info.Attestation.PCRs {
		i, err := strconv.Atoi(k)
		if err != nil {
			return nil, fmt.Errorf("devnet: PCR index %q", k)
		}
		if pcrs[i], err = hex.DecodeString(v); err != nil {
			return nil, fmt.Errorf("devnet: PCR%d is not hex", i)
		}
	}
	return pcrs, nil
}

// AttestationRoots returns a pool holding the simulator's root.
func (info *Info) AttestationRoots() (*x509.CertPool, error) {
	b, err := os.ReadFile(info.Attestation.Root)
	if err != nil {
		return nil, fmt.Errorf("devnet: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New("devnet: the simulator root file holds no certificate")
	}
	return pool, nil
}

// ClientConfig returns what pkg/apiclient needs to dial cosigner id with
// the client certificate of role: its API address, the certificate, the
// simulator root and PCRs to attest against, and the cosigner ID to
// expect.
func (info *Info) ClientConfig(id, role string) (apiclient.Config, error) {
	c, ok := info.Cosigner(id)
	if !ok {
		return apiclient.Config{}, fmt.Errorf("devnet: no cosigner %q", id)
	}
	files, ok := info.Clients[role]
	if !ok {
		return apiclient.Config{}, fmt.Errorf("devnet: no client certificate for role %q", role)
	}
	cert, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		return apiclient.Config{}, fmt.Errorf("devnet: client certificate %s: %w", role, err)
	}
	roots, err := info.AttestationRoots()
	if err != nil {
		return apiclient.Config{}, err
	}
	pcrs, err := info.ExpectedPCRs()
	if err != nil {
		return apiclient.Config{}, err
	}
	return apiclient.Config{Addr: c.API, ClientCertificate: cert, Roots: roots, PCRs: pcrs, CosignerID: c.ID}, nil
}

// writeFileAtomic writes b to path through a temporary file and a rename.
func writeFileAtomic(path string, b []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
