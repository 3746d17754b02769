package supervise

import (
	"bytes"
	"log/slog"
	"testing"
)

// FuzzForwardLogs: whatever arrives on the log channel, forwarding never
// fails on it, logs at most one record per line, and never a line longer
// than MaxLogLine.
func FuzzForwardLogs(f *testing.F) {
	f.Add([]byte(`{"time":"t","level":"INFO","msg":"m","a":1}` + "\n"))
	f.Add([]byte(`{"level":"WARN+3","msg":"x","source":{"file":"f"},"nested":{"k":[1,2]}}`))
	f.Add([]byte("plain\r\n\n\xff\x00{"))
	f.Add([]byte(`{"level":"INFO","msg":"m"} trailing` + "\n" + `{"level":1,"msg":2}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		sink := &logSink{}
		if err := ForwardLogs(bytes.NewReader(in), slog.New(sink)); err != nil {
			t.Fatal(err)
		}
		if lines := bytes.Count(in, []byte("\n")) + 1; len(sink.recs) > lines {
			t.Fatalf("%d records from %d lines", len(sink.recs), lines)
		}
		for _, r := range sink.recs {
			r.Attrs(func(a slog.Attr) bool {
				if a.Key == "line" && len(a.Value.String()) > 3*MaxLogLine {
					t.Fatalf("line of %d bytes", len(a.Value.String()))
				}
				return true
			})
		}
	})
}
