//go:build release

package failpoint

// Compiled reports whether this build contains the facility.
const Compiled = false

// Inject does nothing in release builds.
func Inject(Name) error { return nil }

// Enable fails in release builds.
func Enable(Name, func() error) (func(), error) { return nil, ErrNotCompiled }
