package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/s3err"
)

// objects performs the replica's S3 calls under one bucket and prefix and
// translates S3's answers into this package's errors. Error messages name
// the object key (relative to the prefix) and never S3's response body.
type objects struct {
	client *s3.Client
	bucket string
	prefix string
}

var (
	errNotFound     = s3err.ErrNotFound
	errPrecondition = s3err.ErrPrecondition
	errTooLarge     = errors.New("object too large")
)

// conflictRetries bounds retries of 409 ConditionalRequestConflict, which
// S3 returns while another conditional write to the same key is in flight.
const conflictRetries = 3

func (o objects) key(name string) *string { return aws.String(o.prefix + name) }

// classify maps an S3 error to errNotFound, errPrecondition, or
// ErrUnavailable (everything else: network, 5xx, throttling, auth).
func classify(op, name string, err error) error {
	return s3err.Classify(op, name, err, ErrUnavailable)
}

// put writes body under name with the given conditions and returns the new
// ETag.
func (o objects) put(ctx context.Context, name string, body []byte, ifNoneMatch, ifMatch string) (string, error) {
	in := &s3.PutObjectInput{
		Bucket: aws.String(o.bucket), Key: o.key(name), Body: bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
	}
	if ifNoneMatch != "" {
		in.IfNoneMatch = aws.String(ifNoneMatch)
	}
	if ifMatch != "" {
		in.IfMatch = aws.String(ifMatch)
	}
	var err error
	for range conflictRetries {
		var out *s3.PutObjectOutput
		out, err = o.client.PutObject(ctx, in)
		if err == nil {
			return aws.ToString(out.ETag), nil
		}
		in.Body = bytes.NewReader(body)
		if !isConflict(err) {
			break
		}
	}
	return "", classify("PutObject", name, err)
}

func isConflict(err error) bool {
	var status interface{ HTTPStatusCode() int }
	return errors.As(err, &status) && status.HTTPStatusCode() == http.StatusConflict
}

// create writes a new object (If-None-Match: *). If the name is taken by
// the identical bytes — an earlier attempt of this very write, whose answer
// was lost and retried — that counts as success. If it is taken by other
// bytes, the slot belongs to someone else: ErrFenced.
func (o objects) create(ctx context.Context, name string, body []byte) (string, error) {
	etag, err := o.put(ctx, name, body, "*", "")
	if !errors.Is(err, errPrecondition) {
		return etag, err
	}
	existing, etag, err := o.get(ctx, name, int64(len(body)))
	switch {
	case errors.Is(err, errTooLarge):
	case err != nil:
		return "", err
	case bytes.Equal(existing, body):
		return etag, nil
	}
	return "", fmt.Errorf("%w: %s already holds another writer's object", ErrFenced, name)
}

// get reads an object of at most limit bytes and returns it with its ETag.
func (o objects) get(ctx context.Context, name string, limit int64) ([]byte, string, error) {
	out, err := o.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(o.bucket), Key: o.key(name)})
	if err != nil {
		return nil, "", classify("GetObject", name, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, limit+1))
	if err != nil {
		return nil, "", classify("GetObject", name, err)
	}
	if int64(len(b)) > limit {
		return nil, "", errTooLarge
	}
	return b, aws.ToString(out.ETag), nil
}

// list returns the names (relative to the prefix) of the objects under dir,
// in S3's order (lexicographic).
func (o objects) list(ctx context.Context, dir string) ([]string, error) {
	p := s3.NewListObjectsV2Paginator(o.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(o.bucket), Prefix: o.key(dir),
	})
	var names []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify("ListObjectsV2", dir, err)
		}
		for _, obj := range page.Contents {
			if name, ok := strings.CutPrefix(aws.ToString(obj.Key), o.prefix); ok {
				names = append(names, name)
			}
		}
	}
	return names, nil
}

// maxDeleteBatch is S3's limit of keys per DeleteObjects call.
const maxDeleteBatch = 1000

// remove deletes objects in batches and returns the first error; it goes
// on after errors so that one failure leaves as little garbage as possible.
func (o objects) remove(ctx context.Context, names []string) error {
	var first error
	for batch := range slices.Chunk(names, maxDeleteBatch) {
		if err := o.removeBatch(ctx, batch); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (o objects) removeBatch(ctx context.Context, names []string) error {
	ids := make([]types.ObjectIdentifier, len(names))
	for i, name := range names {
		ids[i] = types.ObjectIdentifier{Key: o.key(name)}
	}
	out, err := o.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: aws.String(o.bucket), Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
	})
	if err != nil {
		return classify("DeleteObjects", names[0], err)
	}
	if len(out.Errors) > 0 {
		return fmt.Errorf("%w: DeleteObjects: %d of %d objects not deleted", ErrUnavailable, len(out.Errors), len(names))
	}
	return nil
}
