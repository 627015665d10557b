// Package cli implements the sluice command: token, run, status and
// uninstall. It talks to sluiced only through pkg/client (except uninstall,
// which works on the kernel objects directly so it can clean up after a
// daemon that is gone). cmd/sluice calls Main.
package cli
