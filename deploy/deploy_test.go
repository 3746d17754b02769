// Package deploy holds the systemd units and the Helm chart of a Nitro
// deployment (see docs/deploy-nitro.md), and the tests that lint them
// without systemd or helm: the chart's YAML parses and documents every
// value, its templates refer only to values that exist, the units carry
// their dependencies and hardening, and every cosigner-parent flag they
// use exists.
package deploy

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

const chart = "helm/nitro-cosigner"

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestChartYAML(t *testing.T) {
	tree, _, err := parseYAML(readFile(t, filepath.Join(chart, "Chart.yaml")))
	if err != nil {
		t.Fatal("Chart.yaml: ", err)
	}
	semver := regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`)
	switch {
	case tree["apiVersion"] != "v2":
		t.Errorf("apiVersion %v, want v2", tree["apiVersion"])
	case tree["name"] != filepath.Base(chart):
		t.Errorf("name %v, want the directory's %s", tree["name"], filepath.Base(chart))
	case !semver.MatchString(tree["version"].(string)):
		t.Errorf("version %v is not SemVer", tree["version"])
	case tree["appVersion"] == nil || tree["type"] != "application":
		t.Error("appVersion missing or type not application")
	}
}

func values(t *testing.T) map[string]any {
	t.Helper()
	tree, undoc, err := parseYAML(readFile(t, filepath.Join(chart, "values.yaml")))
	if err != nil {
		t.Fatal("values.yaml: ", err)
	}
	for _, k := range undoc {
		t.Errorf("values.yaml: %s has no comment right above it", k)
	}
	return tree
}

// TestValuesDocumented parses values.yaml and requires a comment on every
// key (checked in values).
func TestValuesDocumented(t *testing.T) {
	tree := values(t)
	for _, k := range []string{"cosignerID", "parent.image.digest", "enclave.memoryMiB", "enclave.launcher.image.digest", "serviceAccount.annotations"} {
		if !lookup(tree, k) {
			t.Errorf("values.yaml lacks %s", k)
		}
	}
}

var (
	valuesRef = regexp.MustCompile(`\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)`)
	openBlock = regexp.MustCompile(`\{\{-?\s*(if|range|with|define|block)\b`)
	endBlock  = regexp.MustCompile(`\{\{-?\s*end\b`)
)

// TestTemplates checks every template: balanced actions and blocks, and
// every .Values path present in values.yaml.
func TestTemplates(t *testing.T) {
	tree := values(t)
	files, err := filepath.Glob(filepath.Join(chart, "templates", "*"))
	if err != nil || len(files) == 0 {
		t.Fatal("no templates", err)
	}
	for _, f := range files {
		src := readFile(t, f)
		name := filepath.Base(f)
		if strings.Count(src, "{{") != strings.Count(src, "}}") {
			t.Errorf("%s: unbalanced {{ }}", name)
		}
		if o, e := len(openBlock.FindAllString(src, -1)), len(endBlock.FindAllString(src, -1)); o != e {
			t.Errorf("%s: %d blocks opened, %d ended", name, o, e)
		}
		for _, m := range valuesRef.FindAllStringSubmatch(src, -1) {
			if !lookup(tree, m[1][1:]) {
				t.Errorf("%s: .Values%s is not in values.yaml", name, m[1])
			}
		}
		if strings.Contains(src, "\t") {
			t.Errorf("%s: a tab", name)
		}
	}
}

// TestChartRequestsEnclaveResources checks the pod asks for what an
// enclave needs: the device plugin's resource and hugepages, on a node the
// plugin serves, one replica replaced by recreation.
func TestChartRequestsEnclaveResources(t *testing.T) {
	d := readFile(t, filepath.Join(chart, "templates", "deployment.yaml"))
	for _, want := range []string{
		`aws.ec2.nitro/nitro_enclaves: "1"`,
		`hugepages-{{ .Values.enclave.hugepageSize }}: {{ printf "%dMi" (int .Values.enclave.memoryMiB) }}`,
		"medium: HugePages-{{ .Values.enclave.hugepageSize }}",
		"aws-nitro-enclaves-k8s-dp: enabled",
		"replicas: 1",
		"type: Recreate",
		"readOnlyRootFilesystem: true",
	} {
		if !strings.Contains(d, want) {
			t.Errorf("deployment.yaml lacks %q", want)
		}
	}
}

var (
	parentFlagsOnce sync.Once
	parentFlags     []string
	parentFlagsErr  error
)

// knownParentFlags lists the flags `cosigner-parent --help` prints.
func knownParentFlags(t *testing.T) []string {
	t.Helper()
	parentFlagsOnce.Do(func() {
		cmd := exec.Command("go", "run", "./cmd/cosigner-parent", "--help")
		cmd.Dir = ".."
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		parentFlagsErr = cmd.Run()
		re := regexp.MustCompile(`^  --([a-z0-9-]+)`)
		sc := bufio.NewScanner(&out)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				parentFlags = append(parentFlags, m[1])
			}
		}
	})
	if parentFlagsErr != nil || len(parentFlags) < 10 {
		t.Fatalf("cosigner-parent --help: %v (%d flags)", parentFlagsErr, len(parentFlags))
	}
	return parentFlags
}

var flagUse = regexp.MustCompile(`(?:^|[\s"])--([a-z0-9-]+)`)

// TestParentFlagsExist checks that every flag the chart and the systemd
// example give cosigner-parent exists (the planned supervision flags are
// only in comments).
func TestParentFlagsExist(t *testing.T) {
	known := knownParentFlags(t)
	var args []string
	for _, l := range strings.Split(readFile(t, filepath.Join(chart, "templates", "deployment.yaml")), "\n") {
		if a, ok := strings.CutPrefix(strings.TrimSpace(l), "- --"); ok {
			args = append(args, "--"+a)
		}
		if strings.Contains(l, "name: enclave") {
			break // the parent container's args end here
		}
	}
	for _, l := range strings.Split(readFile(t, "systemd/parent.env.example"), "\n") {
		if v, ok := strings.CutPrefix(l, "COSIGNER_PARENT_FLAGS="); ok {
			args = append(args, strings.Fields(v)...)
		}
	}
	if len(args) < 10 {
		t.Fatalf("found only %d parent arguments", len(args))
	}
	for _, a := range args {
		for _, m := range flagUse.FindAllStringSubmatch(a, -1) {
			if !slices.Contains(known, m[1]) {
				t.Errorf("cosigner-parent has no --%s (used in %q)", m[1], a)
			}
		}
	}
}

// unit is a systemd unit file: section -> key -> values in order.
type unit map[string]map[string][]string

func readUnit(t *testing.T, name string) unit {
	t.Helper()
	u := unit{}
	section := ""
	for i, l := range strings.Split(readFile(t, filepath.Join("systemd", name)), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			section = l[1 : len(l)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value line in a section", name, i+1)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

func (u unit) has(section, key, value string) bool {
	for _, v := range u[section][key] {
		if v == value || slices.Contains(strings.Fields(v), value) {
			return true
		}
	}
	return false
}

func TestSystemdUnits(t *testing.T) {
	parent := readUnit(t, "nitro-cosigner-parent.service")
	enclave := readUnit(t, "nitro-cosigner-enclave.service")
	for _, c := range []struct {
		u                   unit
		name                string
		section, key, value string
	}{
		{parent, "parent", "Unit", "Requires", "nitro-enclaves-allocator.service"},
		{parent, "parent", "Unit", "After", "nitro-enclaves-allocator.service"},
		{parent, "parent", "Unit", "Before", "nitro-cosigner-enclave.service"},
		{parent, "parent", "Service", "DynamicUser", "yes"},
		{parent, "parent", "Service", "NoNewPrivileges", "yes"},
		{parent, "parent", "Service", "CapabilityBoundingSet", ""},
		{parent, "parent", "Service", "ProtectSystem", "strict"},
		{parent, "parent", "Service", "PrivateDevices", "yes"},
		{parent, "parent", "Service", "RestrictAddressFamilies", "AF_VSOCK"},
		{parent, "parent", "Service", "SystemCallFilter", "@system-service"},
		{parent, "parent", "Service", "Restart", "on-failure"},
		{enclave, "enclave", "Unit", "Requires", "nitro-enclaves-allocator.service"},
		{enclave, "enclave", "Unit", "After", "nitro-cosigner-parent.service"},
		{enclave, "enclave", "Service", "SupplementaryGroups", "ne"},
		{enclave, "enclave", "Service", "NoNewPrivileges", "yes"},
	} {
		if !c.u.has(c.section, c.key, c.value) {
			t.Errorf("%s unit: no %s=%s in [%s]", c.name, c.key, c.value, c.section)
		}
	}
	for name, u := range map[string]unit{"parent": parent, "enclave": enclave} {
		for _, key := range []string{"ExecStart", "ExecStop", "ExecStartPre"} {
			for _, v := range u["Service"][key] {
				if !strings.HasPrefix(strings.TrimPrefix(v, "-"), "/") {
					t.Errorf("%s unit: %s=%s is not an absolute path", name, key, v)
				}
			}
		}
	}
	for _, v := range enclave["Service"]["ExecStart"] {
		if strings.Contains(v, "--debug-mode") {
			t.Error("the enclave unit starts a debug-mode enclave")
		}
	}
}

// TestSystemdVerify runs systemd-analyze verify where it exists, and fails
// on anything but the units and programs this machine lacks.
func TestSystemdVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	dir := t.TempDir()
	for _, name := range []string{"nitro-cosigner-parent.service", "nitro-cosigner-enclave.service"} {
		src := regexp.MustCompile(`(?m)^EnvironmentFile=`).ReplaceAllString(readFile(t, filepath.Join("systemd", name)), "EnvironmentFile=-")
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("systemd-analyze", "verify", "--man=no", "nitro-cosigner-parent.service", "nitro-cosigner-enclave.service")
	cmd.Dir = dir
	out, _ := cmd.CombinedOutput()
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l == "" || strings.Contains(l, "not found") || strings.Contains(l, "is not executable") {
			continue
		}
		t.Errorf("systemd-analyze verify: %s", l)
	}
}
