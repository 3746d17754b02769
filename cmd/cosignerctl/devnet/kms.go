//go:build !release

package devnet

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation/attestsim"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/kmsemu"
)

// contextKeyCosigner is the encryption context key naming the cosigner:
// enclave/kms.ContextKeyCosigner, repeated so that the devnet does not
// link enclave code (TestContextKey checks they agree).
const contextKeyCosigner = "nitro-cosigner:cosigner"

// openKMS opens the KMS emulator persisted in DIR/kms, trusting the
// simulator's root for Recipient documents.
func openKMS(dir string, ca *attestsim.CA, log *slog.Logger) (*kmsemu.Emulator, error) {
	if err := os.MkdirAll(filepath.Join(dir, "kms"), 0o700); err != nil {
		return nil, err
	}
	e, err := kmsemu.Open(filepath.Join(dir, "kms", "keys.json"), kmsemu.Options{
		Roots: ca.Roots(), Region: DefaultRegion, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("opening the KMS emulator: %w", err)
	}
	return e, nil
}

// keyPolicy allows GenerateDataKey and Decrypt only with a Recipient
// document showing pcrs, and only for cosigner id's encryption context.
func keyPolicy(id string, pcrs map[int][]byte) (string, error) {
	att := map[string]string{}
	for i, v := range pcrs {
		att["kms:RecipientAttestation:PCR"+strconv.Itoa(i)] = hex.EncodeToString(v)
	}
	policy := map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Sid":       "devnet-enclave-" + id,
			"Effect":    "Allow",
			"Principal": map[string]any{"AWS": "*"},
			"Resource":  "*",
			"Action":    []string{"kms:GenerateDataKey", "kms:Decrypt"},
			"Condition": map[string]any{
				"StringEqualsIgnoreCase": att,
				"StringEquals":           map[string]string{"kms:EncryptionContext:" + contextKeyCosigner: id},
			},
		}},
	}
	b, err := json.Marshal(policy)
	return string(b), err
}

// createKey creates cosigner id's KMS key through the emulator's API.
func createKey(ctx context.Context, endpoint, id string, pcrs map[int][]byte) (string, error) {
	policy, err := keyPolicy(id, pcrs)
	if err != nil {
		return "", err
	}
	client := awskms.New(awskms.Options{Region: DefaultRegion, BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(devAccessKey, devSecretKey, "")})
	out, err := client.CreateKey(ctx, &awskms.CreateKeyInput{
		Policy: aws.String(policy), Description: aws.String("nitro-cosigner devnet: " + id),
	})
	if err != nil {
		return "", fmt.Errorf("creating %s's KMS key: %w", id, err)
	}
	return aws.ToString(out.KeyMetadata.KeyId), nil
}
