// Package api defines the JSON messages between the sluice CLI and sluiced
// on the local API socket. The daemon serves them (pkg/daemon); the CLI
// speaks them through pkg/client. Only types live here.
package api
