//go:build !release && !soak

package reliability_test

// long selects the long versions of the suites (make soak).
const long = false
