package mpc

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
)

const redacted = "[REDACTED]"

var errSecretEncode = errors.New("mpc: refusing to encode a secret as text")

// Secret holds bytes that must never be printed or logged: a marshalled key
// share. Every fmt verb, slog and encoding/json print it redacted or refuse
// it; code that must persist it converts it explicitly ([]byte(s)).
type Secret []byte

func (Secret) String() string               { return redacted }
func (Secret) GoString() string             { return redacted }
func (Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (Secret) Format(f fmt.State, _ rune)   { _, _ = io.WriteString(f, redacted) }
func (Secret) MarshalText() ([]byte, error) { return nil, errSecretEncode }
func (Secret) MarshalJSON() ([]byte, error) { return nil, errSecretEncode }

// Wipe overwrites the bytes. Go may have copied them elsewhere; this only
// shortens the life of this copy.
func (s Secret) Wipe() { clear(s) }

// redactor is embedded in types that hold secrets (configs, presignatures),
// so that printing them, even with %#v or through slog, shows nothing.
type redactor struct{}

func (redactor) String() string             { return redacted }
func (redactor) GoString() string           { return redacted }
func (redactor) LogValue() slog.Value       { return slog.StringValue(redacted) }
func (redactor) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }
