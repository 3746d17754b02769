//go:build !release

package devnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3bolt"
	bolt "go.etcd.io/bbolt"
)

// Credentials the devnet hands its parents when it serves S3 itself
// (neither its S3 nor the KMS emulator checks them).
const (
	devAccessKey = "nitro-devnet"
	devSecretKey = "nitro-devnet-secret"
)

// embeddedS3 is gofakes3 over a bbolt file: every object write is one
// bbolt transaction, fsynced, with If-None-Match and If-Match checked
// inside it.
type embeddedS3 struct {
	db *bolt.DB
}

// openEmbeddedS3 opens DIR/s3/s3.bolt and makes sure bucket exists.
func openEmbeddedS3(dir, bucket string) (*embeddedS3, http.Handler, error) {
	if err := os.MkdirAll(filepath.Join(dir, "s3"), 0o700); err != nil {
		return nil, nil, err
	}
	db, err := bolt.Open(filepath.Join(dir, "s3", "s3.bolt"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, nil, fmt.Errorf("opening the S3 store: %w", err)
	}
	backend := s3bolt.New(db)
	ok, err := backend.BucketExists(bucket)
	if err == nil && !ok {
		err = backend.CreateBucket(bucket)
	}
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("creating bucket %s: %w", bucket, err)
	}
	h := gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server()
	return &embeddedS3{db: db}, h, nil
}

func (e *embeddedS3) close() error { return e.db.Close() }

// s3Client returns an SDK client for the S3 endpoint with the
// credentials the parents will hand their enclaves.
func s3Client(endpoint, region string, creds awsCreds) *s3.Client {
	return s3.New(s3.Options{
		Region: region, BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(creds.accessKey, creds.secretKey, creds.sessionToken),
	})
}

// ensureBucket creates bucket on an external endpoint if it is missing.
func ensureBucket(ctx context.Context, c *s3.Client, bucket string) error {
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err == nil {
		return nil
	}
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	var owned *s3types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("creating bucket %s: %w", bucket, err)
	}
	return nil
}

// wrappedKeyObject is the object enclave/sealed writes first at --init:
// its presence says the cosigner's state exists.
const wrappedKeyObject = "datakey.wrapped"

// stateExists reports whether the sealed state under prefix exists.
func stateExists(ctx context.Context, c *s3.Client, bucket, prefix string) (bool, error) {
	_, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(prefix + wrappedKeyObject)})
	var nf *s3types.NotFound
	var nk *s3types.NoSuchKey
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &nf), errors.As(err, &nk):
		return false, nil
	}
	return false, fmt.Errorf("looking for %s's state in S3: %w", prefix, err)
}

// serveHTTP serves h on l until ctx ends.
func serveHTTP(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-done
	return err
}
