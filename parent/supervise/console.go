package supervise

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/transport"
)

// MaxLogLine bounds one forwarded line; the rest of a longer line is
// dropped.
const MaxLogLine = 64 << 10

// ForwardLogs reads lines from r until it ends and logs each on log with
// source=enclave. A JSON object written by slog's JSON handler is logged
// again at its level, with its message and attributes (its time as
// enclave_time); any other line is logged at info level as
// "enclave output" with the line. It returns nil at EOF, else r's error.
func ForwardLogs(r io.Reader, log *slog.Logger) error {
	br := bufio.NewReaderSize(r, 4096)
	for {
		line, err := readLine(br)
		if len(bytes.TrimSpace(line)) > 0 {
			relog(log, line)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// ServeLogs accepts connections on l until ctx ends (or l fails) and
// forwards the lines each one carries with ForwardLogs: the enclave's log
// channel (enclave/logfwd, cosigner-enclave --log-forward). Anything on
// the host that can connect to l can write lines too: they are as
// trustworthy as the host.
func ServeLogs(ctx context.Context, l net.Listener, log *slog.Logger) error {
	return transport.Serve(ctx, l, func(_ context.Context, c net.Conn) {
		if err := ForwardLogs(c, log); err != nil && ctx.Err() == nil {
			log.Debug("enclave log connection ended", "err", err)
		}
	})
}

// readLine returns the next line without its end, cut at MaxLogLine.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if room := MaxLogLine - len(line); room > 0 {
			line = append(line, chunk[:min(len(chunk), room)]...)
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return bytes.TrimRight(line, "\r\n"), err
		}
	}
}

func relog(log *slog.Logger, line []byte) {
	text := strings.ToValidUTF8(string(line), "\uFFFD")
	rec, ok := parseRecord(text)
	if !ok {
		log.Info("enclave output", "source", "enclave", "line", text)
		return
	}
	attrs := []any{"source", "enclave"}
	if rec.time != "" {
		attrs = append(attrs, "enclave_time", rec.time)
	}
	for _, k := range slices.Sorted(maps.Keys(rec.attrs)) {
		attrs = append(attrs, k, rec.attrs[k])
	}
	log.Log(context.Background(), rec.level, rec.msg, attrs...)
}

// record is one line of slog's JSON handler.
type record struct {
	level slog.Level
	msg   string
	time  string
	attrs map[string]any
}

// parseRecord reads a slog JSON line: an object with string "level" and
// "msg".
func parseRecord(text string) (record, bool) {
	if !strings.HasPrefix(text, "{") {
		return record{}, false
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) != nil {
		return record{}, false
	}
	levelText, ok1 := m["level"].(string)
	msg, ok2 := m["msg"].(string)
	var rec record
	if !ok1 || !ok2 || rec.level.UnmarshalText([]byte(levelText)) != nil {
		return record{}, false
	}
	rec.msg = msg
	rec.time, _ = m["time"].(string)
	delete(m, "level")
	delete(m, "msg")
	delete(m, "time")
	if src, ok := m["source"]; ok { // ours says where the line came from
		m["enclave_source"] = src
		delete(m, "source")
	}
	rec.attrs = m
	return rec, true
}
