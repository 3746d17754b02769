package api

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Role is what a caller may do. A caller's roles come from its client
// certificate, issued by the configured client CA, never from a request.
type Role string

// Roles.
const (
	RoleAdmin   Role = "admin"
	RoleSigner  Role = "signer"
	RoleAuditor Role = "auditor"
)

// roleURIPrefix starts a client certificate's role URI SANs, e.g.
// "urn:nitro-cosigner:role:signer". A certificate may carry several.
const roleURIPrefix = "urn:nitro-cosigner:role:"

var knownRoles = []Role{RoleAdmin, RoleSigner, RoleAuditor}

// Caller is an authenticated API client.
type Caller struct {
	// ID names the caller in audit entries and logs: the certificate's
	// common name and the first 16 bytes of its public key's SHA-256,
	// "name/hex". Two certificates for one key are one caller.
	ID    string
	Roles []Role
}

// Has reports whether c holds any of roles.
func (c Caller) Has(roles ...Role) bool {
	return slices.ContainsFunc(roles, func(r Role) bool { return slices.Contains(c.Roles, r) })
}

// errNoRole means a verified client certificate names no known role.
var errNoRole = errors.New("api: the client certificate names no role")

// CallerFromCert derives the caller from a client certificate that TLS has
// already verified against the client CA. Unknown role names are ignored;
// a certificate with no known role is refused.
func CallerFromCert(cert *x509.Certificate) (Caller, error) {
	var roles []Role
	for _, u := range cert.URIs {
		s := u.String()
		if !strings.HasPrefix(s, roleURIPrefix) {
			continue
		}
		r := Role(strings.TrimPrefix(s, roleURIPrefix))
		if slices.Contains(knownRoles, r) && !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	if len(roles) == 0 {
		return Caller{}, errNoRole
	}
	slices.Sort(roles)
	spki := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return Caller{ID: fmt.Sprintf("%s/%s", callerName(cert.Subject.CommonName), hex.EncodeToString(spki[:16])), Roles: roles}, nil
}

// callerName keeps a common name printable and short, since it goes into
// logs and audit entries.
func callerName(cn string) string {
	const maxName = 64
	var b strings.Builder
	for _, r := range cn {
		if b.Len() >= maxName {
			break
		}
		if r < 0x20 || r == 0x7f || r == '/' {
			r = '_'
		}
		b.WriteRune(r)
	}
	if b.Len() == 0 {
		return "unnamed"
	}
	return b.String()
}
