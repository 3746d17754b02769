// Package version reports what build of nitro-cosigner is running.
package version

import (
	"runtime/debug"
)

// Version is set at link time for releases
// (-ldflags "-X github.com/nitro-cosigner/nitro-cosigner/pkg/version.Version=v1.2.3").
// Otherwise it is the module version Go recorded, or "devel".
var Version = ""

// String returns the version, the VCS revision when Go recorded one, and
// the Go version, e.g. "v0.1.0 (rev 1a2b3c4d, go1.26.8)".
func String() string {
	v, rev, gover := Version, "", ""
	if info, ok := debug.ReadBuildInfo(); ok {
		gover = info.GoVersion
		if v == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 8 {
				rev = "rev " + s.Value[:8] + ", "
			}
		}
	}
	if v == "" {
		v = "devel"
	}
	return v + " (" + rev + gover + ")"
}
