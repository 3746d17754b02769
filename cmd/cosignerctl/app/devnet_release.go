//go:build release

package app

import (
	"context"
	"errors"
)

// runDevnetUp refuses in release builds, which hold no stand-ins.
func runDevnetUp(_ context.Context, _ []string, io IO) int {
	return usageError(io, "devnet up", errors.New("the devnet exists only in development builds"))
}
