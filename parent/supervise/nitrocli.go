package supervise

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ErrCLI wraps every failed nitro-cli command.
var ErrCLI = errors.New("supervise: nitro-cli failed")

// Output limits: nitro-cli prints a few hundred bytes of JSON.
const (
	maxStdout  = 1 << 20
	maxStderr  = 4 << 10
	maxErrText = 512
	waitDelay  = 5 * time.Second
)

// cli runs nitro-cli.
type cli struct {
	path    string
	timeout time.Duration
}

// runInfo is run-enclave's answer.
type runInfo struct {
	EnclaveName string `json:"EnclaveName"`
	EnclaveID   string `json:"EnclaveID"`
	EnclaveCID  uint64 `json:"EnclaveCID"`
	CPUs        int    `json:"NumberOfCPUs"`
	MemoryMiB   int    `json:"MemoryMiB"`
}

// enclaveInfo is one entry of describe-enclaves. Measurements is reported
// by recent nitro-cli versions only.
type enclaveInfo struct {
	EnclaveName  string            `json:"EnclaveName"`
	EnclaveID    string            `json:"EnclaveID"`
	EnclaveCID   uint64            `json:"EnclaveCID"`
	State        string            `json:"State"`
	Flags        string            `json:"Flags"`
	Measurements map[string]string `json:"Measurements"`
}

func (e enclaveInfo) running() bool { return strings.EqualFold(e.State, "RUNNING") }

// eifInfo is describe-eif's answer.
type eifInfo struct {
	Measurements map[string]string `json:"Measurements"`
}

type terminateInfo struct {
	EnclaveID  string `json:"EnclaveID"`
	Terminated bool   `json:"Terminated"`
}

// runArgs is what run-enclave is given.
type runArgs struct {
	eif, name    string
	cpus, memory int
	cid          uint32
	debug        bool
}

func (c cli) runEnclave(ctx context.Context, a runArgs) (runInfo, error) {
	args := []string{"run-enclave", "--eif-path", a.eif, "--cpu-count", strconv.Itoa(a.cpus),
		"--memory", strconv.Itoa(a.memory), "--enclave-name", a.name}
	if a.cid != 0 {
		args = append(args, "--enclave-cid", strconv.FormatUint(uint64(a.cid), 10))
	}
	if a.debug {
		args = append(args, "--debug-mode")
	}
	var info runInfo
	if err := c.json(ctx, &info, args...); err != nil {
		return info, err
	}
	if info.EnclaveID == "" || info.EnclaveCID == 0 {
		return info, fmt.Errorf("%w: run-enclave: no enclave ID or CID in its output", ErrCLI)
	}
	return info, nil
}

func (c cli) describeEnclaves(ctx context.Context) ([]enclaveInfo, error) {
	var list []enclaveInfo
	err := c.json(ctx, &list, "describe-enclaves")
	return list, err
}

func (c cli) describeEIF(ctx context.Context, eif string) (map[string]string, error) {
	var info eifInfo
	if err := c.json(ctx, &info, "describe-eif", "--eif-path", eif); err != nil {
		return nil, err
	}
	if len(info.Measurements) == 0 {
		return nil, fmt.Errorf("%w: describe-eif: no measurements in its output", ErrCLI)
	}
	return info.Measurements, nil
}

func (c cli) terminate(ctx context.Context, id string) error {
	var info terminateInfo
	if err := c.json(ctx, &info, "terminate-enclave", "--enclave-id", id); err != nil {
		return err
	}
	if !info.Terminated {
		return fmt.Errorf("%w: terminate-enclave: not terminated", ErrCLI)
	}
	return nil
}

// console starts `nitro-cli console` for a debug-mode enclave; the caller
// reads its output and waits for it.
func (c cli) console(ctx context.Context, id string) (*exec.Cmd, io.ReadCloser, error) {
	cmd := exec.CommandContext(ctx, c.path, "console", "--enclave-id", id)
	cmd.WaitDelay = waitDelay
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("%w: console: %w", ErrCLI, err)
	}
	return cmd, out, nil
}

