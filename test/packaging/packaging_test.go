// Package packaging checks what `make install` ships: the systemd unit
// (with systemd-analyze verify, since PID 1 here is not systemd) and the
// installed tree.
package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-gate/sluice/pkg/config"
	"github.com/sluice-gate/sluice/test/testenv"
)

// install runs `make install` into a scratch DESTDIR and returns it.
func install(t *testing.T) string {
	t.Helper()
	testenv.Command(t, "make")
	dest := t.TempDir()
	cmd := exec.Command("make", "-C", "../..", "install", "DESTDIR="+dest, "BIN="+filepath.Join(t.TempDir(), "bin"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	return dest
}

func TestInstallTree(t *testing.T) {
	dest := install(t)
	for _, f := range []string{
		"usr/local/bin/sluiced",
		"usr/local/bin/sluice",
		"etc/systemd/system/sluiced.service",
		"etc/sluice/sluice.yaml",
		"etc/sluice/policies/sluice.rego",
		"usr/local/share/doc/sluice/README.md",
	} {
		if _, err := os.Stat(filepath.Join(dest, f)); err != nil {
			t.Errorf("make install did not install %s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dest, "etc/sluice/policies/sluice_test.rego")); err == nil {
		t.Error("Rego unit tests installed as policy")
	}
	cfg, err := config.Load(filepath.Join(dest, "etc/sluice/sluice.yaml"))
	if err != nil {
		t.Fatalf("installed config does not load: %v", err)
	}
	if cfg.PolicyDir != "/etc/sluice/policies" {
		t.Errorf("installed config policy_dir = %q, want /etc/sluice/policies", cfg.PolicyDir)
	}
}

// TestSystemdUnit verifies the installed unit with systemd-analyze (any
// warning fails the test) and checks the properties the service relies on.
func TestSystemdUnit(t *testing.T) {
	testenv.Command(t, "systemd-analyze")
	dest := install(t)
	unit := filepath.Join(dest, "etc/systemd/system/sluiced.service")
	b, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	// Point ExecStart at the binary just installed so verify can check it.
	text := strings.ReplaceAll(string(b), "/usr/local/bin/sluiced", filepath.Join(dest, "usr/local/bin/sluiced"))
	local := filepath.Join(t.TempDir(), "sluiced.service")
	if err := os.WriteFile(local, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", local).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, want := range []string{
		"Type=notify",
		"Restart=on-failure",
		"ExecReload=/bin/kill -HUP $MAINPID",
		"NoNewPrivileges=yes",
		"CapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_NET_ADMIN CAP_SYS_ADMIN CAP_SYS_PTRACE CAP_DAC_READ_SEARCH CAP_SYS_RESOURCE",
		"ProtectSystem=strict",
		"ProtectHome=yes",
		"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
	} {
		if !strings.Contains(text, "\n"+want+"\n") {
			t.Errorf("unit lacks %q", want)
		}
	}
	// Settings that would break sluiced: it writes /sys/fs/cgroup and
	// /sys/fs/bpf.
	for _, bad := range []string{"ProtectControlGroups=yes", "ProtectKernelTunables=yes"} {
		if strings.Contains(text, bad) {
			t.Errorf("unit sets %s, which makes cgroupfs or bpffs read-only", bad)
		}
	}
}
