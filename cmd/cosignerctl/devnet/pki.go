//go:build !release

package devnet

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
)

// roleURIPrefix starts the role URI SANs of client certificates
// (enclave/api's convention).
const roleURIPrefix = "urn:nitro-cosigner:role:"

// Number of devnet policy admins, and how many must approve a policy.
const (
	numAdmins   = 3
	adminQuorum = 2
)

// certLifetime is the validity of every devnet certificate.
const certLifetime = 10 * 365 * 24 * time.Hour

// pki is the devnet's key material, created on the first run and read
// back on later ones.
type pki struct {
	simCA       *attestsim.CA
	admins      []crypto.Signer
	handlerKey  *ecdsa.PrivateKey // signs the approval server's answers
	approvalTLS approvalTLS
}

// approvalTLS is the approval server's certificate chain and key.
type approvalTLS struct {
	certPEM, keyPEM []byte
}

// config is the approval server's TLS configuration.
func (a approvalTLS) config() (*tls.Config, error) {
	cert, err := tls.X509KeyPair(a.certPEM, a.keyPEM)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// paths of the key material under DIR.
type pkiPaths struct{ dir string }

func (p pkiPaths) simCA() string       { return filepath.Join(p.dir, "sim-ca.pem") }
func (p pkiPaths) simRoot() string     { return filepath.Join(p.dir, "sim-root.pem") }
func (p pkiPaths) clientCA() CertFiles { return p.pair("ca") }
func (p pkiPaths) client(r string) CertFiles {
	return CertFiles{Cert: filepath.Join(p.dir, "clients", r+".pem"), Key: filepath.Join(p.dir, "clients", r+"-key.pem")}
}
func (p pkiPaths) admins() string { return filepath.Join(p.dir, "admins.pem") }
func (p pkiPaths) admin(i int) string {
	return filepath.Join(p.dir, "admins", fmt.Sprintf("admin-%d-key.pem", i))
}
func (p pkiPaths) approvalCA() string        { return filepath.Join(p.dir, "approval", "ca.pem") }
func (p pkiPaths) approvalServer() CertFiles { return p.pair(filepath.Join("approval", "server")) }
func (p pkiPaths) handlerKey() string        { return filepath.Join(p.dir, "approval", "handler-key.pem") }
func (p pkiPaths) handlerPub() string        { return filepath.Join(p.dir, "approval", "handler.pem") }

func (p pkiPaths) pair(name string) CertFiles {
	return CertFiles{Cert: filepath.Join(p.dir, name+".pem"), Key: filepath.Join(p.dir, name+"-key.pem")}
}

func (p pkiPaths) adminKeys() []string {
	out := make([]string, numAdmins)
	for i := range out {
		out[i] = p.admin(i + 1)
	}
	return out
}

// loadPKI reads the key material under dir, creating whatever part of it
// is missing.
func loadPKI(dir string) (*pki, error) {
	p := pkiPaths{dir}
	for _, sub := range []string{"clients", "admins", "approval"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	k := &pki{}
	var err error
	if k.simCA, err = ensureSimCA(p); err != nil {
		return nil, fmt.Errorf("simulator CA: %w", err)
	}
	if err := ensureClients(p); err != nil {
		return nil, fmt.Errorf("client certificates: %w", err)
	}
	if k.admins, err = ensureAdmins(p); err != nil {
		return nil, fmt.Errorf("policy admins: %w", err)
	}
	if k.handlerKey, err = ensureHandlerKey(p); err != nil {
		return nil, fmt.Errorf("approval handler key: %w", err)
	}
	if k.approvalTLS, err = ensureApprovalTLS(p); err != nil {
		return nil, fmt.Errorf("approval server certificate: %w", err)
	}
	return k, nil
}

// exist reports whether every path exists.
func exist(paths ...string) bool {
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

func ensureSimCA(p pkiPaths) (*attestsim.CA, error) {
	if exist(p.simCA(), p.simRoot()) {
		b, err := os.ReadFile(p.simCA())
		if err != nil {
			return nil, err
		}
		return attestsim.LoadCA(b)
	}
	ca, err := attestsim.NewCA()
	if err != nil {
		return nil, err
	}
	saved, err := ca.MarshalPEM()
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(p.simRoot(), ca.RootPEM(), 0o644); err != nil {
		return nil, err
	}
	return ca, writeFileAtomic(p.simCA(), saved, 0o600)
}

// ensureClients makes the client CA and a certificate per role.
func ensureClients(p pkiPaths) error {
	files := []string{p.clientCA().Cert, p.clientCA().Key}
	for _, r := range Roles {
		files = append(files, p.client(r).Cert, p.client(r).Key)
	}
	if exist(files...) {
		return nil
	}
	ca, caKey, err := newCA("nitro-cosigner devnet client CA")
	if err != nil {
		return err
	}
	if err := writeCert(p.clientCA(), ca.Raw, caKey); err != nil {
		return err
	}
	for _, r := range Roles {
		role, err := url.Parse(roleURIPrefix + r)
		if err != nil {
			return err
		}
		tmpl := leafTemplate("devnet-" + r)
		tmpl.URIs = []*url.URL{role}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		if err := issueTo(p.client(r), tmpl, ca, caKey); err != nil {
			return err
		}
	}
	return nil
}

// ensureApprovalTLS makes the approval server's CA and certificate (for
// 127.0.0.1 and localhost).
func ensureApprovalTLS(p pkiPaths) (approvalTLS, error) {
	srv := p.approvalServer()
	if !exist(p.approvalCA(), srv.Cert, srv.Key) {
		ca, caKey, err := newCA("nitro-cosigner devnet approval CA")
		if err != nil {
			return approvalTLS{}, err
		}
		if err := writeFileAtomic(p.approvalCA(), pemCert(ca.Raw), 0o644); err != nil {
			return approvalTLS{}, err
		}
		tmpl := leafTemplate("devnet approval server")
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		if err := issueTo(srv, tmpl, ca, caKey); err != nil {
			return approvalTLS{}, err
		}
	}
	certPEM, err := os.ReadFile(srv.Cert)
	if err != nil {
		return approvalTLS{}, err
	}
	keyPEM, err := os.ReadFile(srv.Key)
	return approvalTLS{certPEM: certPEM, keyPEM: keyPEM}, err
}

// ensureAdmins makes the policy admins' Ed25519 keys and the public key
// file the enclaves read.
func ensureAdmins(p pkiPaths) ([]crypto.Signer, error) {
	if !exist(append(p.adminKeys(), p.admins())...) {
		if err := newAdmins(p); err != nil {
			return nil, err
		}
	}
	keys := make([]crypto.Signer, 0, numAdmins)
	for _, path := range p.adminKeys() {
		k, err := readPrivateKey(path)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func newAdmins(p pkiPaths) error {
	var pubs []byte
	for _, path := range p.adminKeys() {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		if err := writeKey(path, priv); err != nil {
			return err
		}
		der, err := x509.MarshalPKIXPublicKey(priv.Public())
		if err != nil {
			return err
		}
		pubs = append(pubs, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
	}
	return writeFileAtomic(p.admins(), pubs, 0o644)
}

// ensureHandlerKey makes the approval server's ES256 signing key and the
// public key file the enclaves pin.
func ensureHandlerKey(p pkiPaths) (*ecdsa.PrivateKey, error) {
	if !exist(p.handlerKey(), p.handlerPub()) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		if err != nil {
			return nil, err
		}
		if err := writeKey(p.handlerKey(), key); err != nil {
			return nil, err
		}
		if err := writeFileAtomic(p.handlerPub(), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
			return nil, err
		}
	}
	k, err := readPrivateKey(p.handlerKey())
	if err != nil {
		return nil, err
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("not a P-256 key")
	}
	return ec, nil
}

func newCA(cn string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := leafTemplate(cn)
	tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.MaxPathLenZero = true, true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func leafTemplate(cn string) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127)) // never fails (crypto/rand)
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"nitro-cosigner devnet"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
}

// issueTo issues tmpl under the CA for a fresh P-256 key and writes both.
func issueTo(files CertFiles, tmpl, ca *x509.Certificate, caKey *ecdsa.PrivateKey) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	return writeCert(files, der, key)
}

func writeCert(files CertFiles, der []byte, key crypto.Signer) error {
	if err := writeKey(files.Key, key); err != nil {
		return err
	}
	return writeFileAtomic(files.Cert, pemCert(der), 0o644)
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// writeKey writes a private key as PKCS#8 PEM, readable by its owner
// only.
func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	defer clear(der)
	return writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

func readPrivateKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s holds no PKCS#8 private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: unsupported key type %T", path, k)
	}
	return s, nil
}
