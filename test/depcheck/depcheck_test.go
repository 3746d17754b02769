// Package depcheck holds the tests that keep the module's dependency rules:
//
//   - enclave/ and parent/ never import each other (not even indirectly),
//     because the parent is untrusted and the enclave must not trust code
//     written for it, nor the other way round;
//   - pkg/ imports neither;
//   - the release enclave binary (build tag "release") contains no
//     simulator, emulator, fake or devnet package, and its third-party
//     dependency list is the committed release-deps.txt, so a new
//     dependency is a reviewed change (`go test ./test/depcheck -update`).
package depcheck

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/nitro-cosigner/nitro-cosigner"

var update = flag.Bool("update", false, "rewrite release-deps.txt")

type pkg struct {
	ImportPath string
	Deps       []string
	Standard   bool
	GoFiles    []string
}

// list runs `go list -deps -json` (or without -deps) from the module root.
func list(t *testing.T, args ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-e", "-json=ImportPath,Deps,Standard,GoFiles"}, args...)...)
	cmd.Dir = "../.."
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	var pkgs []pkg
	for dec := json.NewDecoder(bytes.NewReader(out)); dec.More(); {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func under(path, dir string) bool {
	prefix := module + "/" + dir
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

func TestLayering(t *testing.T) {
	for _, tags := range []string{"", "release"} {
		for _, p := range list(t, "-tags", tags, "./...") {
			for _, d := range p.Deps {
				if msg := violation(p.ImportPath, d); msg != "" {
					t.Error(msg)
				}
			}
		}
	}
}

// violation describes why the dependency from -> to breaks the layering,
// or returns "".
func violation(from, to string) string {
	switch {
	case under(from, "enclave") && under(to, "parent"),
		under(from, "parent") && under(to, "enclave"):
		return from + " depends on " + to + ": enclave/ and parent/ must not import each other"
	case under(from, "pkg") && (under(to, "enclave") || under(to, "parent") || under(to, "cmd")):
		return from + " depends on " + to + ": pkg/ must import neither enclave/, parent/ nor cmd/"
	}
	return ""
}

func TestViolation(t *testing.T) {
	m := module + "/"
	for _, c := range []struct {
		from, to string
		bad      bool
	}{
		{m + "enclave/app", m + "parent/relay", true},
		{m + "parent/app", m + "enclave/nsm", true},
		{m + "pkg/wire", m + "enclave/keystore", true},
		{m + "pkg/wire", m + "parent/broker", true},
		{m + "enclave/app", m + "pkg/attestation", false},
		{m + "parent/app", m + "pkg/wire", false},
		{m + "cmd/cosignerctl", m + "enclave/nsm", false},
		{m + "enclavex/a", m + "parent/b", false},
	} {
		if got := violation(c.from, c.to) != ""; got != c.bad {
			t.Errorf("violation(%s, %s) = %v, want %v", c.from, c.to, got, c.bad)
		}
	}
}

// forbidden reports whether an import path names a stand-in that must never
// be linked into a release enclave.
func forbidden(path string) bool {
	for _, elem := range strings.Split(path, "/") {
		for _, bad := range []string{"sim", "fake", "emu", "devnet", "testutil", "testing"} {
			if strings.HasSuffix(elem, bad) || strings.HasPrefix(elem, bad) {
				return true
			}
		}
	}
	return false
}

func releaseDeps(t *testing.T) []string {
	pkgs := list(t, "-deps", "-tags", "release", "./cmd/cosigner-enclave")
	var deps []string
	for _, p := range pkgs {
		if !p.Standard {
			deps = append(deps, p.ImportPath)
		}
	}
	slices.Sort(deps)
	return deps
}

func TestReleaseEnclaveHasNoStandIns(t *testing.T) {
	for _, d := range releaseDeps(t) {
		if forbidden(d) {
			t.Errorf("release cosigner-enclave links %s", d)
		}
	}
	for _, p := range list(t, "-tags", "release", "./enclave/nsm") {
		if slices.Contains(p.GoFiles, "simulator.go") {
			t.Errorf("release build of %s compiles simulator.go", p.ImportPath)
		}
	}
}

// TestDevEnclaveHasSimulator proves the check above can fail: the same
// binary built without the release tag does link the simulator.
func TestDevEnclaveHasSimulator(t *testing.T) {
	for _, p := range list(t, "-deps", "./cmd/cosigner-enclave") {
		if strings.HasSuffix(p.ImportPath, "/attestsim") {
			return
		}
	}
	t.Fatal("a dev cosigner-enclave does not link attestsim: the release check proves nothing")
}

func TestReleaseDepsCommitted(t *testing.T) {
	got := strings.Join(releaseDeps(t), "\n") + "\n"
	if *update {
		if err := os.WriteFile("release-deps.txt", []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile("release-deps.txt")
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("the release enclave's dependencies changed; review them and run `go test ./test/depcheck -update`.\ngot:\n%s", got)
	}
}

func TestForbiddenNames(t *testing.T) {
	for path, want := range map[string]bool{
		module + "/pkg/attestation/attestsim": true,
		module + "/enclave/kmsemu":            true,
		module + "/test/fakes3":               true,
		module + "/pkg/attestation":           false,
		module + "/enclave/nsm":               false,
		"github.com/hf/nsm":                   false,
	} {
		if forbidden(path) != want {
			t.Errorf("forbidden(%q) = %v, want %v", path, !want, want)
		}
	}
}
