package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/nitro-cosigner/nitro-cosigner/cmd/cosignerctl/app"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"cosignerctl": func() {
			os.Exit(app.Run(context.Background(), os.Args[1:], app.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}))
		},
	})
}

// TestScripts runs the CLI end to end from testdata/script/*.txtar. $VECTORS
// is the folder of real AWS attestation documents; the fake cosigners of
// an apiEnv serve the API commands (see apiEnv.setenv and ctl).
func TestScripts(t *testing.T) {
	vectors, err := filepath.Abs("../../pkg/attestation/testdata")
	if err != nil {
		t.Fatal(err)
	}
	api := newAPIEnv(t)
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("VECTORS", vectors)
			api.setenv(env)
			return nil
		},
		Cmds: map[string]func(*testscript.TestScript, bool, []string){"ctl": ctl},
	})
}
