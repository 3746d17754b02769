package egress

import (
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	for in, want := range map[string]target{
		"kms.eu-west-1.amazonaws.com:443": {hostPort: "kms.eu-west-1.amazonaws.com:443"},
		"S3.Amazonaws.COM:443":            {hostPort: "s3.amazonaws.com:443"},
		"localhost:1":                     {hostPort: "localhost:1"},
		"x-1.example:65535":               {hostPort: "x-1.example:65535"},
		"192.0.2.1:443":                   {hostPort: "192.0.2.1:443", ip: true},
		"[2001:DB8::1]:443":               {hostPort: "[2001:db8::1]:443", ip: true},
		"[2001:db8:0:0:0:0:0:1]:443":      {hostPort: "[2001:db8::1]:443", ip: true},
		"[::ffff:192.0.2.1]:443":          {hostPort: "[::ffff:192.0.2.1]:443", ip: true},
	} {
		got, err := parseTarget(in)
		if err != nil || got != want {
			t.Errorf("parseTarget(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
}

func TestParseTargetRefuses(t *testing.T) {
	for _, in := range []string{
		"", ":", ":443", "host", "host:", "host:0", "host:0443", "host:65536", "host:+1",
		"host:-1", "host:https", "host:443:1", "host :443", "ho_st:443", "-host:443",
		"host-:443", "host..x:443", ".host:443", "host.:443", "*.host:443", "hóst:443",
		"user@host:443", "http://host:443", "host:443/", "[host]:443", "[192.0.2.1]:443",
		"::1:443", "[fe80::1%eth0]:443", "127.1:443", "2130706433:443", "0x7f.0.0.1:443",
		"0x7f000001:443", "192.0.2.01:443", "a.1:443",
		strings.Repeat("a", 64) + ".com:443",
		strings.Repeat("abcdefg.", 32) + "com:443",
	} {
		if got, err := parseTarget(in); err == nil {
			t.Errorf("parseTarget(%q) = %+v, want an error", in, got)
		}
	}
}

// FuzzParseTarget: parsing never panics, and a canonical target parses to
// itself (canonicalization is idempotent), so an allowlist entry and a
// request meet in exactly one form.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"kms.example.com:443", "[::1]:443", "1.2.3.4:1", "A.b:9", "[::FFFF:1.2.3.4]:443"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseTarget(s)
		if err != nil {
			return
		}
		again, err := parseTarget(got.hostPort)
		if err != nil || again != got {
			t.Fatalf("parseTarget(%q) = %+v, but its canonical form parses to %+v, %v", s, got, again, err)
		}
	})
}
