// Package logging builds the daemons' structured loggers on log/slog.
//
// Conventions every package follows (docs/operations.md repeats them):
// never log a key, share, presignature, data key or plaintext payload —
// secret types (package secret) redact themselves, but the rule is not to
// pass them at all; log identifiers (key ID, session ID, cosigner ID) and
// digests instead; errors from untrusted input are logged with a reason, not
// the input.
package logging

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Config selects the log format and the minimum level.
type Config struct {
	// Format is "json" (the production default) or "text".
	Format string
	// Level is "debug", "info", "warn" or "error".
	Level string
}

// ErrConfig is returned for an unknown format or level.
var ErrConfig = errors.New("logging: bad configuration")

// New returns a logger writing to w as cfg says. Empty fields take the
// defaults: JSON at info level.
func New(w io.Writer, cfg Config) (*slog.Logger, error) {
	level, err := ParseLevel(cfg.Level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(cfg.Format) {
	case "", "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("%w: format %q (want json or text)", ErrConfig, cfg.Format)
	}
}

// ParseLevel maps a level name to a slog.Level; the empty string is info.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	default:
		return 0, fmt.Errorf("%w: level %q (want debug, info, warn or error)", ErrConfig, s)
	}
}
