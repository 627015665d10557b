// Package kernels checks that the steering programs load, attach and steer
// on more than the kernel the tests happen to run on: steercheck runs on the
// host kernel directly, and as /init of an initramfs booted under qemu with
// every kernel image in .cache/kernels (Debian's 6.1 cloud kernel; `make
// test-kernels` fetches it).
package kernels

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gate/sluice/test/testenv"
)

func buildSteercheck(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "init")
	cmd := exec.Command("go", "build", "-o", bin, "./steercheck")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build steercheck: %v\n%s", err, out)
	}
	return bin
}

// TestHostKernel runs steercheck on the running kernel.
func TestHostKernel(t *testing.T) {
	testenv.Kernel(t)
	bin := buildSteercheck(t, t.TempDir())
	out, err := exec.Command(bin).CombinedOutput()
	t.Logf("%s", out)
	if err != nil || !bytes.Contains(out, []byte("STEERCHECK PASS")) {
		t.Fatalf("steercheck on the host kernel: %v", err)
	}
}

// TestOlderKernels boots each kernel image under qemu with steercheck as
// init.
func TestOlderKernels(t *testing.T) {
	testenv.Command(t, "qemu-system-x86_64", "cpio")
	dir := os.Getenv("SLUICE_KERNEL_DIR")
	if dir == "" {
		dir = "../../.cache/kernels"
	}
	images, _ := filepath.Glob(filepath.Join(dir, "vmlinuz-*"))
	if len(images) == 0 {
		t.Skipf("no kernel images in %s; run `make test-kernels` (it fetches Debian's 6.1 cloud kernel)", dir)
	}
	work := t.TempDir()
	root := filepath.Join(work, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	buildSteercheck(t, root)
	initrd := filepath.Join(work, "initrd.cpio")
	pack := exec.Command("sh", "-c", "find . | cpio -o -H newc --quiet > "+initrd)
	pack.Dir = root
	if out, err := pack.CombinedOutput(); err != nil {
		t.Fatalf("build initramfs: %v\n%s", err, out)
	}
	for _, img := range images {
		t.Run(filepath.Base(img), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			args := []string{
				"-m", "512", "-smp", "1", "-nographic", "-no-reboot",
				"-kernel", img, "-initrd", initrd,
				"-append", "console=ttyS0 panic=-1 quiet",
			}
			if _, err := os.Stat("/dev/kvm"); err == nil {
				args = append(args, "-accel", "kvm")
			}
			out, err := exec.CommandContext(ctx, "qemu-system-x86_64", args...).CombinedOutput()
			var log []string
			for _, l := range strings.Split(string(out), "\n") {
				if strings.Contains(l, "steercheck") || strings.Contains(l, "STEERCHECK") {
					log = append(log, strings.TrimSpace(l))
				}
			}
			t.Logf("guest:\n%s", strings.Join(log, "\n"))
			if !bytes.Contains(out, []byte("STEERCHECK PASS")) {
				t.Fatalf("steercheck did not pass under %s (qemu: %v)\n%s", img, err, tail(out, 3000))
			}
		})
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
