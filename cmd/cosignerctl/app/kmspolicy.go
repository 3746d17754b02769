package app

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/kms"
)

// The condition keys KMS fills from a verified Recipient attestation
// document (AWS KMS Developer Guide, "Condition keys for Nitro Enclaves").
const (
	condImageSha384 = "kms:RecipientAttestation:ImageSha384" // PCR0
	condPCRPrefix   = "kms:RecipientAttestation:PCR"
	condContext     = "kms:EncryptionContext:"
)

// dataKeyActions are what the enclave calls; deniedActions everything that
// could hand the data key out some other way (ReEncrypt decrypts under this
// key and re-encrypts under another).
var (
	dataKeyActions = []string{"kms:GenerateDataKey", "kms:Decrypt"}
	deniedActions  = []string{"kms:Decrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"}
)

// adminActions administer the key without using it: no Decrypt, no
// GenerateDataKey*, no ReEncrypt*, no CreateGrant (a grant could allow
// Decrypt without attestation).
var adminActions = []string{
	"kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:ListKeyPolicies",
	"kms:GetKeyRotationStatus", "kms:EnableKeyRotation", "kms:DisableKeyRotation",
	"kms:ListGrants", "kms:RevokeGrant", "kms:ListResourceTags", "kms:TagResource", "kms:UntagResource",
	"kms:UpdateKeyDescription", "kms:EnableKey", "kms:DisableKey",
	"kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion",
}

// maxPCR0s bounds --pcr0: one release, or two during an upgrade, and some room.
const maxPCR0s = 4

