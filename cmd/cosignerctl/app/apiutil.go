package app

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
)

// maxInputFile bounds what an API command reads from a file: every
// payload and document the API takes is at most 256 KiB, hex doubles it.
const maxInputFile = 1 << 20

// readInput reads a whole file, or standard input for "-".
func readInput(name string, std IO) ([]byte, error) {
	var r io.Reader = std.In
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := readAllLimited(r, maxInputFile)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return b, nil
}

func readAllLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err == nil && int64(len(b)) > limit {
		err = fmt.Errorf("larger than %d bytes", limit)
	}
	return b, err
}

// decodeHex decodes hex with an optional 0x prefix and white space
// anywhere.
func decodeHex(b []byte) ([]byte, error) {
	s := strings.TrimPrefix(strings.ToLower(strings.Join(strings.Fields(string(b)), "")), "0x")
	return hex.DecodeString(s)
}

var (
	keyIDPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
	opIDPattern  = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// keyName accepts "keys/{64 hex}" or the bare key ID.
func keyName(arg string) (string, error) {
	id := strings.ToLower(strings.TrimPrefix(arg, "keys/"))
	if !keyIDPattern.MatchString(id) {
		return "", fmt.Errorf("%q is not a key name: want keys/ and 64 hex digits", arg)
	}
	return "keys/" + id, nil
}

// operationName accepts "signOperations/{32 hex}" or the bare ID.
func operationName(arg string) (string, error) {
	id := strings.ToLower(strings.TrimPrefix(arg, "signOperations/"))
	if !opIDPattern.MatchString(id) {
		return "", fmt.Errorf("%q is not a sign operation name: want signOperations/ and 32 hex digits", arg)
	}
	return "signOperations/" + id, nil
}

// maxPathLen and hardened bound a derivation path (common.proto).
const (
	maxPathLen = 255
	hardened   = 1 << 31
)

// parsePath parses a non-hardened BIP-32 path: "m/0/1", "0/1", or "" or
// "m" for the key itself.
func parsePath(s string) ([]uint32, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "m"), "/")
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, "/")
	if len(parts) > maxPathLen {
		return nil, fmt.Errorf("derivation path longer than %d", maxPathLen)
	}
	path := make([]uint32, len(parts))
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil || n >= hardened {
			return nil, fmt.Errorf("derivation path index %q is not a number below 2^31 (hardened indexes cannot be derived)", p)
		}
		path[i] = uint32(n)
	}
	return path, nil
}

func formatPath(path []uint32) string {
	var b strings.Builder
	b.WriteString("m")
	for _, i := range path {
		fmt.Fprintf(&b, "/%d", i)
	}
	return b.String()
}

// enumName is a proto enum value as the CLI shows it: its name without
// the type's prefix, in lower case ("KEY_SCHEME_FROST_TAPROOT" ->
// "frost_taproot").
func enumName(v fmt.Stringer, prefix string) string {
	return strings.ToLower(strings.TrimPrefix(v.String(), prefix))
}

// parseEnum is enumName's inverse; "-" may stand for "_". The zero
// (UNSPECIFIED) value is refused.
func parseEnum(s, prefix string, values map[string]int32) (int32, error) {
	v, ok := values[prefix+strings.ToUpper(strings.ReplaceAll(s, "-", "_"))]
	if !ok || v == 0 {
		var names []string
		for n, v := range values {
			if v != 0 {
				names = append(names, strings.ToLower(strings.TrimPrefix(n, prefix)))
			}
		}
		slices.Sort(names)
		return 0, fmt.Errorf("%q is not one of %s", s, strings.Join(names, ", "))
	}
	return v, nil
}

// timestamp is a protobuf time as RFC 3339 in UTC; "" when unset.
func timestamp(t *timestamppb.Timestamp) string {
	if t == nil {
		return ""
	}
	return t.AsTime().UTC().Format(time.RFC3339Nano)
}

// writeJSONLine writes v as one line of JSON, for streams.
func writeJSONLine(io IO, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = io.Out.Write(append(b, '\n'))
	return err
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	*l = append(*l, s)
	return nil
}
