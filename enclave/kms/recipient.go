package kms

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"math/big"
	"slices"

	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/fxamacker/cbor/v2"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/nsm"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/cms"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
)

// recipientKeyBits is the size of the ephemeral RSA key KMS encrypts to.
const recipientKeyBits = 2048

// recipient is one call's ephemeral RSA key and the attestation document
// that carries its public half.
type recipient struct {
	key *rsa.PrivateKey
	doc []byte
}

// newRecipient generates a fresh RSA key from crypto/rand (the kernel RNG,
// seeded from the NSM at boot) and has att attest its SPKI as public_key.
func newRecipient(att nsm.Attester) (*recipient, error) {
	key, err := rsa.GenerateKey(rand.Reader, recipientKeyBits)
	if err != nil {
		return nil, fmt.Errorf("kms: generating the recipient key: %w", err)
	}
	r := &recipient{key: key}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		r.wipe()
		return nil, fmt.Errorf("kms: encoding the recipient key: %w", err)
	}
	r.doc, err = att.Attest(nsm.Request{PublicKey: spki})
	if err != nil {
		r.wipe()
		return nil, fmt.Errorf("kms: attesting the recipient key: %w", err)
	}
	return r, nil
}

// info is the Recipient request parameter.
func (r *recipient) info() *kmstypes.RecipientInfo {
	return &kmstypes.RecipientInfo{
		AttestationDocument:    r.doc,
		KeyEncryptionAlgorithm: kmstypes.KeyEncryptionMechanismRsaesOaepSha256,
	}
}

// open returns the data key from a response: it refuses a response that
// carries the key in plaintext (wiping those bytes), and otherwise opens
// forRecipient with r's key and checks that it holds exactly DataKeySize
// bytes. Every failure to open is the same opaque ErrBadResponse.
func (r *recipient) open(plaintext, forRecipient []byte) (secret.Bytes, error) {
	if len(plaintext) > 0 {
		clear(plaintext)
		return secret.Bytes{}, ErrRecipientIgnored
	}
	dataKey, err := cms.Decrypt(forRecipient, r.key)
	defer clear(dataKey)
	if err != nil || len(dataKey) != DataKeySize {
		return secret.Bytes{}, ErrBadResponse
	}
	return secret.New(dataKey), nil
}

// wipe zeroes the private key's secret numbers (D, the primes and the CRT
// values; the key has two primes, so the deprecated CRTValues are empty).
// Copies the standard library keeps internally, or made while generating,
// cannot be reached: this shortens the key's life, it does not guarantee
// its end.
func (r *recipient) wipe() {
	k := r.key
	wipeInts(k.D, k.Precomputed.Dp, k.Precomputed.Dq, k.Precomputed.Qinv)
	wipeInts(k.Primes...)
}

func wipeInts(xs ...*big.Int) {
	for _, x := range xs {
		if x != nil {
			clear(x.Bits())
			x.SetInt64(0)
		}
	}
}

// pcr0 returns the lowercase hex of PCR0 in r's attestation document, for
// error messages (noting a debug-mode enclave's zeros), or "unknown". The document comes from this enclave's own
// NSM; PCRs are not secret.
func (r *recipient) pcr0() string {
	var msg struct {
		_           struct{} `cbor:",toarray"`
		Protected   cbor.RawMessage
		Unprotected cbor.RawMessage
		Payload     []byte
		Signature   cbor.RawMessage
	}
	var payload struct {
		PCRs map[int][]byte `cbor:"pcrs"`
	}
	if cbor.Unmarshal(r.doc, &msg) != nil || cbor.Unmarshal(msg.Payload, &payload) != nil {
		return "unknown"
	}
	v, ok := payload.PCRs[0]
	switch {
	case !ok:
		return "unknown"
	case !slices.ContainsFunc(v, func(b byte) bool { return b != 0 }):
		return hex.EncodeToString(v) + ", all zero: an enclave in debug mode"
	}
	return hex.EncodeToString(v)
}
