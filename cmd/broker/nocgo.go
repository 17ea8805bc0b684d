//go:build cgo

package main

// The broker narrows its capabilities and sets no_new_privs on every
// thread with syscall.AllThreadsSyscall, which refuses to run in a binary
// that links cgo. This line stops such a build at compile time.
var _ int = "build the broker with CGO_ENABLED=0 (make build does)"
