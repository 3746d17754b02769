// Package cliflag holds flag.Value types shared by the binaries' command
// lines, so that every command parses the same notation the same way.
package cliflag

import (
	"encoding/hex"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// MaxPCR is the highest PCR index a flag accepts: Nitro Enclaves report
// PCR0 to PCR15.
const MaxPCR = 15

// PCRLen is the length of a Nitro PCR value: a SHA-384 digest.
const PCRLen = 48

// PCRs is a repeatable flag of the form N=HEX (e.g. --pcr 0=ab12...), N from
// 0 to MaxPCR and HEX exactly PCRLen bytes, as Nitro Enclaves report them. A
// PCR given twice is an error.
type PCRs map[int][]byte

// String implements flag.Value.
func (p PCRs) String() string {
	var parts []string
	for _, i := range slices.Sorted(maps.Keys(p)) {
		parts = append(parts, fmt.Sprintf("%d=%x", i, p[i]))
	}
	return strings.Join(parts, ",")
}

// Set implements flag.Value.
func (p PCRs) Set(s string) error {
	idx, hx, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("want N=HEX, got %q", s)
	}
	i, err := strconv.Atoi(idx)
	if err != nil || i < 0 || i > MaxPCR {
		return fmt.Errorf("PCR index %q is not a number from 0 to %d", idx, MaxPCR)
	}
	if _, dup := p[i]; dup {
		return fmt.Errorf("PCR%d given twice", i)
	}
	v, err := hex.DecodeString(strings.TrimPrefix(strings.ToLower(hx), "0x"))
	if err != nil {
		return fmt.Errorf("PCR%d value is not hex", i)
	}
	if len(v) != PCRLen {
		return fmt.Errorf("PCR%d is %d bytes; want %d (SHA-384)", i, len(v), PCRLen)
	}
	p[i] = v
	return nil
}

// Hex is a flag holding bytes written in hex (an optional 0x prefix).
type Hex []byte

// String implements flag.Value.
func (h *Hex) String() string { return hex.EncodeToString(*h) }

// Set implements flag.Value.
func (h *Hex) Set(s string) error {
	v, err := hex.DecodeString(strings.TrimPrefix(strings.ToLower(s), "0x"))
	if err != nil {
		return fmt.Errorf("not hex: %w", err)
	}
	*h = v
	return nil
}

// PrintDefaults writes fs's flags to its output like flag.PrintDefaults, but
// spelled with two dashes (--name), the form the documentation uses; Go's
// flag package accepts both.
func PrintDefaults(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		line += "\n    \t" + strings.ReplaceAll(usage, "\n", "\n    \t")
		if f.DefValue != "" && f.DefValue != "false" {
			line += fmt.Sprintf(" (default %q)", f.DefValue)
		}
		fmt.Fprintln(fs.Output(), line)
	})
}
