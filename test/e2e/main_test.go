// Package e2e runs sluice end to end on this machine: the real daemon with
// its BPF programs attached to a real cgroup, remote hosts in network
// namespaces running Debian's nginx, and unmodified clients (curl) plus a
// small agent program inside enrolled jobs. It needs root; without it every
// test skips and says why.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/sluice-gate/sluice/test/testhost"
)

// bins holds the binaries built for this run.
var bins struct {
	dir                    string
	sluiced, sluice, agent string
}

// hostPrefix names the network namespaces and veths of e2e runs.
const hostPrefix = "sle"

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		// Every test skips with the reason; nothing to build.
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "sluice-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bins.dir = dir
	bins.sluiced = filepath.Join(dir, "sluiced")
	bins.sluice = filepath.Join(dir, "sluice")
	bins.agent = filepath.Join(dir, "agent")
	build := exec.Command("go", "build", "-o", dir+"/",
		"github.com/sluice-gate/sluice/cmd/sluiced",
		"github.com/sluice-gate/sluice/cmd/sluice",
		"github.com/sluice-gate/sluice/test/agent")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build binaries:", err)
		return 1
	}
	// The job runs as nobody in some tests; the agent must be reachable.
	_ = os.Chmod(dir, 0o755)
	testhost.CleanupStale(hostPrefix)
	defer runCleanups()
	return m.Run()
}
