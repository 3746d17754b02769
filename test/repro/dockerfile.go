// Package repro holds the checks that the release enclave image can be
// rebuilt bit for bit: the release binary built twice with the flags of
// `make build-release` is identical, static and free of build IDs and
// paths; Dockerfile.enclave pulls nothing that is not pinned by digest and
// holds only the release binary and the pinned CA bundle. The checks are
// tests (go test ./test/repro); this file holds the Dockerfile reader they
// share.
package repro

import (
	"fmt"
	"regexp"
	"strings"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int    // where it starts, from 1
	cmd  string // upper case: FROM, COPY, ...
	args []string
}

// dockerfile is a parsed Dockerfile: its parser directives (lower-case
// names) and instructions.
type dockerfile struct {
	directives   map[string]string
	instructions []instruction
}

var directivePattern = regexp.MustCompile(`^#\s*([A-Za-z]+)\s*=\s*(\S+)\s*$`)

// parseDockerfile reads the subset of the Dockerfile syntax a pinning
// check needs: parser directives, comments, backslash continuations and
// whitespace-separated arguments. An escape directive other than the
// backslash is refused rather than misread.
func parseDockerfile(text string) (*dockerfile, error) {
	df := &dockerfile{directives: map[string]string{}}
	lines := strings.Split(text, "\n")
	i := 0
	for ; i < len(lines); i++ {
		m := directivePattern.FindStringSubmatch(lines[i])
		if m == nil {
			break
		}
		df.directives[strings.ToLower(m[1])] = m[2]
	}
	if esc, ok := df.directives["escape"]; ok && esc != `\` {
		return nil, fmt.Errorf("escape directive %q is not supported", esc)
	}
	var cur []string
	start := 0
	for ; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if cur == nil {
			start = i + 1
		}
		cont := strings.HasSuffix(line, `\`)
		cur = append(cur, strings.Fields(strings.TrimSuffix(line, `\`))...)
		if !cont {
			df.instructions = append(df.instructions, instruction{start, strings.ToUpper(cur[0]), cur[1:]})
			cur = nil
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("line %d: the file ends inside a continued instruction", start)
	}
	return df, nil
}

// pinnedImage is an image reference pinned by digest.
var pinnedImage = regexp.MustCompile(`^[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}$`)

// unpinned lists every image the Dockerfile would pull without a digest:
// a FROM other than scratch or an earlier stage, a COPY/ADD --from or RUN
// --mount from= likewise, a # syntax= frontend, and an ADD of a remote
// source without --checksum.
func (df *dockerfile) unpinned() []string {
	var bad []string
	if s, ok := df.directives["syntax"]; ok && !pinnedImage.MatchString(s) {
		bad = append(bad, "# syntax="+s+": the frontend image is not pinned by digest")
	}
	stages := map[string]bool{}
	ref := func(in instruction, image string) {
		if image != "scratch" && !stages[strings.ToLower(image)] && !pinnedImage.MatchString(image) {
			bad = append(bad, fmt.Sprintf("line %d: %s %s is neither scratch, an earlier stage nor name@sha256:<64 hex>", in.line, in.cmd, image))
		}
	}
	for _, in := range df.instructions {
		flags, rest := splitFlags(in.args)
		switch in.cmd {
		case "FROM":
			if len(rest) == 0 {
				bad = append(bad, fmt.Sprintf("line %d: FROM without an image", in.line))
				continue
			}
			ref(in, rest[0])
			if len(rest) == 3 && strings.EqualFold(rest[1], "AS") {
				stages[strings.ToLower(rest[2])] = true
			}
		case "COPY", "ADD", "RUN":
			for _, from := range fromFlags(flags) {
				ref(in, from)
			}
		}
		if in.cmd == "ADD" && !hasFlag(flags, "--checksum") && hasRemote(rest) {
			bad = append(bad, fmt.Sprintf("line %d: ADD of a remote source without --checksum", in.line))
		}
	}
	return bad
}

// splitFlags separates the leading --flags of an instruction.
func splitFlags(args []string) (flags, rest []string) {
	for i, a := range args {
		if !strings.HasPrefix(a, "--") {
			return args[:i], args[i:]
		}
	}
	return args, nil
}

// fromFlags returns the images named by --from=X and --mount=...,from=X.
func fromFlags(flags []string) []string {
	var out []string
	for _, f := range flags {
		if v, ok := strings.CutPrefix(f, "--from="); ok {
			out = append(out, v)
		}
		if v, ok := strings.CutPrefix(f, "--mount="); ok {
			for _, kv := range strings.Split(v, ",") {
				if img, ok := strings.CutPrefix(kv, "from="); ok {
					out = append(out, img)
				}
			}
		}
	}
	return out
}

func hasFlag(flags []string, name string) bool {
	for _, f := range flags {
		if f == name || strings.HasPrefix(f, name+"=") {
			return true
		}
	}
	return false
}

func hasRemote(srcs []string) bool {
	for _, s := range srcs {
		if strings.Contains(s, "://") || strings.HasPrefix(s, "git@") {
			return true
		}
	}
	return false
}

// copies returns the COPY instructions as source -> destination (one
// source each), for checking what the image holds.
func (df *dockerfile) copies() map[string]string {
	out := map[string]string{}
	for _, in := range df.instructions {
		_, rest := splitFlags(in.args)
		if (in.cmd == "COPY" || in.cmd == "ADD") && len(rest) == 2 {
			out[rest[0]] = rest[1]
		}
	}
	return out
}
