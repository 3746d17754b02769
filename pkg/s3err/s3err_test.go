package s3err

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

var errDown = errors.New("down")

func answer(status int, code string) error {
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
		Err:      &smithy.GenericAPIError{Code: code, Message: "body text from the host"},
	}}
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		err  error
		want error
		text string
	}{
		{answer(404, "NoSuchKey"), ErrNotFound, ""},
		{answer(412, "PreconditionFailed"), ErrPrecondition, ""},
		{answer(503, "SlowDown"), errDown, "HTTP 503 SlowDown"},
		{answer(403, "Access Denied <script>"), errDown, "HTTP 403 unknown"},
		{errors.New("dial tcp: connection refused"), errDown, "connection refused"},
	} {
		got := Classify("GetObject", "k", c.err, errDown)
		if !errors.Is(got, c.want) {
			t.Errorf("Classify(%v) = %v, want %v", c.err, got, c.want)
		}
		if !strings.Contains(got.Error(), c.text) || strings.Contains(got.Error(), "body text") {
			t.Errorf("Classify(%v) message %q", c.err, got)
		}
	}
}
