package workspace_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every Manager, Joiner and background send ends with its test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
