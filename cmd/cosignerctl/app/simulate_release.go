//go:build release

package app

// devCommands is empty in release builds: there is no simulator.
func devCommands() []command { return nil }
