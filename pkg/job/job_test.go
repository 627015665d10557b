package job

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-gate/sluice/pkg/cgroup"
	"github.com/sluice-gate/sluice/pkg/identity"
	"github.com/sluice-gate/sluice/pkg/intercept"
	"github.com/sluice-gate/sluice/test/testenv"
)

// TestEnrollPersistReap enrolls a real process into a real job cgroup,
// reopens the registry as a restarted daemon would, and watches the job go
// away when the process exits.
func TestEnrollPersistReap(t *testing.T) {
	testenv.Root(t)
	mount, err := cgroup.Mountpoint()
	if err != nil {
		t.Skipf("needs cgroup v2: %v", err)
	}
	cfg := Config{
		StateDir: t.TempDir(),
		Mount:    mount,
		Root:     "sluice-jobtest-" + filepath.Base(t.TempDir()),
		Log:      slog.New(slog.DiscardHandler),
	}
	defer cgroup.Remove(filepath.Join(mount, cfg.Root))
	r, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	proc := exec.Command("sleep", "60")
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	defer proc.Process.Kill()
	id := identity.Identity{Subject: "build-1", Expiry: time.Now().Add(time.Hour)}
	root, err := intercept.Ancestors("", proc.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Enroll(proc.Process.Pid, 0, id, root)
	if err != nil {
		t.Fatal(err)
	}
	if cg, _ := cgroup.Of(proc.Process.Pid); cg != b.Cgroup {
		t.Fatalf("process cgroup %q, want %q", cg, b.Cgroup)
	}
	if got, ok := r.Lookup(b.CgroupID); !ok || got.Identity.Subject != "build-1" {
		t.Fatalf("Lookup(%d) = %+v, %v", b.CgroupID, got, ok)
	}
	if !r.Contains(b.Cgroup) || r.Contains("/elsewhere") {
		t.Error("Contains misjudges the agents cgroup")
	}

	// A restarted daemon finds the binding.
	r2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r2.Lookup(b.CgroupID); !ok {
		t.Fatal("binding lost across reopen")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r2.Run(ctx)

	proc.Process.Kill()
	proc.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, ok := r2.Lookup(b.CgroupID)
		_, err := os.Stat(filepath.Join(mount, b.Cgroup))
		if !ok && os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job not reaped after its process exited (bound %v, dir %v)", ok, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if files, _ := os.ReadDir(filepath.Join(cfg.StateDir, "jobs")); len(files) != 0 {
		t.Errorf("%d binding files left", len(files))
	}
}
