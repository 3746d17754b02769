//go:build !linux

package demo

import "syscall"

// devnetAttr: only Linux can stop a child when its parent dies.
func devnetAttr() *syscall.SysProcAttr { return nil }
