package sealed

import (
	"bytes"
	"context"
	"errors"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/s3err"
)

// objects reads and writes this package's own S3 objects (the wrapped
// key) and checks for replicated state. Errors name the object, S3's
// status and a sanitized error code, never a response body.
type objects struct {
	client *s3.Client
	bucket string
	prefix string
}

var (
	errNotFound     = s3err.ErrNotFound
	errPrecondition = s3err.ErrPrecondition
	// errS3 marks transient S3 failures, which are retried.
	errS3 = errors.New("S3 unavailable")
)

func (o objects) key(name string) *string { return aws.String(o.prefix + name) }

// classify maps an S3 error to errNotFound, errPrecondition or errS3.
func classify(op, name string, err error) error {
	return s3err.Classify(op, name, err, errS3)
}

// get reads an object of at most limit bytes; a larger one is errMalformed.
func (o objects) get(ctx context.Context, name string, limit int) ([]byte, error) {
	out, err := o.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(o.bucket), Key: o.key(name)})
	if err != nil {
		return nil, classify("GetObject", name, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, int64(limit)+1))
	if err != nil {
		return nil, classify("GetObject", name, err)
	}
	if len(b) > limit {
		return nil, errMalformed
	}
	return b, nil
}

// exists reports whether an object exists.
func (o objects) exists(ctx context.Context, name string) (bool, error) {
	_, err := o.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(o.bucket), Key: o.key(name)})
	if err == nil {
		return true, nil
	}
	if err = classify("HeadObject", name, err); errors.Is(err, errNotFound) {
		return false, nil
	}
	return false, err
}

// anyUnder reports whether any object's name starts with dir.
func (o objects) anyUnder(ctx context.Context, dir string) (bool, error) {
	out, err := o.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket: aws.String(o.bucket), Prefix: o.key(dir), MaxKeys: aws.Int32(1),
	})
	if err != nil {
		return false, classify("ListObjectsV2", dir, err)
	}
	return len(out.Contents) > 0, nil
}

// create writes a new object with If-None-Match: *. If the name holds the
// identical bytes already (this very write, retried after a lost answer),
// that is success; other bytes give errPrecondition.
func (o objects) create(ctx context.Context, name string, body []byte) error {
	_, err := o.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(o.bucket), Key: o.key(name), Body: bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))), IfNoneMatch: aws.String("*"),
	})
	if err == nil {
		return nil
	}
	if err = classify("PutObject", name, err); !errors.Is(err, errPrecondition) {
		return err
	}
	existing, err := o.get(ctx, name, len(body))
	switch {
	case errors.Is(err, errMalformed) || errors.Is(err, errNotFound):
		return errPrecondition
	case err != nil:
		return err
	case !bytes.Equal(existing, body):
		return errPrecondition
	}
	return nil
}
