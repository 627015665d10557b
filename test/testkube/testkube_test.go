package testkube

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCluster starts a cluster and drives it with kubectl directly: reads,
// a secret, and exec over both remote command protocols, with stdin and
// with a failing command.
func TestCluster(t *testing.T) {
	t0 := time.Now()
	c := StartT(t, DefaultIndex)
	t.Logf("cluster started in %v", time.Since(t0).Round(100*time.Millisecond))

	kubectl := func(args ...string) string {
		t.Helper()
		out, errOut, err := c.Kubectl(args...)
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		return out
	}

	if out := kubectl("get", "pods"); !strings.Contains(out, ShellPod) || !strings.Contains(out, "Running") {
		t.Errorf("get pods: no running %s:\n%s", ShellPod, out)
	}
	if out := kubectl("get", "pods", "-n", ProdNamespace, "-o", "name"); strings.TrimSpace(out) != "pod/"+ShellPod {
		t.Errorf("get pods -n %s: %q", ProdNamespace, out)
	}
	if out := kubectl("get", "secret", SecretName, "-o", "yaml"); !strings.Contains(out, "password: aHVudGVyMi1pbi1wcm9k") {
		t.Errorf("secret has no password data:\n%s", out)
	}

	t.Run("exec websocket", func(t *testing.T) {
		if out := kubectl("exec", ShellPod, "--", "echo", "hi"); out != "hi\n" {
			t.Errorf("exec echo hi: %q", out)
		}
	})
	t.Run("exec spdy", func(t *testing.T) {
		cmd := c.KubectlCmd("exec", ShellPod, "--", "echo", "hi")
		cmd.Env = append(cmd.Env, "KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false")
		out, errOut, err := c.Run(cmd)
		if err != nil || out != "hi\n" {
			t.Errorf("exec echo hi over SPDY: %q %q %v", out, errOut, err)
		}
	})
	t.Run("exec stdin", func(t *testing.T) {
		for _, ws := range []string{"true", "false"} {
			cmd := c.KubectlCmd("exec", "-i", ShellPod, "--", "cat")
			cmd.Env = append(cmd.Env, "KUBECTL_REMOTE_COMMAND_WEBSOCKETS="+ws)
			cmd.Stdin = strings.NewReader("line one\nline two\n")
			out, errOut, err := c.Run(cmd)
			if err != nil || out != "line one\nline two\n" {
				t.Errorf("websockets=%s: exec -i cat: %q %q %v", ws, out, errOut, err)
			}
		}
	})
	t.Run("exec exit code", func(t *testing.T) {
		for _, ws := range []string{"true", "false"} {
			cmd := c.KubectlCmd("exec", ShellPod, "--", "sh", "-c", "echo oops >&2; exit 3")
			cmd.Env = append(cmd.Env, "KUBECTL_REMOTE_COMMAND_WEBSOCKETS="+ws)
			_, errOut, err := c.Run(cmd)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 3 {
				t.Errorf("websockets=%s: exit 3: %v %q", ws, err, errOut)
			}
			if !strings.Contains(errOut, "oops") || !strings.Contains(errOut, "command terminated with exit code 3") {
				t.Errorf("websockets=%s: stderr %q", ws, errOut)
			}
		}
	})
	t.Run("exec tty", func(t *testing.T) {
		// kubectl asks for a terminal only when its own stdin is one:
		// script(1) gives it one.
		if _, err := exec.LookPath("script"); err != nil {
			t.Skip("no script(1)")
		}
		for _, ws := range []string{"true", "false"} {
			cmd := exec.Command("script", "-qec", c.KubectlBin+" exec -it "+ShellPod+" -- sh -c 'tty; echo TERM=$TERM'", "/dev/null")
			cmd.Env = append(c.KubectlCmd().Env, "KUBECTL_REMOTE_COMMAND_WEBSOCKETS="+ws)
			out, errOut, err := c.Run(cmd)
			if err != nil || !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "TERM=xterm") {
				t.Errorf("websockets=%s: exec -it tty: %q %q %v", ws, out, errOut, err)
			}
		}
	})
	t.Run("viewer", func(t *testing.T) {
		conf := filepath.Join(t.TempDir(), "viewer.kubeconfig")
		if err := c.WriteKubeconfig(conf, c.URL, c.ViewerToken, c.CAPEM); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			args []string
			ok   bool
		}{
			{[]string{"get", "pods"}, true},
			{[]string{"get", "secret", SecretName}, false},
			{[]string{"exec", ShellPod, "--", "true"}, false},
		} {
			cmd := c.KubectlCmd(tc.args...)
			cmd.Env = append(cmd.Env, "KUBECONFIG="+conf)
			_, errOut, err := c.Run(cmd)
			if (err == nil) != tc.ok {
				t.Errorf("viewer kubectl %v: err %v, want ok=%v: %s", tc.args, err, tc.ok, errOut)
			}
		}
	})
	t.Run("logs", func(t *testing.T) {
		if out := kubectl("logs", ShellPod); !strings.Contains(out, "log line 3") {
			t.Errorf("logs: %q", out)
		}
	})
}
