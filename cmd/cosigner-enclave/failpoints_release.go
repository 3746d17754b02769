//go:build release

package main

import "log/slog"

// armFailpoints does nothing in release builds: they have no failpoints,
// and the environment variable that arms them in development builds is
// ignored.
func armFailpoints(*slog.Logger) error { return nil }
