// Command sluiced is the sluice daemon: it steers agent connections into its
// proxy with eBPF and lets through only what policy allows.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sluice-gate/sluice/pkg/daemon"
)

func main() {
	configPath := flag.String("config", "", "configuration file (default "+daemon.DefaultConfigPath+" if present, else built-in defaults)")
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := daemon.Run(ctx, daemon.Options{ConfigPath: *configPath}); err != nil {
		fmt.Fprintln(os.Stderr, "sluiced:", err)
		os.Exit(1)
	}
}
