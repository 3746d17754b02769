// Package hostpath holds tests that run both ends of a path between the
// parent and its enclave (egress proxy and dialer, credentials server and
// provider). They import enclave/ and parent/ packages together, which only
// tests under test/ may do.
package hostpath
