package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// marker is a recognisable secret: if any of its forms appears in output, the
// secret leaked.
var marker = []byte("hunter2-share-material")

func leaks(t *testing.T, out string) {
	t.Helper()
	for _, form := range []string{
		string(marker),
		fmt.Sprintf("%x", marker),
		fmt.Sprintf("%X", marker),
		fmt.Sprintf("%v", marker),
		fmt.Sprintf("%d", marker),
		"aHVudGVyMi1zaGFyZS1tYXRlcmlhbA", // base64 prefix
	} {
		if strings.Contains(out, form) {
			t.Fatalf("secret leaked in %q", out)
		}
	}
}

func TestRedactsInEveryFormat(t *testing.T) {
	s := New(marker)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10v"} {
		out := fmt.Sprintf(verb, s)
		leaks(t, out)
		if !strings.Contains(out, redacted) {
			t.Errorf("%s printed %q, want the redaction marker", verb, out)
		}
	}
	// Inside a struct printed with %+v and %#v too.
	wrapper := struct{ Key Bytes }{s}
	leaks(t, fmt.Sprintf("%+v %#v", wrapper, wrapper))
	leaks(t, fmt.Sprint(s.String(), s.GoString()))
}

func TestRedactsInLogsAndJSON(t *testing.T) {
	s := New(marker)
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
		slog.New(h).Info("loaded", "share", s, slog.Any("nested", struct{ K Bytes }{s}))
	}
	leaks(t, buf.String())
	if !strings.Contains(buf.String(), redacted) {
		t.Fatalf("log %q lacks the redaction marker", buf.String())
	}
	j, err := json.Marshal(struct{ K Bytes }{s})
	if err != nil {
		t.Fatal(err)
	}
	leaks(t, string(j))
}

func TestEqual(t *testing.T) {
	a, b := New([]byte{1, 2, 3}), New([]byte{1, 2, 3})
	if !a.Equal(b) {
		t.Fatal("equal secrets compare unequal")
	}
	for _, o := range [][]byte{{1, 2, 4}, {1, 2}, {1, 2, 3, 0}, nil} {
		if a.Equal(New(o)) {
			t.Fatalf("%v compares equal to a different secret", o)
		}
	}
	if !New(nil).Equal(Bytes{}) {
		t.Fatal("two empty secrets compare unequal")
	}
}

func TestNewCopiesAndWipe(t *testing.T) {
	src := []byte{9, 9, 9}
	s := New(src)
	src[0] = 0
	if s.Reveal()[0] != 9 {
		t.Fatal("New did not copy its input")
	}
	alias := s
	s.Wipe()
	if !bytes.Equal(alias.Reveal(), []byte{0, 0, 0}) || s.Len() != 3 {
		t.Fatalf("after Wipe: %v", alias.Reveal())
	}
}
