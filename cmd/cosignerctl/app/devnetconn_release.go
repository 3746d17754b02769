//go:build release

package app

import (
	"errors"

	"github.com/nitro-cosigner/nitro-cosigner/pkg/apiclient"
)

// errNoDevnet: release builds hold no devnet.
var errNoDevnet = errors.New("--devnet exists only in development builds")

func devnetClientConfig(string, string, string) (apiclient.Config, error) {
	return apiclient.Config{}, errNoDevnet
}

func devnetParties(string, int) ([]string, error) { return nil, errNoDevnet }
