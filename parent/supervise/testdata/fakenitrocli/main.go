// Command fakenitrocli stands in for nitro-cli in tests. It keeps its
// enclaves in a state directory given as its first two arguments
// (--state DIR), then takes nitro-cli's arguments:
//
//	describe-eif --eif-path P        PCR0 = SHA-384(file), PCR1 = SHA-384("fake kernel"),
//	                                 PCR2 = SHA-384("fake app" || file); error if P is missing
//	run-enclave --eif-path P --cpu-count N --memory M [--enclave-name X] [--enclave-cid C] [--debug-mode]
//	describe-enclaves                with Measurements, unless DIR/old-cli exists
//	terminate-enclave --enclave-id I
//	console --enclave-id I           debug-mode enclaves only: prints DIR/console, then
//	                                 waits until the enclave is gone
//
// Control files in DIR: fail-run (run-enclave fails with its content),
// fail-describe (describe-enclaves fails), running-pcr0 (hex PCR0 that
// describe-enclaves reports for running enclaves), hang (every command
// sleeps a minute first). Every call is appended to DIR/calls.log as
// "UNIXNANO ARGS...". Like nitro-cli, run-enclave prints progress lines
// before its JSON, and errors go to stderr with exit status 1.
package main

import (
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

type enclave struct {
	EnclaveName  string            `json:"EnclaveName"`
	EnclaveID    string            `json:"EnclaveID"`
	ProcessID    int               `json:"ProcessID"`
	EnclaveCID   uint64            `json:"EnclaveCID"`
	NumberOfCPUs int               `json:"NumberOfCPUs"`
	CPUIDs       []int             `json:"CPUIDs"`
	MemoryMiB    int               `json:"MemoryMiB"`
	State        string            `json:"State"`
	Flags        string            `json:"Flags"`
	Measurements map[string]string `json:"Measurements,omitempty"`
}

var dir string

func main() {
	if len(os.Args) < 4 || os.Args[1] != "--state" {
		fail("usage: fakenitrocli --state DIR COMMAND ...")
	}
	dir = os.Args[2]
	args := os.Args[3:]
	logCall(args)
	if exists("hang") {
		time.Sleep(time.Minute)
	}
	switch args[0] {
	case "describe-eif":
		describeEIF(args[1:])
	case "run-enclave":
		runEnclave(args[1:])
	case "describe-enclaves":
		describeEnclaves()
	case "terminate-enclave":
		terminate(args[1:])
	case "console":
		console(args[1:])
	default:
		fail("unknown command " + args[0])
	}
}

func fail(msg string) {
	fmt.Fprintf(os.Stderr, "[ E00 ] %s\n\nFor more details, please visit https://docs.aws.amazon.com/enclaves/\n", msg)
	os.Exit(1)
}

func logCall(args []string) {
	f, err := os.OpenFile(filepath.Join(dir, "calls.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		fail(err.Error())
	}
	defer f.Close()
	fmt.Fprintln(f, time.Now().UnixNano(), strings.Join(args, " "))
}

func exists(name string) bool {
	_, err := os.Stat(filepath.Join(dir, name))
	return err == nil
}

func measure(eif string) map[string]string {
	b, err := os.ReadFile(eif)
	if err != nil {
		fail("E19 Could not open the EIF file: " + err.Error())
	}
	h := func(parts ...[]byte) string {
		d := sha512.New384()
		for _, p := range parts {
			d.Write(p)
		}
		return hex.EncodeToString(d.Sum(nil))
	}
	return map[string]string{
		"HashAlgorithm": "Sha384 { ... }",
		"PCR0":          h(b),
		"PCR1":          h([]byte("fake kernel")),
		"PCR2":          h([]byte("fake app"), b),
	}
}

func describeEIF(args []string) {
	fs := flag.NewFlagSet("describe-eif", flag.ExitOnError)
	eif := fs.String("eif-path", "", "")
	fs.Parse(args)
	out(map[string]any{"EifVersion": 4, "Measurements": measure(*eif), "IsSigned": false, "CheckCRC": true})
}

func runEnclave(args []string) {
	fs := flag.NewFlagSet("run-enclave", flag.ExitOnError)
	eif := fs.String("eif-path", "", "")
	cpus := fs.Int("cpu-count", 0, "")
	mem := fs.Int("memory", 0, "")
	name := fs.String("enclave-name", "", "")
	cid := fs.Uint64("enclave-cid", 0, "")
	debug := fs.Bool("debug-mode", false, "")
	fs.Parse(args)
	if fs.NArg() > 0 || *eif == "" || *cpus < 1 || *mem < 1 {
		fail("bad arguments")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "fail-run")); err == nil {
		fail(strings.TrimSpace(string(b)))
	}
	list := load()
	if *name == "" {
		*name = strings.TrimSuffix(filepath.Base(*eif), ".eif")
	}
	e := enclave{EnclaveName: *name, EnclaveID: fmt.Sprintf("i-fake-enc%016x", time.Now().UnixNano()),
		ProcessID: os.Getpid(), EnclaveCID: *cid, NumberOfCPUs: *cpus, CPUIDs: []int{1, 3}, MemoryMiB: *mem,
		State: "RUNNING", Flags: "NONE", Measurements: measure(*eif)}
	if *debug {
		e.Flags = "DEBUG_MODE"
	}
	if e.EnclaveCID == 0 {
		e.EnclaveCID = 16 + uint64(len(list))
	}
	for _, o := range list {
		if o.EnclaveName == e.EnclaveName {
			fail("E51 An enclave with this name already exists")
		}
		if o.EnclaveCID == e.EnclaveCID {
			fail("E07 The CID is in use")
		}
	}
	save(append(list, e))
	fmt.Println("Start allocating memory...")
	fmt.Printf("Started enclave with enclave-cid: %d, memory: %d MiB, cpu-ids: [1, 3]\n", e.EnclaveCID, e.MemoryMiB)
	out(map[string]any{"EnclaveName": e.EnclaveName, "EnclaveID": e.EnclaveID, "ProcessID": e.ProcessID,
		"EnclaveCID": e.EnclaveCID, "NumberOfCPUs": e.NumberOfCPUs, "CPUIDs": e.CPUIDs, "MemoryMiB": e.MemoryMiB})
}

func describeEnclaves() {
	if exists("fail-describe") {
		fail("E39 Failed to connect to the enclave process")
	}
	list := load()
	pcr0, _ := os.ReadFile(filepath.Join(dir, "running-pcr0"))
	for i := range list {
		switch {
		case exists("old-cli"):
			list[i].Measurements = nil
		case len(pcr0) > 0:
			list[i].Measurements["PCR0"] = strings.TrimSpace(string(pcr0))
		}
	}
	out(list)
}

func terminate(args []string) {
	id := enclaveID(args)
	list := load()
	for i, e := range list {
		if e.EnclaveID == id {
			save(append(list[:i], list[i+1:]...))
			out(map[string]any{"EnclaveID": id, "Terminated": true})
			return
		}
	}
	fail("E21 No such enclave: " + id)
}

func console(args []string) {
	id := enclaveID(args)
	e, ok := find(id)
	switch {
	case !ok:
		fail("E21 No such enclave: " + id)
	case e.Flags != "DEBUG_MODE":
		fail("E44 The enclave was not started in debug mode")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "console")); err == nil {
		os.Stdout.Write(b)
	}
	for {
		if _, ok := find(id); !ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func enclaveID(args []string) string {
	fs := flag.NewFlagSet("enclave-id", flag.ExitOnError)
	id := fs.String("enclave-id", "", "")
	fs.Parse(args)
	return *id
}

func find(id string) (enclave, bool) {
	for _, e := range load() {
		if e.EnclaveID == id {
			return e, true
		}
	}
	return enclave{}, false
}

func load() []enclave {
	b, err := os.ReadFile(filepath.Join(dir, "enclaves.json"))
	if errors.Is(err, os.ErrNotExist) {
		return []enclave{}
	}
	if err != nil {
		fail(err.Error())
	}
	list := []enclave{}
	if err := json.Unmarshal(b, &list); err != nil {
		fail(err.Error())
	}
	if list == nil {
		list = []enclave{}
	}
	return list
}

// save replaces the state atomically.
func save(list []enclave) {
	b, err := json.Marshal(list)
	if err != nil {
		fail(err.Error())
	}
	tmp := filepath.Join(dir, fmt.Sprintf("enclaves.json.%d", os.Getpid()))
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		fail(err.Error())
	}
	if err := os.Rename(tmp, filepath.Join(dir, "enclaves.json")); err != nil {
		fail(err.Error())
	}
}

func out(v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		fail(err.Error())
	}
	fmt.Println(string(b))
}
