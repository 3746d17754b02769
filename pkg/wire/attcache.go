package wire

import (
	"crypto/x509"
	"sync"
	"time"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/attestation"
)

// attCache holds verified attestation documents by SHA-256 digest until
// the first certificate of their chain (normally the leaf) expires. A cached document has verified against
// the trusted roots and passed the policy of the member that sent it; each
// use re-runs the (cheap) policy check for the frame's sender, so a digest
// never lends one member's document to another.
type attCache struct {
	mu   sync.Mutex
	docs map[[digestSize]byte]cached
	max  int
}

// cached is a verified document and the interval in which its whole chain
// is valid.
type cached struct {
	doc                 *attestation.Document
	notBefore, notAfter time.Time
}

func newCached(doc *attestation.Document) cached {
	c := cached{doc: doc, notBefore: doc.Certificate.NotBefore, notAfter: doc.Certificate.NotAfter}
	for _, der := range doc.CABundle {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			continue // unreachable: Verify parsed the bundle
		}
		if cert.NotBefore.After(c.notBefore) {
			c.notBefore = cert.NotBefore
		}
		if cert.NotAfter.Before(c.notAfter) {
			c.notAfter = cert.NotAfter
		}
	}
	return c
}

func (c cached) valid(now time.Time) bool {
	return !now.Before(c.notBefore) && !now.After(c.notAfter)
}

func newAttCache(max int) *attCache {
	return &attCache{docs: make(map[[digestSize]byte]cached), max: max}
}

// get returns the cached document if its leaf is valid at now; an expired
// one is forgotten.
func (c *attCache) get(d [digestSize]byte, now time.Time) (*attestation.Document, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.docs[d]
	if !ok {
		return nil, false
	}
	if !e.valid(now) {
		delete(c.docs, d)
		return nil, false
	}
	return e.doc, true
}

// put caches a verified document. When full, it forgets expired documents,
// then the one that expires first.
func (c *attCache) put(doc *attestation.Document, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.docs) >= c.max {
		c.evict(now)
	}
	c.docs[doc.SHA256()] = newCached(doc)
}

func (c *attCache) evict(now time.Time) {
	var (
		first  [digestSize]byte
		expiry time.Time
	)
	for d, e := range c.docs {
		if !e.valid(now) {
			delete(c.docs, d)
			continue
		}
		if expiry.IsZero() || e.notAfter.Before(expiry) {
			first, expiry = d, e.notAfter
		}
	}
	if len(c.docs) >= c.max {
		delete(c.docs, first)
	}
}

func (c *attCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.docs)
}
