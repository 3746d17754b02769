package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	enclavecreds "github.com/nitro-cosigner/nitro-cosigner/enclave/creds"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/egress"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/kms"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/nsm"
	"github.com/nitro-cosigner/nitro-cosigner/enclave/sealed"
	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

// StateConfig says where the cosigner's sealed state lives. An empty Bucket
// means the enclave runs without sealed state (attestation only).
type StateConfig struct {
	// CosignerID names this cosigner in KMS encryption contexts and S3.
	CosignerID string
	// Init creates the state on first boot. It is never implied: without
	// it, a missing state is an error.
	Init bool
	// Dir is the tmpfs directory for the database.
	Dir string
	// Region is the AWS region of KMS and S3.
	Region string
	// KMSEndpoint and S3Endpoint override the AWS endpoints (the KMS
	// emulator and a local S3 in development); empty means AWS's.
	KMSEndpoint, S3Endpoint string
	// KMSKeyID is the KMS key that wraps the data key.
	KMSKeyID string
	// Bucket and Prefix locate the state in S3.
	Bucket, Prefix string
	// EgressProxy is the parent's CONNECT proxy (vsock://3:PORT in an
	// enclave); empty dials directly (development).
	EgressProxy string
	// CredentialsFrom is the parent's credentials endpoint; empty reads the
	// AWS environment variables (development).
	CredentialsFrom string
}

func (c StateConfig) enabled() bool { return c.Bucket != "" }

// openState opens (or, with Init, creates) the sealed state.
//
// In an enclave, connections go through the parent's egress proxy and
// credentials come from the parent (EgressProxy, CredentialsFrom); in
// development both may be direct: dialling, and the AWS environment
// variables.
func openState(ctx context.Context, cfg StateConfig, att nsm.Attester, log *slog.Logger) (*sealed.State, error) {
	if cfg.CosignerID == "" || cfg.Dir == "" || cfg.KMSKeyID == "" {
		return nil, fmt.Errorf("%w: sealed state needs a cosigner ID, a state directory and a KMS key ID", ErrConfig)
	}
	kmsClient, s3Client, err := awsClients(cfg)
	if err != nil {
		return nil, err
	}
	scfg := sealed.Config{
		CosignerID: cfg.CosignerID, KMS: kmsClient, Attester: att, KMSKeyID: cfg.KMSKeyID,
		S3: s3Client, Bucket: cfg.Bucket, Prefix: cfg.Prefix, Dir: cfg.Dir, Logger: log,
	}
	if cfg.Init {
		log.Info("initialising sealed state (--init)", "cosigner", cfg.CosignerID, "bucket", cfg.Bucket, "prefix", cfg.Prefix)
		return sealed.Init(ctx, scfg)
	}
	return sealed.Open(ctx, scfg)
}

func awsClients(cfg StateConfig) (*awskms.Client, *s3.Client, error) {
	dial, err := dialer(cfg.EgressProxy)
	if err != nil {
		return nil, nil, err
	}
	creds, err := credentialsFrom(cfg.CredentialsFrom)
	if err != nil {
		return nil, nil, err
	}
	httpClient := kms.NewHTTPClient(dial)
	kmsClient := awskms.New(awskms.Options{
		Region: cfg.Region, Credentials: creds, HTTPClient: httpClient, BaseEndpoint: endpoint(cfg.KMSEndpoint),
	})
	s3Client := s3.New(s3.Options{
		Region: cfg.Region, Credentials: creds, HTTPClient: httpClient, BaseEndpoint: endpoint(cfg.S3Endpoint),
		UsePathStyle: cfg.S3Endpoint != "",
	})
	return kmsClient, s3Client, nil
}

// dialer returns the egress proxy's dialer, or a direct one.
func dialer(proxy string) (kms.DialFunc, error) {
	if proxy == "" {
		var d net.Dialer
		return d.DialContext, nil
	}
	addr, err := transport.ParseAddr(proxy)
	if err != nil {
		return nil, fmt.Errorf("%w: egress proxy: %w", ErrConfig, err)
	}
	return egress.Dialer{Proxy: addr}.DialContext, nil
}

// credentialsFrom returns the parent's credentials provider, or the AWS
// environment variables.
func credentialsFrom(parent string) (aws.CredentialsProvider, error) {
	if parent == "" {
		return credentials.NewStaticCredentialsProvider(
			os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN")), nil
	}
	addr, err := transport.ParseAddr(parent)
	if err != nil {
		return nil, fmt.Errorf("%w: credentials endpoint: %w", ErrConfig, err)
	}
	return enclavecreds.New(addr), nil
}

func endpoint(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

// describeState logs what the opened state holds: identifiers only.
func describeState(ctx context.Context, st *sealed.State, log *slog.Logger) error {
	seq, err := st.Store.Seq(ctx)
	if err != nil {
		return fmt.Errorf("reading sealed state: %w", err)
	}
	log.Info("sealed state open", "generation", st.Replica.Generation(), "changes", seq)
	return nil
}
