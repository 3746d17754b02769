// Package creds hands the host's AWS credentials to the enclave.
//
// The enclave has no network and no instance role of its own: it signs
// its KMS and S3 requests with the credentials of the parent host's role.
// LoadDefault resolves them with the AWS SDK's default credential chain
// (environment, shared config and credentials files, web identity, ECS
// container and EC2 instance metadata), and Server serves them to the
// enclave on a control listener (vsock in production):
//
//	GET /v1/credentials
//	200 {"access_key_id": "...", "secret_access_key": "...",
//	     "session_token": "...", "expires": "2026-11-21T12:00:00Z"}
//
// session_token is omitted for long-term keys, expires for credentials
// that do not expire (RFC 3339, UTC). A failure to resolve credentials is
// 503 with {"error": "credentials unavailable"} and nothing more; the
// cause is logged here. The enclave side is enclave/creds.
//
// # Trust
//
// The parent is untrusted, and handing it the role's credentials gives it
// nothing it did not have: the host already holds them. They do not let
// the host, or anyone, use the cosigner's KMS key: the key policy demands
// an attestation document from an enclave with the expected PCRs
// (kms:RecipientAttestation conditions), and KMS encrypts its answer to
// the enclave's attested key, so only the enclave can read it. A hostile
// parent can serve wrong, expired or no credentials: that is denial of
// service, which the host can cause in any case.
//
// # Freshness
//
// LoadDefault's cache refreshes credentials ten minutes before they expire
// (providers with their own rules, such as EC2 instance metadata, may keep
// them longer). The response carries the cache's view of the expiry, which
// may be earlier than the real one, never later. The enclave refreshes
// five minutes before the expiry it was given and, while it is handed the
// same soon-expiring credentials, asks again at most once a minute
// (enclave/creds), so a rotation here reaches it within a minute.
//
// # Secrets
//
// The secret access key and session token are never logged; Response
// redacts them when printed or logged. Logs name the credential source
// and the expiry only.
package creds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// Path is the endpoint the enclave fetches.
const Path = "/v1/credentials"

// RefreshWindow is how long before expiry LoadDefault's cache refreshes
// credentials. It is longer than the enclave's window, so that the
// enclave finds fresh credentials when it asks.
const RefreshWindow = 10 * time.Minute

// LoadDefault resolves the default AWS credential chain and returns its
// cached provider. optFns are passed to config.LoadDefaultConfig after
// this package's own (the cache window); tests use them to pin a profile
// or a region. Resolving does not fetch yet: the first Retrieve does.
func LoadDefault(ctx context.Context, optFns ...func(*config.LoadOptions) error) (aws.CredentialsProvider, error) {
	opts := append([]func(*config.LoadOptions) error{
		config.WithCredentialsCacheOptions(func(o *aws.CredentialsCacheOptions) {
			o.ExpiryWindow = RefreshWindow
		}),
	}, optFns...)
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("creds: loading the default AWS configuration: %w", err)
	}
	if cfg.Credentials == nil {
		return nil, errors.New("creds: the default AWS configuration has no credential provider")
	}
	return cfg.Credentials, nil
}

// Response is the body of a successful GET /v1/credentials. It holds
// secrets: it prints and logs redacted, but its JSON encoding is the
// real thing and goes to the enclave only.
type Response struct {
	AccessKeyID     string     `json:"access_key_id"`
	SecretAccessKey string     `json:"secret_access_key"`
	SessionToken    string     `json:"session_token,omitempty"`
	Expires         *time.Time `json:"expires,omitempty"`
}

// newResponse converts SDK credentials to the wire form.
func newResponse(c aws.Credentials) Response {
	r := Response{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
	if c.CanExpire {
		exp := c.Expires.UTC()
		r.Expires = &exp
	}
	return r
}

// String never shows the secret access key or the session token.
func (r Response) String() string {
	exp := "never"
	if r.Expires != nil {
		exp = r.Expires.Format(time.RFC3339)
	}
	return "creds.Response{secrets redacted, expires " + exp + "}"
}

// GoString implements fmt.GoStringer (%#v) like String.
func (r Response) GoString() string { return r.String() }

// Format makes every fmt verb print String.
func (r Response) Format(f fmt.State, _ rune) { fmt.Fprint(f, r.String()) }

// LogValue implements slog.LogValuer: the expiry only.
func (r Response) LogValue() slog.Value {
	if r.Expires == nil {
		return slog.GroupValue(slog.String("expires", "never"))
	}
	return slog.GroupValue(slog.Time("expires", *r.Expires))
}
