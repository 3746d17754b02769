package attestation_test

import (
	"bytes"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation"
)

// checkPolicy wants nil when want is nil, else an error wrapping want and
// ErrPolicy.
func checkPolicy(t *testing.T, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("Check = %v, want nil", err)
		}
		return
	}
	if !errors.Is(err, want) || !errors.Is(err, attestation.ErrPolicy) {
		t.Fatalf("Check = %v, want %v", err, want)
	}
}

func TestPolicyDebug(t *testing.T) {
	t.Parallel()
	for _, v := range validVectors() {
		t.Run(v.file, func(t *testing.T) {
			t.Parallel()
			doc := v.verify(t)
			var want error
			if v.debug {
				want = attestation.ErrDebug
			}
			checkPolicy(t, attestation.Policy{}.Check(doc, v.time()), want)
			checkPolicy(t, attestation.Policy{AllowDebug: true}.Check(doc, v.time()), nil)
		})
	}
}

// TestPolicyDebugBeforePCRs: a debug document fails as debug even when the
// policy pins the zero PCRs it carries.
func TestPolicyDebugBeforePCRs(t *testing.T) {
	t.Parallel()
	doc := debugAnjuna.verify(t)
	p := attestation.Policy{PCRs: map[int][]byte{0: doc.PCRs[0]}}
	checkPolicy(t, p.Check(doc, time.Time{}), attestation.ErrDebug)
	p.AllowDebug = true
	checkPolicy(t, p.Check(doc, time.Time{}), nil)
}

func TestPolicyPCRs(t *testing.T) {
	t.Parallel()
	doc := prodRSA.verify(t)
	flipped := bytes.Clone(doc.PCRs[1])
	flipped[47] ^= 1
	cases := map[string]struct {
		pcrs map[int][]byte
		want error
	}{
		"none":             {nil, nil},
		"PCR0":             {map[int][]byte{0: doc.PCRs[0]}, nil},
		"all 16":           {maps.Clone(doc.PCRs), nil},
		"PCR0, PCR1, PCR2": {map[int][]byte{0: doc.PCRs[0], 1: doc.PCRs[1], 2: doc.PCRs[2]}, nil},
		"PCR1 differs":     {map[int][]byte{0: doc.PCRs[0], 1: flipped}, attestation.ErrPCRMismatch},
		"PCR8 zero":        {map[int][]byte{8: make([]byte, 48)}, nil},
		"PCR8 non-zero":    {map[int][]byte{8: bytes.Repeat([]byte{1}, 48)}, attestation.ErrPCRMismatch},
		"PCR0 as 32 bytes": {map[int][]byte{0: doc.PCRs[0][:32]}, attestation.ErrPCRMismatch},
		"PCR20 absent":     {map[int][]byte{20: make([]byte, 48)}, attestation.ErrPCRMismatch},
		"index 32":         {map[int][]byte{32: make([]byte, 48)}, attestation.ErrPolicy},
		"index -1":         {map[int][]byte{-1: make([]byte, 48)}, attestation.ErrPolicy},
		"47-byte value":    {map[int][]byte{0: doc.PCRs[0][:47]}, attestation.ErrPolicy},
		"nil value":        {map[int][]byte{0: nil}, attestation.ErrPolicy},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			checkPolicy(t, attestation.Policy{PCRs: c.pcrs}.Check(doc, time.Time{}), c.want)
		})
	}
}

func TestPolicyMatchers(t *testing.T) {
	t.Parallel()
	rsa := prodRSA.verify(t)       // public_key set, user_data and nonce null
	debug := debugAnjuna.verify(t) // all three set; nonce "Nonce\n"
	size := func(n int) attestation.Matcher {
		return attestation.Func(func(b []byte) bool { return len(b) == n })
	}
	mismatch := attestation.ErrFieldMismatch
	cases := map[string]struct {
		field string
		match attestation.Matcher
		doc   *attestation.Document
		want  error
	}{
		"nonce equal":          {"nonce", attestation.Equal([]byte("Nonce\n")), debug, nil},
		"nonce differs":        {"nonce", attestation.Equal([]byte("Nonce!")), debug, mismatch},
		"nonce prefix":         {"nonce", attestation.Equal([]byte("Nonce")), debug, mismatch},
		"nonce absent, Equal":  {"nonce", attestation.Equal([]byte("Nonce\n")), rsa, mismatch},
		"Equal(nil) vs absent": {"nonce", attestation.Equal(nil), rsa, mismatch},
		"nonce Absent":         {"nonce", attestation.Absent(), rsa, nil},
		"nonce not Absent":     {"nonce", attestation.Absent(), debug, mismatch},
		"user_data equal":      {"user_data", attestation.Equal(debug.UserData), debug, nil},
		"user_data Absent":     {"user_data", attestation.Absent(), debug, mismatch},
		"public_key Func":      {"public_key", size(294), rsa, nil},
		"public_key Func no":   {"public_key", size(32), rsa, mismatch},
		"Func(nil)":            {"public_key", attestation.Func(nil), rsa, mismatch},
		"nil matcher":          {"public_key", nil, rsa, nil},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := attestation.Policy{AllowDebug: true}
			switch c.field {
			case "nonce":
				p.Nonce = c.match
			case "user_data":
				p.UserData = c.match
			case "public_key":
				p.PublicKey = c.match
			}
			err := p.Check(c.doc, time.Time{})
			checkPolicy(t, err, c.want)
			if err != nil && !strings.Contains(err.Error(), c.field) {
				t.Fatalf("error %q does not name %s", err, c.field)
			}
		})
	}
}

