//go:build !soak

package mpc_test

const soakEnabled = false
