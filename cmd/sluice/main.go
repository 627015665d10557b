// Command sluice is the CLI for sluiced: mint tokens, run commands as
// enrolled jobs, show status, uninstall.
package main

import (
	"os"

	"github.com/sluice-gate/sluice/pkg/cli"
)

func main() {
	os.Exit(cli.Main(os.Args, os.Stdout, os.Stderr))
}
