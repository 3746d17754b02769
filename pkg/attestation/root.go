package attestation

import (
	"crypto/sha256"
	"crypto/x509"
	_ "embed"
	"encoding/hex"
	"encoding/pem"
	"sync"
)

// awsNitroRootPEM is the AWS Nitro Enclaves root G1 (CN=aws.nitro-enclaves,
// P-384, valid 2019-10-28 to 2049-10-28), as published by AWS.
//
//go:embed aws_nitro_root_g1.pem
var awsNitroRootPEM []byte

// AWSNitroRootSHA256 is the hex SHA-256 of the DER of the AWS Nitro
// Enclaves root G1. (The 8cf60e2b… value in AWS's documentation is the hash of
// the zip download, not of the certificate.)
const AWSNitroRootSHA256 = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"

// awsNitroRootDER is checked at init: a build whose embedded root differs
// from the pinned hash does not start.
var awsNitroRootDER = mustPinnedRoot(awsNitroRootPEM)

// defaultRoots is the pool Verify uses when VerifyOptions.Roots is nil. It is
// never handed out, so no caller can add to it.
var defaultRoots = sync.OnceValue(AWSNitroRoots)

func mustPinnedRoot(pemBytes []byte) []byte {
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "CERTIFICATE" {
		panic("attestation: embedded AWS Nitro root is not a PEM certificate")
	}
	sum := sha256.Sum256(block.Bytes)
	if hex.EncodeToString(sum[:]) != AWSNitroRootSHA256 {
		panic("attestation: embedded AWS Nitro root does not match its pinned SHA-256")
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		panic("attestation: embedded AWS Nitro root does not parse: " + err.Error())
	}
	return block.Bytes
}

// AWSNitroRoot returns the pinned AWS Nitro Enclaves root G1. Each call
// returns a new copy.
func AWSNitroRoot() *x509.Certificate {
	c, err := x509.ParseCertificate(awsNitroRootDER)
	if err != nil {
		panic("unreachable: the root parsed at init") // see mustPinnedRoot
	}
	return c
}

// AWSNitroRoots returns a new pool holding only the pinned AWS Nitro
// Enclaves root G1: the roots Verify trusts when VerifyOptions.Roots is nil.
func AWSNitroRoots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(AWSNitroRoot())
	return p
}
