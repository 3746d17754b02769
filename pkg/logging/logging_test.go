package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestFormats(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, Config{})
	if err != nil {
		t.Fatal(err)
	}
	log.Info("started", "cosigner", "c1")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("default format is not JSON: %q", buf.String())
	}
	if rec["msg"] != "started" || rec["cosigner"] != "c1" {
		t.Fatalf("record %v", rec)
	}

	buf.Reset()
	log, err = New(&buf, Config{Format: "text", Level: "warn"})
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown", "k", "v")
	if out := buf.String(); strings.Contains(out, "hidden") || !strings.Contains(out, "msg=shown k=v") {
		t.Fatalf("text/warn output %q", out)
	}
}

func TestBadConfig(t *testing.T) {
	for _, cfg := range []Config{{Format: "xml"}, {Level: "loud"}} {
		if _, err := New(&bytes.Buffer{}, cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: err = %v, want ErrConfig", cfg, err)
		}
	}
}

func TestLevels(t *testing.T) {
	for in, want := range map[string]string{"": "INFO", "DEBUG": "DEBUG", "warning": "WARN", "error": "ERROR"} {
		got, err := ParseLevel(in)
		if err != nil || got.String() != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
}
