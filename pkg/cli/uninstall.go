package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluice-gate/sluice/pkg/bpf"
	"github.com/sluice-gate/sluice/pkg/cgroup"
	"github.com/sluice-gate/sluice/pkg/config"
)

// cmdUninstall removes what sluiced leaves in the kernel on purpose: the
// pinned links that keep agents steered while no daemon runs, and the job
// cgroups. It refuses while a daemon is listening, unless --force.
func cmdUninstall(_ context.Context, e env, args []string) int {
	fs := newFlags(e, "uninstall", "[--config F] [--force]")
	cfgPath := fs.String("config", os.Getenv("SLUICE_CONFIG"), "sluiced configuration ($SLUICE_CONFIG; default /etc/sluice/sluice.yaml or built-in)")
	force := fs.Bool("force", false, "uninstall even though a daemon answers on the API socket")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	cfg := config.Default()
	path := *cfgPath
	if path == "" {
		if _, err := os.Stat("/etc/sluice/sluice.yaml"); err == nil {
			path = "/etc/sluice/sluice.yaml"
		}
	}
	if path != "" {
		var err error
		if cfg, err = config.Load(path); err != nil {
			return fail(e, "uninstall", err)
		}
	}
	if c, err := net.DialTimeout("unix", cfg.APISocket, time.Second); err == nil {
		c.Close()
		if !*force {
			return fail(e, "uninstall", fmt.Errorf("sluiced is running (%s); stop it first or use --force", cfg.APISocket))
		}
	}
	pinDir := filepath.Join(cfg.BPFFS, cfg.Cgroup)
	removed, err := bpf.Uninstall(pinDir)
	if err != nil {
		return fail(e, "uninstall", err)
	}
	if len(removed) > 0 {
		fmt.Fprintf(e.stdout, "detached %s (%s)\n", strings.Join(removed, ", "), pinDir)
	} else {
		fmt.Fprintf(e.stdout, "no programs pinned in %s\n", pinDir)
	}
	mount, err := cgroup.Mountpoint()
	if err != nil {
		return fail(e, "uninstall", err)
	}
	root := filepath.Join(mount, cfg.Cgroup)
	entries, _ := os.ReadDir(root)
	busy := 0
	for _, en := range entries {
		if !en.IsDir() {
			continue
		}
		dir := filepath.Join(root, en.Name())
		if err := cgroup.Remove(dir); err != nil {
			busy++
			fmt.Fprintf(e.stderr, "sluice uninstall: keep %s: still has processes\n", dir)
		}
	}
	if busy == 0 {
		if err := cgroup.Remove(root); err != nil {
			return fail(e, "uninstall", err)
		}
		fmt.Fprintf(e.stdout, "removed cgroup %s\n", root)
	}
	return exitOK
}
