// Package testenv decides whether a test that needs root, cgroup v2, BPF or
// network namespaces can run here. When the machine plainly lacks one it
// skips with the reason; when the kernel should support a feature but it
// does not work, it fails, so a regression cannot hide behind a skip.
package testenv

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"

	"github.com/sluice-gate/sluice/pkg/cgroup"
)

// Root skips unless the test runs as root.
func Root(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (BPF programs, cgroups and network namespaces); run `make test` as root")
	}
}

// Kernel skips unless the steering programs can run here: root, cgroup v2
// mounted, and a kernel new enough for cgroup sock_addr programs with
// bpf_link. On a kernel that should have them (>= 5.8) a failed probe is a
// test failure.
func Kernel(t testing.TB) {
	t.Helper()
	Root(t)
	if _, err := cgroup.Mountpoint(); err != nil {
		t.Skipf("needs a cgroup v2 hierarchy: %v", err)
	}
	major, minor := release()
	should := major > 5 || (major == 5 && minor >= 8)
	for _, pt := range []ebpf.ProgramType{ebpf.CGroupSockAddr, ebpf.CGroupSock, ebpf.SockOps} {
		if err := features.HaveProgramType(pt); err != nil {
			if should {
				t.Fatalf("kernel %d.%d should support %s programs: %v", major, minor, pt, err)
			}
			t.Skipf("kernel %d.%d lacks %s programs: %v", major, minor, pt, err)
		}
	}
}

// Netns skips unless network namespaces can be created.
func Netns(t testing.TB) {
	t.Helper()
	Root(t)
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		t.Skipf("no network namespace support: %v", err)
	}
}

// Command skips unless the named programs are installed.
func Command(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if _, serr := os.Stat("/usr/sbin/" + n); serr == nil {
				continue
			}
			t.Skipf("needs %s (apt-get install it; .ci/run does): %v", n, err)
		}
	}
}

// Release returns the running kernel's major and minor version.
func release() (int, int) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return 0, 0
	}
	rel := unix.ByteSliceToString(u.Release[:])
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return 0, 0
	}
	major, _ := strconv.Atoi(parts[0])
	minor, _ := strconv.Atoi(strings.TrimLeftFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	return major, minor
}
