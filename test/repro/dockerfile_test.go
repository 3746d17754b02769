package repro

import (
	"strings"
	"testing"
)

const digest = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// TestUnpinned proves the pinning check can fail, and on what.
func TestUnpinned(t *testing.T) {
	for _, c := range []struct {
		name, file string
		bad        int
	}{
		{"scratch", "FROM scratch\nCOPY a /a\n", 0},
		{"digest", "FROM golang" + digest + " AS build\nRUN go build\nFROM scratch\nCOPY --from=build /x /x\n", 0},
		{"tag and digest", "FROM golang:1.26.8-bookworm" + digest + "\n", 0},
		{"registry with port", "FROM registry.example:5000/team/img" + digest + "\n", 0},
		{"platform flag", "FROM --platform=linux/amd64 golang" + digest + " AS b\n", 0},
		{"tag only", "FROM golang:1.26.8-bookworm AS build\n", 1},
		{"bare name", "from alpine\n", 1},
		{"short digest", "FROM golang@sha256:0123\n", 1},
		{"upper-case digest", "FROM golang" + strings.ToUpper(digest) + "\n", 1},
		{"variable", "ARG BASE=golang" + digest + "\nFROM ${BASE}\n", 1},
		{"copy from an image", "FROM scratch\nCOPY --from=alpine:3 /etc/passwd /etc/passwd\n", 1},
		{"copy from a pinned image", "FROM scratch\nCOPY --from=alpine" + digest + " /a /a\n", 0},
		{"mount from an image", "FROM x" + digest + "\nRUN --mount=type=bind,from=alpine,target=/a true\n", 1},
		{"stage used before it is named", "FROM build\nFROM golang" + digest + " AS build\n", 1},
		{"unpinned syntax", "# syntax=docker/dockerfile:1\nFROM scratch\n", 1},
		{"pinned syntax", "# syntax=docker/dockerfile" + digest + "\nFROM scratch\n", 0},
		{"syntax after a comment is a comment", "# hello\n# syntax=docker/dockerfile:1\nFROM scratch\n", 0},
		{"remote ADD", "FROM scratch\nADD https://example.com/x /x\n", 1},
		{"remote ADD with checksum", "FROM scratch\nADD --checksum=sha256:ab https://example.com/x /x\n", 0},
		{"continued FROM", "FROM \\\n  golang:1.26 \\\n  AS build\n", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			df, err := parseDockerfile(c.file)
			if err != nil {
				t.Fatal(err)
			}
			if bad := df.unpinned(); len(bad) != c.bad {
				t.Fatalf("unpinned = %q, want %d findings", bad, c.bad)
			}
		})
	}
}

func TestParseDockerfileRefuses(t *testing.T) {
	for _, file := range []string{"# escape=`\nFROM scratch\n", "FROM scratch \\\n"} {
		if _, err := parseDockerfile(file); err == nil {
			t.Errorf("parseDockerfile(%q) accepted", file)
		}
	}
}
