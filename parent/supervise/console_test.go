package supervise

import (
	"log/slog"
	"strings"
	"testing"
)

func TestForwardLogs(t *testing.T) {
	sink := &logSink{}
	in := strings.Join([]string{
		`{"time":"t1","level":"ERROR","msg":"boom","source":{"file":"a.go","line":3},"key_id":"00ff"}`,
		`{"time":"t2","level":"DEBUG+2","msg":"fine"}`,
		`{"level":"NOPE","msg":"x"}`,
		`{"msg":"no level"}`,
		"plain \xff line\r",
		"",
		strings.Repeat("y", MaxLogLine+100),
		`{"level":"INFO","msg":"after the long line"}`,
	}, "\n")
	if err := ForwardLogs(strings.NewReader(in), slog.New(sink)); err != nil {
		t.Fatal(err)
	}
	r, attrs, ok := sink.find("boom")
	if !ok || r.Level != slog.LevelError || attrs["source"] != "enclave" || attrs["key_id"] != "00ff" ||
		attrs["enclave_time"] != "t1" || !strings.Contains(attrs["enclave_source"], "a.go") {
		t.Fatalf("boom: %v %v", r.Level, attrs)
	}
	if r, _, ok := sink.find("fine"); !ok || r.Level != slog.LevelDebug+2 {
		t.Fatalf("fine: %v", r.Level)
	}
	var lines []string
	sink.mu.Lock()
	for _, r := range sink.recs {
		if r.Message == "enclave output" {
			r.Attrs(func(a slog.Attr) bool {
				if a.Key == "line" {
					lines = append(lines, a.Value.String())
				}
				return true
			})
		}
	}
	n := len(sink.recs)
	sink.mu.Unlock()
	if len(lines) != 4 || lines[2] != "plain \uFFFD line" || len(lines[3]) != MaxLogLine {
		t.Fatalf("console lines: %d, %q", len(lines), lines[:min(3, len(lines))])
	}
	if _, _, ok := sink.find("after the long line"); !ok || n != 7 {
		t.Fatalf("records: %d, line after the long one found: %v", n, ok)
	}
}
