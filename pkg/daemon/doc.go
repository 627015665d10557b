// Package daemon is sluiced: it wires configuration, the BPF steering
// programs, job enrollment, the embedded issuer, policy and the gate into
// one process, serves the local API and metrics, and reloads configuration
// and policy on SIGHUP or when policy files change.
//
// cmd/sluiced only parses flags and calls Run.
package daemon
