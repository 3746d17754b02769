package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"
)

// Helm renders charts with Go's text/template and the sprig functions.
// Without helm here, render parses the templates with text/template (so a
// syntax error fails as it would in helm) and executes them with stand-ins
// for the few functions the chart uses.

// typed turns the reader's scalar strings into the booleans and integers
// helm would see.
func typed(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range v {
			out[k] = typed(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = typed(e)
		}
		return out
	case string:
		if v == "true" || v == "false" {
			return v == "true"
		}
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return v
}

// set assigns a dotted path in a values tree.
func set(tree map[string]any, path string, v any) {
	keys := strings.Split(path, ".")
	m := tree
	for _, k := range keys[:len(keys)-1] {
		m = m[k].(map[string]any)
	}
	m[keys[len(keys)-1]] = v
}

// toYAML emits the block YAML of maps, lists and scalars.
func toYAML(v any, indent string) string {
	var b strings.Builder
	switch v := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			switch e := v[k].(type) {
			case map[string]any, []any:
				fmt.Fprintf(&b, "%s%s:\n%s", indent, k, toYAML(e, indent+"  "))
			default:
				fmt.Fprintf(&b, "%s%s: %v\n", indent, k, e)
			}
		}
	case []any:
		for _, e := range v {
			fmt.Fprintf(&b, "%s- %v\n", indent, e)
		}
	}
	return b.String()
}

func render(t *testing.T, vals map[string]any) (map[string]string, error) {
	t.Helper()
	var tmpl *template.Template
	errFail := errors.New("fail")
	funcs := template.FuncMap{
		"include": func(name string, data any) (string, error) {
			var b strings.Builder
			err := tmpl.ExecuteTemplate(&b, name, data)
			return b.String(), err
		},
		"nindent": func(n int, s string) string {
			pad := strings.Repeat(" ", n)
			return "\n" + pad + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+pad)
		},
		"toYaml": func(v any) string { return strings.TrimRight(toYAML(v, ""), "\n") },
		"quote":  func(v any) string { return strconv.Quote(fmt.Sprint(v)) },
		"default": func(d, v any) any {
			if v == nil || v == "" {
				return d
			}
			return v
		},
		"required": func(msg string, v any) (any, error) {
			if v == nil || v == "" {
				return nil, fmt.Errorf("%w: %s", errFail, msg)
			}
			return v, nil
		},
		"fail":       func(msg string) (string, error) { return "", fmt.Errorf("%w: %s", errFail, msg) },
		"regexMatch": func(re, s string) bool { return regexp.MustCompile(re).MatchString(s) },
		"int":        func(v any) int { n, _ := strconv.Atoi(fmt.Sprint(v)); return n },
		"sha256sum":  func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) },
		"trunc":      func(n int, s string) string { return s[:min(n, len(s))] },
		"trimSuffix": func(suf, s string) string { return strings.TrimSuffix(s, suf) },
	}
	tmpl = template.New("chart").Funcs(funcs)
	files, _ := filepath.Glob(filepath.Join(chart, "templates", "*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tmpl.New("nitro-cosigner/templates/" + filepath.Base(f)).Parse(string(b)); err != nil {
			t.Fatalf("%s does not parse: %v", filepath.Base(f), err)
		}
	}
	data := map[string]any{
		"Values":   vals,
		"Release":  map[string]any{"Name": "alice", "Namespace": "cosigners", "Service": "Helm"},
		"Chart":    map[string]any{"Name": "nitro-cosigner", "AppVersion": "0.0.0-dev"},
		"Template": map[string]any{"BasePath": "nitro-cosigner/templates"},
	}
	out := map[string]string{}
	for _, f := range files {
		name := filepath.Base(f)
		if strings.HasPrefix(name, "_") {
			continue
		}
		var b strings.Builder
		if err := tmpl.ExecuteTemplate(&b, "nitro-cosigner/templates/"+name, data); err != nil {
			return nil, err
		}
		out[name] = b.String()
	}
	return out, nil
}

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func installValues(t *testing.T) map[string]any {
	vals := typed(values(t)).(map[string]any)
	set(vals, "cosignerID", "alice")
	set(vals, "parent.image.repository", "example.com/cosigner-parent")
	set(vals, "parent.image.digest", testDigest)
	set(vals, "enclave.launcher.image.repository", "example.com/alice-launcher")
	set(vals, "enclave.launcher.image.digest", testDigest)
	set(vals, "parent.broker.natsURLSecret.name", "alice-nats")
	set(vals, "parent.egressAllow", []any{"kms.eu-west-1.amazonaws.com:443"})
	return vals
}

// TestRender renders the chart with install values and checks what the
// pod gets.
func TestRender(t *testing.T) {
	out, err := render(t, installValues(t))
	if err != nil {
		t.Fatal(err)
	}
	d := out["deployment.yaml"]
	for _, want := range []string{
		"image: example.com/cosigner-parent@" + testDigest,
		"- --nats-url=$(NATS_URL)",
		"- --egress-allow=kms.eu-west-1.amazonaws.com:443",
		"hugepages-2Mi: 2048Mi",
		"medium: HugePages-2Mi",
		`aws.ec2.nitro/nitro_enclaves: "1"`,
	} {
		if !strings.Contains(d, want) {
			t.Errorf("the deployment lacks %q:\n%s", want, d)
		}
	}
	if strings.Contains(d, "--broker-provision") || strings.Contains(d, "<no value>") || strings.Contains(out["configmap.yaml"], "<no value>") {
		t.Error("the rendering holds an unset value or an unasked flag")
	}
	if c := out["configmap.yaml"]; !strings.Contains(c, `INGRESS_ENCLAVE: "vsock://16:8443"`) || !strings.Contains(c, `ENCLAVE_MEMORY_MIB: "2048"`) {
		t.Errorf("the configmap:\n%s", c)
	}
}

// TestRenderRefuses checks the chart's own refusals: images not pinned by
// digest, a bad cosigner ID, a NATS broker without its Secret.
func TestRenderRefuses(t *testing.T) {
	for name, c := range map[string]struct{ path, value, want string }{
		"tag, not digest":  {"parent.image.digest", "latest", "pinned by digest"},
		"no launcher":      {"enclave.launcher.image.repository", "", "repository is required"},
		"bad cosigner ID":  {"cosignerID", "al ice", "cosignerID must be"},
		"no NATS secret":   {"parent.broker.natsURLSecret.name", "", "natsURLSecret.name is required"},
		"unknown broker":   {"parent.broker.kind", "rabbitmq", "must be nats, kafka or sqs"},
		"kafka no brokers": {"parent.broker.kind", "kafka", "kafkaBrokers is required"},
	} {
		t.Run(name, func(t *testing.T) {
			vals := installValues(t)
			set(vals, c.path, c.value)
			_, err := render(t, vals)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("render error %v, want %q", err, c.want)
			}
		})
	}
}
