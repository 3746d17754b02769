package kms

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/nsm"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/secret"
)

// The encryption context of every data key. Key policies may condition on
// kms:EncryptionContext:<key> with these names; changing them orphans every
// wrapped key already stored.
const (
	// ContextKeyCosigner names the cosigner the data key belongs to.
	ContextKeyCosigner = "nitro-cosigner:cosigner"
	// ContextKeyPurpose names what the data key is for.
	ContextKeyPurpose = "nitro-cosigner:purpose"
	// PurposeSealedState is the purpose of the key of the sealed state
	// database (version 1 of its format).
	PurposeSealedState = "sealed-state-v1"
)

// DataKeySize is the size of the data key in bytes (AES-256).
const DataKeySize = 32

// Limits on identifiers.
const (
	// MaxCosignerIDSize bounds the cosigner ID, which is sent in the
	// encryption context (KMS allows 8 KiB for the whole context).
	MaxCosignerIDSize = 256
	// MaxWrappedKeySize is KMS's largest ciphertext blob.
	MaxWrappedKeySize = 6144
)

// Operation names, as KMS spells them.
const (
	opGenerateDataKey = "GenerateDataKey"
	opDecrypt         = "Decrypt"
)

// ErrConfig reports an unusable Config.
var ErrConfig = errors.New("kms: bad configuration")

// Config configures New.
type Config struct {
	// KMS is the AWS SDK client, built by the caller; its HTTP client
	// should come from NewHTTPClient. Required.
	KMS *awskms.Client
	// Attester produces the Recipient attestation documents. Required.
	Attester nsm.Attester
	// KeyID is the KMS key: a key ID, key ARN, alias name or alias ARN.
	// Required.
	KeyID string
	// CosignerID names this cosigner in the encryption context: 1 to
	// MaxCosignerIDSize bytes of UTF-8 without control characters.
	// Required.
	CosignerID string
	// Logger receives one line per data key obtained (identifiers only);
	// nil discards them.
	Logger *slog.Logger
}

// Client obtains the sealed-state data key from KMS for one cosigner. It
// holds no mutable state and is safe for concurrent use.
type Client struct {
	kms        *awskms.Client
	att        nsm.Attester
	keyID      string
	cosignerID string
	log        *slog.Logger

	// newRecipient makes each call's recipient (a test seam).
	newRecipient func(nsm.Attester) (*recipient, error)
}

// New returns a Client for cfg, or an error wrapping ErrConfig.
func New(cfg Config) (*Client, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{kms: cfg.KMS, att: cfg.Attester, keyID: cfg.KeyID, cosignerID: cfg.CosignerID,
		log: log, newRecipient: newRecipient}, nil
}

func (cfg Config) check() error {
	switch {
	case cfg.KMS == nil:
		return fmt.Errorf("%w: no KMS client", ErrConfig)
	case cfg.Attester == nil:
		return fmt.Errorf("%w: no attester", ErrConfig)
	case cfg.KeyID == "":
		return fmt.Errorf("%w: no KMS key ID", ErrConfig)
	case !validCosignerID(cfg.CosignerID):
		return fmt.Errorf("%w: the cosigner ID must be 1 to %d bytes of UTF-8 without control characters",
			ErrConfig, MaxCosignerIDSize)
	}
	return nil
}

func validCosignerID(id string) bool {
	return id != "" && len(id) <= MaxCosignerIDSize && utf8.ValidString(id) &&
		!strings.ContainsFunc(id, unicode.IsControl)
}

// GenerateDataKey asks KMS for a new 256-bit data key bound to this
// cosigner's encryption context. It returns the data key, which the caller
// must wipe when done, and the wrapped key to store (for Decrypt). See the
// package documentation for the errors.
func (c *Client) GenerateDataKey(ctx context.Context) (secret.Bytes, []byte, error) {
	r, err := c.newRecipient(c.att)
	if err != nil {
		return secret.Bytes{}, nil, err
	}
	defer r.wipe()
	out, err := c.kms.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{
		KeyId:             aws.String(c.keyID),
		KeySpec:           kmstypes.DataKeySpecAes256,
		EncryptionContext: c.encryptionContext(),
		Recipient:         r.info(),
	}, withoutBodyLogging)
	if err != nil {
		return secret.Bytes{}, nil, c.translate(ctx, opGenerateDataKey, r, err)
	}
	key, err := r.open(out.Plaintext, out.CiphertextForRecipient)
	if err != nil {
		return secret.Bytes{}, nil, c.refuse(opGenerateDataKey, err)
	}
	if len(out.CiphertextBlob) == 0 || len(out.CiphertextBlob) > MaxWrappedKeySize {
		key.Wipe()
		return secret.Bytes{}, nil, c.refuse(opGenerateDataKey, ErrBadResponse)
	}
	c.log.Info("kms data key generated", "key_id", c.keyID, "cosigner_id", c.cosignerID)
	return key, bytes.Clone(out.CiphertextBlob), nil
}

// Decrypt unwraps a key returned by GenerateDataKey (with the same KMS key
// and cosigner ID) and returns the data key, which the caller must wipe
// when done. See the package documentation for the errors.
func (c *Client) Decrypt(ctx context.Context, wrapped []byte) (secret.Bytes, error) {
	if len(wrapped) == 0 || len(wrapped) > MaxWrappedKeySize {
		return secret.Bytes{}, fmt.Errorf("%w: it is %d bytes, want 1 to %d",
			ErrInvalidWrappedKey, len(wrapped), MaxWrappedKeySize)
	}
	r, err := c.newRecipient(c.att)
	if err != nil {
		return secret.Bytes{}, err
	}
	defer r.wipe()
	out, err := c.kms.Decrypt(ctx, &awskms.DecryptInput{
		KeyId:             aws.String(c.keyID),
		CiphertextBlob:    wrapped,
		EncryptionContext: c.encryptionContext(),
		Recipient:         r.info(),
	}, withoutBodyLogging)
	if err != nil {
		return secret.Bytes{}, c.translate(ctx, opDecrypt, r, err)
	}
	key, err := r.open(out.Plaintext, out.CiphertextForRecipient)
	if err != nil {
		return secret.Bytes{}, c.refuse(opDecrypt, err)
	}
	c.log.Info("kms data key unwrapped", "key_id", c.keyID, "cosigner_id", c.cosignerID)
	return key, nil
}

// refuse says which call's response was refused, and why (err).
func (c *Client) refuse(op string, err error) error {
	return fmt.Errorf("%w (%s on key %s)", err, op, c.keyID)
}

// encryptionContext returns a fresh copy of this cosigner's context.
func (c *Client) encryptionContext() map[string]string {
	return map[string]string{
		ContextKeyCosigner: c.cosignerID,
		ContextKeyPurpose:  PurposeSealedState,
	}
}

// withoutBodyLogging switches off the SDK's request and response body
// logging for one call, whatever the caller's aws.Config asks: a
// misbehaving KMS could put a plaintext key in a response body.
func withoutBodyLogging(o *awskms.Options) {
	o.ClientLogMode &^= aws.LogRequestWithBody | aws.LogResponseWithBody
}
