package repro

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const root = "../.."

// outFlag finds the -o flag of a go build command.
var outFlag = regexp.MustCompile(`\s-o\s+(\S+)\s`)

// releaseCommand returns the shell command `make build-release` runs
// (from make -n, so the flags are the Makefile's own) and its -o path.
func releaseCommand(t *testing.T) (cmd, out string) {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is needed to read the build-release recipe: ", err)
	}
	c := exec.Command("make", "-s", "-n", "build-release")
	c.Dir = root
	b, err := c.Output()
	if err != nil {
		t.Fatalf("make -n build-release: %v", err)
	}
	cmd = strings.TrimSpace(strings.ReplaceAll(string(b), "\\\n", " "))
	m := outFlag.FindAllStringSubmatch(cmd, -1)
	if len(m) != 1 || strings.Count(cmd, "\n") != 0 {
		t.Fatalf("build-release is no longer one go build with one -o:\n%s", cmd)
	}
	return cmd, m[0][1]
}

// needStaticCgo skips the test when a static cgo link cannot work here.
func needStaticCgo(t *testing.T) {
	t.Helper()
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "gcc"
	}
	if _, err := exec.LookPath(cc); err != nil {
		t.Skipf("SKIP: the release build needs a C compiler (%s) for SQLCipher: %v", cc, err)
	}
	out, err := exec.Command(cc, "-print-file-name=libc.a").Output()
	libc := strings.TrimSpace(string(out))
	if _, statErr := os.Stat(libc); err != nil || !filepath.IsAbs(libc) || statErr != nil {
		t.Skipf("SKIP: the release build links statically and needs the static C library (libc.a; e.g. Debian's libc6-dev), which %s cannot find", cc)
	}
}

// buildRelease runs the build-release recipe with its -o pointed at dir.
func buildRelease(t *testing.T, cmd, out, dir string) []byte {
	t.Helper()
	bin := filepath.Join(dir, "cosigner-enclave")
	c := exec.Command("sh", "-c", outFlag.ReplaceAllLiteralString(cmd, " -o '"+bin+"' "))
	c.Dir = root
	c.Env = append(os.Environ(), "GOTOOLCHAIN=local", "CGO_ENABLED=1") // as the Makefile exports
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("%s\n%s\n%v", c.Args[2], b, err)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReleaseBuildReproducible builds the release enclave twice, into two
// directories, with the recipe of make build-release, and checks that the
// binaries are identical, static, without build IDs, and hold neither
// directory nor the source tree's path.
func TestReleaseBuildReproducible(t *testing.T) {
	needStaticCgo(t)
	cmd, out := releaseCommand(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	a := buildRelease(t, cmd, out, dirA)
	b := buildRelease(t, cmd, out, dirB)
	sumA, sumB := sha256.Sum256(a), sha256.Sum256(b)
	if sumA != sumB {
		t.Fatalf("two release builds differ: %x and %x", sumA, sumB)
	}
	t.Logf("release cosigner-enclave: %d bytes, SHA-256 %x", len(a), sumA)
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dirA, abs} {
		if bytes.Contains(a, []byte(p)) {
			t.Errorf("the binary holds the path %s", p)
		}
	}
	checkELF(t, filepath.Join(dirA, "cosigner-enclave"))
	checkBuildInfo(t, filepath.Join(dirA, "cosigner-enclave"))
}

// checkELF checks that the binary is static and carries no build ID.
func checkELF(t *testing.T, name string) {
	f, err := elf.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary has a %v program header: it is not static", p.Type)
		}
	}
	if s := f.Section(".note.gnu.build-id"); s != nil {
		t.Error("the binary has a GNU build ID (.note.gnu.build-id)")
	}
	if s := f.Section(".note.go.buildid"); s != nil {
		if data, err := s.Data(); err != nil || len(data) > 16 { // a note header and an empty ID
			t.Errorf("the binary has a Go build ID (%d bytes of note)", len(data))
		}
	}
}

