package testkube

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Programs are the binaries a cluster needs from the bin directory.
var Programs = []string{"kube-apiserver", "kubectl", "fake-kubelet"}

// BuildEnv, set to 1, lets StartT build missing binaries itself (about ten
// minutes cold) instead of skipping.
const BuildEnv = "SLUICE_KUBE_BUILD"

// RepoRoot finds the root of the sluice repository by walking up from the
// working directory (a test runs in its package directory).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "test", "kubetools", "build.sh")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testkube: not inside the sluice repository (no test/kubetools/build.sh above the working directory)")
		}
		dir = parent
	}
}

// DefaultBinDir is where build.sh puts the binaries by default.
func DefaultBinDir(repoRoot string) string {
	return filepath.Join(repoRoot, ".cache", "kube", "bin")
}

// Binaries runs test/kubetools/build.sh, which builds into
// DefaultBinDir(repoRoot) whatever is missing or older than its sources and
// returns at once otherwise, and returns that directory.
func Binaries(repoRoot string) (string, error) {
	dir := DefaultBinDir(repoRoot)
	cmd := exec.Command("/bin/sh", filepath.Join(repoRoot, "test", "kubetools", "build.sh"), dir)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("testkube: test/kubetools/build.sh: %w", err)
	}
	return dir, nil
}

// Built says whether binDir holds every program in Programs.
func Built(binDir string) error {
	for _, p := range Programs {
		if fi, err := os.Stat(filepath.Join(binDir, p)); err != nil || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("%s not built in %s: run test/kubetools/build.sh (about ten minutes cold) or set %s=1", p, binDir, BuildEnv)
		}
	}
	return nil
}

// EtcdBinary returns the path of etcd (Debian's etcd-server package).
func EtcdBinary() (string, error) {
	if p, err := exec.LookPath("etcd"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/bin/etcd"); err == nil {
		return "/usr/bin/etcd", nil
	}
	return "", errors.New("etcd not installed (apt-get install etcd-server, or run test/deps.sh)")
}

// Available says why a cluster cannot run here, or nil if it can: it needs
// root, etcd, and the programs built in binDir.
func Available(binDir string) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces)")
	}
	if _, err := EtcdBinary(); err != nil {
		return err
	}
	return Built(binDir)
}