var (
	// roleARNPattern is an IAM role ARN: partition, 12-digit account, an
	// optional path of printable ASCII and a role name of IAM's characters.
	roleARNPattern = regexp.MustCompile(`^arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b|aws-iso-e|aws-iso-f|aws-eusc):iam::([0-9]{12}):role/((?:[!-)+->@-~]*/)?)([A-Za-z0-9+=,.@_-]{1,64})$`)
	// cosignerIDPattern is the rule cosigner-parent applies to --cosigner-id.
	cosignerIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$`)
)

// pcrList is a repeatable PCR flag: 48 bytes of hex each, kept in
// lowercase hex.
type pcrList []string

func (l *pcrList) String() string { return strings.Join(*l, ",") }

func (l *pcrList) Set(v string) error {
	b, err := hex.DecodeString(v)
	switch {
	case err != nil || len(b) != 48:
		return errors.New("want 96 hex digits (48 bytes)")
	case bytes.Equal(b, make([]byte, 48)):
		return errors.New("an all-zero PCR is what every debug-mode enclave reports; it binds nothing")
	}
	*l = append(*l, hex.EncodeToString(b))
	return nil
}

type kmsPolicyConfig struct {
	pcr0, pcr8 pcrList
	roleARN    string
	cosignerID string
}

func runKMSPolicy(_ context.Context, args []string, io IO) int {
	var cfg kmsPolicyConfig
	fs := newFlagSet("kms-policy", "", io)
	fs.Var(&cfg.pcr0, "pcr0", "PCR0 of the enclave image (`HEX`, from 'cosignerctl eif inspect'); repeat during an upgrade to allow old and new")
	fs.Var(&cfg.pcr8, "pcr8", "PCR8 of the image's signing certificate (`HEX`; optional, repeatable)")
	fs.StringVar(&cfg.roleARN, "role-arn", "", "IAM role `ARN` whose credentials the parent hands to the enclave")
	fs.StringVar(&cfg.cosignerID, "cosigner-id", "", "the cosigner's `ID`, as given to cosigner-enclave --cosigner-id")
	if code, done := parse(fs, args, 0); done {
		return code
	}
	if err := cfg.check(); err != nil {
		fmt.Fprintf(io.Err, "cosignerctl kms-policy: %v\n", err)
		fs.Usage()
		return ExitUsage
	}
	if code := printJSON(io, cfg.policy()); code != ExitOK {
		return code
	}
	cfg.explain(io)
	return ExitOK
}

func (cfg *kmsPolicyConfig) check() error {
	switch {
	case len(cfg.pcr0) == 0:
		return errors.New("--pcr0 is required")
	case len(cfg.pcr0) > maxPCR0s || len(cfg.pcr8) > maxPCR0s:
		return fmt.Errorf("at most %d values of --pcr0 and of --pcr8", maxPCR0s)
	case strings.Contains(cfg.roleARN, ":sts::"):
		return errors.New("--role-arn must be the IAM role (arn:...:iam::ACCOUNT:role/NAME), not an assumed-role session")
	case !roleARNPattern.MatchString(cfg.roleARN):
		return fmt.Errorf("--role-arn %q is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)", cfg.roleARN)
	case !cosignerIDPattern.MatchString(cfg.cosignerID):
		return errors.New("--cosigner-id must be 1 to 48 of [A-Za-z0-9_-], starting with a letter or digit")
	}
	return nil
}

// keyPolicy is a KMS key policy document; fields print in this order.
type keyPolicy struct {
	Version   string      `json:"Version"`
	ID        string      `json:"Id"`
	Statement []statement `json:"Statement"`
}

type statement struct {
	Sid       string                    `json:"Sid"`
	Effect    string                    `json:"Effect"`
	Principal map[string]string         `json:"Principal"`
	Action    []string                  `json:"Action"`
	Resource  string                    `json:"Resource"`
	Condition map[string]map[string]any `json:"Condition,omitempty"`
}

// policy builds the key policy: administration without data access for
// the account, attested data-key access for the role, and denials for
// every other way to the data key.
func (cfg *kmsPolicyConfig) policy() keyPolicy {
	m := roleARNPattern.FindStringSubmatch(cfg.roleARN)
	root := "arn:" + m[1] + ":iam::" + m[2] + ":root"
	everyone := map[string]string{"AWS": "*"}
	attested := map[string]any{condImageSha384: values(cfg.pcr0), condPCRPrefix + "0": values(cfg.pcr0)}
	if len(cfg.pcr8) > 0 {
		attested[condPCRPrefix+"8"] = values(cfg.pcr8)
	}
	stmts := []statement{
		{Sid: "KeyAdministrationWithoutDataKeyAccess", Effect: "Allow", Principal: map[string]string{"AWS": root},
			Action: adminActions, Resource: "*"},
		{Sid: "EnclaveDataKeyOnlyWithAttestation", Effect: "Allow", Principal: map[string]string{"AWS": cfg.roleARN},
			Action: dataKeyActions, Resource: "*",
			Condition: map[string]map[string]any{"StringEqualsIgnoreCase": attested, "StringEquals": cfg.context()}},
		{Sid: "DenyDataKeyOutsideTheReleaseImage", Effect: "Deny", Principal: everyone, Action: deniedActions, Resource: "*",
			Condition: map[string]map[string]any{"StringNotEqualsIgnoreCase": {condImageSha384: values(cfg.pcr0)}}},
	}
	if len(cfg.pcr8) > 0 {
		stmts = append(stmts, statement{Sid: "DenyDataKeyToOtherSigners", Effect: "Deny", Principal: everyone,
			Action: deniedActions, Resource: "*",
			Condition: map[string]map[string]any{"StringNotEqualsIgnoreCase": {condPCRPrefix + "8": values(cfg.pcr8)}}})
	}
	stmts = append(stmts, statement{Sid: "DenyDataKeyToOtherCosigners", Effect: "Deny", Principal: everyone,
		Action: deniedActions, Resource: "*",
		Condition: map[string]map[string]any{"StringNotEquals": {condContext + kms.ContextKeyCosigner: cfg.cosignerID}}})
	return keyPolicy{Version: "2012-10-17", ID: "nitro-cosigner-" + cfg.cosignerID, Statement: stmts}
}

// context is the encryption context enclave/kms sends with every call.
func (cfg *kmsPolicyConfig) context() map[string]any {
	return map[string]any{
		condContext + kms.ContextKeyCosigner: cfg.cosignerID,
		condContext + kms.ContextKeyPurpose:  kms.PurposeSealedState,
	}
}

// values is one value as a string and several as a list, as people write
// IAM policies.
func values(vs []string) any {
	if len(vs) == 1 {
		return vs[0]
	}
	return []string(vs)
}

// explain tells the operator, on stderr, what the policy does and what
// would defeat it.
func (cfg *kmsPolicyConfig) explain(io IO) {
	w := io.Err
	fmt.Fprintf(w, "The policy lets %s call kms:GenerateDataKey and kms:Decrypt only from an enclave whose PCR0 is %s",
		cfg.roleARN, strings.Join(cfg.pcr0, " or "))
	if len(cfg.pcr8) > 0 {
		fmt.Fprintf(w, " and whose PCR8 is %s", strings.Join(cfg.pcr8, " or "))
	}
	fmt.Fprintf(w, ", with the encryption context %s=%s, %s=%s.\n",
		kms.ContextKeyCosigner, cfg.cosignerID, kms.ContextKeyPurpose, kms.PurposeSealedState)
	fmt.Fprintf(w, "The KeyAdministrationWithoutDataKeyAccess statement gives the account root (and through it the account's IAM policies) key administration only: it grants no kms:Decrypt, kms:GenerateDataKey, kms:ReEncrypt* or kms:CreateGrant.\n")
	fmt.Fprintf(w, "WARNING: any other key policy statement, IAM policy or grant that allows kms:Decrypt on this key without these conditions defeats the attestation binding. The Deny statements refuse such requests, but whoever may call kms:PutKeyPolicy on this key can remove them: never give that permission to %s, whose credentials the parent host holds.\n", cfg.roleARN)
	fmt.Fprintf(w, "A new release changes PCR0: before upgrading, apply a policy made with both the old and the new --pcr0, and drop the old one once every instance runs the new image.\n")
}
