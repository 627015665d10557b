// Package policies holds sluice's default Rego policies. sluiced embeds
// them and uses them when the configuration names no policy_dir; `make
// install` copies them to /etc/sluice/policies as a starting point.
//
// The Rego unit tests next to them (*_test.rego) run with `go test`.
package policies

import "embed"

// FS holds the default policies and their tests.
//
//go:embed *.rego
var FS embed.FS