func TestEqualMatchesEmptyPresentField(t *testing.T) {
	t.Parallel()
	if !attestation.Equal(nil)([]byte{}) || !attestation.Equal([]byte{})([]byte{}) {
		t.Fatal("Equal(empty) refused a present, empty field")
	}
	if attestation.Equal(nil)(nil) {
		t.Fatal("Equal(nil) accepted an absent field")
	}
}

func TestEqualCopiesItsArgument(t *testing.T) {
	t.Parallel()
	want := []byte("abc")
	m := attestation.Equal(want)
	want[0] = 'x'
	if !m([]byte("abc")) {
		t.Fatal("Equal aliases its argument")
	}
}

func TestMatcherCannotAlterDocument(t *testing.T) {
	t.Parallel()
	doc := debugAnjuna.verify(t)
	vandal := attestation.Func(func(b []byte) bool { clear(b); return true })
	p := attestation.Policy{AllowDebug: true, Nonce: vandal, UserData: vandal, PublicKey: vandal}
	checkPolicy(t, p.Check(doc, time.Time{}), nil)
	if string(doc.Nonce) != "Nonce\n" {
		t.Fatal("a matcher changed the document")
	}
}

func TestPolicyMaxAge(t *testing.T) {
	t.Parallel()
	v := prodNoPK
	doc := v.verify(t)
	ts := v.time()
	cases := map[string]struct {
		maxAge time.Duration
		now    time.Time
		want   error
	}{
		"unset, no time":        {0, time.Time{}, nil},
		"unset, years later":    {0, ts.AddDate(5, 0, 0), nil},
		"fresh":                 {time.Minute, ts.Add(30 * time.Second), nil},
		"exactly MaxAge":        {time.Minute, ts.Add(time.Minute), nil},
		"stale":                 {time.Minute, ts.Add(time.Minute + time.Millisecond), attestation.ErrStale},
		"within future skew":    {time.Minute, ts.Add(-attestation.MaxFutureSkew), nil},
		"beyond future skew":    {time.Minute, ts.Add(-attestation.MaxFutureSkew - time.Millisecond), attestation.ErrStale},
		"set, no time":          {time.Minute, time.Time{}, attestation.ErrPolicy},
		"negative":              {-time.Minute, ts, attestation.ErrPolicy},
		"large MaxAge, in time": {time.Hour, ts.Add(59 * time.Minute), nil},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			checkPolicy(t, attestation.Policy{MaxAge: c.maxAge}.Check(doc, c.now), c.want)
		})
	}
}

func TestPolicyRefusesUnverifiedDocuments(t *testing.T) {
	t.Parallel()
	verified := prodNoPK.verify(t)
	copied := *verified
	handmade := &attestation.Document{ModuleID: verified.ModuleID, PCRs: verified.PCRs, Timestamp: verified.Timestamp}
	checkPolicy(t, attestation.Policy{}.Check(nil, time.Time{}), attestation.ErrPolicy)
	checkPolicy(t, attestation.Policy{}.Check(handmade, time.Time{}), attestation.ErrPolicy)
	checkPolicy(t, attestation.Policy{}.Check(&copied, time.Time{}), nil)
}

func TestIsDebug(t *testing.T) {
	t.Parallel()
	zero := make([]byte, 48)
	one := bytes.Repeat([]byte{1}, 48)
	cases := map[string]struct {
		pcrs map[int][]byte
		want bool
	}{
		"PCR0-2 zero":         {map[int][]byte{0: zero, 1: zero, 2: zero, 3: one}, true},
		"PCR2 set":            {map[int][]byte{0: zero, 1: zero, 2: one}, false},
		"PCR0 set":            {map[int][]byte{0: one, 1: zero, 2: zero}, false},
		"PCR2 missing":        {map[int][]byte{0: zero, 1: zero}, false},
		"last byte of PCR1":   {map[int][]byte{0: zero, 1: append(make([]byte, 47), 1), 2: zero}, false},
		"no PCRs":             {nil, false},
		"32-byte zero PCR0-2": {map[int][]byte{0: zero[:32], 1: zero[:32], 2: zero[:32]}, true},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := (&attestation.Document{PCRs: c.pcrs}).IsDebug(); got != c.want {
				t.Fatalf("IsDebug = %v, want %v", got, c.want)
			}
		})
	}
}
