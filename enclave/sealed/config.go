package sealed

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nitro-cosigner/nitro-cosigner/enclave/keystore"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/nsm"
)

// Config says where one cosigner's sealed state lives and how to reach it.
type Config struct {
	// CosignerID names the cosigner: in the KMS encryption context, in the
	// wrapped key object, in every segment and manifest. Required.
	CosignerID string

	// KMS is the AWS SDK KMS client (HTTP client from kms.NewHTTPClient),
	// Attester the NSM (or, in dev builds, the simulator), and KMSKeyID
	// the KMS key, exactly as written in the wrapped key object: changing
	// its spelling (key ID, ARN, alias) later makes Open refuse. Required.
	KMS      *awskms.Client
	Attester nsm.Attester
	KMSKeyID string

	// S3 is the AWS SDK S3 client, Bucket the bucket, and Prefix this
	// cosigner's folder in it ("" or ending in "/"). The wrapped key is
	// Prefix+"datakey.wrapped"; the replicated database is under
	// Prefix+"state/". Required, except Prefix.
	S3     *s3.Client
	Bucket string
	Prefix string

	// Dir is the directory (tmpfs in the enclave) for the database. A
	// database left there by an earlier run is discarded: S3 is the source
	// of truth. Required.
	Dir string

	// Retry bounds the retries of S3 and KMS calls during Init and Open.
	Retry Retry

	// SnapshotSegments, SnapshotBytes and MaxSnapshotSize tune compaction
	// and restore (see replica.Config; 0 means its defaults).
	SnapshotSegments int
	SnapshotBytes    int64
	MaxSnapshotSize  int64

	// Keystore configures the store (clock, pool size); its Replicator is
	// replaced and a nil Logger is replaced by Logger.
	Keystore keystore.Options

	// Logger receives operational messages, never a secret; nil discards.
	Logger *slog.Logger
}

// Retry is an exponential backoff with jitter: after the n-th failed
// attempt (n from 0) it waits a random time between half and all of
// min(Max, Initial·2ⁿ), and it gives up once the next wait would end after
// Budget has passed since the first attempt. Zero fields take defaults.
type Retry struct {
	Initial time.Duration // default 250ms
	Max     time.Duration // default 20s
	Budget  time.Duration // default 5m
	// AttemptTimeout bounds one attempt of a small call (the wrapped key,
	// KMS); default 30s. Restoring the database is bounded by ctx only: it
	// grows with the state.
	AttemptTimeout time.Duration
}

// Defaults for Retry's zero fields.
const (
	defaultInitial        = 250 * time.Millisecond
	defaultMax            = 20 * time.Second
	defaultBudget         = 5 * time.Minute
	defaultAttemptTimeout = 30 * time.Second
)

func (r Retry) withDefaults() Retry {
	if r.Initial <= 0 {
		r.Initial = defaultInitial
	}
	if r.Max <= 0 {
		r.Max = defaultMax
	}
	if r.Budget <= 0 {
		r.Budget = defaultBudget
	}
	if r.AttemptTimeout <= 0 {
		r.AttemptTimeout = defaultAttemptTimeout
	}
	return r
}

// Object names under Prefix.
const (
	wrappedKeyName = "datakey.wrapped"
	stateDir       = "state/"
)

func (c Config) check() error {
	switch {
	case c.CosignerID == "":
		return fmt.Errorf("%w: no cosigner ID", ErrConfig)
	case c.KMS == nil || c.Attester == nil || c.KMSKeyID == "":
		return fmt.Errorf("%w: KMS needs a client, an attester and a key ID", ErrConfig)
	case c.S3 == nil || c.Bucket == "":
		return fmt.Errorf("%w: S3 needs a client and a bucket", ErrConfig)
	case c.Prefix != "" && !strings.HasSuffix(c.Prefix, "/"):
		return fmt.Errorf("%w: the prefix must be empty or end in /", ErrConfig)
	case c.Dir == "":
		return fmt.Errorf("%w: no database directory", ErrConfig)
	case len(c.KMSKeyID) > maxKeyIDSize:
		return fmt.Errorf("%w: KMS key ID longer than %d bytes", ErrConfig, maxKeyIDSize)
	}
	return nil
}

// location is where the state lives, for messages.
func (c Config) location() string {
	return "s3://" + c.Bucket + "/" + c.Prefix
}