// json runs nitro-cli with args and decodes the JSON value in its
// output into v.
func (c cli) json(ctx context.Context, v any, args ...string) error {
	out, err := c.run(ctx, args...)
	if err != nil {
		return err
	}
	if err := decodeJSON(out, v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCLI, args[0], err)
	}
	return nil
}

// run runs nitro-cli and returns its standard output. A failure's error
// holds the start of its standard error (nitro-cli's error code and
// message).
func (c cli) run(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.path, args...)
	cmd.WaitDelay = waitDelay
	var stdout, stderr limitedBuffer
	stdout.limit, stderr.limit = maxStdout, maxStderr
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%w: %s: %w", ErrCLI, args[0], ctx.Err())
	case err != nil:
		return nil, fmt.Errorf("%w: %s: %w%s", ErrCLI, args[0], err, errText(stderr.Bytes()))
	case stdout.overflow:
		return nil, fmt.Errorf("%w: %s: output larger than %d bytes", ErrCLI, args[0], maxStdout)
	}
	return stdout.Bytes(), nil
}

// errText formats nitro-cli's standard error for an error message: one
// line, printable, bounded.
func errText(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
	if len(s) > maxErrText {
		s = s[:maxErrText] + "..."
	}
	if s == "" {
		return ""
	}
	return ": " + s
}

// decodeJSON decodes the first JSON value that starts a line of out:
// nitro-cli prints progress lines ("Start allocating memory...") before
// its JSON.
func decodeJSON(out []byte, v any) error {
	for rest := out; len(rest) > 0; {
		line := bytes.TrimLeft(rest, " \t\r")
		if len(line) > 0 && (line[0] == '{' || line[0] == '[') {
			if json.NewDecoder(bytes.NewReader(line)).Decode(v) == nil {
				return nil
			}
		}
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		rest = rest[i+1:]
	}
	return errors.New("no JSON in its output")
}

// limitedBuffer keeps the first limit bytes written to it.
type limitedBuffer struct {
	bytes.Buffer
	limit    int
	overflow bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.limit - b.Len(); len(p) > room {
		b.overflow = true
		b.Buffer.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

// PCRMismatchError reports a measured PCR that differs from the expected
// one, or is missing (Got nil). Measurements are public values.
type PCRMismatchError struct {
	Source string // "describe-eif" or "describe-enclaves"
	PCR    int
	Want   []byte
	Got    []byte
}

func (e *PCRMismatchError) Error() string {
	if e.Got == nil {
		return fmt.Sprintf("supervise: %s reports no PCR%d, want %x", e.Source, e.PCR, e.Want)
	}
	return fmt.Sprintf("supervise: %s reports PCR%d %x, want %x", e.Source, e.PCR, e.Got, e.Want)
}

// ErrPCRMismatch is wrapped by *PCRMismatchError.
var ErrPCRMismatch = errors.New("supervise: the image's PCRs differ from the expected ones")

func (e *PCRMismatchError) Unwrap() error { return ErrPCRMismatch }

// checkMeasurements compares nitro-cli's measurements ("PCR0": hex, ...)
// with want.
func checkMeasurements(source string, got map[string]string, want map[int][]byte) error {
	for _, i := range MeasuredPCRs {
		w, ok := want[i]
		if !ok {
			continue
		}
		s, found := got["PCR"+strconv.Itoa(i)]
		g, err := hex.DecodeString(strings.TrimSpace(s))
		if !found || err != nil || len(g) == 0 {
			return &PCRMismatchError{Source: source, PCR: i, Want: w}
		}
		if !bytes.Equal(g, w) {
			return &PCRMismatchError{Source: source, PCR: i, Want: w, Got: g}
		}
	}
	return nil
}