// checkBuildInfo checks the settings recorded in the binary: the recipe's
// tags, so the build above was the release build. (With -trimpath Go does
// not record -ldflags; checkELF checks their effect.)
func checkBuildInfo(t *testing.T, name string) {
	bi, err := buildinfo.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	tags := strings.Split(settings["-tags"], ",")
	switch {
	case settings["-trimpath"] != "true":
		t.Error("not built with -trimpath")
	case settings["CGO_ENABLED"] != "1":
		t.Error("not built with cgo")
	case !slices.Contains(tags, "release") || !slices.Contains(tags, "netgo") || !slices.Contains(tags, "osusergo"):
		t.Errorf("tags %q lack release, netgo or osusergo", settings["-tags"])
	}
}

func readDockerfile(t *testing.T) *dockerfile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile.enclave"))
	if err != nil {
		t.Fatal(err)
	}
	df, err := parseDockerfile(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return df
}

// TestDockerfilePinned fails on any image Dockerfile.enclave would pull
// without a digest.
func TestDockerfilePinned(t *testing.T) {
	for _, msg := range readDockerfile(t).unpinned() {
		t.Error("Dockerfile.enclave: " + msg)
	}
}

// TestDockerfileContents checks what the image holds: the binary make
// build-release writes and the CA bundle, at the paths the enclave uses,
// and both let through the build context's ignore file.
func TestDockerfileContents(t *testing.T) {
	_, out := releaseCommand(t)
	df := readDockerfile(t)
	want := map[string]string{out: "/cosigner-enclave", caBundle: "/etc/ssl/certs/ca-certificates.crt"}
	if got := df.copies(); !mapsEqual(got, want) {
		t.Errorf("Dockerfile.enclave copies %v, want %v", got, want)
	}
	var entry []string
	for _, in := range df.instructions {
		if in.cmd == "ENTRYPOINT" {
			entry = in.args
		}
	}
	if strings.Join(entry, " ") != `["/cosigner-enclave"]` {
		t.Errorf("ENTRYPOINT %v, want [\"/cosigner-enclave\"]", entry)
	}
	ignore, err := os.ReadFile(filepath.Join(root, "Dockerfile.enclave.dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(ignore), "\n")
	for src := range want {
		if !slices.Contains(lines, "!"+src) {
			t.Errorf("Dockerfile.enclave.dockerignore does not let %s into the build context", src)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

const caBundle = "deploy/enclave/ca-certificates.crt"

// amazonTrustRoots are the SHA-256 hashes of the SubjectPublicKeyInfo of
// the five roots Amazon Trust Services tells relying parties to trust
// (https://www.amazontrust.com/repository/): Amazon Root CA 1 to 4 and
// Starfield Services Root Certificate Authority - G2.
var amazonTrustRoots = []string{
	"fbe3018031f9586bcbf41727e417b7d1c45c2f47f93be372a17b96b50757d5a2",
	"7f4296fc5b6a4e3b35d3c369623e364ab1af381d8fa7121533c9d6c633ea2461",
	"36abc32656acfc645c61b71613c4bf21c787f5cabbee48348d58597803d7abc9",
	"f7ecded5c66047d28ed6466b543c40e0743abe81d109254dcf845d4c2c7853c5",
	"2b071c59a0a0ae76b0eadb2bad23bad4580b69c3601b630c2eaf0613afa83f92",
}

// TestCABundle checks that the enclave trusts exactly the Amazon Trust
// Services roots: self-signed CA certificates whose keys are the
// published ones, and nothing else.
func TestCABundle(t *testing.T) {
	rest, err := os.ReadFile(filepath.Join(root, caBundle))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil || block.Type != "CERTIFICATE" {
			t.Fatalf("a %s block that is not a certificate: %v", block.Type, err)
		}
		if !cert.IsCA || cert.CheckSignatureFrom(cert) != nil {
			t.Errorf("%s is not a self-signed CA", cert.Subject)
		}
		spki := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
		got = append(got, hex.EncodeToString(spki[:]))
	}
	if strings.TrimSpace(string(rest)) != "" {
		t.Error("text after the last certificate")
	}
	if !slices.Equal(got, amazonTrustRoots) {
		t.Errorf("the bundle's keys are %v, want the Amazon Trust Services roots %v", got, amazonTrustRoots)
	}
}
